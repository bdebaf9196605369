"""Settling operations in doubt by the user's word, and mapping a report to an exit code."""

from __future__ import annotations

from reconciler.apply.report import ApplyReport, render_apply_summary
from reconciler.errors import ApplyIncomplete, InDoubt, StateError
from reconciler.state.base import JournalEntry, JournalStatus, StateStore

_OPEN = (JournalStatus.IN_DOUBT, JournalStatus.PENDING)


def resolve_op(
    store: StateStore, op_ref: str, applied: bool, *, holder: str, plan_id: str | None = None, lock_ttl_s: float = 60.0
) -> JournalEntry:
    """Mark the in-doubt operation ``op_ref`` (its id or a unique prefix) applied or not.

    Applied: B takes the values the operation would have left. Not applied: the next apply of
    the plan sends it again. Takes the lock of the operation's target so it cannot race an apply of that target.
    """
    matches = [e for e in store.find_journal(op_ref, _OPEN) if plan_id is None or e.plan_id == plan_id]
    if not matches:
        raise StateError(
            f"no operation in doubt matches {op_ref!r}",
            hint="`reconciler history RUN` lists each run's operations and their status.",
        )
    if len({(e.plan_id, e.op_id) for e in matches}) > 1:
        listed = ", ".join(f"{e.op_id} (plan {e.plan_id})" for e in matches)
        raise StateError(f"{op_ref!r} matches several operations in doubt: {listed}", hint="Give the full id and --plan.")
    entry = matches[0]
    lock = store.acquire_lock(holder, lock_ttl_s, [entry.target])  # only its target's apply can race it
    try:
        return store.resolve(entry.plan_id, entry.op_id, applied)
    finally:
        store.release_lock(lock.id)


def raise_for_report(report: ApplyReport) -> None:
    """Raise InDoubt (exit 4) or ApplyIncomplete (exit 3) unless everything was applied."""
    if report.outcome == "in_doubt":
        raise InDoubt(render_apply_summary(report))
    if report.outcome == "failed":
        raise ApplyIncomplete(render_apply_summary(report))
