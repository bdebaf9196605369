"""Text renderings of the lock, the run history and one run. They return strings."""

from __future__ import annotations

from typing import Iterable

from reconciler.state.base import JournalEntry, LockInfo, RunRecord


def render_lock(lock: LockInfo | None) -> str:
    if lock is None:
        return "No apply holds the state lock."
    return (
        f"Lock {lock.id}\n"
        f"  holder:   {lock.holder}\n"
        f"  host/pid: {lock.host} / {lock.pid}\n"
        f"  since:    {lock.acquired_at}\n"
        f"  expires:  {lock.expires_at}\n"
        f"Remove it (only if that apply is dead) with: reconciler unlock {lock.id}"
    )


def _counts(run: RunRecord) -> str:
    return ", ".join(f"{v} {k}" for k, v in run.counts.items() if v) or "-"


def render_history(runs: Iterable[RunRecord]) -> str:
    rows = list(runs)
    if not rows:
        return "No apply has run against this state yet."
    lines = [f"{'RUN':<13} {'PLAN':<20} {'STARTED':<21} {'OUTCOME':<9} {'WHO':<24} COUNTS"]
    for run in rows:
        lines.append(
            f"{run.run_id:<13} {run.plan_id[:20]:<20} {run.started_at:<21} {(run.outcome or 'running'):<9} "
            f"{run.who[:24]:<24} {_counts(run)}"
        )
    return "\n".join(lines)


def render_run(run: RunRecord, entries: Iterable[JournalEntry]) -> str:
    lines = [
        f"Run {run.run_id} of plan {run.plan_id}",
        f"  commit:   {run.git_commit or '-'}",
        f"  who:      {run.who}",
        f"  started:  {run.started_at}",
        f"  finished: {run.finished_at or '-'}",
        f"  outcome:  {run.outcome or 'running or interrupted'} ({_counts(run)})",
        "",
        "Operations of the plan (latest status):",
    ]
    for entry in entries:
        lines.append(f"  {entry.op_id}  {entry.kind:<8} {entry.target:<12} {entry.status.value:<11} run {entry.run_id}")
        if entry.error:
            lines.append(f"      error: {entry.error}")
        if entry.response and entry.status.value in ("failed", "in_doubt"):
            lines.append(f"      vendor said: {entry.response}")
    return "\n".join(lines)
