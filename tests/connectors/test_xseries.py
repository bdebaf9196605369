"""The X-Series connector against the real X-Series simulator (in-process and on loopback).

Stock is checked through the simulator's TEST-ONLY inspection, never through the connector.
"""

from __future__ import annotations

import dataclasses
import json
import math
import textwrap
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import yaml

from reconciler.connectors._http import RetryPolicy
from reconciler.connectors.base import Outcome, Secret, TargetContext, Verification
from reconciler.connectors.xseries import XSeriesConnector
from reconciler.errors import InsecureTransportError, VendorRejected, VendorUnavailable
from reconciler.model import Leg, OpKind, Operation, Record, Settings
from reconciler.sandbox._core import ServerThread
from reconciler.sandbox._process import SandboxProcess
from reconciler.sandbox.xseries import XSeriesSimulator

TOKEN = "xs-test-token-abc123"
OUTLETS = {"oslo": "outlet-oslo", "bergen": "outlet-bergen"}
PRODUCTS = {"TEE": "prod-tee", "CAP": "prod-cap", "MUG": "prod-mug"}
FAST = RetryPolicy(max_attempts=4, base=0.01, max_wait=5.0, jitter=0.0)


def fixtures() -> dict[str, Any]:
    return {
        "locations": [{"id": "outlet-oslo"}, {"id": "outlet-bergen"}, {"id": "outlet-unmapped"}],
        "items": [{"id": p} for p in [*PRODUCTS.values(), "prod-unmapped"]],
        "stock": [
            {"location": "outlet-oslo", "item": "prod-tee", "quantity": 10, "reorder_point": 5, "reorder_amount": 20},
            {"location": "outlet-bergen", "item": "prod-tee", "quantity": 4},
            {"location": "outlet-oslo", "item": "prod-cap", "quantity": 3},
            {"location": "outlet-unmapped", "item": "prod-tee", "quantity": 99},
            {"location": "outlet-oslo", "item": "prod-unmapped", "quantity": 99},
        ],
    }


def context(base_url: str = "http://127.0.0.1", **options: Any) -> TargetContext:
    return TargetContext(
        name="xs", kind="xseries", base_url=base_url, credential=Secret(TOKEN),
        location_ids=OUTLETS, item_ids=PRODUCTS, options=options,
    )


@pytest.fixture
def sim() -> Iterator[XSeriesSimulator]:
    s = XSeriesSimulator(token=TOKEN, fixtures=fixtures(), rate_budget=0)
    yield s
    s.close()


@pytest.fixture
def served(sim: XSeriesSimulator) -> Iterator[XSeriesConnector]:
    """Over a real loopback socket: a dropped connection is a real transport error."""
    with ServerThread(sim) as server:
        c = XSeriesConnector(context(server.url, page_size=2), retry=FAST)
        yield c
        c.close()


@pytest.fixture
def conn(sim: XSeriesSimulator) -> Iterator[XSeriesConnector]:
    c = XSeriesConnector(context(page_size=2), transport=sim.wsgi_transport(), retry=FAST)
    yield c
    c.close()


def via_consignments(conn: XSeriesConnector) -> XSeriesConnector:
    """The consignment path (options adjust_via: consignments) on an existing connector."""
    conn.options = dataclasses.replace(conn.options, adjust_via="consignments")
    return conn


def leg(loc: str, change: int = 0, expected: int | None = None, actual: int | None = None) -> Leg:
    return Leg(loc, actual, None, expected, change, expected)


def op(kind: OpKind, item: str, *legs: Leg, op_id: str | None = None, settings: Settings | None = None) -> Operation:
    mode = "delta" if kind in (OpKind.ADJUST, OpKind.MOVE) else "absolute"
    return Operation(op_id or f"{kind.value}-{item}-{legs[0].location}", kind, "xs", item, legs, "test",
                     settings_after=settings, write_mode=mode)


def stock(sim: XSeriesSimulator) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["location"], r["item"]): r for r in sim.inspect_stock()}


def qty(sim: XSeriesSimulator, outlet: str, product: str) -> int:
    return stock(sim)[(outlet, product)]["quantity"]


def run(conn: XSeriesConnector, *ops: Operation) -> list:
    results = []
    for batch in conn.batches(list(ops)):
        results.extend(conn.execute(batch))
    return results


# --- read -------------------------------------------------------------------------------------


def test_read_pages_through_the_version_cursor_and_maps_ids(sim: XSeriesSimulator, conn: XSeriesConnector) -> None:
    live = conn.read_stock()
    assert live == {
        ("oslo", "TEE"): Record(10, Settings(reorder_point=5, reorder_amount=20)),
        ("bergen", "TEE"): Record(4),
        ("oslo", "CAP"): Record(3),
    }
    # 5 records at page_size 2: three full or partial pages and the empty page that ends it
    assert sim.request_counts["GET /api/2026-01/inventory"] == 4


def test_read_skips_records_of_products_no_longer_tracked(sim: XSeriesSimulator, conn: XSeriesConnector) -> None:
    [result] = run(conn, op(OpKind.DELETE, "CAP", leg("oslo")))
    assert result.outcome is Outcome.APPLIED
    assert ("oslo", "CAP") not in conn.read_stock()
    assert ("outlet-oslo", "prod-cap") not in stock(sim)


# --- each operation kind ----------------------------------------------------------------------


def test_resets_of_one_product_share_one_put(sim: XSeriesSimulator, conn: XSeriesConnector) -> None:
    ops = [op(OpKind.RESET, "TEE", leg("oslo", expected=7)), op(OpKind.RESET, "CAP", leg("oslo", expected=1)),
           op(OpKind.RESET, "TEE", leg("bergen", expected=12))]
    assert [len(b) for b in conn.batches(ops)] == [2, 1]
    results = run(conn, *ops)
    assert [r.outcome for r in results] == [Outcome.APPLIED] * 3
    assert sim.request_counts["PUT /api/2.1/products/prod-tee"] == 1
    assert (qty(sim, "outlet-oslo", "prod-tee"), qty(sim, "outlet-bergen", "prod-tee")) == (7, 12)
    assert qty(sim, "outlet-oslo", "prod-cap") == 1
    assert results[0].actual_after == {"oslo": 7}
    # the reorder values were not written, so the vendor kept them (no null was sent)
    assert stock(sim)[("outlet-oslo", "prod-tee")]["reorder_point"] == 5


def test_a_reset_never_jumps_over_a_delta_on_the_same_product(conn: XSeriesConnector) -> None:
    ops = [op(OpKind.RESET, "TEE", leg("oslo", expected=7)), op(OpKind.ADJUST, "TEE", leg("bergen", 2)),
           op(OpKind.RESET, "TEE", leg("bergen", expected=1))]
    assert [[o.id for o in b] for b in conn.batches(ops)] == [[ops[0].id], [ops[1].id], [ops[2].id]]


def test_adjust_up_is_a_received_supplier_consignment(sim: XSeriesSimulator, conn: XSeriesConnector) -> None:
    via_consignments(conn)
    [result] = run(conn, op(OpKind.ADJUST, "TEE", leg("oslo", 5), op_id="op-up"))
    assert result.outcome is Outcome.APPLIED, result.error
    assert qty(sim, "outlet-oslo", "prod-tee") == 15
    [row] = sim.db.query("SELECT type, status, reference FROM xs_consignments")
    assert dict(row) == {"type": "SUPPLIER", "status": "RECEIVED", "reference": "op-up"}


def test_adjust_down_is_a_sent_return(sim: XSeriesSimulator, conn: XSeriesConnector) -> None:
    via_consignments(conn)
    [result] = run(conn, op(OpKind.ADJUST, "TEE", leg("bergen", -3), op_id="op-down"))
    assert result.outcome is Outcome.APPLIED, result.error
    assert qty(sim, "outlet-bergen", "prod-tee") == 1
    [row] = sim.db.query("SELECT type, status, reference FROM xs_consignments")
    assert dict(row) == {"type": "RETURN", "status": "SENT", "reference": "op-down"}


def test_move_is_a_received_outlet_transfer(sim: XSeriesSimulator, conn: XSeriesConnector) -> None:
    move = op(OpKind.MOVE, "TEE", leg("oslo", -4), leg("bergen", 4), op_id="op-move")
    [result] = run(conn, move)
    assert result.outcome is Outcome.APPLIED, result.error
    assert (qty(sim, "outlet-oslo", "prod-tee"), qty(sim, "outlet-bergen", "prod-tee")) == (6, 8)
    [row] = sim.db.query("SELECT type, status, source_outlet_id, outlet_id FROM xs_consignments")
    assert dict(row) == {"type": "OUTLET", "status": "RECEIVED", "source_outlet_id": "outlet-oslo",
                         "outlet_id": "outlet-bergen"}


def test_settings_keep_the_other_reorder_value_and_the_live_amount(sim: XSeriesSimulator, conn: XSeriesConnector) -> None:
    [result] = run(conn, op(OpKind.SETTINGS, "TEE", leg("oslo"), settings=Settings(reorder_amount=30)))
    assert result.outcome is Outcome.APPLIED, result.error
    record = stock(sim)[("outlet-oslo", "prod-tee")]
    assert (record["quantity"], record["reorder_point"], record["reorder_amount"]) == (10, 5, 30)


def test_a_quantity_only_reset_keeps_both_reorder_values(sim: XSeriesSimulator, conn: XSeriesConnector) -> None:
    run(conn, op(OpKind.RESET, "TEE", leg("oslo", expected=2)))
    record = stock(sim)[("outlet-oslo", "prod-tee")]
    assert (record["quantity"], record["reorder_point"], record["reorder_amount"]) == (2, 5, 20)


def test_the_sandbox_blanks_a_null_which_is_why_none_is_sent(sim: XSeriesSimulator) -> None:
    """Control for the two tests above: the quirk is real, so omitting the key is what saves it."""
    with httpx.Client(transport=sim.wsgi_transport(), base_url="http://127.0.0.1") as client:
        client.put("/api/2.1/products/prod-tee", headers={"Authorization": f"Bearer {TOKEN}"},
                   json={"details": {"inventory": [{"outlet_id": "outlet-oslo", "current_amount": 1,
                                                    "reorder_point": None}]}})
    assert stock(sim)[("outlet-oslo", "prod-tee")]["reorder_point"] == ""


# --- errors, retries, transport -----------------------------------------------------------------


def test_vendor_4xx_reaches_the_result_verbatim_and_no_consignment_is_left(sim: XSeriesSimulator) -> None:
    ctx = TargetContext(name="xs", kind="xseries", base_url="http://127.0.0.1", credential=Secret(TOKEN),
                        location_ids={**OUTLETS, "ghost": "outlet-ghost"}, item_ids=PRODUCTS)
    conn = XSeriesConnector(ctx, transport=sim.wsgi_transport(), retry=FAST)
    ok, reset = run(conn, op(OpKind.RESET, "TEE", leg("oslo", expected=8)), op(OpKind.RESET, "TEE", leg("ghost", expected=3)))
    # the shared PUT was refused as a whole; each position was then sent alone
    assert ok.outcome is Outcome.APPLIED and qty(sim, "outlet-oslo", "prod-tee") == 8
    assert reset.outcome is Outcome.FAILED
    assert reset.error == '{"error":"details.inventory[0].outlet_id outlet-ghost is not an outlet of this store"}'
    [adjust] = run(conn, op(OpKind.ADJUST, "TEE", leg("ghost", 2)))
    assert adjust.outcome is Outcome.FAILED and "outlet-ghost" in (adjust.error or "")
    assert not sim.db.query("SELECT * FROM xs_consignments WHERE status NOT IN ('CANCELLED')"
                            " AND deleted_at IS NULL")


def test_retries_injected_429_and_5xx(sim: XSeriesSimulator, conn: XSeriesConnector) -> None:
    sim.faults.update({"rate_5xx": 0.3, "rate_429": 0.3, "retry_after_s": 0})
    sim.rng.seed(3)
    conn.http.retry = RetryPolicy(max_attempts=20, base=0.0, max_wait=1.0, jitter=0.0)
    results = run(conn, op(OpKind.ADJUST, "TEE", leg("oslo", 2)), op(OpKind.RESET, "CAP", leg("oslo", expected=9)))
    assert [r.outcome for r in results] == [Outcome.APPLIED, Outcome.APPLIED]
    assert qty(sim, "outlet-oslo", "prod-tee") == 12 and qty(sim, "outlet-oslo", "prod-cap") == 9


def test_the_request_budget_waits_for_the_http_date_retry_after() -> None:
    # Whole-second clock: an HTTP date has one-second resolution, so the window must end on a
    # whole second for the Retry-After date to be exact (see the report on rounding).
    sim = XSeriesSimulator(token=TOKEN, fixtures=fixtures(), rate_budget=3, rate_window_s=2.0,
                           clock=lambda: float(math.floor(time.time())))
    with ServerThread(sim) as server:
        conn = XSeriesConnector(context(server.url, page_size=2), retry=RetryPolicy(max_attempts=5, max_wait=5.0))
        started = time.monotonic()
        live = conn.read_stock()  # 4 requests against a budget of 3 per 2 s
        run(conn, op(OpKind.RESET, "TEE", leg("oslo", expected=1)))
        conn.close()
    assert ("oslo", "TEE") in live
    assert time.monotonic() - started >= 0.9  # it waited for the window instead of failing
    assert qty(sim, "outlet-oslo", "prod-tee") == 1
    sim.close()


def test_plain_http_to_a_non_loopback_host_is_refused() -> None:
    with pytest.raises(InsecureTransportError):
        XSeriesConnector(context("http://shop.retail.lightspeed.app"))


def test_the_token_is_never_in_errors(sim: XSeriesSimulator) -> None:
    ctx = context()
    conn = XSeriesConnector(ctx, transport=sim.wsgi_transport(), retry=FAST)
    sim.token = "another-token"
    with pytest.raises(VendorRejected) as info:
        conn.read_stock()
    assert TOKEN not in str(info.value) and "Access token is not valid" in str(info.value)


# --- verify after a crash ----------------------------------------------------------------------


def test_verify_finds_a_consignment_whose_answer_was_lost(sim: XSeriesSimulator, served: XSeriesConnector) -> None:
    conn = via_consignments(served)
    adjust = op(OpKind.ADJUST, "TEE", leg("oslo", 5), op_id="op-crash")
    sim.faults.update({"drop_next_writes": 1})  # the create is committed, its answer lost
    with pytest.raises(VendorUnavailable):
        conn.execute([adjust])
    # the create was committed but its answer lost: nothing moved yet, and verify says so
    assert qty(sim, "outlet-oslo", "prod-tee") == 10
    assert conn.verify(adjust) is Verification.NOT_APPLIED
    [row] = sim.db.query("SELECT status, deleted_at FROM xs_consignments WHERE reference = 'op-crash'")
    assert row["deleted_at"] or row["status"] == "CANCELLED"  # the half-made one cannot double
    sim.faults.update({"drop_next_writes": 0})
    [result] = conn.execute([adjust])
    assert result.outcome is Outcome.APPLIED and qty(sim, "outlet-oslo", "prod-tee") == 15
    assert conn.verify(adjust) is Verification.APPLIED


def test_verify_applied_when_the_last_step_landed(sim: XSeriesSimulator, served: XSeriesConnector) -> None:
    conn = served
    move = op(OpKind.MOVE, "TEE", leg("oslo", -2), leg("bergen", 2), op_id="op-move-crash")
    original = conn.http.request

    def drop_final(method: str, path: str, **kw: Any) -> httpx.Response:
        if (kw.get("json") or {}).get("status") == "RECEIVED":
            sim.faults.update({"drop_next_writes": 1})
        return original(method, path, **kw)

    conn.http.request = drop_final  # type: ignore[method-assign]
    with pytest.raises(VendorUnavailable):
        conn.execute([move])
    conn.http.request = original  # type: ignore[method-assign]
    assert conn.verify(move) is Verification.APPLIED
    assert (qty(sim, "outlet-oslo", "prod-tee"), qty(sim, "outlet-bergen", "prod-tee")) == (8, 6)


def test_verify_cancels_a_sent_transfer_so_the_units_return(sim: XSeriesSimulator, conn: XSeriesConnector) -> None:
    move = op(OpKind.MOVE, "TEE", leg("oslo", -2), leg("bergen", 2), op_id="op-half")
    original = conn.http.request

    def die_before_received(method: str, path: str, **kw: Any) -> httpx.Response:
        if (kw.get("json") or {}).get("status") == "RECEIVED":
            raise VendorUnavailable("simulated crash before RECEIVED")
        return original(method, path, **kw)

    conn.http.request = die_before_received  # type: ignore[method-assign]
    with pytest.raises(VendorUnavailable) as info:
        conn.execute([move])
    assert info.value.in_doubt  # so the applier verifies instead of recording a plain failure
    conn.http.request = original  # type: ignore[method-assign]
    assert qty(sim, "outlet-oslo", "prod-tee") == 8  # the SENT transfer took the units out
    assert conn.verify(move) is Verification.NOT_APPLIED
    assert qty(sim, "outlet-oslo", "prod-tee") == 10  # cancelled: back at the sender


def test_verify_is_unknown_when_the_vendor_cannot_be_asked(sim: XSeriesSimulator, conn: XSeriesConnector) -> None:
    via_consignments(conn)
    sim.faults.update({"rate_5xx": 1.0})
    conn.http.retry = RetryPolicy(max_attempts=2, base=0.0, max_wait=0.0, jitter=0.0)
    assert conn.verify(op(OpKind.ADJUST, "TEE", leg("oslo", 1))) is Verification.UNKNOWN


# --- end to end: a sandbox in its own process, a repository on disk, plan/apply via workflow ------

E2E_ENV = {"E2E_XS_TOKEN": TOKEN}


def e2e_repo(root: Path, url: str, bergen_id: str = "outlet-bergen") -> Path:
    (root / "stock").mkdir(parents=True)
    (root / "reconciler.yaml").write_text(textwrap.dedent(f"""\
        version: 1
        locations: {{oslo: {{}}, bergen: {{}}}}
        targets:
          xs:
            kind: xseries
            url: {url}
            credentials_env: E2E_XS_TOKEN
            locations: {{oslo: outlet-oslo, bergen: "{bergen_id}"}}
        """))
    (root / "stock" / "catalog.yaml").write_text(textwrap.dedent("""\
        items:
          TEE: {ids: {xs: prod-tee}}
          CAP: {ids: {xs: prod-cap}}
          MUG: {ids: {xs: prod-mug}}
        """))
    write_locations(root, {"TEE": 10, "CAP": 3}, {"TEE": 4, "MUG": 2})
    return root


def write_locations(root: Path, oslo: dict[str, Any], bergen: dict[str, Any], strategy: str | None = None) -> None:
    for name, stock_ in (("oslo", oslo), ("bergen", bergen)):
        data: dict[str, Any] = {"location": name, **({"strategy": strategy} if strategy else {}), "stock": {"xs": stock_}}
        (root / "stock" / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxProcess]:
    fx = tmp_path / "fixtures.json"
    fx.write_text(json.dumps(fixtures()))
    with SandboxProcess("xseries", state=tmp_path / "xs.db", fixtures_path=fx, token=TOKEN) as sb:
        yield sb


def live_stock(sb: SandboxProcess) -> dict[tuple[str, str], int]:
    rows = httpx.get(sb.url + "/_sandbox/stock").json()["stock"]
    return {(r["location"], r["item"]): r["quantity"] for r in rows if r["location"] != "outlet-unmapped"
            and r["item"] != "prod-unmapped"}


def test_e2e_plan_apply_edit_sales_and_replace(tmp_path: Path, sandbox: SandboxProcess,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.workflow import apply_saved_plan, plan_project

    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    repo = e2e_repo(tmp_path / "repo", sandbox.url)
    first = plan_project(repo, env=E2E_ENV)
    assert "xs" not in first.unreadable_targets
    assert apply_saved_plan(repo, first, env=E2E_ENV).ok
    assert live_stock(sandbox)[("outlet-bergen", "prod-mug")] == 2
    assert not plan_project(repo, env=E2E_ENV).has_changes

    # an edit: 4 tees move oslo -> bergen (an OUTLET consignment), caps +2 (SUPPLIER), a new reorder amount
    write_locations(repo, {"TEE": {"quantity": 6, "reorder_point": 5, "reorder_amount": 12}, "CAP": 5},
                    {"TEE": 8, "MUG": 2})
    edit = plan_project(repo, env=E2E_ENV)
    assert sorted((op.kind.value, op.item) for op in edit.changes) == [
        ("adjust", "CAP"), ("move", "TEE"), ("settings", "TEE")]
    sold = httpx.post(sandbox.url + "/_sandbox/sell", json={"count": 3}).json()["sold"]
    assert apply_saved_plan(repo, edit, env=E2E_ENV).ok
    expected = {("outlet-oslo", "prod-tee"): 6, ("outlet-oslo", "prod-cap"): 5, ("outlet-bergen", "prod-tee"): 8,
                ("outlet-bergen", "prod-mug"): 2}
    for sale in sold:  # merge: the sales survive the apply
        if (sale["location"], sale["item"]) in expected:
            expected[(sale["location"], sale["item"])] -= 1
    assert live_stock(sandbox) == expected
    record = {(r["location"], r["item"]): r for r in httpx.get(sandbox.url + "/_sandbox/stock").json()["stock"]}
    assert (record[("outlet-oslo", "prod-tee")]["reorder_point"], record[("outlet-oslo", "prod-tee")]["reorder_amount"]) == (5, 12)
    types = {c for c in httpx.get(sandbox.url + "/_sandbox/requests").json() if "consignments" in c}
    assert "POST /api/2.0/consignments" in types

    # replace: every position goes back to D, sales made between plan and apply included
    write_locations(repo, {"TEE": {"quantity": 6, "reorder_point": 5, "reorder_amount": 12}, "CAP": 5},
                    {"TEE": 8, "MUG": 2}, strategy="replace")
    httpx.post(sandbox.url + "/_sandbox/sell", json={"count": 2})
    replace = plan_project(repo, env=E2E_ENV)
    late = httpx.post(sandbox.url + "/_sandbox/sell", json={"count": 2}).json()["sold"]
    assert apply_saved_plan(repo, replace, env=E2E_ENV).ok
    desired = {("outlet-oslo", "prod-tee"): 6, ("outlet-oslo", "prod-cap"): 5,
               ("outlet-bergen", "prod-tee"): 8, ("outlet-bergen", "prod-mug"): 2}
    # A reset lands on D whatever was sold before it; a position at D when planned is not in the
    # plan, so a sale there after the plan stays sold (replace resets what differed at plan time).
    reset = {(f"outlet-{op.location}", f"prod-{op.item.lower()}") for op in replace.changes}
    assert reset and reset <= set(desired)
    for sale in late:
        key = (sale["location"], sale["item"])
        if key in desired and key not in reset:
            desired[key] -= 1
    assert live_stock(sandbox) == desired


def test_e2e_vendor_error_verbatim_beside_its_operation(tmp_path: Path, sandbox: SandboxProcess,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.workflow import apply_saved_plan, plan_project

    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    repo = e2e_repo(tmp_path / "repo", sandbox.url, bergen_id="outlet-ghost")
    report = apply_saved_plan(repo, plan_project(repo, env=E2E_ENV), env=E2E_ENV)
    failed = [o for o in report.ops if o.status == "failed"]
    assert failed and {o.location for o in failed} == {"bergen"}
    for o in failed:
        assert "outlet_id outlet-ghost is not an outlet of this store" in (o.error or "")
        assert TOKEN not in (o.error or "") + o.response
    assert live_stock(sandbox)[("outlet-oslo", "prod-tee")] == 10  # independent operations still ran


def test_e2e_missing_credential_fails_before_any_request(tmp_path: Path, sandbox: SandboxProcess,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.errors import CredentialsError
    from reconciler.workflow import plan_project

    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    monkeypatch.delenv("E2E_XS_TOKEN", raising=False)
    repo = e2e_repo(tmp_path / "repo", sandbox.url)
    with pytest.raises(CredentialsError, match="E2E_XS_TOKEN"):
        plan_project(repo, env={})
    assert httpx.get(sandbox.url + "/_sandbox/requests").json() == {}


def test_e2e_a_dropped_consignment_is_verified_and_never_doubled(tmp_path: Path, sandbox: SandboxProcess,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.workflow import apply_saved_plan, plan_project

    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    repo = e2e_repo(tmp_path / "repo", sandbox.url)
    assert apply_saved_plan(repo, plan_project(repo, env=E2E_ENV), env=E2E_ENV).ok
    write_locations(repo, {"TEE": 10, "CAP": 5}, {"TEE": 4, "MUG": 2})
    edit = plan_project(repo, env=E2E_ENV)
    assert [(op.kind, op.item) for op in edit.changes] == [(OpKind.ADJUST, "CAP")]
    httpx.put(sandbox.url + "/_sandbox/faults", json={"drop_next_writes": 1})  # the adjustment's answer is lost
    report = apply_saved_plan(repo, edit, env=E2E_ENV)
    [cap] = report.ops
    # found after the cursor read before sending: (product, outlet, +2, the token's user), once
    assert cap.status == "applied", cap.error
    assert live_stock(sandbox)[("outlet-oslo", "prod-cap")] == 5
    assert not plan_project(repo, env=E2E_ENV).has_changes
