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


def resolve_all_in_doubt(
    store: StateStore, plan_id: str, applied: bool, *, holder: str, target: str | None = None, lock_ttl_s: float = 60.0
) -> list[JournalEntry]:
    """Settle every operation of ``plan_id`` (of ``target``, if given) left in doubt, alike.

    For the case where one lost answer put a whole request in doubt (a Ka-ching import of up to
    500 values lands whole or not at all): the user checks the vendor once and says so once.
    """
    open_entries = [e for e in store.journal(plan_id).values() if e.status in _OPEN and target in (None, e.target)]
    if not open_entries:
        scope = f" for target {target}" if target else ""
        raise StateError(f"plan {plan_id} has no operation in doubt{scope}",
                         hint="`reconciler history` lists the runs and their counts.")
    targets = sorted({e.target for e in open_entries})
    lock = store.acquire_lock(holder, lock_ttl_s, targets)
    try:
        return [store.resolve(e.plan_id, e.op_id, applied) for e in open_entries]
    finally:
        store.release_lock(lock.id)


def raise_for_report(report: ApplyReport) -> None:
    """Raise InDoubt (exit 4) or ApplyIncomplete (exit 3) unless everything was applied."""
    if report.outcome == "in_doubt":
        raise InDoubt(render_apply_summary(report))
    if report.outcome == "failed":
        raise ApplyIncomplete(render_apply_summary(report))
