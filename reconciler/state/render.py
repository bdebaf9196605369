"""Text renderings of the locks, the run history and one run. They return strings."""

from __future__ import annotations

from typing import Iterable, Sequence

from reconciler.state.base import ALL_TARGETS, JournalEntry, LockInfo, PartRecord, RunRecord


def _scope(targets: Sequence[str]) -> str:
    return "the whole state" if tuple(targets) in ((ALL_TARGETS,), ()) else ", ".join(targets)


def render_lock(lock: LockInfo | None) -> str:
    if lock is None:
        return "No apply holds the state lock."
    return render_locks([lock])


def render_locks(locks: Sequence[LockInfo], where: str = "") -> str:
    if not locks:
        return "No apply holds the state lock" + (f" of {where}." if where else ".")
    blocks = []
    for lock in locks:
        expires = lock.expires_at or "when its holder's database connection ends"
        backend = f" (server backend {lock.backend_pid})" if lock.backend_pid else ""
        blocks.append(
            f"Lock {lock.id}\n"
            f"  targets:  {_scope(lock.targets)}\n"
            f"  holder:   {lock.holder}\n"
            f"  host/pid: {lock.host} / {lock.pid}{backend}\n"
            f"  since:    {lock.acquired_at}\n"
            f"  expires:  {expires}\n"
            f"Remove it (only if that apply is dead or stuck) with: reconciler unlock {lock.id}"
        )
    return "\n\n".join(blocks)


def _counts(run: RunRecord) -> str:
    return ", ".join(f"{v} {k}" for k, v in run.counts.items() if v) or "-"


def render_history(runs: Iterable[RunRecord]) -> str:
    rows = list(runs)
    if not rows:
        return "No apply has run against this state yet."
    lines = [f"{'RUN':<13} {'PLAN':<20} {'TARGETS':<16} {'STARTED':<21} {'OUTCOME':<9} {'WHO':<24} COUNTS"]
    for run in rows:
        targets = ",".join(run.targets) if run.targets else "all"
        lines.append(
            f"{run.run_id:<13} {run.plan_id[:20]:<20} {targets[:16]:<16} {run.started_at:<21} "
            f"{(run.outcome or 'running'):<9} {run.who[:24]:<24} {_counts(run)}"
        )
    return "\n".join(lines)


def render_parts(parts: Sequence[PartRecord]) -> list[str]:
    """One line per target part: status and applied/total operations."""
    if not parts:
        return []
    lines = ["Parts of the plan (one per target; `apply --target T` applies one):"]
    for part in parts:
        status = "applying or interrupted" if part.status.value == "applying" else part.status.value
        lines.append(f"  {part.target:<20} {status:<24} {part.applied}/{part.op_count} operations applied")
    return lines


def render_run(run: RunRecord, entries: Iterable[JournalEntry], parts: Sequence[PartRecord] = ()) -> str:
    lines = [
        f"Run {run.run_id} of plan {run.plan_id}",
        f"  targets:  {', '.join(run.targets) if run.targets else 'all of the plan'}",
        f"  commit:   {run.git_commit or '-'}",
        f"  who:      {run.who}",
        f"  started:  {run.started_at}",
        f"  finished: {run.finished_at or '-'}",
        f"  outcome:  {run.outcome or 'running or interrupted'} ({_counts(run)})",
        "",
    ]
    if parts:
        lines.extend(render_parts(parts))
        lines.append("")
    lines.append("Operations of the plan (latest status):")
    for entry in entries:
        lines.append(f"  {entry.op_id}  {entry.kind:<8} {entry.target:<12} {entry.status.value:<11} run {entry.run_id}")
        if entry.error:
            lines.append(f"      error: {entry.error}")
        if entry.response and entry.status.value in ("failed", "in_doubt"):
            lines.append(f"      vendor said: {entry.response}")
    return "\n".join(lines)
