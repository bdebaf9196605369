"""The result of an apply, the per-batch progress event, and their text rendering."""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.state.base import JournalStatus

# How an operation ended in this run. "skipped": applied by an earlier run, a drift note, or
# outside the requested targets; nothing was sent for it.
COUNTED = ("applied", "failed", "in_doubt", "skipped")


@dataclass(frozen=True, slots=True)
class OpReport:
    op_id: str
    target: str
    kind: str
    item: str
    location: str
    status: str  # one of COUNTED
    note: str = ""  # why skipped, how resolved
    error: str | None = None
    response: str = ""  # the vendor's body, verbatim


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """Sent after each batch so the CLI can draw a progress bar or print a line."""

    target: str
    batch: int  # 1-based
    batches: int
    ops_done: int  # of this target, so far
    ops_total: int
    applied: int  # in this batch
    failed: int
    in_doubt: int


@dataclass(slots=True)
class ApplyReport:
    plan_id: str
    run_id: str
    resumed: bool
    ops: list[OpReport] = field(default_factory=list)
    plan_status: str = ""
    targets: tuple[str, ...] = ()  # the parts this run applied (apply --target); () = all
    parts: dict[str, str] = field(default_factory=dict)  # target -> part status after the run

    def count(self, status: str) -> int:
        return sum(1 for op in self.ops if op.status == status)

    @property
    def counts(self) -> dict[str, int]:
        return {name: self.count(name) for name in COUNTED}

    @property
    def outcome(self) -> str:
        if self.count(JournalStatus.IN_DOUBT.value):
            return "in_doubt"
        if self.count(JournalStatus.FAILED.value):
            return "failed"
        return "applied"

    @property
    def ok(self) -> bool:
        return self.outcome == "applied"


def render_apply_summary(report: ApplyReport) -> str:
    """Counts first, then every failed and in-doubt operation with the vendor's words."""
    counts = report.counts
    head = (
        f"Plan {report.plan_id} (run {report.run_id}{', resumed' if report.resumed else ''}): "
        f"{counts['applied']} applied, {counts['failed']} failed, "
        f"{counts['in_doubt']} in doubt, {counts['skipped']} skipped."
    )
    lines = [head]
    failed = [op for op in report.ops if op.status == "failed"]
    doubtful = [op for op in report.ops if op.status == "in_doubt"]
    if failed:
        lines.append("")
        lines.append("Failed (re-run apply to retry them):")
        for op in failed:
            lines.append(f"  {op.op_id}  {op.kind} {op.target}/{op.location}/{op.item}: {op.error or 'failed'}")
            if op.response and op.response not in (op.error or ""):
                lines.append(f"    vendor said: {op.response}")
    if doubtful:
        lines.append("")
        lines.append("In doubt (the request may or may not have been applied; check the vendor, then settle each):")
        for op in doubtful:
            lines.append(f"  {op.op_id}  {op.kind} {op.target}/{op.location}/{op.item}: {op.note or op.error or ''}")
            lines.append(f"    reconciler resolve {op.op_id} --applied | --not-applied")
    if report.targets and report.run_id == "-":
        lines[0] = f"Plan {report.plan_id} has no operations for target(s) {', '.join(report.targets)}: nothing to apply."
    if report.parts and (report.targets or len(report.parts) > 1):
        lines.append("")
        lines.append("Parts of the plan: " + ", ".join(f"{t} {s}" for t, s in sorted(report.parts.items())))
    if report.ok:
        lines.append("")
        lines.append(_closing(report))
    return "\n".join(lines)


def _closing(report: ApplyReport) -> str:
    if report.plan_status == "applied":
        return "All operations are applied."
    if report.parts:
        done = sum(1 for s in report.parts.values() if s == "applied")
        return (f"Nothing failed. The plan is {report.plan_status or 'not started'}: {done} of {len(report.parts)} parts "
                f"applied; it is complete when every part is.")
    return "Nothing failed."
