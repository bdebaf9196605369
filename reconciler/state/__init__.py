"""The state database: lineage/serial, base positions (B), plans, runs, journal and the lock.

``open_state_store(path)`` is what the rest of reconciler calls; the store behind it is
SQLite today (:mod:`reconciler.state.sqlite`) and implements :class:`StateStore`.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.state.base import (
    MAX_RESPONSE_CHARS,
    ApplyTicket,
    BaseUpdate,
    JournalEntry,
    JournalStatus,
    LockInfo,
    Outcome,
    PlanRecord,
    PlanStatus,
    RunRecord,
    StateStore,
)
from reconciler.state.sqlite import SQLiteStateStore

DEFAULT_STATE_PATH = Path(".reconciler") / "state.db"


def open_state_store(path: str | Path) -> StateStore:
    """Open (creating it and its folder if needed) the state database at ``path``."""
    return SQLiteStateStore(path)


__all__ = [
    "DEFAULT_STATE_PATH",
    "MAX_RESPONSE_CHARS",
    "ApplyTicket",
    "BaseUpdate",
    "JournalEntry",
    "JournalStatus",
    "LockInfo",
    "Outcome",
    "PlanRecord",
    "PlanStatus",
    "RunRecord",
    "SQLiteStateStore",
    "StateStore",
    "open_state_store",
]
