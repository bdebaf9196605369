"""The state: lineage/serial, base positions (B), plans and their parts, runs, journal, locks.

``open_state_store(location)`` is what the rest of reconciler calls. ``location`` is a state
URL (:mod:`reconciler.state.url`): a file path or ``sqlite:///...`` opens the embedded SQLite
store (:mod:`reconciler.state.sqlite`), ``postgresql://...`` the shared PostgreSQL store
(:mod:`reconciler.state.postgres`). Both implement :class:`StateStore` with the same tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from reconciler.errors import StateError
from reconciler.state.base import (
    ALL_TARGETS,
    MAX_RESPONSE_CHARS,
    ApplyTicket,
    BaseUpdate,
    JournalEntry,
    JournalStatus,
    LockInfo,
    Outcome,
    PartRecord,
    PartStatus,
    PlanRecord,
    PlanStatus,
    RunRecord,
    StateStore,
)
from reconciler.state.admin import SnapshotInfo, StateInfo, init_state, snapshot_sqlite, snapshot_state
from reconciler.state.sqlite import SQLiteStateStore
from reconciler.state.url import StateURL, parse_state_url

DEFAULT_STATE_PATH = Path(".reconciler") / "state.db"


def open_state_store(
    location: str | Path | StateURL,
    *,
    root: Path | None = None,
    env: Mapping[str, str] | None = None,
    create: bool = True,
) -> StateStore:
    """Open the state at ``location`` (relative paths: relative to ``root``). ``create``:
    make it (and a SQLite file's folder) when missing; otherwise a missing state is an error.
    ``${VAR}`` in a URL is read from ``env`` (default: the process environment)."""
    import os

    if isinstance(location, Path):
        url = StateURL("sqlite", path=location, display=str(location))
    elif isinstance(location, StateURL):
        url = location
    else:
        url = parse_state_url(location, root=root, env=os.environ if env is None else env)
    if url.kind == "postgresql":
        from reconciler.state.postgres import PostgresStateStore

        return PostgresStateStore(url, create=create)
    assert url.path is not None
    if not create and not url.path.exists():
        raise StateError(f"no state database at {url.path}", hint="Nothing has been planned or applied with this state yet.")
    return SQLiteStateStore(url.path)


__all__ = [
    "ALL_TARGETS",
    "DEFAULT_STATE_PATH",
    "MAX_RESPONSE_CHARS",
    "ApplyTicket",
    "BaseUpdate",
    "JournalEntry",
    "JournalStatus",
    "LockInfo",
    "Outcome",
    "PartRecord",
    "PartStatus",
    "PlanRecord",
    "PlanStatus",
    "RunRecord",
    "SQLiteStateStore",
    "SnapshotInfo",
    "StateInfo",
    "StateStore",
    "StateURL",
    "init_state",
    "open_state_store",
    "parse_state_url",
    "snapshot_sqlite",
    "snapshot_state",
]
