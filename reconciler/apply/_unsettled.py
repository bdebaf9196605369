"""Operations that an earlier apply left pending or in doubt block what they could corrupt.

Until such an operation is settled, B of its positions may not be what the vendor holds: a
pending adjustment may have landed without its outcome being journalled. A plan made from that
B, or an apply of another plan over those positions, could then adjust by D - B a second time.
So ``plan`` and ``apply`` refuse, before any request, while the journal holds unsettled
operations for the positions they would touch; ``drift`` still runs and names them.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

from reconciler.errors import UnsettledOperations
from reconciler.model import PositionKey
from reconciler.state.base import JournalEntry, JournalStatus, LockInfo, StateStore

_SHOWN = 10


def entry_keys(entry: JournalEntry) -> tuple[PositionKey, ...]:
    return tuple(update.key for update in entry.base_updates)


def unsettled_touching(
    store: StateStore, targets: Iterable[str], touches: Callable[[PositionKey], bool], *, other_than: str | None = None
) -> list[JournalEntry]:
    """Unsettled operations of ``targets`` (not of plan ``other_than``) with a position that
    ``touches`` accepts. An operation whose positions were not journalled counts as touching."""
    found = []
    for entry in store.unsettled(targets):
        if entry.plan_id == other_than:
            continue
        keys = entry_keys(entry)
        if not keys or any(touches(key) for key in keys):
            found.append(entry)
    return found


def describe_entry(entry: JournalEntry) -> str:
    keys = entry_keys(entry)
    where = ", ".join(f"{loc}/{item}" for _, loc, item in keys) or "(positions not recorded)"
    state = "in doubt" if entry.status is JournalStatus.IN_DOUBT else "pending (sent or about to be, outcome unknown)"
    return f"{entry.kind} {entry.op_id} on {entry.target} {where}: {state} (plan {entry.plan_id}, run {entry.run_id})"


def unsettled_error(entries: Sequence[JournalEntry], refused: str, locks: Sequence[LockInfo]) -> UnsettledOperations:
    """The refusal of ``refused`` ("plan", "apply of plan P") because of ``entries``."""
    lines = [f"  {describe_entry(e)}" for e in entries[:_SHOWN]]
    if len(entries) > _SHOWN:
        lines.append(f"  ... and {len(entries) - _SHOWN} more")
    plans = sorted({e.plan_id for e in entries})
    message = (
        f"{refused} refused: {len(entries)} operation{'s' if len(entries) != 1 else ''} of an earlier apply "
        f"{'are' if len(entries) != 1 else 'is'} still pending or in doubt for positions it would touch, so what "
        "was last applied there is not known for sure:\n" + "\n".join(lines) + "\n"
    )
    hints = []
    running = [lock for lock in locks if set(lock.targets) & ({e.target for e in entries} | {"*"})]
    if running and any(e.status is JournalStatus.PENDING for e in entries):
        holders = ", ".join(sorted({lock.holder for lock in running}))
        hints.append(f"An apply holding the lock ({holders}) may still be running: wait for it to finish, then try again.")
    if any(e.status is JournalStatus.PENDING for e in entries):
        hints.append(
            f"Resume the interrupted apply with `reconciler apply <plan file of {', '.join(plans)}>`: "
            "it verifies or re-sends what was in flight."
        )
    first = entries[0]
    hints.append(
        "Or check the vendor and settle each with `reconciler resolve OP --applied` or `--not-applied` "
        f"(e.g. `reconciler resolve {first.op_id[:12]} --applied`), or all of a plan at once with "
        f"`reconciler resolve --all --plan {first.plan_id} --applied|--not-applied`. `reconciler drift` still works meanwhile."
    )
    return UnsettledOperations(message.rstrip(), hint=" ".join(hints))
