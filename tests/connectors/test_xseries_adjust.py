"""X-Series stock adjustments, receipts, the request budget, answer shapes, families and 2026-04 reads,
against the real simulator (in-process, on loopback, and through plan/apply in its own process)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from reconciler.connectors.base import Outcome, Verification
from reconciler.connectors.xseries import XSeriesConnector
from reconciler.errors import ConfigError, PlanError, VendorRejected, VendorUnavailable
from reconciler.model import OpKind
from reconciler.sandbox._core import ServerThread
from reconciler.sandbox._process import SandboxProcess
from reconciler.sandbox.xseries import XSeriesSimulator
from tests.connectors.test_xseries import (
    E2E_ENV, FAST, TOKEN, context, e2e_repo, fixtures, leg, live_stock, op, qty, run, via_consignments,
    write_locations,
)
from tests.connectors.test_xseries import sandbox  # noqa: F401  (the sandbox process fixture)


def adjustments(sim: XSeriesSimulator) -> list[dict[str, Any]]:
    return [dict(r) for r in sim.db.query("SELECT product_id, outlet_id, quantity, reason, custom_reason_id,"
                                          " user_id FROM xs_stock_adjustments ORDER BY version")]


@pytest.fixture
def sim() -> Iterator[XSeriesSimulator]:
    fx = fixtures()
    fx["custom_reasons"] = [{"id": "cr-shrink", "type": "NEGATIVE"}, {"id": "cr-found", "type": "POSITIVE"}]
    s = XSeriesSimulator(token=TOKEN, fixtures=fx, rate_budget=0)
    yield s
    s.close()


def connector(sim: XSeriesSimulator, **options: Any) -> XSeriesConnector:
    return XSeriesConnector(context(**options), transport=sim.wsgi_transport(), retry=FAST)


def test_adjustments_are_stock_adjustments_with_the_default_reason_per_sign(sim: XSeriesSimulator) -> None:
    conn = connector(sim)
    results = run(conn, op(OpKind.ADJUST, "TEE", leg("oslo", 5)), op(OpKind.ADJUST, "TEE", leg("bergen", -3)))
    assert [r.outcome for r in results] == [Outcome.APPLIED, Outcome.APPLIED], results
    assert (qty(sim, "outlet-oslo", "prod-tee"), qty(sim, "outlet-bergen", "prod-tee")) == (15, 1)
    rows = adjustments(sim)
    assert [(r["quantity"], r["reason"]) for r in rows] == [("+5", "STOCK_FOUND"), ("-3", "DAMAGE")]
    # each operation keeps its own adjustment from the call's answer
    assert [json.loads(r.response)["data"]["quantity"] for r in results] == ["+5", "-3"]
    assert sim.request_counts["POST /api/2026-01/stock_adjustments"] == 1  # one call for both
    assert not sim.db.query("SELECT * FROM xs_consignments")  # no fake supplier order for a correction


def test_reasons_are_configurable_per_sign_and_per_location(sim: XSeriesSimulator) -> None:
    reasons = {"increase": "CUSTOM:cr-found", "decrease": "THEFT", "locations": {"bergen": {"decrease": "CUSTOM:cr-shrink"}}}
    conn = connector(sim, adjust_reasons=reasons)
    run(conn, op(OpKind.ADJUST, "TEE", leg("oslo", 1)), op(OpKind.ADJUST, "CAP", leg("oslo", -1)),
        op(OpKind.ADJUST, "TEE", leg("bergen", -2)))
    assert [(r["reason"], r["custom_reason_id"]) for r in adjustments(sim)] == [
        ("CUSTOM", "cr-found"), ("THEFT", None), ("CUSTOM", "cr-shrink")]
    estimate = conn.estimate([op(OpKind.ADJUST, "TEE", leg("bergen", -2))])
    assert "bergen: - CUSTOM:cr-shrink" in estimate.notes[0] and "+ CUSTOM:cr-found" in estimate.notes[0]


@pytest.mark.parametrize("reasons", [{"increase": "DAMAGE"}, {"decrease": "STOCK_FOUND"}, {"decrease": "SHRUG"},
                                     {"increase": "CUSTOM:"}, {"sideways": "THEFT"}])
def test_a_reason_of_the_wrong_sign_or_unknown_is_a_config_error(sim: XSeriesSimulator, reasons: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as info:
        connector(sim, adjust_reasons=reasons)
    assert "adjust_reasons" in str(info.value)


def test_receipt_and_return_reasons_use_supplier_and_return_orders(sim: XSeriesSimulator) -> None:
    conn = connector(sim, adjust_reasons={"increase": "receipt", "decrease": "return"}, supplier_id="sup-1")
    results = run(conn, op(OpKind.ADJUST, "TEE", leg("oslo", 4), op_id="op-in"),
                  op(OpKind.ADJUST, "CAP", leg("oslo", -2), op_id="op-out"))
    assert [r.outcome for r in results] == [Outcome.APPLIED, Outcome.APPLIED], results
    rows = {r["reference"]: dict(r) for r in sim.db.query("SELECT reference, type, status, supplier_id FROM xs_consignments")}
    assert rows["op-in"] == {"reference": "op-in", "type": "SUPPLIER", "status": "RECEIVED", "supplier_id": "sup-1"}
    assert rows["op-out"]["type"] == "RETURN" and rows["op-out"]["status"] == "SENT"
    assert (qty(sim, "outlet-oslo", "prod-tee"), qty(sim, "outlet-oslo", "prod-cap")) == (14, 1)
    assert not adjustments(sim)


@pytest.mark.parametrize("open_line_received", ["drop", "reject", "dispatch"])
@pytest.mark.parametrize("partial_status_put", ["reject", "accept"])
def test_the_consignment_path_works_whatever_the_undocumented_behaviour(open_line_received: str,
                                                                        partial_status_put: str) -> None:
    sim = XSeriesSimulator(token=TOKEN, fixtures=fixtures(), rate_budget=0, open_line_received=open_line_received,
                           partial_status_put=partial_status_put)
    try:
        conn = via_consignments(connector(sim))
        results = run(conn, op(OpKind.ADJUST, "TEE", leg("oslo", 5)), op(OpKind.ADJUST, "CAP", leg("oslo", -1)),
                      op(OpKind.MOVE, "TEE", leg("oslo", -2), leg("bergen", 2)))
        assert all(r.outcome is Outcome.APPLIED for r in results), results
        assert (qty(sim, "outlet-oslo", "prod-tee"), qty(sim, "outlet-bergen", "prod-tee")) == (13, 6)
        assert qty(sim, "outlet-oslo", "prod-cap") == 2
    finally:
        sim.close()


def test_ten_thousand_adjustments_at_one_outlet_take_a_few_dozen_requests() -> None:
    items = [f"p{i}" for i in range(10_000)]
    fx = {"locations": [{"id": "outlet-oslo"}], "items": [{"id": p} for p in items],
          "stock": [{"location": "outlet-oslo", "item": p, "quantity": 5} for p in items]}
    sim = XSeriesSimulator(token=TOKEN, fixtures=fx, rate_budget=0)
    try:
        ctx = context()
        ctx = type(ctx)(**{**ctx.__dict__, "item_ids": {p: p for p in items}, "location_ids": {"oslo": "outlet-oslo"}})
        conn = XSeriesConnector(ctx, transport=sim.wsgi_transport(), retry=FAST)
        ops = [op(OpKind.ADJUST, p, leg("oslo", 1 if i % 2 else -1)) for i, p in enumerate(items)]
        estimate = conn.estimate(ops)
        assert estimate.requests == 11 and estimate.seconds == 0  # one cursor read, then 10 calls of 1000
        results = run(conn, *ops)
        assert all(r.outcome is Outcome.APPLIED for r in results)
        assert sum(sim.request_counts.values()) == estimate.requests
        assert len(adjustments(sim)) == 10_000
    finally:
        sim.close()


def test_the_estimate_shows_what_the_consignment_path_costs_in_time(sim: XSeriesSimulator) -> None:
    conn = via_consignments(connector(sim))
    ops = [op(OpKind.ADJUST, "TEE", leg("oslo", 1), op_id=f"op{i}") for i in range(1000)]
    estimate = conn.estimate(ops)
    assert estimate.requests == 5000  # OPEN, line, SENT, received, RECEIVED
    assert estimate.seconds == 14 * 300  # 350 a window: the 15th window starts after 14 full ones
    assert "4.2 h" not in estimate.describe("xs") and "70 min" in estimate.describe("xs")


# --- lost and unreadable answers ---------------------------------------------------------------


@pytest.mark.parametrize("status", [502, 504])
def test_a_committed_call_answered_502_or_504_is_verified_by_the_listing_and_not_resent(
        sim: XSeriesSimulator, status: int) -> None:
    with ServerThread(sim) as server:
        conn = XSeriesConnector(context(server.url), retry=FAST)
        batch = [op(OpKind.ADJUST, "TEE", leg("oslo", 3)), op(OpKind.ADJUST, "CAP", leg("oslo", -1))]
        sim.faults.update({"error_next_writes": 1, "error_after_write_status": status})
        with pytest.raises(VendorUnavailable) as info:
            conn.execute(batch)
        assert info.value.in_doubt
        assert [conn.verify(o) for o in batch] == [Verification.APPLIED, Verification.APPLIED]
        assert len(adjustments(sim)) == 2 and sim.request_counts["POST /api/2026-01/stock_adjustments"] == 1
        assert (qty(sim, "outlet-oslo", "prod-tee"), qty(sim, "outlet-oslo", "prod-cap")) == (13, 2)
        conn.close()


@pytest.mark.parametrize("kind", ["receipt", "move"])
@pytest.mark.parametrize("step", ["create", "SENT", "received", "RECEIVED"])
def test_a_consignment_step_committed_then_answered_502_is_verified_by_reference_never_doubled(
        sim: XSeriesSimulator, kind: str, step: str) -> None:
    with ServerThread(sim) as server:
        conn = via_consignments(XSeriesConnector(context(server.url), retry=FAST))
        if kind == "receipt":
            operation, expected = op(OpKind.ADJUST, "TEE", leg("oslo", 3), op_id="op-r"), (13, 4)
        else:
            operation, expected = op(OpKind.MOVE, "TEE", leg("oslo", -3), leg("bergen", 3), op_id="op-m"), (7, 7)
        original = conn.http.request

        def fail_at(method: str, path: str, **kw: Any) -> httpx.Response:
            body = kw.get("json") or {}
            hit = (step == "create" and method == "POST" and path.endswith("/consignments")) or \
                  (step == "received" and "received" in body) or body.get("status") == step
            if hit:
                sim.faults.update({"error_next_writes": 1})
            return original(method, path, **kw)

        conn.http.request = fail_at  # type: ignore[method-assign]
        try:
            conn.execute([operation])
        except VendorUnavailable as exc:
            assert exc.in_doubt
            verdict = conn.verify(operation)
            assert verdict is (Verification.APPLIED if step == "RECEIVED" else Verification.NOT_APPLIED)
            if verdict is Verification.NOT_APPLIED:  # cancelled: nothing moved, so it is sent again
                assert (qty(sim, "outlet-oslo", "prod-tee"), qty(sim, "outlet-bergen", "prod-tee")) == (10, 4)
                conn.http.request = original  # type: ignore[method-assign]
                [again] = conn.execute([operation])
                assert again.outcome is Outcome.APPLIED
        else:
            assert step == "received"  # a line PUT sets the value: idempotent, so the 502 was retried
        assert (qty(sim, "outlet-oslo", "prod-tee"), qty(sim, "outlet-bergen", "prod-tee")) == expected
        conn.close()


def test_a_second_equal_adjustment_after_the_cursor_makes_it_in_doubt(sim: XSeriesSimulator) -> None:
    conn = connector(sim)
    adjust = op(OpKind.ADJUST, "TEE", leg("oslo", 3))
    original = conn.http.request

    def twin_then_lost(method: str, path: str, **kw: Any) -> httpx.Response:
        if method == "POST":
            original(method, path, **kw)  # someone with the same token made the same adjustment
            sim.faults.update({"error_next_writes": 1})
        return original(method, path, **kw)

    conn.http.request = twin_then_lost  # type: ignore[method-assign]
    with pytest.raises(VendorUnavailable):
        conn.execute([adjust])
    assert conn.verify(adjust) is Verification.UNKNOWN


def test_an_equal_adjustment_by_another_user_does_not_count(sim: XSeriesSimulator) -> None:
    conn = connector(sim)
    adjust = op(OpKind.ADJUST, "TEE", leg("oslo", 3))
    original = conn.http.request

    def other_user_then_lost(method: str, path: str, **kw: Any) -> httpx.Response:
        if method == "POST":
            with sim.db.transaction() as db:
                item = {"product_id": "prod-tee", "outlet_id": "outlet-oslo", "quantity": "+3", "reason": "STOCK_FOUND"}
                sim.adjustments.record(db, item, "a-cashier", sim.now())
            sim.faults.update({"error_next_writes": 1})
        return original(method, path, **kw)

    conn.http.request = other_user_then_lost  # type: ignore[method-assign]
    with pytest.raises(VendorUnavailable):
        conn.execute([adjust])
    assert conn.verify(adjust) is Verification.APPLIED


def test_after_a_crash_without_the_cursor_no_match_means_not_applied(sim: XSeriesSimulator) -> None:
    adjust = op(OpKind.ADJUST, "TEE", leg("oslo", 3))
    assert connector(sim).verify(adjust) is Verification.NOT_APPLIED
    run(connector(sim), adjust)
    assert connector(sim).verify(adjust) is Verification.UNKNOWN  # a fresh process cannot tell it from an old one


def test_after_a_crash_the_plans_cursor_tells_this_apply_from_an_older_equal_adjustment(sim: XSeriesSimulator) -> None:
    adjust = op(OpKind.ADJUST, "TEE", leg("oslo", 3))
    run(connector(sim), adjust)  # an earlier apply made the same adjustment
    planner = connector(sim)
    planner.read_stock()
    mark = planner.mark([adjust], {})
    assert mark is not None and json.loads(mark)["adjustments_after"] > 0
    assert planner.mark([], {}) is None  # nothing to adjust: no cursor read
    fresh = connector(sim)  # the process that will send
    fresh.resume_from(mark)
    assert fresh.verify(adjust) is Verification.NOT_APPLIED
    run(fresh, adjust)
    after_crash = connector(sim)  # the process that sent was killed; a new one resumes
    after_crash.resume_from(mark)
    assert after_crash.verify(adjust) is Verification.APPLIED


def test_the_apply_records_the_reasons_the_plan_showed(sim: XSeriesSimulator) -> None:
    planner = connector(sim, adjust_reasons={"decrease": "THEFT"})
    planner.read_stock()
    applier = connector(sim, adjust_reasons={"decrease": "EXPIRY"})  # reconciler.yaml changed since the plan
    decrease = op(OpKind.ADJUST, "TEE", leg("oslo", -1))
    applier.resume_from(planner.mark([decrease], {}))
    run(applier, decrease)
    assert [r["reason"] for r in adjustments(sim)] == ["THEFT"]


def test_reasons_per_stock_file_are_chosen_at_plan_time_and_kept_in_the_plan(sim: XSeriesSimulator) -> None:
    reasons = {"decrease": "DAMAGE", "files": {"stock/shrinkage.yaml": {"decrease": "THEFT"},
                                               "stock/found.yaml": {"increase": "receipt"}}}
    planner = connector(sim, adjust_reasons=reasons)
    planner.read_stock()
    ops = [op(OpKind.ADJUST, "TEE", leg("oslo", -1), op_id="a"), op(OpKind.ADJUST, "CAP", leg("oslo", -1), op_id="b"),
           op(OpKind.ADJUST, "TEE", leg("bergen", 2), op_id="c")]
    mark = planner.mark(ops, {"a": "stock/oslo.yaml", "b": "stock/shrinkage.yaml", "c": "stock/found.yaml"})
    assert json.loads(mark or "{}")["operations"] == {"b": "THEFT", "c": "receipt"}
    note = planner.estimate(ops).notes[0]
    assert "stock/shrinkage.yaml: - THEFT" in note and "found.yaml" not in note  # c is a receipt, not an adjustment
    applier = connector(sim)  # reconciler.yaml lost the file overrides since the plan
    applier.resume_from(mark)
    assert all(r.outcome is Outcome.APPLIED for r in run(applier, *ops))
    assert [r["reason"] for r in adjustments(sim)] == ["DAMAGE", "THEFT"]
    assert [dict(r) for r in sim.db.query("SELECT type, status FROM xs_consignments")] == [
        {"type": "SUPPLIER", "status": "RECEIVED"}]


def answering(sim: XSeriesSimulator, path_part: str, body: bytes, status: int = 200) -> httpx.MockTransport:
    """The simulator, but writes to ``path_part`` are committed and then answered with ``body``."""
    inner = httpx.Client(transport=sim.wsgi_transport(), base_url="http://127.0.0.1")

    def handle(request: httpx.Request) -> httpx.Response:
        response = inner.send(inner.build_request(request.method, str(request.url), headers=request.headers,
                                                  content=request.content))
        if request.method != "GET" and path_part in request.url.path:
            return httpx.Response(status, content=body, headers={"content-type": "application/json"})
        return httpx.Response(response.status_code, content=response.content, headers=response.headers)

    return httpx.MockTransport(handle)


@pytest.mark.parametrize("body", [b'{"error": "Something went wrong"}', b'{"data": []}', b'<html>login</html>'])
def test_an_adjustment_2xx_that_is_not_the_documented_answer_is_in_doubt_verbatim(sim: XSeriesSimulator,
                                                                                  body: bytes) -> None:
    conn = XSeriesConnector(context(), transport=answering(sim, "stock_adjustments", body), retry=FAST)
    [result] = run(conn, op(OpKind.ADJUST, "TEE", leg("oslo", 2)))
    assert result.outcome is Outcome.IN_DOUBT and result.response == body.decode()
    assert "matching adjustment" in (result.error or "")


@pytest.mark.parametrize("body", [b'{"error": "Product is locked"}', b'{"ok": true}', b"<html>login</html>"])
def test_a_product_put_2xx_that_is_not_the_documented_answer_fails_verbatim(sim: XSeriesSimulator, body: bytes) -> None:
    conn = XSeriesConnector(context(), transport=answering(sim, "/api/2.1/products", body), retry=FAST)
    [result] = run(conn, op(OpKind.RESET, "TEE", leg("oslo", 2, expected=12, actual=10)))
    assert result.outcome is Outcome.FAILED and result.response == body.decode()
    [deleted] = run(conn, op(OpKind.DELETE, "CAP", leg("oslo")))
    assert deleted.outcome is Outcome.FAILED and deleted.response == body.decode()


def test_a_consignment_status_answer_that_is_not_the_documented_one_is_in_doubt(sim: XSeriesSimulator) -> None:
    conn = via_consignments(XSeriesConnector(context(), transport=answering(sim, "/consignments/", b'{"error":"x"}'),
                                             retry=FAST))
    with pytest.raises(VendorUnavailable) as info:
        conn.execute([op(OpKind.ADJUST, "TEE", leg("oslo", 2), op_id="op-odd")])
    assert info.value.in_doubt and info.value.body == '{"error":"x"}'


# --- 2026-04 reads, negative levels, families -------------------------------------------------------


def test_2026_04_reads_through_post_inventory_and_levels_are_read_as_they_are(sim: XSeriesSimulator) -> None:
    sim.db.execute("UPDATE xs_inventory SET current_amount = -4 WHERE product_id = 'prod-cap'")  # owed to a fulfilment
    old, new = connector(sim), connector(sim, inventory_api_version="2026-04")
    assert new.read_stock() == old.read_stock()
    assert new.read_stock()[("oslo", "CAP")].quantity == -4
    assert sim.request_counts["POST /api/2026-04/inventory"] >= 2
    assert new.live_amounts("prod-tee") == old.live_amounts("prod-tee") == {"outlet-oslo": 10, "outlet-bergen": 4,
                                                                            "outlet-unmapped": 99}
    run(new, op(OpKind.DELETE, "CAP", leg("oslo")))  # deleted rows come back with include_deleted: dropped
    assert ("oslo", "CAP") not in new.read_stock()


def test_an_end_of_life_version_is_a_clear_error_naming_the_option() -> None:
    sim = XSeriesSimulator(token=TOKEN, fixtures=fixtures(), rate_budget=0, oldest_version="2026-04")
    try:
        with pytest.raises(VendorRejected) as info:
            connector(sim).read_stock()
        assert info.value.status == 405 and "inventory_api_version to 2026-04" in (info.value.hint or "")
        assert connector(sim, inventory_api_version="2026-04").read_stock()[("oslo", "TEE")].quantity == 10
    finally:
        sim.close()


def test_a_version_before_2026_01_is_a_config_error(sim: XSeriesSimulator) -> None:
    with pytest.raises(ConfigError, match="inventory_api_version"):
        connector(sim, inventory_api_version="2025-10")


def family_sim() -> XSeriesSimulator:
    fx = fixtures()
    fx["items"] += [{"id": "tee-parent"}, {"id": "tee-s", "variant_parent_id": "tee-parent"},
                    {"id": "tee-m", "variant_parent_id": "tee-parent"}]
    fx["stock"] += [{"location": "outlet-oslo", "item": "tee-s", "quantity": 2},
                    {"location": "outlet-oslo", "item": "tee-m", "quantity": 3}]
    return XSeriesSimulator(token=TOKEN, fixtures=fx, rate_budget=0)


def test_deleting_one_variant_while_its_family_stays_managed_is_refused() -> None:
    sim = family_sim()
    try:
        ctx = context()
        ctx = type(ctx)(**{**ctx.__dict__, "item_ids": {"TEE-S": "tee-s", "TEE-M": "tee-m", "CAP": "prod-cap"}})
        conn = XSeriesConnector(ctx, transport=sim.wsgi_transport(), retry=FAST)
        delete_s, delete_m = op(OpKind.DELETE, "TEE-S", leg("oslo")), op(OpKind.DELETE, "TEE-M", leg("oslo"))
        [problem] = conn.plan_problems([delete_s], kept={("oslo", "TEE-M"), ("oslo", "CAP")})
        assert "TEE-M at oslo" in problem.message and "family" in problem.message
        assert conn.plan_problems([delete_s, delete_m], kept={("oslo", "CAP")}) == []
        # what the check protects against: the vendor stops tracking the whole family
        run(conn, delete_s)
        assert ("outlet-oslo", "tee-m") not in {(r["location"], r["item"]) for r in sim.inspect_stock()}
    finally:
        sim.close()


# --- end to end: plan/apply against the sandbox in its own process --------------------------------


@pytest.mark.parametrize("via", ["stock_adjustments", "consignments"])
@pytest.mark.parametrize("status", [502, 504])
def test_e2e_commit_then_gateway_error_never_doubles_a_unit(tmp_path: Path, sandbox: SandboxProcess,
                                                           monkeypatch: pytest.MonkeyPatch, via: str, status: int) -> None:
    from reconciler.workflow import apply_saved_plan, plan_project

    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    repo = e2e_repo(tmp_path / "repo", sandbox.url)
    config = repo / "reconciler.yaml"
    config.write_text(config.read_text() + f"    options: {{adjust_via: {via}}}\n")
    assert apply_saved_plan(repo, plan_project(repo, env=E2E_ENV), env=E2E_ENV).ok
    write_locations(repo, {"TEE": 13, "CAP": 1}, {"TEE": 4, "MUG": 2})
    edit = plan_project(repo, env=E2E_ENV)
    assert sorted((op.kind, op.item, op.legs[0].change) for op in edit.changes) == [
        (OpKind.ADJUST, "CAP", -2), (OpKind.ADJUST, "TEE", 3)]
    assert any("the apply needs about" in note for note in edit.notes)
    from reconciler.render import render

    for fmt in ("text", "markdown"):  # the plan shows the cost and the reasons recorded
        shown = render(edit, fmt, color=False)
        assert "xs: the apply needs about" in shown
        if via == "stock_adjustments":
            assert "reason + STOCK_FOUND; - DAMAGE" in shown
    # every write of the apply is committed, then answered with the gateway error
    httpx.put(sandbox.url + "/_sandbox/faults", json={"error_next_writes": 100, "error_after_write_status": status})
    report = apply_saved_plan(repo, edit, env=E2E_ENV)
    httpx.put(sandbox.url + "/_sandbox/faults", json={"error_next_writes": 0})
    live = live_stock(sandbox)
    if via == "stock_adjustments":  # one call, verified by the listing: applied, exactly once
        assert [r.status for r in report.ops] == ["applied", "applied"], [(r.status, r.error) for r in report.ops]
        assert (live[("outlet-oslo", "prod-tee")], live[("outlet-oslo", "prod-cap")]) == (13, 1)
    else:  # the create is answered 502: found by reference, cancelled, shown not applied: nothing moved
        assert [r.status for r in report.ops] == ["failed", "failed"]
        assert all("not applied" in (r.error or "") for r in report.ops)
        assert (live[("outlet-oslo", "prod-tee")], live[("outlet-oslo", "prod-cap")]) == (10, 3)
        assert apply_saved_plan(repo, plan_project(repo, env=E2E_ENV), env=E2E_ENV).ok
        live = live_stock(sandbox)
        assert (live[("outlet-oslo", "prod-tee")], live[("outlet-oslo", "prod-cap")]) == (13, 1)
    assert not plan_project(repo, env=E2E_ENV).has_changes


def test_e2e_the_plan_refuses_to_prune_one_variant_of_a_managed_family(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.workflow import apply_saved_plan, plan_project

    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    fx = fixtures()
    fx["items"] += [{"id": "tee-parent"}, {"id": "tee-s", "variant_parent_id": "tee-parent"},
                    {"id": "tee-m", "variant_parent_id": "tee-parent"}]
    path = tmp_path / "fx.json"
    path.write_text(json.dumps(fx))
    with SandboxProcess("xseries", state=tmp_path / "xs.db", fixtures_path=path, token=TOKEN) as sb:
        repo = e2e_repo(tmp_path / "repo", sb.url)
        config = repo / "reconciler.yaml"
        config.write_text(config.read_text() + "    prune: true\n")
        (repo / "stock" / "catalog.yaml").write_text(textwrap.dedent("""\
            items:
              TEE-S: {ids: {xs: tee-s}}
              TEE-M: {ids: {xs: tee-m}}
            """))
        write_locations(repo, {"TEE-S": 2, "TEE-M": 3}, {})
        assert apply_saved_plan(repo, plan_project(repo, env=E2E_ENV), env=E2E_ENV).ok
        write_locations(repo, {"TEE-M": 3}, {})
        with pytest.raises(PlanError, match="TEE-M at oslo"):
            plan_project(repo, env=E2E_ENV, guard_overrides={"allow_mass_delete": True})
        write_locations(repo, {}, {})
        plan = plan_project(repo, env=E2E_ENV, guard_overrides={"allow_mass_delete": True, "allow_missing_location": True})
        assert sorted(op.item for op in plan.changes if op.kind is OpKind.DELETE) == ["TEE-M", "TEE-S"]


def test_e2e_a_token_without_inventory_write_is_told_at_plan_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.workflow import apply_saved_plan, plan_project

    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    path = tmp_path / "fx.json"
    path.write_text(json.dumps(fixtures()))
    scopes = "inventory:read products:read products:write consignments:read consignments:write:stock_order " \
             "consignments:write:stock_transfer"
    with SandboxProcess("xseries", state=tmp_path / "xs.db", fixtures_path=path, token=TOKEN,
                        options={"scopes": scopes}) as sb:
        repo = e2e_repo(tmp_path / "repo", sb.url)
        assert apply_saved_plan(repo, plan_project(repo, env=E2E_ENV), env=E2E_ENV).ok  # adopting: resets only
        write_locations(repo, {"TEE": 12, "CAP": 3}, {"TEE": 4, "MUG": 2})
        with pytest.raises(PlanError, match="inventory:write") as info:
            plan_project(repo, env=E2E_ENV)
        assert "adjust_via: consignments" in (info.value.hint or "")
        config = repo / "reconciler.yaml"
        config.write_text(config.read_text() + "    options: {adjust_via: consignments}\n")
        assert apply_saved_plan(repo, plan_project(repo, env=E2E_ENV), env=E2E_ENV).ok
        assert live_stock(sb)[("outlet-oslo", "prod-tee")] == 12


def test_e2e_a_stock_files_reason_is_shown_and_sent(tmp_path: Path, sandbox: SandboxProcess,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.render import render
    from reconciler.workflow import apply_saved_plan, plan_project

    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    repo = e2e_repo(tmp_path / "repo", sandbox.url)
    config = repo / "reconciler.yaml"
    config.write_text(config.read_text() + "    options: {adjust_reasons: {files: {stock/oslo.yaml: {decrease: THEFT}}}}\n")
    assert apply_saved_plan(repo, plan_project(repo, env=E2E_ENV), env=E2E_ENV).ok
    write_locations(repo, {"TEE": 10, "CAP": 1}, {"TEE": 3, "MUG": 2})
    edit = plan_project(repo, env=E2E_ENV)
    assert "stock/oslo.yaml: - THEFT" in render(edit, "text")
    assert apply_saved_plan(repo, edit, env=E2E_ENV).ok
    listed = httpx.get(sandbox.url + "/api/2026-01/stock_adjustments", headers={"Authorization": f"Bearer {TOKEN}"})
    reasons = {(a["outlet_id"], a["reason"]) for a in listed.json()["data"]}
    assert reasons == {("outlet-oslo", "THEFT"), ("outlet-bergen", "DAMAGE")}
