"""Drift reports: positions whose live stock differs from what reconciler last applied."""

from __future__ import annotations

import json
from typing import Protocol, Sequence

DRIFT_MARKER = "<!-- reconciler-drift -->"


class DriftLike(Protocol):
    target: str
    location: str
    item: str
    base: int
    actual: int | None

    @property
    def difference(self) -> int | None: ...


def render_drift(entries: Sequence[DriftLike], unreadable: Sequence[str], fmt: str, limit: int = 65_536) -> str:
    if fmt == "json":
        return json.dumps(
            {
                "drift": [
                    {"target": e.target, "location": e.location, "item": e.item, "base": e.base, "actual": e.actual}
                    for e in entries
                ],
                "unreadable_targets": list(unreadable),
            },
            indent=2,
        )
    if fmt == "markdown":
        return _markdown(entries, unreadable, limit)
    return _text(entries, unreadable)


def _totals(entries: Sequence[DriftLike]) -> tuple[int, int]:
    up = sum(e.difference for e in entries if (e.difference or 0) > 0)  # type: ignore[misc]
    down = -sum(e.difference for e in entries if (e.difference or 0) < 0)  # type: ignore[misc]
    return up, down


def _verdict(entries: Sequence[DriftLike]) -> str:
    if not entries:
        return "No drift: live stock matches what was last applied."
    up, down = _totals(entries)
    return f"Drift in {len(entries)} position(s): live stock is +{up} / -{down} units away from what was applied."


def _text(entries: Sequence[DriftLike], unreadable: Sequence[str]) -> str:
    lines = [_verdict(entries)]
    for e in entries:
        lines.append(f"  {e.target}/{e.location}/{e.item}: applied {e.base}, live {e.actual} ({e.difference:+d})")
    if unreadable:
        lines.append("Not checked (write-only APIs, no read side): " + ", ".join(unreadable))
    return "\n".join(lines)


def _markdown(entries: Sequence[DriftLike], unreadable: Sequence[str], limit: int) -> str:
    head = [DRIFT_MARKER, f"**{_verdict(entries)}**", ""]
    if unreadable:
        head += ["Not checked (write-only APIs): " + ", ".join(f"`{t}`" for t in unreadable), ""]
    if not entries:
        return "\n".join(head)
    rows = ["| target | location | item | applied | live | difference |", "|---|---|---|---:|---:|---:|"]
    tail = ["</details>"]
    budget = limit - len("\n".join(head)) - 200
    shown = 0
    for e in entries:
        row = f"| {e.target} | {e.location} | {e.item} | {e.base} | {e.actual} | {e.difference:+d} |"
        if budget - len(row) - 1 < 0:
            break
        budget -= len(row) + 1
        rows.append(row)
        shown += 1
    if shown < len(entries):
        tail.insert(0, f"\n… {len(entries) - shown:,} more positions not shown (limit of a comment).")
    return "\n".join(head + ["<details><summary>Positions</summary>", ""] + rows + tail)
