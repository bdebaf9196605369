"""The SQLite state store on real files: schema, plans/serial, journal atomicity, lock."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from applykit import adjust, make_plan
from sqlite_utils import Database

from reconciler.errors import LockHeld, StateError
from reconciler.model import Settings
from reconciler.state import BaseUpdate, JournalStatus, Outcome, SQLiteStateStore, open_state_store
from reconciler.state._schema import MIGRATIONS, SCHEMA_VERSION
from reconciler.state.base import MAX_RESPONSE_CHARS


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_new_database_is_created_with_parents_wal_and_schema(tmp_path: Path) -> None:
    path = tmp_path / "deep" / ".reconciler" / "state.db"
    with open_state_store(path) as store:
        lineage = store.lineage()
        assert store.serial() == 0 and store.schema_version() == SCHEMA_VERSION
        mode = store.db.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    with SQLiteStateStore(path) as again:
        assert again.lineage() == lineage  # lineage is made once, on creation
    other = SQLiteStateStore(tmp_path / "other.db")
    assert other.lineage() != lineage
    other.close()


def test_old_schema_is_upgraded_keeping_data(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    db = Database(path)
    db["schema_version"].create({"version": int, "applied_at": str}, pk="version")
    MIGRATIONS[0](db)
    db["schema_version"].insert({"version": 1, "applied_at": "2026-01-01T00:00:00Z"})
    db["meta"].insert_all([{"key": "lineage", "value": "L-1"}, {"key": "serial", "value": "4"}])
    db["base"].insert({"target": "t", "location": "oslo", "item": "A", "quantity": 3, "settings": "{}"})
    db.close()
    with SQLiteStateStore(path) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.lineage() == "L-1" and store.serial() == 4
        assert store.load_base().positions[("t", "oslo", "A")].quantity == 3
        indexes = {i.name for i in store.db["journal"].indexes}
    assert "journal_status" in indexes


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    SQLiteStateStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_version VALUES (?, 'x')", [SCHEMA_VERSION + 1])
    with pytest.raises(StateError, match="newer than this reconciler"):
        SQLiteStateStore(path)


def test_unopenable_path_is_a_state_error(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StateError, match="dir.db") as err:
        SQLiteStateStore(tmp_path / "dir.db")
    assert isinstance(err.value.__cause__, sqlite3.Error)


# begin/resume/staleness: tests/state/test_store_contract.py::test_begin_resume_and_staleness
# runs the same checks on SQLite and PostgreSQL.


def _journaled(store: SQLiteStateStore):
    op = adjust("t", "oslo", "A", 5, 5, 8)
    plan = make_plan([op], lineage=store.lineage(), serial=store.serial())
    ticket = store.begin_apply(plan, op_count=1, who="u@h")
    updates = [BaseUpdate(("t", "oslo", "A"), quantity=8)]
    store.record_pending(plan.plan_id, ticket.run_id, [(op, "{}", updates)])
    return plan, op, ticket, updates


def test_outcome_and_base_are_one_transaction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with SQLiteStateStore(tmp_path / "s.db") as store:
        plan, op, _, updates = _journaled(store)

        def explode(self, updates):
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(SQLiteStateStore, "_apply_base_updates", explode)
        with pytest.raises(StateError, match="disk I/O error"):
            store.record_outcome(plan.plan_id, Outcome(op.id, JournalStatus.APPLIED, "ok"), updates)
        # the journal row was rolled back together with the failed B write
        assert store.journal(plan.plan_id)[op.id].status is JournalStatus.PENDING
        monkeypatch.undo()
        store.record_outcome(plan.plan_id, Outcome(op.id, JournalStatus.APPLIED, "x" * (MAX_RESPONSE_CHARS + 10)), updates)
        entry = store.journal(plan.plan_id)[op.id]
        assert entry.status is JournalStatus.APPLIED and len(entry.response) == MAX_RESPONSE_CHARS
        assert store.load_base().positions[("t", "oslo", "A")].quantity == 8


def test_only_changed_base_rows_are_written(tmp_path: Path) -> None:
    with SQLiteStateStore(tmp_path / "s.db") as store:
        plan, op, ticket, updates = _journaled(store)
        store.record_outcome(plan.plan_id, Outcome(op.id, JournalStatus.APPLIED), updates)
        store.db.execute(
            "CREATE TRIGGER count_base AFTER UPDATE ON base BEGIN INSERT INTO meta VALUES ('touched-' || random(), '1'); END"
        )
        store._apply_base_updates([BaseUpdate(("t", "oslo", "A"), quantity=8)])  # same value
        assert store.db["meta"].count_where("key LIKE 'touched-%'") == 0
        store._apply_base_updates([BaseUpdate(("t", "oslo", "A"), settings=Settings(reorder_point=2))])
        assert store.db["meta"].count_where("key LIKE 'touched-%'") == 1
        record = store.load_base().positions[("t", "oslo", "A")]
        assert record.quantity == 8 and record.settings == Settings(reorder_point=2)


def test_resolve_uses_journaled_base_updates(tmp_path: Path) -> None:
    with SQLiteStateStore(tmp_path / "s.db") as store:
        plan, op, ticket, _ = _journaled(store)
        store.record_outcome(plan.plan_id, Outcome(op.id, JournalStatus.IN_DOUBT, error="dropped"))
        serial = store.serial()
        entry = store.resolve(plan.plan_id, op.id, True)
        assert entry.status is JournalStatus.APPLIED and "resolved by hand" in (entry.error or "")
        assert store.load_base().positions[("t", "oslo", "A")].quantity == 8
        assert store.serial() == serial + 1
        assert store.plan_record(plan.plan_id).status.value == "applied"
        with pytest.raises(StateError, match="not in doubt"):
            store.resolve(plan.plan_id, op.id, False)


def test_lock_of_dead_process_on_same_host_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SQLiteStateStore(path, pid=_dead_pid()) as dead:
        old = dead.acquire_lock("ghost@here", ttl_s=3600)
    with SQLiteStateStore(path) as store:
        new = store.acquire_lock("me@here", ttl_s=60)
        assert new.id != old.id and store.current_lock().holder == "me@here"
        with pytest.raises(LockHeld) as err:
            store.acquire_lock("again@here", ttl_s=60)  # a live holder (this very process)
        assert err.value.exit_code == 5
        with pytest.raises(LockHeld):
            store.renew_lock(old.id, 60)
        assert store.release_lock(new.id) and store.current_lock() is None


def test_lock_from_another_host_waits_for_expiry(tmp_path: Path) -> None:
    path, clock = tmp_path / "s.db", FakeClock()
    with SQLiteStateStore(path, hostname="ci-7", pid=_dead_pid(), clock=clock) as remote:
        held = remote.acquire_lock("ci@ci-7", ttl_s=300)
    with SQLiteStateStore(path, clock=clock) as store:
        with pytest.raises(LockHeld) as err:
            store.acquire_lock("me@here", ttl_s=300)
        text = str(err.value)
        for part in ("ci@ci-7", "host ci-7", f"pid {held.pid}", held.acquired_at, held.expires_at, held.id):
            assert part in text
        clock.now += timedelta(seconds=301)
        assert store.acquire_lock("me@here", ttl_s=300).holder == "me@here"


def test_lock_renewal_pushes_expiry(tmp_path: Path) -> None:
    clock = FakeClock()
    with SQLiteStateStore(tmp_path / "s.db", clock=clock) as store:
        lock = store.acquire_lock("me@here", ttl_s=10)
        clock.now += timedelta(seconds=8)
        renewed = store.renew_lock(lock.id, 10)
        assert renewed.expires_at > lock.expires_at
