"""The embedded state store: one SQLite file in WAL mode.

One connection per store, shared by the applier's target threads behind a re-entrant lock:
SQLite serialises writers anyway, and one connection keeps ``BEGIN IMMEDIATE`` transactions
simple. Every sqlite3 error leaves this module as a :class:`~reconciler.errors.StateError`.

Locks are rows, one per locked target; SQLite cannot tell when their holder dies, so a lock
carries its holder's host and pid (taken over at once when that process is gone on this host)
and an expiry that a running apply keeps pushing (taken over after it passes, from any host).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import uuid
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from sqlite_utils import Database

from reconciler.errors import LockHeld, StateError
from reconciler.state._schema import MIGRATIONS, SCHEMA_VERSION
from reconciler.state._sql import Clock, SQLStateStore, group_locks, iso, lock_held, parse_iso, pid_alive, utcnow
from reconciler.state.base import ALL_TARGETS, LockInfo

__all__ = ["SQLiteStateStore", "pid_alive"]

WAL_CHECKPOINT_PAGES = 10_000
_LOCK_COLUMNS = "target, id, holder, host, pid, acquired_at, expires_at, backend_pid"


class SQLiteStateStore(SQLStateStore):
    """State in a SQLite file; the schema is created or upgraded on open."""

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Clock = utcnow,
        hostname: str | None = None,
        pid: int | None = None,
        busy_timeout_s: float = 30.0,
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._host = hostname or socket.gethostname()
        self._pid = os.getpid() if pid is None else pid
        self._mutex = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=busy_timeout_s, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(
                f"cannot open the state database {self.path}: {exc}",
                hint="Check the path (state: in reconciler.yaml) and its permissions.",
            ) from exc
        self.db = Database(conn)
        with self._errors("open"):
            self.db.execute("PRAGMA journal_mode=WAL")
            # FULL: a pending row must survive a power cut, or a resume would send its delta again.
            # Outcomes are committed once per batch, so this costs one fsync per batch, not per op.
            self.db.execute("PRAGMA synchronous=FULL")
            # Checkpoint the WAL every ~40 MB instead of ~4 MB: a batch of journal rows dirties a
            # few hundred pages, and a page rewritten by several commits is then copied once.
            self.db.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
            self._migrate()
            self._init_meta()

    def describe(self) -> str:
        return str(self.path)

    # --- plumbing -----------------------------------------------------------------------------
    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        with self._mutex:
            try:
                yield
            except sqlite3.Error as exc:
                raise StateError(
                    f"state database {self.path}: {action} failed: {exc}",
                    hint="If another reconciler is running, wait for it; otherwise check the file.",
                ) from exc

    @contextmanager
    def _tx(self, action: str, *, serial: bool = False) -> Iterator[Database]:
        """One IMMEDIATE transaction: takes SQLite's write lock up front, so two processes
        never both read-then-write (the lock and serial checks depend on that)."""
        with self._errors(action):
            conn = self.db.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.db.conn.execute(sql, list(params))

    def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.db.conn.executemany(sql, rows)

    def _schema_version(self) -> int:
        if not self.db["schema_version"].exists():
            return 0
        row = self.db.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def _migrate(self) -> None:
        with self._tx("create schema_version"):
            if not self.db["schema_version"].exists():
                self.db["schema_version"].create({"version": int, "applied_at": str}, pk="version")
        version = self._schema_version()
        if version > SCHEMA_VERSION:
            raise StateError(
                f"state database {self.path} has schema version {version}, newer than this "
                f"reconciler understands ({SCHEMA_VERSION})",
                hint="Upgrade reconciler.",
            )
        for number in range(version, SCHEMA_VERSION):
            with self._tx(f"migration {number + 1}"):
                if self._schema_version() > number:
                    continue  # another process ran it meanwhile
                MIGRATIONS[number](self.db)
                self.db["schema_version"].insert({"version": number + 1, "applied_at": iso(self._clock())})

    def close(self) -> None:
        with self._mutex:
            self.db.close()

    def schema_version(self) -> int:
        with self._errors("read schema version"):
            return self._schema_version()

    # --- locks ----------------------------------------------------------------------------------
    def _lock_rows(self) -> list[LockInfo]:
        return group_locks(self._all(f"SELECT {_LOCK_COLUMNS} FROM locks"))

    def _lock_is_dead(self, lock: LockInfo) -> bool:
        if lock.expires_at and parse_iso(lock.expires_at) <= self._clock():
            return True
        # On the same host we can see whether the holder still runs; elsewhere only expiry tells.
        return lock.host == self._host and not pid_alive(lock.pid)

    def acquire_lock(self, holder: str, ttl_s: float, targets: Iterable[str] | None = None) -> LockInfo:
        keys = tuple(sorted(set(targets or ()))) or (ALL_TARGETS,)
        with self._tx("take the apply lock"):
            for current in self._lock_rows():
                if not _overlaps(current.targets, keys):
                    continue
                if not self._lock_is_dead(current):
                    raise lock_held(current, str(self.path))
                self._execute("DELETE FROM locks WHERE id = ?", [current.id])  # the whole dead lock goes
            now = self._clock()
            lock = LockInfo(uuid.uuid4().hex[:12], holder, self._host, self._pid, iso(now),
                            iso(now + timedelta(seconds=ttl_s)), keys)
            self._executemany(
                f"INSERT INTO locks ({_LOCK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                [(key, lock.id, holder, lock.host, lock.pid, lock.acquired_at, lock.expires_at) for key in keys],
            )
            return lock

    def renew_lock(self, lock_id: str, ttl_s: float) -> LockInfo:
        with self._tx("renew the apply lock"):
            mine = [lock for lock in self._lock_rows() if lock.id == lock_id]
            if not mine:
                raise _lost(lock_id, self._lock_rows(), str(self.path))
            expires = iso(self._clock() + timedelta(seconds=ttl_s))
            self._execute("UPDATE locks SET expires_at = ? WHERE id = ?", [expires, lock_id])
            lock = mine[0]
            return LockInfo(lock.id, lock.holder, lock.host, lock.pid, lock.acquired_at, expires, lock.targets)

    def release_lock(self, lock_id: str) -> bool:
        with self._tx("release the apply lock"):
            return int(self._execute("DELETE FROM locks WHERE id = ?", [lock_id]).rowcount) >= 1

    def locks(self) -> list[LockInfo]:
        with self._errors("read the locks"):
            return self._lock_rows()


def _overlaps(held: Sequence[str], wanted: Sequence[str]) -> bool:
    return ALL_TARGETS in held or ALL_TARGETS in wanted or bool(set(held) & set(wanted))


def _lost(lock_id: str, now_held: list[LockInfo], where: str) -> LockHeld:
    """The lock a running apply holds is gone: taken over as dead, or removed by `unlock`."""
    others = "; now held: " + ", ".join(f"{lock.id} by {lock.holder}" for lock in now_held) if now_held else ""
    return LockHeld(
        f"the apply lock {lock_id} in {where} was removed or taken over while this apply was running{others}",
        hint="Someone ran `reconciler unlock` or it expired; re-run apply to resume once nobody else applies.",
    )
