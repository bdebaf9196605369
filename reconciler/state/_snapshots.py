"""The ``live_snapshots`` table: a target's live stock as last read, and its version cursor
(schema version 6; reconciler/connectors/_xseries_incremental.py).

A cache of the vendor, not a record of what was applied: never exported (not in
TABLE_COLUMNS, so ``state migrate`` does not copy it; the next plan reads in full instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

# Journal states that leave a vendor's stock in doubt: an op that may or may not have been sent,
# or one whose doubt was settled by `resolve` (not_applied) rather than by the vendor's answer.
_DOUBTFUL = ("pending", "in_doubt", "not_applied")


@dataclass(frozen=True)
class LiveSnapshot:
    target: str
    lineage: str
    source: str
    cursor: int
    read_at: str  # when the last read (full or incremental) ended
    full_at: str  # when the snapshot was last read in full
    records: bytes
    age_s: float  # seconds since full_at, by the store's clock


class SnapshotsMixin:
    """Store methods for live snapshots; mixed into SQLStateStore (both backends)."""

    def live_snapshot(self, target: str) -> LiveSnapshot | None:
        with self._errors("read the live snapshot"):  # type: ignore[attr-defined]
            row = self._one("SELECT target, lineage, source, cursor, read_at, full_at, records FROM live_snapshots "  # type: ignore[attr-defined]
                            "WHERE target = ?", [target])
        if row is None:
            return None
        full = datetime.fromisoformat(str(row[5]).replace("Z", "+00:00"))
        age = (self._clock() - full).total_seconds()  # type: ignore[attr-defined]
        return LiveSnapshot(str(row[0]), str(row[1]), str(row[2]), int(row[3]), str(row[4]), str(row[5]),
                            bytes(row[6]), age)

    def save_live_snapshot(self, target: str, *, lineage: str, source: str, cursor: int, records: bytes,
                           full_at: str | None) -> str:
        """Keep a read's snapshot; ``full_at`` None: now (a full read). Returns its read_at."""
        # the journal's format (_sql.iso), so updated_at and read_at compare as text
        now = self._clock().astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")  # type: ignore[attr-defined]
        with self._tx(f"keep the live snapshot of {target}"):  # type: ignore[attr-defined]
            self._execute("DELETE FROM live_snapshots WHERE target = ?", [target])  # type: ignore[attr-defined]
            self._execute("INSERT INTO live_snapshots (target, lineage, source, cursor, read_at, full_at, records) "  # type: ignore[attr-defined]
                          "VALUES (?, ?, ?, ?, ?, ?, ?)", [target, lineage, source, cursor, now, full_at or now, records])
        return now

    def drop_live_snapshot(self, target: str) -> bool:
        with self._tx(f"drop the live snapshot of {target}"):  # type: ignore[attr-defined]
            return bool(self._execute("DELETE FROM live_snapshots WHERE target = ?", [target]).rowcount)  # type: ignore[attr-defined]

    def doubtful_since(self, target: str, moment: str) -> int:
        """Journal rows of ``target`` left in doubt (or resolved from doubt) since ``moment``."""
        marks = ", ".join("?" for _ in _DOUBTFUL)
        with self._errors("read the journal"):  # type: ignore[attr-defined]
            row = self._one(f"SELECT COUNT(*) FROM journal WHERE target = ? AND updated_at >= ? AND status IN ({marks})",  # type: ignore[attr-defined]
                            [target, moment, *_DOUBTFUL])
        return int(row[0])
