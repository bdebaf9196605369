"""The embedded state store: one SQLite file in WAL mode, written through sqlite-utils.

One connection per store, shared by the applier's target threads behind a re-entrant lock:
SQLite serialises writers anyway, and one connection keeps ``BEGIN IMMEDIATE`` transactions
simple. Every sqlite3 error leaves this module as a :class:`~reconciler.errors.StateError`.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from sqlite_utils import Database

from reconciler.errors import LockHeld, StalePlanError, StateError
from reconciler.model import BaseState, Operation, Plan, PositionKey, Record, Settings
from reconciler.state._schema import MIGRATIONS, SCHEMA_VERSION
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

Clock = Callable[[], datetime]
_LOCK_NAME = "apply"


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


class SQLiteStateStore(StateStore):
    """State in a SQLite file; the schema is created or upgraded on open."""

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Clock = _utcnow,
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
                hint="Check the path (state_path in reconciler.yaml) and its permissions.",
            ) from exc
        self.db = Database(conn)
        with self._errors("open"):
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
            self._init_meta()

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
    def _tx(self, action: str) -> Iterator[Database]:
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
                MIGRATIONS[number](self.db)
                self.db["schema_version"].insert({"version": number + 1, "applied_at": _iso(self._clock())})

    def _init_meta(self) -> None:
        with self._tx("initialise"):
            meta = self.db["meta"]
            if not meta.count_where("key = 'lineage'"):
                meta.insert({"key": "lineage", "value": str(uuid.uuid4())})
                meta.insert({"key": "serial", "value": "0"})

    def _meta(self, key: str) -> str:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        if row is None:
            raise StateError(f"state database {self.path} has no {key}", hint="The file is damaged.")
        return str(row[0])

    def _bump_serial(self) -> int:
        serial = int(self._meta("serial")) + 1
        self.db["meta"].upsert({"key": "serial", "value": str(serial)}, pk="key")
        return serial

    def close(self) -> None:
        with self._mutex:
            self.db.close()

    def schema_version(self) -> int:
        with self._errors("read schema version"):
            return self._schema_version()

    # --- identity -------------------------------------------------------------------------------
    def lineage(self) -> str:
        with self._errors("read lineage"):
            return self._meta("lineage")

    def serial(self) -> int:
        with self._errors("read serial"):
            return int(self._meta("serial"))

    # --- base -------------------------------------------------------------------------------------
    def load_base(self, targets: Iterable[str] | None = None) -> BaseState:
        with self._errors("load base"):
            wanted = None if targets is None else set(targets)
            positions: dict[PositionKey, Record] = {}
            for row in self.db.execute("SELECT target, location, item, quantity, settings FROM base"):
                if wanted is not None and row[0] not in wanted:
                    continue
                positions[(row[0], row[1], row[2])] = Record(int(row[3]), Settings.from_dict(json.loads(row[4])))
            return BaseState(self._meta("lineage"), int(self._meta("serial")), positions)

    def _apply_base_updates(self, updates: Sequence[BaseUpdate]) -> None:
        for update in updates:
            target, location, item = update.key
            where = "target = ? AND location = ? AND item = ?"
            row = self.db.execute(f"SELECT quantity, settings FROM base WHERE {where}", list(update.key)).fetchone()
            if update.remove:
                if row is not None:
                    self.db.execute(f"DELETE FROM base WHERE {where}", list(update.key))
                continue
            quantity = update.quantity if update.quantity is not None else (row[0] if row else 0)
            settings = update.settings.as_dict() if update.settings is not None else (json.loads(row[1]) if row else {})
            new = (int(quantity), json.dumps(settings, sort_keys=True))
            if row is not None and (int(row[0]), json.dumps(json.loads(row[1]), sort_keys=True)) == new:
                continue  # unchanged: leave the row alone
            self.db["base"].upsert(
                {"target": target, "location": location, "item": item, "quantity": new[0], "settings": new[1]},
                pk=("target", "location", "item"),
            )

    # --- plans and runs ------------------------------------------------------------------------
    def begin_apply(self, plan: Plan, *, op_count: int, who: str, run_id: str | None = None) -> ApplyTicket:
        with self._tx("begin apply"):
            lineage = self._meta("lineage")
            serial = int(self._meta("serial"))
            if plan.lineage != lineage:
                raise StalePlanError(
                    f"plan {plan.plan_id} was made against state lineage {plan.lineage}, but "
                    f"{self.path} has lineage {lineage}: it belongs to another state database",
                    hint="Make a new plan against this state with `reconciler plan --out`.",
                )
            record = self._plan_record(plan.plan_id)
            resumed = record is not None
            if record is not None:
                self._check_resumable(record)
            elif plan.serial != serial:
                raise StalePlanError(
                    f"plan {plan.plan_id} was made against state serial {plan.serial}, but the state "
                    f"is now at serial {serial}: something was applied since",
                    hint="Make a new plan with `reconciler plan --out` and review it.",
                )
            else:
                self._record_plan(plan.plan_id, lineage, serial, op_count)
            run_id = run_id or uuid.uuid4().hex[:12]
            self.db["runs"].insert(
                {
                    "run_id": run_id,
                    "plan_id": plan.plan_id,
                    "git_commit": plan.git_commit,
                    "who": who,
                    "started_at": _iso(self._clock()),
                    "finished_at": None,
                    "outcome": None,
                    "counts": "{}",
                }
            )
            return ApplyTicket(plan.plan_id, run_id, lineage, plan.serial, resumed)

    def _record_plan(self, plan_id: str, lineage: str, serial: int, op_count: int) -> None:
        now = _iso(self._clock())
        self.db["plans"].insert(
            {
                "plan_id": plan_id,
                "lineage": lineage,
                "serial_before": serial,
                "serial_after": None,
                "status": PlanStatus.APPLYING.value,
                "op_count": op_count,
                "created_at": now,
                "updated_at": now,
            }
        )
        self._bump_serial()

    def _check_resumable(self, record: PlanRecord) -> None:
        if record.status is PlanStatus.APPLIED:
            raise StalePlanError(
                f"plan {record.plan_id} was already applied in full",
                hint="Nothing to do. To change stock again, edit the YAML and make a new plan.",
            )
        newer = self.db.execute(
            "SELECT plan_id FROM plans WHERE serial_before > ? ORDER BY serial_before DESC LIMIT 1",
            [record.serial_before],
        ).fetchone()
        if newer is not None:
            raise StalePlanError(
                f"plan {record.plan_id} was interrupted, but plan {newer[0]} has been applied since",
                hint="Make a new plan with `reconciler plan --out`; it starts from what was applied.",
            )

    def _plan_record(self, plan_id: str) -> PlanRecord | None:
        row = self.db.execute(
            "SELECT plan_id, lineage, serial_before, serial_after, status, op_count FROM plans WHERE plan_id = ?",
            [plan_id],
        ).fetchone()
        if row is None:
            return None
        return PlanRecord(row[0], row[1], int(row[2]), row[3], PlanStatus(row[4]), int(row[5]))

    def plan_record(self, plan_id: str) -> PlanRecord | None:
        with self._errors("read plan"):
            return self._plan_record(plan_id)

    def finish_run(self, run_id: str, outcome: str, counts: Mapping[str, int]) -> PlanRecord:
        with self._tx("finish run"):
            run = self._run(run_id)
            if run is None:
                raise StateError(f"no run {run_id} in {self.path}")
            self.db["runs"].update(
                run_id, {"finished_at": _iso(self._clock()), "outcome": outcome, "counts": json.dumps(dict(counts))}
            )
            # Plans made while this run was changing B are stale once it ends.
            self._bump_serial()
            return self._settle_plan(run.plan_id)

    def _settle_plan(self, plan_id: str) -> PlanRecord:
        record = self._plan_record(plan_id)
        if record is None:
            raise StateError(f"no plan {plan_id} in {self.path}")
        applied = self.db.execute(
            "SELECT count(*) FROM journal WHERE plan_id = ? AND status = ?", [plan_id, JournalStatus.APPLIED.value]
        ).fetchone()[0]
        status = PlanStatus.APPLIED if applied >= record.op_count else PlanStatus.PARTIAL
        serial = int(self._meta("serial"))
        self.db["plans"].update(
            plan_id, {"status": status.value, "serial_after": serial, "updated_at": _iso(self._clock())}
        )
        return PlanRecord(plan_id, record.lineage, record.serial_before, serial, status, record.op_count)

    def _run(self, run_id: str) -> RunRecord | None:
        row = self.db.execute(
            "SELECT run_id, plan_id, git_commit, who, started_at, finished_at, outcome, counts FROM runs WHERE run_id = ?",
            [run_id],
        ).fetchone()
        return None if row is None else _run_record(row)

    def run(self, run_id: str) -> RunRecord | None:
        with self._errors("read run"):
            return self._run(run_id)

    def runs(self, limit: int | None = None) -> list[RunRecord]:
        with self._errors("read runs"):
            sql = "SELECT run_id, plan_id, git_commit, who, started_at, finished_at, outcome, counts FROM runs ORDER BY started_at DESC, rowid DESC"
            rows = self.db.execute(sql + (f" LIMIT {int(limit)}" if limit else "")).fetchall()
            return [_run_record(r) for r in rows]

    # --- journal ------------------------------------------------------------------------------
    def record_pending(
        self, plan_id: str, run_id: str, ops: Sequence[tuple[Operation, str, Sequence[BaseUpdate]]]
    ) -> None:
        now = _iso(self._clock())
        rows = [
            {
                "plan_id": plan_id,
                "op_id": op.id,
                "run_id": run_id,
                "target": op.target,
                "kind": op.kind.value,
                "status": JournalStatus.PENDING.value,
                "request": request,
                "response": "",
                "error": None,
                "base_updates": json.dumps([u.to_json() for u in updates]),
                "updated_at": now,
            }
            for op, request, updates in ops
        ]
        with self._tx("journal pending operations"):
            self.db["journal"].upsert_all(rows, pk=("plan_id", "op_id"))

    def record_outcome(self, plan_id: str, outcome: Outcome, base_updates: Sequence[BaseUpdate] = ()) -> None:
        with self._tx(f"journal operation {outcome.op_id}"):
            self._write_outcome(plan_id, outcome)
            if outcome.status is JournalStatus.APPLIED:
                self._apply_base_updates(base_updates)

    def _write_outcome(self, plan_id: str, outcome: Outcome) -> None:
        cursor = self.db.execute(
            "UPDATE journal SET status = ?, response = ?, error = ?, updated_at = ? WHERE plan_id = ? AND op_id = ?",
            [
                outcome.status.value,
                (outcome.response or "")[:MAX_RESPONSE_CHARS],
                outcome.error[:MAX_RESPONSE_CHARS] if outcome.error else None,
                _iso(self._clock()),
                plan_id,
                outcome.op_id,
            ],
        )
        if cursor.rowcount != 1:
            raise StateError(f"operation {outcome.op_id} of plan {plan_id} was never journaled as pending")

    def journal(self, plan_id: str) -> dict[str, JournalEntry]:
        with self._errors("read journal"):
            rows = self.db.execute(_JOURNAL_SELECT + " WHERE plan_id = ? ORDER BY rowid", [plan_id]).fetchall()
            return {row[1]: _journal_entry(row) for row in rows}

    def find_journal(self, op_id: str, statuses: Iterable[JournalStatus] | None = None) -> list[JournalEntry]:
        with self._errors("search journal"):
            escaped = op_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            rows = self.db.execute(
                _JOURNAL_SELECT + " WHERE op_id LIKE ? ESCAPE '\\' ORDER BY updated_at DESC", [escaped + "%"]
            ).fetchall()
            entries = [_journal_entry(r) for r in rows]
            exact = [e for e in entries if e.op_id == op_id]
            entries = exact or entries
            if statuses is not None:
                wanted = set(statuses)
                entries = [e for e in entries if e.status in wanted]
            return entries

    def resolve(
        self, plan_id: str, op_id: str, applied: bool, base_updates: Sequence[BaseUpdate] | None = None
    ) -> JournalEntry:
        with self._tx(f"resolve operation {op_id}"):
            row = self.db.execute(_JOURNAL_SELECT + " WHERE plan_id = ? AND op_id = ?", [plan_id, op_id]).fetchone()
            if row is None:
                raise StateError(f"no operation {op_id} in the journal of plan {plan_id}")
            entry = _journal_entry(row)
            if entry.status not in (JournalStatus.IN_DOUBT, JournalStatus.PENDING):
                raise StateError(
                    f"operation {op_id} of plan {plan_id} is {entry.status}, not in doubt",
                    hint="Only operations in doubt (or left pending by a crash) can be resolved.",
                )
            status = JournalStatus.APPLIED if applied else JournalStatus.NOT_APPLIED
            note = f"resolved by hand as {status.value}"
            self._write_outcome(plan_id, Outcome(op_id, status, entry.response, f"{entry.error}; {note}" if entry.error else note))
            if applied:
                self._apply_base_updates(entry.base_updates if base_updates is None else base_updates)
            self._bump_serial()
            self._settle_plan(plan_id)
            return _journal_entry(
                self.db.execute(_JOURNAL_SELECT + " WHERE plan_id = ? AND op_id = ?", [plan_id, op_id]).fetchone()
            )

    # --- lock -----------------------------------------------------------------------------------
    def _lock_row(self) -> LockInfo | None:
        row = self.db.execute(
            "SELECT id, holder, host, pid, acquired_at, expires_at FROM locks WHERE name = ?", [_LOCK_NAME]
        ).fetchone()
        return None if row is None else LockInfo(row[0], row[1], row[2], int(row[3]), row[4], row[5])

    def _lock_is_dead(self, lock: LockInfo) -> bool:
        if _parse_iso(lock.expires_at) <= self._clock():
            return True
        # On the same host we can see whether the holder still runs; elsewhere only expiry tells.
        return lock.host == self._host and not pid_alive(lock.pid)

    def acquire_lock(self, holder: str, ttl_s: float) -> LockInfo:
        with self._tx("take the apply lock"):
            current = self._lock_row()
            if current is not None:
                if not self._lock_is_dead(current):
                    raise _lock_held(current)
                self.db.execute("DELETE FROM locks WHERE id = ?", [current.id])
            now = self._clock()
            lock = LockInfo(uuid.uuid4().hex[:12], holder, self._host, self._pid, _iso(now), _iso(now + timedelta(seconds=ttl_s)))
            self.db["locks"].insert(
                {
                    "id": lock.id,
                    "name": _LOCK_NAME,
                    "holder": lock.holder,
                    "host": lock.host,
                    "pid": lock.pid,
                    "acquired_at": lock.acquired_at,
                    "expires_at": lock.expires_at,
                }
            )
            return lock

    def renew_lock(self, lock_id: str, ttl_s: float) -> LockInfo:
        with self._tx("renew the apply lock"):
            current = self._lock_row()
            if current is None or current.id != lock_id:
                if current is not None:
                    raise _lock_held(current)
                raise LockHeld(
                    f"the apply lock {lock_id} was removed while this apply was running",
                    hint="Someone ran `reconciler unlock`; re-run apply to resume once nobody else applies.",
                )
            expires = _iso(self._clock() + timedelta(seconds=ttl_s))
            self.db.execute("UPDATE locks SET expires_at = ? WHERE id = ?", [expires, lock_id])
            return LockInfo(current.id, current.holder, current.host, current.pid, current.acquired_at, expires)

    def release_lock(self, lock_id: str) -> bool:
        with self._tx("release the apply lock"):
            return self.db.execute("DELETE FROM locks WHERE id = ?", [lock_id]).rowcount == 1

    def current_lock(self) -> LockInfo | None:
        with self._errors("read the apply lock"):
            return self._lock_row()


_JOURNAL_SELECT = (
    "SELECT plan_id, op_id, run_id, target, kind, status, request, response, error, updated_at, base_updates FROM journal"
)


def _journal_entry(row: Sequence[Any]) -> JournalEntry:
    updates = tuple(BaseUpdate.from_json(u) for u in json.loads(row[10] or "[]"))
    return JournalEntry(
        row[0], row[1], row[2], row[3], row[4], JournalStatus(row[5]), row[6] or "", row[7] or "", row[8], row[9], updates
    )


def _run_record(row: Sequence[Any]) -> RunRecord:
    return RunRecord(row[0], row[1], row[2], row[3], row[4], row[5], row[6], json.loads(row[7] or "{}"))


def _lock_held(lock: LockInfo) -> LockHeld:
    return LockHeld(
        f"another apply holds the state lock: {lock.holder} (host {lock.host}, pid {lock.pid}) "
        f"since {lock.acquired_at}, expiring {lock.expires_at}",
        hint=f"Wait for it to finish. If it is dead on another machine, remove it with `reconciler unlock {lock.id}`.",
    )
