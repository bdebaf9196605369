"""The state store logic both backends share, written once in portable SQL.

Subclasses supply the connection, transactions, error translation, migrations and locks
(:mod:`.sqlite`, :mod:`.postgres`). SQL here uses ``?`` placeholders; :meth:`SQLStateStore._sql`
rewrites them for drivers that use ``%s``. Serial-moving transactions are opened with
``serial=True``, which on PostgreSQL takes the serial row's lock first: SQLite's
``BEGIN IMMEDIATE`` serialises every writer anyway, PostgreSQL needs to be told.
"""

from __future__ import annotations

import json
import os
import uuid
from abc import abstractmethod
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from typing import Any, Callable, Collection, Iterable, Mapping, Sequence

from reconciler.errors import AlreadyApplied, LockHeld, StalePlanError, StateError
from reconciler.model import BaseState, Operation, Plan, PositionKey, Record, Settings, gc_paused, new_record
from reconciler.state._memos import MemosMixin
from reconciler.state._snapshots import SnapshotsMixin
from reconciler.state._tokens import CredentialsMixin
from reconciler.state.base import (
    MAX_RESPONSE_CHARS,
    TABLE_COLUMNS,
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

Clock = Callable[[], datetime]

_RUN_COLUMNS = "run_id, plan_id, git_commit, who, started_at, finished_at, outcome, counts, targets"
_JOURNAL_SELECT = (
    "SELECT plan_id, op_id, run_id, target, kind, status, request, response, error, updated_at, base_updates FROM journal"
)
_PK = {"meta": "key", "base": "target, location, item", "plans": "plan_id", "plan_parts": "plan_id, target",
       "counts": "count_id", "count_snapshots": "count_id, target, item"}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
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


class SQLStateStore(CredentialsMixin, SnapshotsMixin, MemosMixin, StateStore):
    """Plans, runs, parts, journal and base in SQL; locks and plumbing are the subclass's."""

    _order = "rowid"  # insertion order of runs and journal rows
    _clock: Clock

    # --- plumbing the subclass provides ------------------------------------------------------
    @abstractmethod
    def _errors(self, action: str) -> AbstractContextManager[None]:
        """Hold the store's mutex and translate driver errors to StateError."""

    @abstractmethod
    def _tx(self, action: str, *, serial: bool = False) -> AbstractContextManager[Any]:
        """One transaction (inside :meth:`_errors`); ``serial``: it may move the serial."""

    @abstractmethod
    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; the result has fetchone, fetchall and rowcount."""

    @abstractmethod
    def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._execute(sql, params).fetchone()

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(self._execute(sql, params).fetchall())

    # --- identity ----------------------------------------------------------------------------
    def _meta(self, key: str) -> str:
        row = self._one("SELECT value FROM meta WHERE key = ?", [key])
        if row is None:
            raise StateError(f"state {self.describe()} has no {key}", hint="The state is damaged.")
        return str(row[0])

    def _init_meta(self) -> None:
        with self._tx("initialise", serial=False):
            if self._one("SELECT count(*) FROM meta WHERE key = 'lineage'")[0] == 0:
                self._execute("INSERT INTO meta (key, value) VALUES ('lineage', ?), ('serial', '0')", [str(uuid.uuid4())])

    def _bump_serial(self) -> int:
        serial = int(self._meta("serial")) + 1
        self._execute("UPDATE meta SET value = ? WHERE key = 'serial'", [str(serial)])
        return serial

    def lineage(self) -> str:
        with self._errors("read lineage"):
            return self._meta("lineage")

    def serial(self) -> int:
        with self._errors("read serial"):
            return int(self._meta("serial"))

    # --- base --------------------------------------------------------------------------------
    def load_base(self, targets: Iterable[str] | None = None) -> BaseState:
        with self._errors("load base"):
            wanted = None if targets is None else set(targets)
            positions: dict[PositionKey, Record] = {}
            # Most positions share a handful of (quantity, settings) pairs: parse and build each
            # record once and share it (records are immutable).
            records: dict[tuple[int, str], Record] = {}
            with gc_paused():
                for target, location, item, quantity, text in self._all("SELECT target, location, item, quantity, settings FROM base"):
                    if wanted is not None and target not in wanted:
                        continue
                    record = records.get((quantity, text))
                    if record is None:
                        settings = Settings.from_dict(json.loads(text))
                        record = records[(quantity, text)] = new_record(int(quantity), settings)
                    positions[(target, location, item)] = record
            return BaseState(self._meta("lineage"), int(self._meta("serial")), positions)

    def _apply_base_updates(self, updates: Sequence[BaseUpdate]) -> None:
        where = "target = ? AND location = ? AND item = ?"
        for update in updates:
            row = self._one(f"SELECT quantity, settings FROM base WHERE {where}", list(update.key))
            if update.remove:
                if row is not None:
                    self._execute(f"DELETE FROM base WHERE {where}", list(update.key))
                continue
            quantity = update.quantity if update.quantity is not None else (row[0] if row else 0)
            settings = update.settings.as_dict() if update.settings is not None else (json.loads(row[1]) if row else {})
            new = (int(quantity), json.dumps(settings, sort_keys=True))
            if row is not None and (int(row[0]), json.dumps(json.loads(row[1]), sort_keys=True)) == new:
                continue  # unchanged: leave the row alone
            self._execute(
                "INSERT INTO base (target, location, item, quantity, settings) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (target, location, item) DO UPDATE SET quantity = excluded.quantity, settings = excluded.settings",
                [*update.key, new[0], new[1]],
            )

    # --- plans, parts and runs ---------------------------------------------------------------
    def begin_apply(
        self,
        plan: Plan,
        *,
        op_count: int,
        who: str,
        run_id: str | None = None,
        parts: Mapping[str, int] | None = None,
        targets: Collection[str] | None = None,
    ) -> ApplyTicket:
        wanted = None if targets is None else sorted(set(targets))
        with self._tx("begin apply", serial=True):
            lineage = self._meta("lineage")
            serial = int(self._meta("serial"))
            if plan.lineage != lineage:
                raise StalePlanError(
                    f"plan {plan.plan_id} was made against state lineage {plan.lineage}, but "
                    f"{self.describe()} has lineage {lineage}: it belongs to another state database",
                    hint="Make a new plan against this state with `reconciler plan --out`.",
                )
            record = self._plan_record(plan.plan_id)
            if record is not None:
                self._check_resumable(record, wanted)
            elif plan.serial != serial:
                raise StalePlanError(
                    f"plan {plan.plan_id} was made against state serial {plan.serial}, but the state "
                    f"is now at serial {serial}: something was applied since",
                    hint="Make a new plan with `reconciler plan --out` and review it.",
                )
            else:
                self._record_plan(plan.plan_id, lineage, serial, op_count, parts or {})
            # Every run start moves the serial: a plan made before this run saw B without what
            # it is about to write. Parts of this same plan resume regardless (no serial check).
            self._bump_serial()
            run_id = run_id or uuid.uuid4().hex[:12]
            now = iso(self._clock())
            self._execute(
                f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, NULL, NULL, '{{}}', ?)",
                [run_id, plan.plan_id, plan.git_commit, who, now, None if wanted is None else json.dumps(wanted)],
            )
            self._mark_parts(plan.plan_id, wanted, PartStatus.APPLYING, run_id, now)
            return ApplyTicket(plan.plan_id, run_id, lineage, plan.serial, record is not None)

    def _mark_parts(self, plan_id: str, targets: Sequence[str] | None, status: PartStatus, run_id: str, now: str) -> None:
        sql = "UPDATE plan_parts SET status = ?, run_id = ?, updated_at = ? WHERE plan_id = ? AND status <> 'applied'"
        params: list[Any] = [status.value, run_id, now, plan_id]
        if targets is not None:
            sql += f" AND target IN ({', '.join('?' for _ in targets)})"
            params.extend(targets)
        if targets is None or targets:
            self._execute(sql, params)

    def _record_plan(self, plan_id: str, lineage: str, serial: int, op_count: int, parts: Mapping[str, int]) -> None:
        now = iso(self._clock())
        self._execute(
            "INSERT INTO plans (plan_id, lineage, serial_before, serial_after, status, op_count, created_at, updated_at) "
            "VALUES (?, ?, ?, NULL, ?, ?, ?, ?)",
            [plan_id, lineage, serial, PlanStatus.APPLYING.value, op_count, now, now],
        )
        rows = [(plan_id, t, n, PartStatus.PENDING.value, None, now) for t, n in sorted(parts.items())]
        if rows:
            self._executemany(
                "INSERT INTO plan_parts (plan_id, target, op_count, status, run_id, updated_at) VALUES (?, ?, ?, ?, ?, ?)", rows
            )

    def _check_resumable(self, record: PlanRecord, wanted: Sequence[str] | None) -> None:
        if record.status is PlanStatus.APPLIED:
            raise AlreadyApplied(
                f"plan {record.plan_id} was already applied in full",
                hint="Nothing to do. To change stock again, edit the YAML and make a new plan.",
            )
        if wanted:
            parts = {p.target: p for p in self._parts(record.plan_id)}
            if parts and all(t in parts and parts[t].status is PartStatus.APPLIED for t in wanted):
                raise AlreadyApplied(
                    f"the part of plan {record.plan_id} for target(s) {', '.join(wanted)} was already applied in full",
                    hint="Nothing to do for it; `reconciler history` shows the status of every part.",
                )
        newer = self._one(
            "SELECT plan_id FROM plans WHERE serial_before > ? ORDER BY serial_before DESC LIMIT 1", [record.serial_before]
        )
        if newer is not None:
            raise StalePlanError(
                f"plan {record.plan_id} was interrupted, but plan {newer[0]} has been applied since",
                hint="Make a new plan with `reconciler plan --out`; it starts from what was applied.",
            )

    def _plan_record(self, plan_id: str) -> PlanRecord | None:
        row = self._one(
            "SELECT plan_id, lineage, serial_before, serial_after, status, op_count FROM plans WHERE plan_id = ?", [plan_id]
        )
        if row is None:
            return None
        return PlanRecord(row[0], row[1], int(row[2]), row[3], PlanStatus(row[4]), int(row[5]))

    def plan_record(self, plan_id: str) -> PlanRecord | None:
        with self._errors("read plan"):
            return self._plan_record(plan_id)

    def _parts(self, plan_id: str) -> list[PartRecord]:
        applied = dict(self._all(
            "SELECT target, count(*) FROM journal WHERE plan_id = ? AND status = 'applied' GROUP BY target", [plan_id]
        ))
        rows = self._all(
            "SELECT target, op_count, status, run_id FROM plan_parts WHERE plan_id = ? ORDER BY target", [plan_id]
        )
        return [PartRecord(plan_id, r[0], int(r[1]), int(applied.get(r[0], 0)), PartStatus(r[2]), r[3]) for r in rows]

    def plan_parts(self, plan_id: str) -> list[PartRecord]:
        with self._errors("read plan parts"):
            return self._parts(plan_id)

    def finish_run(self, run_id: str, outcome: str, counts: Mapping[str, int]) -> PlanRecord:
        with self._tx("finish run", serial=True):
            run = self._run(run_id)
            if run is None:
                raise StateError(f"no run {run_id} in {self.describe()}")
            self._execute(
                "UPDATE runs SET finished_at = ?, outcome = ?, counts = ? WHERE run_id = ?",
                [iso(self._clock()), outcome, json.dumps(dict(counts)), run_id],
            )
            # Plans made while this run was changing B are stale once it ends.
            self._bump_serial()
            return self._settle_plan(run.plan_id, run.targets or None)

    def _settle_plan(self, plan_id: str, targets: Sequence[str] | None) -> PlanRecord:
        """Settle the parts a run (or a resolve) touched, then the plan from all its parts."""
        record = self._plan_record(plan_id)
        if record is None:
            raise StateError(f"no plan {plan_id} in {self.describe()}")
        now = iso(self._clock())
        parts = self._parts(plan_id)
        for part in parts:
            if targets is None or part.target in targets:
                status = PartStatus.APPLIED if part.applied >= part.op_count else PartStatus.PARTIAL
                self._execute("UPDATE plan_parts SET status = ?, updated_at = ? WHERE plan_id = ? AND target = ?",
                              [status.value, now, plan_id, part.target])
        parts = self._parts(plan_id)
        applied = self._one(
            "SELECT count(*) FROM journal WHERE plan_id = ? AND status = ?", [plan_id, JournalStatus.APPLIED.value]
        )[0]
        if applied >= record.op_count and all(p.status is PartStatus.APPLIED for p in parts):
            status = PlanStatus.APPLIED
        elif any(p.status is PartStatus.APPLYING for p in parts):
            status = PlanStatus.APPLYING  # another part is still running (or was killed)
        else:
            status = PlanStatus.PARTIAL
        serial = int(self._meta("serial"))
        self._execute(
            "UPDATE plans SET status = ?, serial_after = ?, updated_at = ? WHERE plan_id = ?", [status.value, serial, now, plan_id]
        )
        return PlanRecord(plan_id, record.lineage, record.serial_before, serial, status, record.op_count)

    def _run(self, run_id: str) -> RunRecord | None:
        row = self._one(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", [run_id])
        return None if row is None else _run_record(row)

    def run(self, run_id: str) -> RunRecord | None:
        with self._errors("read run"):
            return self._run(run_id)

    def runs(self, limit: int | None = None) -> list[RunRecord]:
        with self._errors("read runs"):
            sql = f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY started_at DESC, {self._order} DESC"
            return [_run_record(r) for r in self._all(sql + (f" LIMIT {int(limit)}" if limit else ""))]

    # --- journal -----------------------------------------------------------------------------
    def record_pending(
        self, plan_id: str, run_id: str, ops: Sequence[tuple[Operation, str, Sequence[BaseUpdate]]]
    ) -> None:
        now = iso(self._clock())
        rows = [
            (plan_id, op.id, run_id, op.target, op.kind.value, JournalStatus.PENDING.value, request, "", None,
             json.dumps([u.to_json() for u in updates]), now)
            for op, request, updates in ops
        ]
        with self._tx("journal pending operations"):
            self._before_send()
            self._executemany(
                "INSERT INTO journal (plan_id, op_id, run_id, target, kind, status, request, response, error, base_updates, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (plan_id, op_id) DO UPDATE SET "
                "run_id = excluded.run_id, target = excluded.target, kind = excluded.kind, status = excluded.status, "
                "request = excluded.request, response = excluded.response, error = excluded.error, "
                "base_updates = excluded.base_updates, updated_at = excluded.updated_at",
                rows,
            )

    def _before_send(self) -> None:
        """Hook: raise LockHeld if this store's lock was lost (a batch is about to be sent)."""

    def record_outcome(self, plan_id: str, outcome: Outcome, base_updates: Sequence[BaseUpdate] = ()) -> None:
        self.record_outcomes(plan_id, [(outcome, base_updates)])

    def record_outcomes(self, plan_id: str, outcomes: Sequence[tuple[Outcome, Sequence[BaseUpdate]]]) -> None:
        if not outcomes:
            return
        what = f"journal operation {outcomes[0][0].op_id}" if len(outcomes) == 1 else f"journal {len(outcomes)} operations"
        with self._tx(what, serial=True):
            for outcome, updates in outcomes:
                self._write_outcome(plan_id, outcome)
                if outcome.status is JournalStatus.APPLIED:
                    self._apply_base_updates(updates)
            # Outcomes change what B means (and settle what was in flight): a plan made before
            # this commit was visible, e.g. one that surfaced late after a crash, must be stale.
            self._bump_serial()

    def _write_outcome(self, plan_id: str, outcome: Outcome) -> None:
        cursor = self._execute(
            "UPDATE journal SET status = ?, response = ?, error = ?, updated_at = ? WHERE plan_id = ? AND op_id = ?",
            [
                outcome.status.value,
                (outcome.response or "")[:MAX_RESPONSE_CHARS],
                outcome.error[:MAX_RESPONSE_CHARS] if outcome.error else None,
                iso(self._clock()),
                plan_id,
                outcome.op_id,
            ],
        )
        if cursor.rowcount != 1:
            raise StateError(f"operation {outcome.op_id} of plan {plan_id} was never journaled as pending")

    def record_adopted(self, plan_id: str, run_id: str, adopted: Sequence[tuple[Operation, str, BaseUpdate]],
                       response: str) -> None:
        # Bulk: the journal rows go in as applied and the base rows in two statements (the
        # pending + outcome path costs five statements and two JSON encodings per position).
        if not adopted:
            return
        now, response = iso(self._clock()), response[:MAX_RESPONSE_CHARS]
        settings_json: dict[Any, str] = {}  # a chain has few distinct settings: encode each once

        def encoded(settings: Settings | None) -> str:
            if settings not in settings_json:
                settings_json[settings] = json.dumps(settings.as_dict() if settings else {}, sort_keys=True)
            return settings_json[settings]

        journal, base = [], []
        for op, request, u in adopted:
            quantity, text = int(u.quantity or 0), encoded(u.settings)
            update = (f'[{{"key": {json.dumps(list(u.key))}, "quantity": {quantity}, '
                      f'"settings": {"null" if u.settings is None else text}, "remove": false}}]')
            journal.append((plan_id, op.id, run_id, op.target, op.kind.value, JournalStatus.APPLIED.value, request,
                            response, None, update, now))
            base.append((*u.key, quantity, text))
        with self._tx(f"journal {len(adopted)} adopted positions", serial=True):
            self._before_send()
            self._executemany(
                "INSERT INTO journal (plan_id, op_id, run_id, target, kind, status, request, response, error, base_updates, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", journal)
            self._executemany(
                "INSERT INTO base (target, location, item, quantity, settings) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (target, location, item) DO UPDATE SET quantity = excluded.quantity, settings = excluded.settings",
                base)
            self._bump_serial()

    def journal(self, plan_id: str) -> dict[str, JournalEntry]:
        with self._errors("read journal"):
            rows = self._all(_JOURNAL_SELECT + f" WHERE plan_id = ? ORDER BY {self._order}", [plan_id])
            return {row[1]: _journal_entry(row) for row in rows}

    def find_journal(self, op_id: str, statuses: Iterable[JournalStatus] | None = None) -> list[JournalEntry]:
        with self._errors("search journal"):
            escaped = op_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            rows = self._all(_JOURNAL_SELECT + " WHERE op_id LIKE ? ESCAPE '\\' ORDER BY updated_at DESC", [escaped + "%"])
            entries = [_journal_entry(r) for r in rows]
            exact = [e for e in entries if e.op_id == op_id]
            entries = exact or entries
            if statuses is not None:
                wanted = set(statuses)
                entries = [e for e in entries if e.status in wanted]
            return entries

    def unsettled(self, targets: Iterable[str] | None = None) -> list[JournalEntry]:
        sql = _JOURNAL_SELECT + " WHERE status IN (?, ?)"
        params: list[Any] = [JournalStatus.PENDING.value, JournalStatus.IN_DOUBT.value]
        if targets is not None:
            wanted = sorted(set(targets))
            if not wanted:
                return []
            sql += f" AND target IN ({', '.join('?' for _ in wanted)})"
            params.extend(wanted)
        with self._errors("read unsettled operations"):
            return [_journal_entry(r) for r in self._all(sql + " ORDER BY updated_at, op_id", params)]

    def resolve(
        self, plan_id: str, op_id: str, applied: bool, base_updates: Sequence[BaseUpdate] | None = None
    ) -> JournalEntry:
        with self._tx(f"resolve operation {op_id}", serial=True):
            row = self._one(_JOURNAL_SELECT + " WHERE plan_id = ? AND op_id = ?", [plan_id, op_id])
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
            self._settle_plan(plan_id, [entry.target])
            return _journal_entry(self._one(_JOURNAL_SELECT + " WHERE plan_id = ? AND op_id = ?", [plan_id, op_id]))

    # --- copying ------------------------------------------------------------------------------
    def export_rows(self, table: str) -> list[dict[str, Any]]:
        columns = TABLE_COLUMNS[table]
        order = _PK.get(table, self._order)
        with self._errors(f"read {table}"):
            rows = self._all(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}")
            return [dict(zip(columns, row)) for row in rows]

    def replace_all(self, tables: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
        with self._tx("replace the state", serial=True):
            for table in reversed(list(TABLE_COLUMNS)):
                self._execute(f"DELETE FROM {table}")
            for table, columns in TABLE_COLUMNS.items():
                rows = [tuple(row.get(c) for c in columns) for row in tables.get(table, ())]
                if rows:
                    marks = ", ".join("?" for _ in columns)
                    self._executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


def _journal_entry(row: Sequence[Any]) -> JournalEntry:
    updates = tuple(BaseUpdate.from_json(u) for u in json.loads(row[10] or "[]"))
    return JournalEntry(
        row[0], row[1], row[2], row[3], row[4], JournalStatus(row[5]), row[6] or "", row[7] or "", row[8], row[9], updates
    )


def _run_record(row: Sequence[Any]) -> RunRecord:
    targets = tuple(json.loads(row[8])) if row[8] else ()
    return RunRecord(row[0], row[1], row[2], row[3], row[4], row[5], row[6], json.loads(row[7] or "{}"), targets)


def lock_held(lock: LockInfo, where: str) -> LockHeld:
    """The error for a lock someone else holds: who, where, since when, and what to do."""
    scope = "the whole state" if lock.targets == ("*",) else "target(s) " + ", ".join(lock.targets)
    until = f", expiring {lock.expires_at}" if lock.expires_at else ", held while its connection lives"
    return LockHeld(
        f"another apply holds the state lock on {scope} in {where}: {lock.holder} (host {lock.host}, pid {lock.pid}) "
        f"since {lock.acquired_at}{until}.",
        hint=f"Wait for it to finish. If it is dead or stuck, remove it with `reconciler unlock {lock.id}`.",
    )


def group_locks(rows: Iterable[Sequence[Any]]) -> list[LockInfo]:
    """Lock rows (target, id, holder, host, pid, acquired_at, expires_at, backend_pid), one per
    target, grouped into one LockInfo per lock id, oldest first."""
    by_id: dict[str, list[Sequence[Any]]] = {}
    for row in rows:
        by_id.setdefault(row[1], []).append(row)
    locks = []
    for lock_id, group in by_id.items():
        first = group[0]
        targets = tuple(sorted(r[0] for r in group))
        backend = int(first[7]) if first[7] is not None else None
        locks.append(LockInfo(lock_id, first[2], first[3], int(first[4]), first[5], first[6] or "", targets, backend))
    return sorted(locks, key=lambda lock: (lock.acquired_at, lock.id))
