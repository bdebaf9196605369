"""The state's count tables (schema version 5): one row per count, one per snapshotted position."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

from reconciler.state.base import JournalStatus


@dataclass(frozen=True)
class StoredCount:
    count_id: str
    location: str
    started_at: str
    started_by: str
    note: str
    items: list[str]
    finished_at: str | None
    snapshots: dict[tuple[str, str], tuple[int, float | None]]  # (target, item) -> (live, cost)


def save_count(store: Any, count: StoredCount) -> None:
    rows = [(count.count_id, t, item, qty, None if cost is None else str(cost))
            for (t, item), (qty, cost) in sorted(count.snapshots.items())]
    with store._tx(f"store count {count.count_id}"):
        store._execute("INSERT INTO counts (count_id, location, started_at, started_by, note, items, finished_at) "
                       "VALUES (?, ?, ?, ?, ?, ?, NULL)",
                       [count.count_id, count.location, count.started_at, count.started_by, count.note,
                        json.dumps(count.items)])
        if rows:
            store._executemany("INSERT INTO count_snapshots (count_id, target, item, quantity, cost) "
                               "VALUES (?, ?, ?, ?, ?)", rows)


def load_count(store: Any, count_id: str) -> StoredCount | None:
    with store._errors(f"read count {count_id}"):
        row = store._one("SELECT count_id, location, started_at, started_by, note, items, finished_at "
                         "FROM counts WHERE count_id = ?", [count_id])
        if row is None:
            return None
        snaps = store._all("SELECT target, item, quantity, cost FROM count_snapshots WHERE count_id = ?", [count_id])
    return StoredCount(row[0], row[1], row[2], row[3] or "", row[4] or "", json.loads(row[5] or "[]"), row[6],
                       {(t, i): (int(q), None if c is None else float(c)) for t, i, q, c in snaps})


def open_counts(store: Any) -> list[tuple[str, str, str]]:
    """(count id, location, started at) of every count not finished yet."""
    with store._errors("list open counts"):
        return [tuple(r) for r in store._all(
            "SELECT count_id, location, started_at FROM counts WHERE finished_at IS NULL ORDER BY started_at")]


def mark_finished(store: Any, count_id: str, when: str) -> None:
    with store._tx(f"finish count {count_id}"):
        store._execute("UPDATE counts SET finished_at = ? WHERE count_id = ?", [when, count_id])


def applied_ops(store: Any, op_ids: Sequence[str]) -> set[str]:
    """The ids among ``op_ids`` the journal holds as applied (a count's operation never runs twice)."""
    return {op_id for op_id in op_ids if store.find_journal(op_id, [JournalStatus.APPLIED])}
