"""The ``plan_memos`` table (schema version 8): what the last full plan of a scope needs to plan
again from the changes alone (reconciler/_plan_memo.py), and point reads of B for it.

A cache, like ``live_snapshots``: never exported (not in TABLE_COLUMNS), so ``state migrate``
does not copy it and the next plan is made in full instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timezone
from typing import Iterable

from reconciler.model import NO_SETTINGS, PositionKey, Record, Settings

# Keys per SELECT of base_records: well under SQLite's 32,766 host parameters (3 per key).
_KEYS_PER_QUERY = 300


@dataclass(frozen=True)
class PlanMemo:
    scope: str
    fingerprint: str
    made_at: str
    body: bytes


class MemosMixin:
    """Store methods for plan memos; mixed into SQLStateStore (both backends)."""

    def plan_memo(self, scope: str) -> PlanMemo | None:
        with self._errors("read the plan memo"):  # type: ignore[attr-defined]
            row = self._one("SELECT scope, fingerprint, made_at, body FROM plan_memos WHERE scope = ?", [scope])  # type: ignore[attr-defined]
        return None if row is None else PlanMemo(str(row[0]), str(row[1]), str(row[2]), bytes(row[3]))

    def save_plan_memo(self, scope: str, fingerprint: str, body: bytes) -> None:
        now = self._clock().astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")  # type: ignore[attr-defined]
        with self._tx(f"keep the plan memo of {scope}"):  # type: ignore[attr-defined]
            self._execute("DELETE FROM plan_memos WHERE scope = ?", [scope])  # type: ignore[attr-defined]
            self._execute("INSERT INTO plan_memos (scope, fingerprint, made_at, body) VALUES (?, ?, ?, ?)",  # type: ignore[attr-defined]
                          [scope, fingerprint, now, body])

    def drop_plan_memo(self, scope: str) -> bool:
        with self._tx(f"drop the plan memo of {scope}"):  # type: ignore[attr-defined]
            return bool(self._execute("DELETE FROM plan_memos WHERE scope = ?", [scope]).rowcount)  # type: ignore[attr-defined]

    def base_records(self, keys: Iterable[PositionKey]) -> dict[PositionKey, Record]:
        """B of just these positions (those B holds), without reading the whole table."""
        wanted = list(dict.fromkeys(keys))
        found: dict[PositionKey, Record] = {}
        with self._errors("read base positions"):  # type: ignore[attr-defined]
            for start in range(0, len(wanted), _KEYS_PER_QUERY):
                chunk = wanted[start:start + _KEYS_PER_QUERY]
                where = " OR ".join("(target = ? AND location = ? AND item = ?)" for _ in chunk)
                params = [part for key in chunk for part in key]
                for target, location, item, quantity, text in self._all(  # type: ignore[attr-defined]
                        f"SELECT target, location, item, quantity, settings FROM base WHERE {where}", params):
                    data = json.loads(text)
                    found[(target, location, item)] = Record(int(quantity), Settings.from_dict(data) if data else NO_SETTINGS)
        return found
