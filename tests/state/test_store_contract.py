"""The StateStore interface, run against both backends: a SQLite file and a PostgreSQL schema
of a real server (tests/pg_server.py). Same plans, same expectations."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest
from applykit import adjust, make_plan, reset

from reconciler.errors import LockHeld, StalePlanError, StateError
from reconciler.state import BaseUpdate, JournalStatus, Outcome, open_state_store
from reconciler.state._schema import SCHEMA_VERSION
from reconciler.state.base import MAX_RESPONSE_CHARS, TABLE_COLUMNS


def test_identity_survives_reopen_and_new_states_differ(state_url: str, tmp_path) -> None:
    with open_state_store(state_url) as store:
        lineage = store.lineage()
        assert store.serial() == 0 and store.schema_version() == SCHEMA_VERSION and store.is_empty()
    with open_state_store(state_url, create=False) as again:
        assert again.lineage() == lineage  # made once, on creation
    with open_state_store(tmp_path / "other.db") as other:
        assert other.lineage() != lineage


def test_begin_resume_and_staleness(state_url: str) -> None:
    with open_state_store(state_url) as store:
        plan = make_plan([reset("t", "oslo", "A", None, 1)], lineage=store.lineage(), serial=0)
        ticket = store.begin_apply(plan, op_count=1, who="u@h")
        assert not ticket.resumed and store.serial() == 1
        store.finish_run(ticket.run_id, "failed", {"failed": 1})
        assert store.plan_record(plan.plan_id).status.value == "partial"
        again = store.begin_apply(plan, op_count=1, who="u@h")
        assert again.resumed and again.run_id != ticket.run_id
        store.finish_run(again.run_id, "failed", {})
        with pytest.raises(StalePlanError, match="serial 0"):
            store.begin_apply(make_plan(plan.operations, lineage=store.lineage(), serial=0, plan_id="x"), op_count=1, who="u@h")
        newer = make_plan(plan.operations, lineage=store.lineage(), serial=store.serial(), plan_id="newer")
        store.finish_run(store.begin_apply(newer, op_count=1, who="u@h").run_id, "failed", {})
        with pytest.raises(StalePlanError, match="applied since"):
            store.begin_apply(plan, op_count=1, who="u@h")
        with pytest.raises(StalePlanError, match="another state database"):
            store.begin_apply(make_plan([], lineage="nope", serial=store.serial(), plan_id="y"), op_count=0, who="u@h")
        assert [r.plan_id for r in store.runs()] == ["newer", plan.plan_id, plan.plan_id]


def test_outcome_base_and_resolve(state_url: str) -> None:
    with open_state_store(state_url) as store:
        op, other = adjust("t", "oslo", "A", 5, 5, 8), adjust("t", "oslo", "B", 1, 1, 2)
        plan = make_plan([op, other], lineage=store.lineage(), serial=0)
        ticket = store.begin_apply(plan, op_count=2, who="u@h")
        updates = [BaseUpdate(("t", "oslo", "A"), quantity=8)]
        store.record_pending(plan.plan_id, ticket.run_id, [(op, "{}", updates), (other, "{}", [])])
        store.record_outcome(plan.plan_id, Outcome(op.id, JournalStatus.APPLIED, "x" * (MAX_RESPONSE_CHARS + 10)), updates)
        entry = store.journal(plan.plan_id)[op.id]
        assert entry.status is JournalStatus.APPLIED and len(entry.response) == MAX_RESPONSE_CHARS
        assert store.load_base().positions[("t", "oslo", "A")].quantity == 8
        assert list(store.journal(plan.plan_id)) == [op.id, other.id]  # journal order is insertion order
        with pytest.raises(StateError, match="never journaled"):
            store.record_outcome(plan.plan_id, Outcome("nope", JournalStatus.APPLIED))
        store.record_outcome(plan.plan_id, Outcome(other.id, JournalStatus.IN_DOUBT, error="dropped"))
        store.finish_run(ticket.run_id, "in_doubt", {"in_doubt": 1})
        assert [e.op_id for e in store.find_journal(other.id[:10], [JournalStatus.IN_DOUBT])] == [other.id]
        serial = store.serial()
        resolved = store.resolve(plan.plan_id, other.id, False)
        assert resolved.status is JournalStatus.NOT_APPLIED and store.serial() == serial + 1
        with pytest.raises(StateError, match="not in doubt"):
            store.resolve(plan.plan_id, other.id, True)


def _parts_plan(store, plan_id: str = "parts"):  # type: ignore[no-untyped-def]
    ops = [reset("a", "oslo", "A", None, 1), reset("b", "oslo", "A", None, 2), reset("b", "oslo", "B", None, 3)]
    return make_plan(ops, lineage=store.lineage(), serial=store.serial(), plan_id=plan_id), ops


def _apply_part(store, plan, ops, target: str) -> None:  # type: ignore[no-untyped-def]
    mine = [op for op in ops if op.target == target]
    ticket = store.begin_apply(plan, op_count=len(ops), who="u@h", parts={"a": 1, "b": 2}, targets=[target])
    store.record_pending(plan.plan_id, ticket.run_id, [(op, "{}", []) for op in mine])
    for op in mine:
        store.record_outcome(plan.plan_id, Outcome(op.id, JournalStatus.APPLIED))
    store.finish_run(ticket.run_id, "applied", {"applied": len(mine)})


def test_parts_complete_the_plan_and_do_not_stale_each_other(state_url: str) -> None:
    with open_state_store(state_url) as store:
        plan, ops = _parts_plan(store)
        before = make_plan([], lineage=store.lineage(), serial=store.serial(), plan_id="made-before")
        _apply_part(store, plan, ops, "a")
        parts = {p.target: (p.status.value, p.applied, p.op_count) for p in store.plan_parts(plan.plan_id)}
        assert parts == {"a": ("applied", 1, 1), "b": ("pending", 0, 2)}
        assert store.plan_record(plan.plan_id).status.value == "partial"
        with pytest.raises(StalePlanError, match="for target\\(s\\) a was already applied"):
            store.begin_apply(plan, op_count=3, who="u@h", parts={"a": 1, "b": 2}, targets=["a"])
        with pytest.raises(StalePlanError, match="serial"):
            store.begin_apply(before, op_count=0, who="u@h")  # made before part a ran: stale
        _apply_part(store, plan, ops, "b")  # the serial part a moved does not make part b stale
        assert store.plan_record(plan.plan_id).status.value == "applied"
        assert [r.targets for r in store.runs()] == [("b",), ("a",)]
        with pytest.raises(StalePlanError, match="already applied in full"):
            store.begin_apply(plan, op_count=3, who="u@h", targets=["b"])


def test_a_newer_plan_makes_the_remaining_parts_stale(state_url: str) -> None:
    with open_state_store(state_url) as store:
        plan, ops = _parts_plan(store)
        _apply_part(store, plan, ops, "a")
        newer = make_plan([reset("a", "oslo", "A", 1, 5)], lineage=store.lineage(), serial=store.serial(), plan_id="newer")
        store.begin_apply(newer, op_count=1, who="u@h", parts={"a": 1})
        with pytest.raises(StalePlanError, match="newer has been applied since"):
            store.begin_apply(plan, op_count=3, who="u@h", parts={"a": 1, "b": 2}, targets=["b"])


def test_locks_are_per_target(state_url: str) -> None:
    with open_state_store(state_url) as one, open_state_store(state_url) as two:
        a = one.acquire_lock("ann@ci-1", 600, ["a"])
        b = two.acquire_lock("bob@ci-2", 600, ["b", "c"])  # disjoint: both run
        assert {(lock.holder, lock.targets) for lock in one.locks()} == {("ann@ci-1", ("a",)), ("bob@ci-2", ("b", "c"))}
        with pytest.raises(LockHeld) as err:
            two.acquire_lock("bob@ci-2", 600, ["a"])
        assert err.value.exit_code == 5 and "ann@ci-1" in str(err.value) and a.id in str(err.value)
        with pytest.raises(LockHeld, match="ann@ci-1|bob@ci-2"):
            one.acquire_lock("ann@ci-1", 600)  # the whole state overlaps everything
        assert two.release_lock(b.id) and not two.release_lock(b.id)
        with pytest.raises(LockHeld):
            two.acquire_lock("bob@ci-2", 600)
        assert one.release_lock(a.id) and one.locks() == []
        whole = one.acquire_lock("ann@ci-1", 600)
        with pytest.raises(LockHeld, match="whole state"):
            two.acquire_lock("bob@ci-2", 600, ["z"])
        assert one.renew_lock(whole.id, 600).id == whole.id
        one.release_lock(whole.id)
        with pytest.raises(LockHeld):
            one.renew_lock(whole.id, 600)


_HOLDER = textwrap.dedent("""
    import sys, time
    from reconciler.state import open_state_store
    store = open_state_store(sys.argv[1])
    lock = store.acquire_lock("ghost@runner", 3600, ["a"])
    print(lock.id, flush=True)
    time.sleep(120)
""")


def _holder(state_url: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, state_url], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def test_killed_holder_leaves_no_stuck_lock(state_url: str) -> None:
    proc, lock_id = _holder(state_url)
    with open_state_store(state_url) as store:
        assert [lock.id for lock in store.locks()] == [lock_id]
        with pytest.raises(LockHeld, match="ghost@runner"):
            store.acquire_lock("me@here", 60, ["a"])
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10  # PostgreSQL notices the closed socket at once; allow a moment
        while True:
            try:
                lock = store.acquire_lock("me@here", 60, ["a"])
                break
            except LockHeld:
                assert time.monotonic() < deadline, "the killed holder's lock was never released"
                time.sleep(0.05)
        assert [held.id for held in store.locks()] == [lock.id]


def test_export_and_replace_copy_everything(state_url: str, tmp_path) -> None:
    with open_state_store(state_url) as store:
        plan, ops = _parts_plan(store)
        _apply_part(store, plan, ops, "a")
        tables = {name: store.export_rows(name) for name in TABLE_COLUMNS}
    assert tables["runs"][0]["targets"] == '["a"]' and len(tables["journal"]) == 1
    with open_state_store(tmp_path / "copy.db") as copy:
        copy.replace_all(tables)
        assert {name: copy.export_rows(name) for name in TABLE_COLUMNS} == tables
        assert copy.lineage() == tables["meta"][0]["value"] and not copy.is_empty()
