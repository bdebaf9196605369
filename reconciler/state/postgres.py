"""The shared state store: PostgreSQL through psycopg 3, one schema per stock repository.

Two connections per store. The main one carries every read and transaction, behind a
re-entrant lock because the applier's target threads share the store. The lock session holds
the apply locks as session-level advisory locks, keyed by hash(schema, target): PostgreSQL
drops them the moment that connection ends, so a killed runner never leaves a stuck lock. Each
lock also has a row in ``locks`` (holder, host, pid, time, and the lock session's backend pid)
for ``reconciler state lock``; a row is only shown while ``pg_locks`` says its backend still
holds the advisory lock, so rows of dead holders are ignored and replaced.

A target lock takes the whole-state key ``*`` shared and its target's key exclusive; the
whole-state lock takes ``*`` exclusive. Locks are tried, never waited for, so two applies
cannot deadlock: the second fails at once with LockHeld (exit 5) naming the first.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import uuid
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Sequence

from reconciler.errors import LockHeld, StateError
from reconciler.state._pg_schema import PG_MIGRATIONS, PG_SCHEMA_VERSION
from reconciler.state._sql import Clock, SQLStateStore, group_locks, iso, lock_held, utcnow
from reconciler.state.base import ALL_TARGETS, LockInfo
from reconciler.state.url import StateURL

try:
    import psycopg
except ImportError:  # pragma: no cover - depends on the installation
    psycopg = None  # type: ignore[assignment]

_LOCK_COLUMNS = "target, id, holder, host, pid, acquired_at, expires_at, backend_pid"
_HINT = ("Check the state URL (state: in reconciler.yaml, RECONCILER_STATE or --state), that the server "
         "is reachable, and that the password variable it refers to is set.")


def advisory_key(schema: str, target: str) -> int:
    """A signed 64-bit advisory lock key for one target of one schema."""
    digest = hashlib.sha256(f"reconciler\0{schema}\0{target}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _split(key: int) -> tuple[int, int]:
    """How pg_locks shows a bigint advisory key: (classid, objid), the high and low 32 bits."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return unsigned >> 32, unsigned & 0xFFFFFFFF


class PostgresStateStore(SQLStateStore):
    """State in a PostgreSQL schema; the schema and its tables are created or upgraded on open."""

    _order = "seq"
    _row_lock = " FOR UPDATE"  # the credentials row (state/_tokens.py)

    def __init__(
        self,
        url: StateURL,
        *,
        create: bool = True,
        clock: Clock = utcnow,
        hostname: str | None = None,
        pid: int | None = None,
        connect_timeout_s: int = 10,
    ) -> None:
        if psycopg is None:
            raise StateError("the PostgreSQL state backend needs psycopg 3, which is not installed",
                             hint="pip install 'reconciler[postgres]' (or psycopg[binary]).")
        self.url = url
        self.schema = url.schema
        self._clock = clock
        self._host = hostname or socket.gethostname()
        self._pid = os.getpid() if pid is None else pid
        self._timeout = connect_timeout_s
        self._mutex = threading.RLock()
        self._lock_conn: Any = None
        self._held: dict[str, list[tuple[int, bool]]] = {}  # lock id -> (key, shared) taken on the lock session
        self._conn = self._connect("connect")
        try:
            with self._errors("open"):
                self._conn.execute(f'SET search_path TO "{self.schema}"')
                self._open(create)
        except BaseException:
            self._conn.close()
            raise

    def describe(self) -> str:
        return self.url.redacted()

    # --- plumbing -----------------------------------------------------------------------------
    def _connect(self, action: str) -> Any:
        try:
            return psycopg.connect(self.url.conninfo, autocommit=True, connect_timeout=self._timeout,
                                   application_name="reconciler")
        except psycopg.Error as exc:
            raise StateError(f"state {self.describe()}: {action} failed: {self._words(exc)}", hint=_HINT) from None

    def _words(self, exc: BaseException) -> str:
        return self.url.scrub(str(exc).strip())

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        with self._mutex:
            try:
                yield
            except psycopg.Error as exc:
                # `from None`: the driver's exception may carry the connection string
                raise StateError(f"state {self.describe()}: {action} failed: {self._words(exc)}", hint=_HINT) from None

    @contextmanager
    def _tx(self, action: str, *, serial: bool = False) -> Iterator[Any]:
        with self._errors(action), self._conn.transaction():
            if serial:
                # Serial-moving transactions queue here, so two runs never both read serial N.
                self._conn.execute("SELECT value FROM meta WHERE key = 'serial' FOR UPDATE")
            yield self._conn

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(sql.replace("?", "%s"), list(params) if params else None)

    def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._conn.cursor() as cur:
            cur.executemany(sql.replace("?", "%s"), rows)

    def _open(self, create: bool) -> None:
        exists = self._one("SELECT to_regclass(?)", [f'"{self.schema}".schema_version'])[0]
        if not exists and not create:
            raise StateError(f"no reconciler state in schema {self.schema} of {self.describe()}",
                             hint="Nothing has been planned or applied with this state yet; check the URL's ?schema=.")
        with self._conn.transaction():
            # One opener at a time creates or upgrades a schema (CI jobs often start together).
            self._execute("SELECT pg_advisory_xact_lock(?)", [advisory_key(self.schema, "\0migrate")])
            self._execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            self._execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT PRIMARY KEY, applied_at TEXT)")
            version = self._schema_version()
            if version > PG_SCHEMA_VERSION:
                raise StateError(
                    f"state {self.describe()} has schema version {version}, newer than this reconciler "
                    f"understands ({PG_SCHEMA_VERSION})", hint="Upgrade reconciler.")
            for number in range(version, PG_SCHEMA_VERSION):
                self._conn.execute(PG_MIGRATIONS[number])
                self._execute("INSERT INTO schema_version VALUES (?, ?)", [number + 1, iso(self._clock())])
            if self._one("SELECT count(*) FROM meta WHERE key = 'lineage'")[0] == 0:
                self._execute("INSERT INTO meta (key, value) VALUES ('lineage', ?), ('serial', '0')", [str(uuid.uuid4())])

    def _schema_version(self) -> int:
        return int(self._one("SELECT coalesce(max(version), 0) FROM schema_version")[0])

    def schema_version(self) -> int:
        with self._errors("read schema version"):
            return self._schema_version()

    def close(self) -> None:
        with self._mutex:
            for lock_id in list(self._held):
                try:
                    self.release_lock(lock_id)
                except StateError:
                    pass  # the lock session ends below anyway, and with it the lock
            if self._lock_conn is not None:
                self._lock_conn.close()
            self._conn.close()

    # --- locks ----------------------------------------------------------------------------------
    def _session(self) -> Any:
        if self._lock_conn is None or self._lock_conn.closed:
            self._lock_conn = self._connect("open the lock session")
        return self._lock_conn

    def _try(self, key: int, shared: bool) -> bool:
        fn = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
        return bool(self._session().execute(f"SELECT {fn}(%s)", [key]).fetchone()[0])

    def _unlock(self, taken: Iterable[tuple[int, bool]]) -> None:
        for key, shared in taken:
            fn = "pg_advisory_unlock_shared" if shared else "pg_advisory_unlock"
            self._session().execute(f"SELECT {fn}(%s)", [key])

    def _live_rows(self) -> list[Sequence[Any]]:
        """Lock rows whose backend still holds the advisory lock of their target."""
        held = {
            (int(r[0]), int(r[1]), int(r[2]))
            for r in self._all(
                "SELECT classid, objid, pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        }
        rows = self._all(f"SELECT {_LOCK_COLUMNS} FROM locks")
        return [r for r in rows if r[7] is not None and (*_split(advisory_key(self.schema, r[0])), int(r[7])) in held]

    def acquire_lock(self, holder: str, ttl_s: float, targets: Iterable[str] | None = None) -> LockInfo:
        keys = tuple(sorted(set(targets or ()))) or (ALL_TARGETS,)
        with self._errors("take the apply lock"):
            self._refuse_own(keys)
            wanted = [(advisory_key(self.schema, ALL_TARGETS), False)] if keys == (ALL_TARGETS,) else (
                [(advisory_key(self.schema, ALL_TARGETS), True)] + [(advisory_key(self.schema, k), False) for k in keys])
            taken: list[tuple[int, bool]] = []
            for key, shared in wanted:
                if not self._try(key, shared):
                    self._unlock(taken)
                    raise self._held_by_other(keys)
                taken.append((key, shared))
            backend = int(self._session().execute("SELECT pg_backend_pid()").fetchone()[0])
            lock = LockInfo(uuid.uuid4().hex[:12], holder, self._host, self._pid, iso(self._clock()), "", keys, backend)
            try:
                with self._conn.transaction():
                    # We hold the advisory locks, so any row for these keys is a dead holder's.
                    if keys == (ALL_TARGETS,):
                        self._execute("DELETE FROM locks")
                    else:
                        self._execute("DELETE FROM locks WHERE target = ANY(?)", [list(keys) + [ALL_TARGETS]])
                    self._executemany(
                        f"INSERT INTO locks ({_LOCK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, NULL, ?)",
                        [(k, lock.id, holder, lock.host, lock.pid, lock.acquired_at, backend) for k in keys],
                    )
            except BaseException:
                self._unlock(taken)
                raise
            self._held[lock.id] = taken
            return lock

    def _refuse_own(self, keys: Sequence[str]) -> None:
        """Advisory locks are re-entrant per session; a second lock by this store must fail."""
        for lock in group_locks(r for r in self._live_rows() if r[1] in self._held):
            if ALL_TARGETS in keys or ALL_TARGETS in lock.targets or set(keys) & set(lock.targets):
                raise lock_held(lock, self.describe())

    def _held_by_other(self, keys: Sequence[str]) -> LockHeld:
        for lock in group_locks(self._live_rows()):
            if ALL_TARGETS in keys or ALL_TARGETS in lock.targets or set(keys) & set(lock.targets):
                return lock_held(lock, self.describe())
        # It holds the advisory lock but has not written its row yet (it is starting right now).
        return LockHeld(f"another apply is taking the state lock on {', '.join(keys)} in {self.describe()}",
                        hint="Wait for it to finish; `reconciler state lock` shows it.")

    def _before_send(self) -> None:
        if not self._held:
            return
        try:
            self._session().execute("SELECT 1")
        except psycopg.Error:
            raise LockHeld(
                f"this apply lost its state lock in {self.describe()}: its lock connection ended "
                "(ended by `reconciler unlock` or by the network); nothing more is sent",
                hint="Re-run the same apply to resume once nobody else applies these targets.",
            ) from None

    def renew_lock(self, lock_id: str, ttl_s: float) -> LockInfo:
        with self._errors("check the apply lock"):
            if lock_id in self._held:
                self._before_send()
                mine = group_locks(r for r in self._all(f"SELECT {_LOCK_COLUMNS} FROM locks WHERE id = ?", [lock_id]))
                if mine:
                    return mine[0]
            raise LockHeld(f"the apply lock {lock_id} in {self.describe()} is not held by this process",
                           hint="It was removed with `reconciler unlock`; re-run apply to resume.")

    def release_lock(self, lock_id: str) -> bool:
        with self._errors("release the apply lock"):
            if lock_id in self._held:
                self._execute("DELETE FROM locks WHERE id = ?", [lock_id])
                taken = self._held.pop(lock_id)
                try:
                    self._unlock(taken)
                except psycopg.Error:
                    pass  # the session is gone, and its advisory locks with it
                return True
            return self._remove_foreign(lock_id)

    def _remove_foreign(self, lock_id: str) -> bool:
        """`reconciler unlock` of another process's lock: end that holder's lock session, which
        is what releases an advisory lock; its apply then stops before its next batch."""
        rows = self._all(f"SELECT {_LOCK_COLUMNS} FROM locks WHERE id = ?", [lock_id])
        live = [r for r in self._live_rows() if r[1] == lock_id]
        if not rows:
            return False
        for backend in {int(r[7]) for r in live}:
            ended = self._one("SELECT pg_terminate_backend(?, 5000)", [backend])[0]
            if not ended:
                raise StateError(f"could not end the lock session (backend pid {backend}) of lock {lock_id}",
                                 hint="Ask a database administrator to run SELECT pg_terminate_backend(...) for it.")
        self._execute("DELETE FROM locks WHERE id = ?", [lock_id])
        return True

    def locks(self) -> list[LockInfo]:
        with self._errors("read the locks"):
            return group_locks(self._live_rows())
