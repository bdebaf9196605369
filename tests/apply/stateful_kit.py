"""What the two stateful exactly-once machines share: reading the journal's new outcomes and
checking B against the D of a plan applied in full."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from reconciler.state import JournalStatus, SQLiteStateStore

Key = tuple[str, str, str]


class JournalWatch:
    """Remembers every journal row's status, so each step can ask which became applied."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.seen: dict[tuple[str, str], JournalStatus] = {}

    def newly_applied(self, also: Iterable[str] = ()) -> list[str]:
        """Op ids whose rows became ``applied`` since the last call (plans seen so far, and ``also``)."""
        if not self.state.exists():
            return []
        found = []
        with SQLiteStateStore(self.state) as store:
            for plan_id in {p for p, _ in self.seen} | set(also):
                for op_id, entry in store.journal(plan_id).items():
                    before = self.seen.get((plan_id, op_id))
                    self.seen[(plan_id, op_id)] = entry.status
                    if entry.status is JournalStatus.APPLIED and before is not JournalStatus.APPLIED:
                        found.append(op_id)
        return found


def assert_b_is_d(state: Path, plan_desired: dict[Key, int]) -> None:
    """A plan applied in full leaves B = its D, exactly: every desired position managed at the
    desired quantity (records included), nothing else."""
    with SQLiteStateStore(state) as store:
        base = {key: record.quantity for key, record in store.load_base().positions.items()}
    assert base == plan_desired, f"B after a plan applied in full is not its D: {base} != {plan_desired}"
