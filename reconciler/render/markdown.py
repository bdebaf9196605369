"""Markdown for pull-request comments: verdict first, details folded, always under a limit.

GitHub refuses comments over 65,536 characters. Every section is added through a budget, so
however large the plan the output never exceeds ``limit``: the operations table is cut first,
with a note saying how many operations are not shown and where to find them.
"""

from __future__ import annotations

from reconciler.model import OpKind, Operation, Plan
from reconciler.render._summary import NOUNS, Summary, describe_legs, summarize, verdict_parts

MARKER = "<!-- reconciler-plan -->"
GITHUB_COMMENT_LIMIT = 65_536
_MAX_SUMMARY_ROWS = 200
_MAX_WARNINGS = 50
_SUMMARY_KINDS = (OpKind.RESET, OpKind.ADJUST, OpKind.MOVE, OpKind.DELETE, OpKind.RELEASE, OpKind.RECORD, OpKind.SETTINGS)
_CLOSE = "\n</details>\n"
# Room kept for the closing tag and the "not shown" note, which must always fit.
_RESERVE = 300


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("\r", " ")


class _Budget:
    """Appends chunks while they fit, so the result is never longer than ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0

    def fits(self, text: str, reserve: int = 0) -> bool:
        return self.size + len(text) + reserve <= self.limit

    def add(self, text: str, reserve: int = 0) -> bool:
        if not self.fits(text, reserve):
            return False
        self.parts.append(text)
        self.size += len(text)
        return True

    def text(self) -> str:
        return "".join(self.parts)


def _header(plan: Plan, summary: Summary) -> str:
    commit = plan.git_commit[:12] if plan.git_commit else "no commit"
    dirty = " plus uncommitted changes" if plan.git_dirty else ""
    head, tail = verdict_parts(summary)
    return (
        f"{MARKER}\n**Plan: {head}**{tail}\n\n"
        f"Plan `{plan.plan_id}` made {plan.created_at} from {commit}{dirty} against state "
        f"`{plan.lineage}` serial {plan.serial}.\n\n"
    )


def _summary_rows(summary: Summary) -> list[str]:
    heads = [NOUNS[k][1] for k in _SUMMARY_KINDS]
    rows = [
        "| target | location | " + " | ".join(heads) + " | units up | units down |\n",
        "|---|---|" + "---:|" * (len(heads) + 2) + "\n",
    ]
    for (target, location), tally in summary.by_location.items():
        if not any(tally.counts[k] for k in _SUMMARY_KINDS):
            continue
        counts = " | ".join(f"{tally.counts[k]:,}" for k in _SUMMARY_KINDS)
        rows.append(
            f"| {_cell(target)} | {_cell(location)} | {counts} | +{tally.up:,} | \u2212{tally.down:,} |\n"
        )
    return rows


def _add_summary(out: _Budget, summary: Summary) -> None:
    rows = _summary_rows(summary)
    if len(rows) == 2:
        return
    shown = 0
    for row in rows[: _MAX_SUMMARY_ROWS + 2]:
        if not out.add(row, reserve=_RESERVE * 2):
            break
        shown += 1
    hidden = len(rows) - shown
    if hidden:
        out.add(f"\n_\u2026 {hidden:,} more locations not shown; see the saved plan._\n", reserve=_RESERVE)
    out.add("\n")


DIRTY_NOTE = (
    "made from a working tree with uncommitted changes to the desired files: "
    "`reconciler apply` refuses it without --allow-dirty"
)


def _add_warnings(out: _Budget, plan: Plan) -> None:
    # Ours first: the plan's own warnings may be many, and the list is capped.
    notes = [f"This plan was {DIRTY_NOTE}"] if plan.git_dirty else []
    overridden = sum(1 for op in plan.operations if op.overridden_guards)
    if overridden:
        ops = "operation carries" if overridden == 1 else "operations carry"
        notes.append(f"{overridden:,} {ops} overridden guards (marked \u26a0 below)")
    notes += plan.warnings
    if not notes:
        return
    out.add("**Warnings**\n\n", reserve=_RESERVE * 2)
    for i, note in enumerate(notes):
        line = f"- \u26a0\ufe0f {_cell(note)}\n"
        # Capped so that thousands of warnings cannot push the summary table out of the comment.
        if i == _MAX_WARNINGS or not out.add(line, reserve=_RESERVE * 2):
            out.add(f"- \u2026 {len(notes) - i:,} more warnings; see the saved plan\n", reserve=_RESERVE)
            break
    out.add("\n")


def _op_row(op: Operation) -> str:
    location, a, b, d, change, expected = describe_legs(op)
    guards = f" \u26a0 overridden: {', '.join(op.overridden_guards)}" if op.overridden_guards else ""
    cells = (op.kind.value, op.target, location, op.item, a, b, d, change, expected, op.reason + guards)
    return "| " + " | ".join(_cell(c) for c in cells) + " |\n"


def _add_details(out: _Budget, plan: Plan) -> None:
    ops = plan.operations
    if not ops:
        return
    if not out.add(f"<details><summary>{len(ops):,} operations</summary>\n\n", reserve=_RESERVE):
        out.add(f"_{len(ops):,} operations not shown; see the saved plan._\n")
        return
    out.add("| kind | target | location | item | A | B | D | change | expected | reason |\n", reserve=_RESERVE)
    out.add("|---|---|---|---|---:|---:|---:|---:|---:|---|\n", reserve=_RESERVE)
    shown = 0
    for op in ops:
        if not out.add(_op_row(op), reserve=_RESERVE):
            break
        shown += 1
    if shown < len(ops):
        out.add(f"\n_\u2026 {len(ops) - shown:,} more operations not shown; see the saved plan._\n")
    out.add(_CLOSE)


def render_markdown(plan: Plan, limit: int = GITHUB_COMMENT_LIMIT) -> str:
    """A PR comment: marker, verdict, warnings, per-location summary, folded operations."""
    if limit < 2 * _RESERVE:
        raise ValueError(f"limit must be at least {2 * _RESERVE} characters")
    summary = summarize(plan)
    out = _Budget(limit)
    head = _header(plan, summary)
    out.add(head[: limit - _RESERVE])
    # Warnings before the table: a reviewer must see them even when the table is long.
    _add_warnings(out, plan)
    for note in plan.notes[:_MAX_WARNINGS]:  # what applying costs (requests, time) and records
        out.add(f"- {_cell(note)}\n", reserve=_RESERVE * 2)
    if plan.notes:
        out.add("\n")
    for block in plan.counts:  # stock counts (docs/counts.md), biggest variances first
        head, *rows = block.split("\n")
        out.add(f"**Stock {_cell(head)}**\n\n" + "".join(f"- `{_cell(r.strip())}`\n" for r in rows) + "\n",
                reserve=_RESERVE * 2)
    _add_summary(out, summary)
    _add_details(out, plan)
    return out.text()
