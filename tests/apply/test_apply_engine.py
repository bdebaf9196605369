"""The applier against a real SQLite state and the file-backed memory connector."""

from __future__ import annotations

from pathlib import Path

import pytest
from applykit import (
    adjust, connector, delete, drift, make_plan, move, ops_log, random_ops, release, reset, settings, stock_of,
)

from reconciler.apply import apply_plan, raise_for_report, render_apply_summary, resolve_op
from reconciler.connectors.memory import MemoryConnector
from reconciler.errors import ApplyIncomplete, InDoubt, PlanError, StalePlanError, StateError, UnsettledOperations
from reconciler.model import Operation, Settings
from reconciler.state import JournalStatus, SQLiteStateStore


def _apply(plan, store, conn, **kw):
    return apply_plan(plan, store, {"shop": conn}, desired_digest=plan.desired_digest, holder="t@h", **kw)


class _Crash(BaseException):
    """Stands in for the process dying (SIGKILL) in the middle of a batch."""


class CrashAfterWrite(MemoryConnector):
    """Writes the batch to the 'vendor', then dies before the applier hears back."""

    crash_on: set[str] = set()

    def execute(self, batch):
        results = super().execute(batch)
        if {op.id for op in batch} & self.crash_on:
            raise _Crash()
        return results


def test_plan_applies_and_updates_base(store: SQLiteStateStore, stock_path: Path, adopted) -> None:
    ops, expected, _ = random_ops(1, "shop", adopted)
    plan = make_plan([*ops, drift("shop", "oslo", "SKU-000")], lineage=store.lineage(), serial=store.serial(), plan_id="p2")
    events = []
    conn = connector("shop", stock_path, max_batch=4)
    report = _apply(plan, store, conn, progress=events.append)
    assert report.ok and report.plan_status == "applied"
    assert stock_of(stock_path) == expected
    base = {(loc, item): rec.quantity for (_, loc, item), rec in store.load_base().positions.items()}
    released = {(op.location, op.item) for op in ops if op.kind.value == "release"}
    assert base == {k: v for k, v in expected.items() if k not in released}
    assert report.counts["skipped"] == 1  # the drift note
    assert events and events[-1].ops_done == events[-1].ops_total == len([o for o in ops if o.kind.value != "release"])
    assert store.run(report.run_id).outcome == "applied"


def test_applied_plan_is_refused_before_any_request(store: SQLiteStateStore, stock_path: Path, adopted) -> None:
    plan = make_plan([adjust("shop", "oslo", "SKU-001", adopted[("oslo", "SKU-001")], adopted[("oslo", "SKU-001")], 3)],
                     lineage=store.lineage(), serial=store.serial(), plan_id="p2")
    conn = connector("shop", stock_path)
    _apply(plan, store, conn)
    writes = sum(ops_log(stock_path).values())
    with pytest.raises(StalePlanError, match="already applied"):
        _apply(plan, store, conn)
    assert sum(ops_log(stock_path).values()) == writes
    assert store.current_lock() is None


def test_first_plan_of_new_state_cannot_be_replayed(store: SQLiteStateStore, stock_path: Path) -> None:
    plan = make_plan([reset("shop", "oslo", "A", None, 5)], lineage=store.lineage(), serial=0)
    conn = connector("shop", stock_path)
    assert _apply(plan, store, conn).ok
    with pytest.raises(StalePlanError, match="already applied"):
        _apply(plan, store, conn)
    # the same operations under a new plan id made against serial 0 are stale too
    again = make_plan(plan.operations, lineage=store.lineage(), serial=0, plan_id="other")
    with pytest.raises(StalePlanError, match="serial 0"):
        _apply(again, store, conn)
    assert ops_log(stock_path) == {"reset-shop-oslo-A": 1}


@pytest.mark.parametrize("change", ["lineage", "serial", "digest"])
def test_stale_plan_refused_before_any_request(store: SQLiteStateStore, stock_path: Path, change: str) -> None:
    lineage = "0000-other" if change == "lineage" else store.lineage()
    serial = 7 if change == "serial" else store.serial()
    plan = make_plan([reset("shop", "oslo", "A", None, 5)], lineage=lineage, serial=serial)
    conn = connector("shop", stock_path)
    digest = "changed" if change == "digest" else plan.desired_digest
    with pytest.raises(StalePlanError) as err:
        apply_plan(plan, store, {"shop": conn}, desired_digest=digest, holder="t@h")
    assert "reconciler plan" in str(err.value)  # says what to do
    assert ops_log(stock_path) == {}
    assert store.runs() == [] and store.current_lock() is None


def test_missing_connector_is_an_error_before_any_request(store: SQLiteStateStore) -> None:
    plan = make_plan([reset("gone", "oslo", "A", None, 5)], lineage=store.lineage(), serial=0)
    with pytest.raises(PlanError, match="gone"):
        apply_plan(plan, store, {}, desired_digest=None, holder="t@h")
    assert store.runs() == []


def test_rejected_op_fails_verbatim_and_others_continue(store: SQLiteStateStore, stock_path: Path, adopted) -> None:
    ops = [adjust("shop", "oslo", f"SKU-00{i}", adopted[("oslo", f"SKU-00{i}")], adopted[("oslo", f"SKU-00{i}")], 50)
           for i in range(4)]
    plan = make_plan(ops, lineage=store.lineage(), serial=store.serial(), plan_id="p2")
    conn = connector("shop", stock_path, max_batch=1, fail_items=["SKU-002"])
    report = _apply(plan, store, conn)
    assert report.counts == {"applied": 3, "failed": 1, "in_doubt": 0, "skipped": 0}
    failed = next(op for op in report.ops if op.status == "failed")
    assert failed.op_id == ops[2].id
    assert failed.response == '{"error": "unknown_item", "message": "Item SKU-002 does not exist in this store"}'
    summary = render_apply_summary(report)
    assert "Item SKU-002 does not exist in this store" in summary and ops[2].id in summary
    with pytest.raises(ApplyIncomplete) as err:
        raise_for_report(report)
    assert err.value.exit_code == 3 and store.plan_record("p2").status.value == "partial"
    # the vendor is fixed; a re-run sends only the failed operation
    fixed = connector("shop", stock_path, max_batch=1)
    again = _apply(plan, store, fixed)
    assert again.resumed and again.counts == {"applied": 1, "failed": 0, "in_doubt": 0, "skipped": 3}
    assert all(n == 1 for op_id, n in ops_log(stock_path).items() if op_id in {o.id for o in ops})
    assert stock_of(stock_path)[("oslo", "SKU-002")] == 50


def test_resume_skips_applied_operations(store: SQLiteStateStore, stock_path: Path, adopted) -> None:
    ops, expected, _ = random_ops(2, "shop", adopted)
    plan = make_plan(ops, lineage=store.lineage(), serial=store.serial(), plan_id="p2")

    class CrashBefore(MemoryConnector):
        def execute(self, batch):
            if any(op.id == ops[20].id for op in batch):
                raise _Crash()  # dies before sending: the batch stays pending, unsent
            return super().execute(batch)

    crashing = CrashBefore(connector("shop", stock_path, max_batch=2).ctx)
    with pytest.raises(_Crash):
        _apply(plan, store, crashing)
    assert store.current_lock() is None  # released on the way out
    conn = connector("shop", stock_path, max_batch=2, verifiable=True)
    report = _apply(plan, store, conn)
    assert report.ok and report.resumed and report.counts["skipped"] >= 19
    assert stock_of(stock_path) == expected
    assert max(ops_log(stock_path).values()) == 1


def _crashed_in_flight(store, stock_path, ops, **options):
    plan = make_plan(ops, lineage=store.lineage(), serial=store.serial(), plan_id="p2")
    crashing = CrashAfterWrite(connector("shop", stock_path, max_batch=1, **options).ctx)
    CrashAfterWrite.crash_on = {ops[-1].id}
    with pytest.raises(_Crash):
        _apply(plan, store, crashing)
    assert store.journal("p2")[ops[-1].id].status is JournalStatus.PENDING
    return plan


def test_pending_absolute_op_is_resent(store: SQLiteStateStore, stock_path: Path, adopted) -> None:
    op = reset("shop", "oslo", "SKU-003", adopted[("oslo", "SKU-003")], 77)
    plan = _crashed_in_flight(store, stock_path, [op])
    report = _apply(plan, store, connector("shop", stock_path))
    assert report.ok and ops_log(stock_path)[op.id] == 2  # sent twice, harmlessly: it is absolute
    assert stock_of(stock_path)[("oslo", "SKU-003")] == 77
    assert store.load_base().positions[("shop", "oslo", "SKU-003")].quantity == 77


def test_pending_delta_op_verified_applied_is_not_resent(store: SQLiteStateStore, stock_path: Path, adopted) -> None:
    qty = adopted[("oslo", "SKU-004")]
    op = adjust("shop", "oslo", "SKU-004", qty, qty, qty + 6)
    plan = _crashed_in_flight(store, stock_path, [op], verifiable=True)
    report = _apply(plan, store, connector("shop", stock_path, verifiable=True))
    assert report.ok and ops_log(stock_path)[op.id] == 1
    assert stock_of(stock_path)[("oslo", "SKU-004")] == qty + 6


def test_pending_delta_op_unverifiable_is_in_doubt_until_resolved(store: SQLiteStateStore, stock_path: Path, adopted) -> None:
    qty = adopted[("oslo", "SKU-005")]
    first = adjust("shop", "bergen", "SKU-005", adopted[("bergen", "SKU-005")], adopted[("bergen", "SKU-005")], 1)
    op = adjust("shop", "oslo", "SKU-005", qty, qty, qty + 6)
    plan = _crashed_in_flight(store, stock_path, [first, op])
    conn = connector("shop", stock_path)
    report = _apply(plan, store, conn)
    assert report.counts == {"applied": 0, "failed": 0, "in_doubt": 1, "skipped": 1}
    assert "reconciler resolve " + op.id in render_apply_summary(report)
    with pytest.raises(InDoubt) as err:
        raise_for_report(report)
    assert err.value.exit_code == 4
    # re-running does not send it either: it stays in doubt until the user settles it
    assert _apply(plan, store, conn).counts["in_doubt"] == 1
    assert ops_log(stock_path)[op.id] == 1
    entry = resolve_op(store, op.id[:12], True, holder="t@h")
    assert entry.status is JournalStatus.APPLIED
    assert store.load_base().positions[("shop", "oslo", "SKU-005")].quantity == qty + 6
    assert store.plan_record("p2").status.value == "applied"
    with pytest.raises(StalePlanError, match="already applied"):
        _apply(plan, store, conn)


def test_resolved_not_applied_is_sent_by_next_run(store: SQLiteStateStore, stock_path: Path, adopted) -> None:
    qty = adopted[("oslo", "SKU-006")]
    op = adjust("shop", "oslo", "SKU-006", qty, qty, qty + 2)
    plan = make_plan([op], lineage=store.lineage(), serial=store.serial(), plan_id="p2")

    class CrashBeforeSend(MemoryConnector):
        def execute(self, batch):
            raise _Crash()  # journaled pending, never sent

    with pytest.raises(_Crash):
        _apply(plan, store, CrashBeforeSend(connector("shop", stock_path).ctx))
    conn = connector("shop", stock_path)
    assert _apply(plan, store, conn).counts["in_doubt"] == 1
    with pytest.raises(StateError, match="no operation in doubt"):
        resolve_op(store, "nope", False, holder="t@h")
    # the user checked the vendor and found nothing: it was not applied
    resolve_op(store, op.id, False, holder="t@h")
    report = _apply(plan, store, conn)
    assert report.ok and ops_log(stock_path)[op.id] == 1
    assert stock_of(stock_path)[("oslo", "SKU-006")] == qty + 2


def test_connection_dropped_after_write_is_verified_or_in_doubt(store: SQLiteStateStore, stock_path: Path, adopted) -> None:
    qty = adopted[("tromso", "SKU-007")]
    op = adjust("shop", "tromso", "SKU-007", qty, qty, qty + 1)
    plan = make_plan([op], lineage=store.lineage(), serial=store.serial(), plan_id="p2")
    report = _apply(plan, store, connector("shop", stock_path, drop_items=["SKU-007"], verifiable=True))
    assert report.ok and ops_log(stock_path)[op.id] == 1
    op2 = adjust("shop", "tromso", "SKU-008", adopted[("tromso", "SKU-008")], adopted[("tromso", "SKU-008")], 0)
    plan2 = make_plan([op2], lineage=store.lineage(), serial=store.serial(), plan_id="p3")
    report2 = _apply(plan2, store, connector("shop", stock_path, drop_items=["SKU-008"]))
    assert report2.counts["in_doubt"] == 1 and "connection" in report2.ops[0].note


def test_release_settings_delete_and_move(store: SQLiteStateStore, stock_path: Path, adopted) -> None:
    a, b = adopted[("oslo", "SKU-010")], adopted[("bergen", "SKU-010")]
    ops: list[Operation] = [
        move("shop", "SKU-010", ("oslo", a), ("bergen", b), min(a, 3)),
        settings("shop", "oslo", "SKU-011", adopted[("oslo", "SKU-011")], Settings(reorder_point=4)),
        delete("shop", "bergen", "SKU-012", adopted[("bergen", "SKU-012")]),
        release("shop", "tromso", "SKU-013", adopted[("tromso", "SKU-013")]),
    ]
    plan = make_plan(ops, lineage=store.lineage(), serial=store.serial(), plan_id="p2")
    report = _apply(plan, store, connector("shop", stock_path))
    assert report.ok
    base = store.load_base().positions
    assert base[("shop", "oslo", "SKU-010")].quantity == a - min(a, 3)
    assert base[("shop", "bergen", "SKU-010")].quantity == b + min(a, 3)
    assert base[("shop", "oslo", "SKU-011")].settings == Settings(reorder_point=4)
    assert ("shop", "bergen", "SKU-012") not in base and ("bergen", "SKU-012") not in stock_of(stock_path)
    assert ("shop", "tromso", "SKU-013") not in base
    assert stock_of(stock_path)[("tromso", "SKU-013")] == adopted[("tromso", "SKU-013")]  # vendor untouched
    assert ops[3].id not in ops_log(stock_path)


def test_targets_run_in_parallel_and_scope_is_respected(store: SQLiteStateStore, tmp_path: Path) -> None:
    ops = [reset(t, "oslo", f"I{i}", None, i + 1) for t in ("a", "b", "c") for i in range(6)]
    plan = make_plan(ops, lineage=store.lineage(), serial=0)
    conns = {t: connector(t, tmp_path / f"{t}.sqlite", max_batch=2, delay_s=0.01) for t in ("a", "b", "c")}
    report = apply_plan(plan, store, conns, desired_digest=None, holder="t@h", targets={"a", "b"})
    assert report.counts == {"applied": 12, "failed": 0, "in_doubt": 0, "skipped": 6}
    assert report.plan_status == "partial" and ops_log(tmp_path / "c.sqlite") == {}
    assert [r.op_id for r in report.ops] == [op.id for op in ops]  # reported in plan order
    rest = apply_plan(plan, store, conns, desired_digest=None, holder="t@h")
    assert rest.counts["applied"] == 6 and rest.plan_status == "applied"


def test_dropped_absolute_write_fails_and_is_resent_next_run(store: SQLiteStateStore, stock_path: Path, adopted) -> None:
    op = reset("shop", "bergen", "SKU-014", adopted[("bergen", "SKU-014")], 33)
    plan = make_plan([op], lineage=store.lineage(), serial=store.serial(), plan_id="p2")
    report = _apply(plan, store, connector("shop", stock_path, drop_items=["SKU-014"]))
    assert report.counts["failed"] == 1 and "sends it again" in (report.ops[0].error or "")
    again = _apply(plan, store, connector("shop", stock_path))
    assert again.ok and ops_log(stock_path)[op.id] == 2
    assert store.load_base().positions[("shop", "bergen", "SKU-014")].quantity == 33


def test_another_plans_unsettled_operation_blocks_an_apply_over_its_positions(
    store: SQLiteStateStore, stock_path: Path, adopted
) -> None:
    """Issue 16, point 2: refused before any request, naming the operation and the way out."""
    held = adopted[("oslo", "SKU-001")]
    first = make_plan([adjust("shop", "oslo", "SKU-001", held, held, held + 2)], lineage=store.lineage(),
                      serial=store.serial(), plan_id="first")
    report = _apply(first, store, connector("shop", stock_path, drop_items=["SKU-001"]))
    assert report.outcome == "in_doubt"
    conn = connector("shop", stock_path)
    sent = conn.requests_received()
    over = make_plan([adjust("shop", "oslo", "SKU-001", held + 2, held, held + 4, op_id="again")],
                     lineage=store.lineage(), serial=store.serial(), plan_id="over")
    with pytest.raises(UnsettledOperations) as refused:
        _apply(over, store, conn)
    text = str(refused.value)
    assert "adjust-shop-oslo-SKU-001" in text and "plan first" in text and "reconciler resolve" in text
    assert conn.requests_received() == sent
    resumed = _apply(first, store, conn)  # the plan's own resume is not blocked by its own operations
    assert resumed.outcome == "in_doubt"  # still unverifiable: the user must say
    bergen = adopted[("bergen", "SKU-001")]
    beside = make_plan([adjust("shop", "bergen", "SKU-001", bergen, bergen, bergen + 1, op_id="beside")],
                       lineage=store.lineage(), serial=store.serial(), plan_id="beside")
    assert _apply(beside, store, conn).ok  # another position: not blocked
