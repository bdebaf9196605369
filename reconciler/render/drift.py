"""Drift reports: positions whose live stock differs from what reconciler last applied.

The markdown form is an issue body for the scheduled drift workflow: it starts with
:data:`DRIFT_MARKER` (so the workflow finds and updates its one issue), says the threshold and
whether it was exceeded, sums drift per target and location, and folds the positions. Like the
plan comment it never exceeds ``limit`` characters (GitHub's issue body limit is 65,536).
"""

from __future__ import annotations

import json
from typing import Protocol, Sequence

DRIFT_MARKER = "<!-- reconciler-drift -->"
GITHUB_BODY_LIMIT = 65_536
_MAX_SUMMARY_ROWS = 100
# Room kept for the closing tag and the "not shown" note.
_RESERVE = 300


class DriftLike(Protocol):
    target: str
    location: str
    item: str
    base: int
    actual: int | None

    @property
    def difference(self) -> int | None: ...


class ReportLike(Protocol):
    unreadable: list[str]
    checked_positions: int
    applied_units: int

    @property
    def entries(self) -> Sequence[DriftLike]: ...

    @property
    def drift_units(self) -> int: ...

    @property
    def drift_percent(self) -> float | None: ...


class ThresholdLike(Protocol):
    def exceeded_by(self, report: ReportLike) -> bool: ...

    def describe(self) -> str: ...


def render_drift(report: ReportLike, fmt: str, threshold: ThresholdLike, limit: int = GITHUB_BODY_LIMIT) -> str:
    """``report`` as "text", "markdown" (an issue body) or "json", judged against ``threshold``."""
    exceeded = threshold.exceeded_by(report)
    if fmt == "json":
        return _json(report, threshold, exceeded)
    if fmt == "markdown":
        return _markdown(report, threshold, exceeded, limit)
    return _text(report, threshold, exceeded)


def _json(report: ReportLike, threshold: ThresholdLike, exceeded: bool) -> str:
    entries = [
        {"target": e.target, "location": e.location, "item": e.item, "base": e.base, "actual": e.actual}
        for e in report.entries
    ]
    doc = {
        "drift": entries,
        "unreadable_targets": list(report.unreadable),
        "unsettled_operations": list(getattr(report, "unsettled", ())),
        "checked_positions": report.checked_positions,
        "applied_units": report.applied_units,
        "drift_units": report.drift_units,
        "drift_percent": report.drift_percent,
        "threshold": threshold.describe(),
        "threshold_exceeded": exceeded,
    }
    return json.dumps(doc, indent=2)


def _percent(report: ReportLike) -> str:
    share = report.drift_percent
    return "n/a: nothing applied" if share is None else f"{share:.1f}%"


def _verdict(report: ReportLike) -> str:
    if not report.entries:
        return f"No drift: live stock matches what was last applied ({report.checked_positions:,} positions checked)."
    return (
        f"Drift in {len(report.entries):,} of {report.checked_positions:,} positions: "
        f"{report.drift_units:,} units away from what was applied ({_percent(report)} of "
        f"{report.applied_units:,} applied units)."
    )


def _judgement(threshold: ThresholdLike, exceeded: bool) -> str:
    state = "exceeded" if exceeded else "not exceeded"
    return f"Threshold: {threshold.describe()}; {state}."


def _text(report: ReportLike, threshold: ThresholdLike, exceeded: bool) -> str:
    lines = [_verdict(report), _judgement(threshold, exceeded)]
    for e in report.entries:
        lines.append(f"  {e.target}/{e.location}/{e.item}: applied {e.base}, live {e.actual} ({e.difference:+d})")
    if report.unreadable:
        lines.append("Not checked (write-only APIs, no read side): " + ", ".join(report.unreadable))
    lines.extend(_unsettled_lines(report))
    return "\n".join(lines)


def _unsettled_lines(report: ReportLike) -> list[str]:
    unsettled = list(getattr(report, "unsettled", ()))
    if not unsettled:
        return []
    return [
        f"{len(unsettled)} operation(s) of an earlier apply are still pending or in doubt: what was last applied "
        "there is not known for sure, so plan and apply refuse those positions until they are settled "
        "(resume the apply, or `reconciler resolve`):",
        *(f"  {text}" for text in unsettled),
    ]


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _by_location(entries: Sequence[DriftLike]) -> list[str]:
    totals: dict[tuple[str, str], list[int]] = {}
    for e in entries:
        row = totals.setdefault((e.target, e.location), [0, 0, 0])
        diff = e.difference or 0
        row[0] += 1
        row[1 if diff > 0 else 2] += abs(diff)
    rows = ["| target | location | positions | units above | units below |\n", "|---|---|---:|---:|---:|\n"]
    for (target, location), (count, up, down) in sorted(totals.items()):
        rows.append(f"| {_cell(target)} | {_cell(location)} | {count:,} | +{up:,} | \u2212{down:,} |\n")
    return rows


def _fit(rows: Sequence[str], budget: int, what: str) -> str:
    """As many whole rows as fit in ``budget``, and a note counting the rest."""
    out, used = [], 0
    for i, row in enumerate(rows):
        if used + len(row) > budget:
            return "".join(out) + f"\n_\u2026 {len(rows) - i:,} more {what} not shown (size limit)._\n"
        out.append(row)
        used += len(row)
    return "".join(out)


class _PositionRows(Sequence[str]):
    """The positions table, formatted row by row on demand: 100k entries, a few hundred shown."""

    HEAD = ("| target | location | item | applied | live | difference |\n", "|---|---|---|---:|---:|---:|\n")

    def __init__(self, entries: Sequence[DriftLike]) -> None:
        self.entries = entries

    def __len__(self) -> int:
        return len(self.entries) + 2

    def __getitem__(self, i: int) -> str:  # type: ignore[override]
        if i < 2:
            return self.HEAD[i]
        e = self.entries[i - 2]
        return f"| {_cell(e.target)} | {_cell(e.location)} | {_cell(e.item)} | {e.base} | {e.actual} | {e.difference:+d} |\n"


def _markdown(report: ReportLike, threshold: ThresholdLike, exceeded: bool, limit: int) -> str:
    if limit < 4 * _RESERVE:
        raise ValueError(f"limit must be at least {4 * _RESERVE} characters")
    head = f"{DRIFT_MARKER}\n**{_verdict(report)}**\n\n{_judgement(threshold, exceeded)}\n\n"
    if report.unreadable:
        head += "Not checked (write-only APIs): " + ", ".join(f"`{_cell(t)}`" for t in report.unreadable) + "\n\n"
    unsettled = _unsettled_lines(report)
    if unsettled:
        head += "**" + _cell(unsettled[0]) + "**\n\n" + "".join(f"- {_cell(t.strip())}\n" for t in unsettled[1:11]) + "\n"
    head = head[: limit - 3 * _RESERVE]
    if not report.entries:
        return head
    summary = _by_location(report.entries)
    shown = _fit(summary[: _MAX_SUMMARY_ROWS + 2], (limit - len(head)) // 2, "locations")
    if len(summary) > _MAX_SUMMARY_ROWS + 2 and "more locations" not in shown:
        shown += f"\n_\u2026 {len(summary) - _MAX_SUMMARY_ROWS - 2:,} more locations not shown._\n"
    body = head + shown + "\n<details><summary>Positions</summary>\n\n"
    table = _fit(_PositionRows(report.entries), limit - len(body) - _RESERVE, "positions")
    return body + table + "\n</details>\n"
