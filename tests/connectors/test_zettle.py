"""The Zettle connector against the real Zettle simulator (in-process, and on loopback for faults).

Stock is checked through the simulator's TEST-ONLY inspection, never through the connector.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import yaml

from reconciler.connectors.base import Outcome, Secret, TargetContext, Verification
from reconciler.connectors.zettle import ZettleConnector, external_uuid
from reconciler.errors import VendorError
from reconciler.model import Leg, OpKind, Operation, Settings
from reconciler.sandbox._core import ServerThread
from reconciler.sandbox._process import SandboxProcess
from reconciler.sandbox.zettle import ZettleSimulator

STORE = "5a3c4d2e-0000-4000-8000-000000000001"
P1, V1, V2 = (f"5a3c4d2e-0000-4000-8000-0000000001{i:02d}" for i in range(3))
P2, V3 = "5a3c4d2e-0000-4000-8000-000000000200", "5a3c4d2e-0000-4000-8000-000000000201"
P3, V4 = "5a3c4d2e-0000-4000-8000-000000000300", "5a3c4d2e-0000-4000-8000-000000000301"
LOC = "oslo"
ITEMS = {
    "TEE-S": {"product": P1, "variant": V1},
    "TEE-M": {"product": P1, "variant": V2},
    "CAP": {"product": P2, "variant": V3},  # untracked at first
    "MUG": {"product": P3, "variant": V4},  # tracked, zero balance
}


def fixtures() -> dict[str, Any]:
    def rec(product: str, variant: str, qty: int, **extra: Any) -> dict[str, Any]:
        return {"location": STORE, "item": {"product": product, "variant": variant}, "quantity": qty, **extra}

    return {
        "locations": [{"id": STORE, "name": "Shop"}],
        "stock": [rec(P1, V1, 10, low_stock_level=2), rec(P1, V2, 4), rec(P2, V3, 7, tracked=False), rec(P3, V4, 0)],
    }


def context(base_url: str = "http://127.0.0.1", **options: Any) -> TargetContext:
    return TargetContext(
        name="zettle-main", kind="zettle", base_url=base_url, credential=Secret(ZettleSimulator.default_token),
        location_ids={LOC: STORE}, item_ids=ITEMS, options=options,
    )


def op(kind: OpKind, item: str, *, change: int = 0, expected: int | None = None, actual: int | None = None,
       settings: Settings | None = None, op_id: str | None = None) -> Operation:
    mode = {OpKind.RESET: "absolute", OpKind.ADJUST: "delta"}.get(kind, "absolute")
    leg = Leg(LOC, actual, None, expected, change, expected)
    return Operation(op_id or f"{kind.value}-{item}", kind, "zettle-main", item, (leg,), "test",
                     settings_after=settings, write_mode=mode)


def stock(sim: ZettleSimulator) -> dict[str, dict[str, Any]]:
    """TEST-ONLY inspection: variant -> record."""
    return {r["item"]["variant"]: r for r in sim.inspect_stock()}


@pytest.fixture
def sim() -> Iterator[ZettleSimulator]:
    simulator = ZettleSimulator(fixtures=fixtures())
    yield simulator
    simulator.close()


@pytest.fixture(params=["v3", "v2"])
def version(request: pytest.FixtureRequest) -> str:
    """Every test taking a connector runs against both API versions."""
    return str(request.param)


@pytest.fixture
def conn(sim: ZettleSimulator, version: str) -> Iterator[ZettleConnector]:
    connector = ZettleConnector(context(api_version=version), transport=sim.wsgi_transport())
    yield connector
    connector.close()


def sell(sim: ZettleSimulator, variant: str, product: str, units: int) -> None:
    """A till sale through the vendor API: STORE -> SOLD."""
    locs = {loc.type: loc.uuid for loc in sim.store.locations()}
    with httpx.Client(transport=sim.wsgi_transport(), base_url="http://sandbox",
                      headers={"Authorization": f"Bearer {sim.token}"}) as client:
        body = {"changes": [{"productUuid": product, "variantUuid": variant, "fromLocationUuid": locs["STORE"],
                             "toLocationUuid": locs["SOLD"], "change": units}]}
        client.put("/organizations/self/inventory", json=body).raise_for_status()


def test_read_accepts_string_balances_and_lists_zero_for_tracked(sim: ZettleSimulator, conn: ZettleConnector) -> None:
    with httpx.Client(transport=sim.wsgi_transport(), base_url="http://sandbox",
                      headers={"Authorization": f"Bearer {sim.token}"}) as client:
        raw = client.get(f"/organizations/self/inventory/locations/{STORE}").json()
    assert all(isinstance(v["balance"], str) for v in raw["variants"])  # the quirk under test is there
    got = conn.read_stock()
    assert {k: r.quantity for k, r in got.items()} == {(LOC, "TEE-S"): 10, (LOC, "TEE-M"): 4, (LOC, "MUG"): 0}
    assert got[(LOC, "TEE-S")].settings == Settings(low_stock_level=2)
    assert (LOC, "CAP") not in got  # untracked product: not stocked in Zettle


def test_adjust_up_and_down(sim: ZettleSimulator, conn: ZettleConnector) -> None:
    results = conn.execute([op(OpKind.ADJUST, "TEE-S", change=5), op(OpKind.ADJUST, "TEE-M", change=-3)])
    assert [r.outcome for r in results] == [Outcome.APPLIED, Outcome.APPLIED]
    assert stock(sim)[V1]["quantity"] == 15 and stock(sim)[V2]["quantity"] == 1
    assert results[0].actual_after == {LOC: 15}
    moves = sim.movements()[-2:]
    system = {loc.uuid: loc.type for loc in sim.store.locations()}
    assert [(system[m["from_uuid"]], system[m["to_uuid"]], m["change"]) for m in moves] == [
        ("SUPPLIER", "STORE", 5), ("STORE", "BIN", 3)]


def test_external_uuid_is_sent_and_recorded_in_v2(sim: ZettleSimulator) -> None:
    conn = ZettleConnector(context(api_version="v2"), transport=sim.wsgi_transport())
    batch = [op(OpKind.ADJUST, "TEE-S", change=1, op_id="op-a"), op(OpKind.ADJUST, "TEE-M", change=1, op_id="op-b")]
    results = conn.execute(batch)
    assert {m["external_uuid"] for m in sim.movements()[-2:]} == {external_uuid("op-a")}
    assert external_uuid("op-a") in results[1].response and "op-a, op-b" in results[1].response


def test_reset_rereads_live_stock_and_reports_movement(sim: ZettleSimulator, conn: ZettleConnector) -> None:
    planned = op(OpKind.RESET, "TEE-S", change=-5, expected=5, actual=10)
    sell(sim, V1, P1, 3)  # sold between plan and apply
    [result] = conn.execute([planned])
    assert result.outcome is Outcome.APPLIED
    assert stock(sim)[V1]["quantity"] == 5
    assert "moved by -3" in result.response
    up = op(OpKind.RESET, "TEE-M", change=6, expected=10, actual=4)
    [quiet] = conn.execute([up])
    assert stock(sim)[V2]["quantity"] == 10 and "moved by" not in quiet.response


def test_reset_adopts_untracked_product_by_starting_tracking(sim: ZettleSimulator, conn: ZettleConnector) -> None:
    [result] = conn.execute([op(OpKind.RESET, "CAP", change=2, expected=2, actual=None)])
    assert result.outcome is Outcome.APPLIED
    record = stock(sim)[V3]
    assert record["tracked"] is True and record["quantity"] == 2


def test_delete_stops_tracking_the_product(sim: ZettleSimulator, conn: ZettleConnector) -> None:
    delete = op(OpKind.DELETE, "MUG")
    [result] = conn.execute([delete])
    assert result.outcome is Outcome.APPLIED
    assert stock(sim)[V4]["tracked"] is False
    assert conn.verify(delete) is Verification.APPLIED


def test_delete_refused_when_the_batch_writes_a_sibling_variant(sim: ZettleSimulator, conn: ZettleConnector) -> None:
    results = conn.execute([op(OpKind.DELETE, "TEE-S"), op(OpKind.ADJUST, "TEE-M", change=1)])
    assert results[0].outcome is Outcome.FAILED and "tracks whole products" in (results[0].error or "")
    assert results[1].outcome is Outcome.APPLIED
    assert stock(sim)[V1]["tracked"] is True and stock(sim)[V2]["quantity"] == 5


def test_settings_write_low_stock_level(sim: ZettleSimulator, conn: ZettleConnector) -> None:
    ops = [op(OpKind.SETTINGS, "TEE-M", settings=Settings(low_stock_level=6)), op(OpKind.ADJUST, "TEE-S", change=1)]
    batches = conn.batches(ops)
    assert [[o.kind for o in b] for b in batches] == [[OpKind.ADJUST], [OpKind.SETTINGS]]
    [result] = conn.execute(batches[1])
    assert result.outcome is Outcome.APPLIED
    assert stock(sim)[V2]["low_stock_level"] == 6
    assert conn.read_stock()[(LOC, "TEE-M")].settings.low_stock_level == 6


def test_vendor_error_body_reaches_the_user_verbatim(sim: ZettleSimulator) -> None:
    bad = dict(ITEMS, GHOST={"product": "5a3c4d2e-0000-4000-8000-00000000dead", "variant": V1})
    ctx = TargetContext(name="zettle-main", kind="zettle", base_url="http://127.0.0.1",
                        credential=Secret(sim.token), location_ids={LOC: STORE}, item_ids=bad)
    connector = ZettleConnector(ctx, transport=sim.wsgi_transport())
    with pytest.raises(VendorError) as info:
        connector.execute([op(OpKind.ADJUST, "GHOST", change=1)])
    assert "ENTITY_NOT_FOUND" in (info.value.body or "")


class Recording(httpx.BaseTransport):
    """Passes requests to the simulator and keeps them for the test to look at."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner, self.requests = inner, []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.inner.handle_request(request)


@pytest.mark.parametrize(("version", "read_path"), [
    ("v3", f"/v3/stock/{STORE}"), ("v2", f"/organizations/self/inventory/locations/{STORE}")])
def test_trailing_slash_base_url_and_app_id_header(sim: ZettleSimulator, version: str, read_path: str) -> None:
    recording = Recording(sim.wsgi_transport())
    connector = ZettleConnector(context("http://127.0.0.1/", application_id="my-client-id", api_version=version),
                                transport=recording)
    assert connector.read_stock()[(LOC, "TEE-S")].quantity == 10
    paths = [r.url.path for r in recording.requests]
    assert read_path in paths and not any("//" in p for p in paths)
    assert {r.headers.get("X-iZettle-Application-Id") for r in recording.requests} == {"my-client-id"}


def test_reset_tolerance_option(sim: ZettleSimulator) -> None:
    from reconciler.errors import ConfigError

    connector = ZettleConnector(context(reset_tolerance=2), transport=sim.wsgi_transport())
    sell(sim, V1, P1, 2)
    [within] = connector.execute([op(OpKind.RESET, "TEE-S", change=-5, expected=5, actual=10)])
    assert stock(sim)[V1]["quantity"] == 5 and "moved by" not in within.response
    sell(sim, V1, P1, 3)
    [beyond] = connector.execute([op(OpKind.RESET, "TEE-S", change=1, expected=6, actual=5, op_id="r2")])
    assert stock(sim)[V1]["quantity"] == 6 and "moved by -3" in beyond.response
    with pytest.raises(ConfigError, match="reset_tolerance"):
        ZettleConnector(context(reset_tolerance="lots"))


def test_missing_token_is_rejected_not_leaked(sim: ZettleSimulator) -> None:
    ctx = TargetContext(name="zettle-main", kind="zettle", base_url="http://127.0.0.1",
                        credential=Secret("wrong-secret-token"), location_ids={LOC: STORE}, item_ids=ITEMS)
    with pytest.raises(VendorError) as info:
        ZettleConnector(ctx, transport=sim.wsgi_transport()).read_stock()
    assert "wrong-secret-token" not in str(info.value) and "ACCESS_TOKEN_EXPIRED" in (info.value.body or "")


@pytest.mark.parametrize("fault", [{"drop_next_writes": 1}, {"error_next_writes": 1, "error_after_write_status": 504}])
@pytest.mark.parametrize("version", ["v3", "v2"])
def test_dropped_delta_is_verified_by_rereading_and_not_resent(sim: ZettleSimulator, version: str,
                                                               fault: dict[str, int]) -> None:
    with ServerThread(sim) as server:
        connector = ZettleConnector(context(server.url, api_version=version))
        sim.faults.update(fault)
        adjust = op(OpKind.ADJUST, "TEE-S", change=4)
        [result] = connector.execute([adjust])
        # After a crash a new process cannot tell: it does not know the balance before the write.
        assert connector.verify(adjust) is Verification.UNKNOWN
        connector.close()
    # The write was committed once before the drop, and never blindly sent again.
    # (v3's 204 has no body, so its answer may be complete before the drop: then it is the proof)
    assert result.outcome is Outcome.APPLIED
    assert "verified applied by re-reading" in result.response or "HTTP 204" in result.response
    assert result.actual_after == {LOC: 14} and stock(sim)[V1]["quantity"] == 14
    assert [m["variant_uuid"] for m in sim.movements()].count(V1) == 1


# --- end to end: a sandbox in its own process, a repository on disk, plan/apply via workflow ------

E2E_ENV = {"E2E_ZETTLE_TOKEN": ZettleSimulator.default_token}


def e2e_repo(root: Path, url: str, extra_items: str = "", prune: bool = False) -> Path:
    (root / "stock").mkdir(parents=True)
    (root / "reconciler.yaml").write_text(textwrap.dedent(f"""\
        version: 1
        locations: {{oslo: {{}}}}
        targets:
          zettle-main:
            kind: zettle
            url: {url}
            credentials_env: E2E_ZETTLE_TOKEN
            prune: {str(prune).lower()}
            locations: {{oslo: STORE}}  # found with GET /v3/inventories
        """))
    catalog = "items:\n" + "".join(
        f'  {sku}: {{ids: {{zettle-main: {{product: "{ids["product"]}", variant: "{ids["variant"]}"}}}}}}\n'
        for sku, ids in ITEMS.items()
    )
    (root / "stock" / "catalog.yaml").write_text(catalog + extra_items)
    write_location(root, {"TEE-S": 12, "TEE-M": 4, "MUG": 2})
    return root


def write_location(root: Path, stock_: dict[str, Any], strategy: str | None = None) -> None:
    data: dict[str, Any] = {"location": LOC}
    if strategy:
        data["strategy"] = strategy
    data["stock"] = {"zettle-main": stock_}
    (root / "stock" / "oslo.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxProcess]:
    fx = tmp_path / "fixtures.json"
    fx.write_text(json.dumps(fixtures()))
    with SandboxProcess("zettle", state=tmp_path / "zettle.db", fixtures_path=fx) as sb:
        yield sb


def live_stock(sb: SandboxProcess) -> dict[str, int]:
    """TEST-ONLY inspection over HTTP: variant -> STORE balance of tracked variants."""
    rows = httpx.get(sb.url + "/_sandbox/stock").json()["stock"]
    return {r["item"]["variant"]: r["quantity"] for r in rows if r["tracked"]}


def sell_over_http(sb: SandboxProcess, product: str, variant: str, units: int) -> None:
    locs = {loc["type"]: loc["uuid"] for loc in httpx.get(
        sb.url + "/organizations/self/locations", headers={"Authorization": f"Bearer {ZettleSimulator.default_token}"}).json()}
    body = {"changes": [{"productUuid": product, "variantUuid": variant, "fromLocationUuid": locs["STORE"],
                         "toLocationUuid": locs["SOLD"], "change": units}]}
    httpx.put(sb.url + "/organizations/self/inventory", json=body,
              headers={"Authorization": f"Bearer {ZettleSimulator.default_token}"}).raise_for_status()


def test_e2e_plan_apply_plan_edit_and_sales(tmp_path: Path, sandbox: SandboxProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.workflow import apply_saved_plan, plan_project

    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    repo = e2e_repo(tmp_path / "repo", sandbox.url)
    first = plan_project(repo, env=E2E_ENV)
    assert sorted((op.kind, op.item, op.legs[0].expected) for op in first.changes) == [
        (OpKind.RECORD, "TEE-M", 4), (OpKind.RESET, "MUG", 2), (OpKind.RESET, "TEE-S", 12)]
    report = apply_saved_plan(repo, first, env=E2E_ENV)
    assert report.ok, [(o.item, o.error) for o in report.ops]
    assert live_stock(sandbox)[V1] == 12 and live_stock(sandbox)[V4] == 2
    assert not plan_project(repo, env=E2E_ENV).has_changes

    # merge: an edit becomes adjustments on top of live stock; a sale made meanwhile survives
    write_location(repo, {"TEE-S": 15, "TEE-M": 1, "MUG": 2})
    edit = plan_project(repo, env=E2E_ENV)
    assert sorted((op.kind, op.item, op.legs[0].change) for op in edit.changes) == [
        (OpKind.ADJUST, "TEE-M", -3), (OpKind.ADJUST, "TEE-S", 3)]
    sell_over_http(sandbox, P1, V1, 2)
    assert apply_saved_plan(repo, edit, env=E2E_ENV).ok
    assert live_stock(sandbox)[V1] == 13 and live_stock(sandbox)[V2] == 1

    # replace: the reset re-reads live stock and overwrites a sale made between plan and apply
    write_location(repo, {"TEE-S": 15, "TEE-M": 1, "MUG": 2}, strategy="replace")
    replace = plan_project(repo, env=E2E_ENV)
    assert [(op.kind, op.item) for op in replace.changes] == [(OpKind.RESET, "TEE-S")]
    sell_over_http(sandbox, P1, V1, 1)
    result = apply_saved_plan(repo, replace, env=E2E_ENV)
    assert result.ok and live_stock(sandbox)[V1] == 15
    assert "moved by -1 since the plan" in result.ops[0].response
    assert not plan_project(repo, env=E2E_ENV).has_changes


def test_e2e_vendor_error_verbatim_beside_its_operation(tmp_path: Path, sandbox: SandboxProcess,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.workflow import apply_saved_plan, plan_project

    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    ghost = f'  GHOST: {{ids: {{zettle-main: {{product: "{P2[:-3]}999", variant: "{V3[:-3]}999"}}}}}}\n'
    repo = e2e_repo(tmp_path / "repo", sandbox.url, extra_items=ghost)
    write_location(repo, {"GHOST": 3})
    plan = plan_project(repo, env=E2E_ENV)
    report = apply_saved_plan(repo, plan, env=E2E_ENV)
    [failed] = [o for o in report.ops if o.status == "failed"]
    assert failed.item == "GHOST"
    assert f"Product {P2[:-3]}999 not found" in (failed.error or "") + failed.response


def test_e2e_missing_credential_fails_before_any_request(tmp_path: Path, sandbox: SandboxProcess,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.errors import CredentialsError
    from reconciler.workflow import plan_project

    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    monkeypatch.delenv("E2E_ZETTLE_TOKEN", raising=False)
    repo = e2e_repo(tmp_path / "repo", sandbox.url)
    with pytest.raises(CredentialsError, match="E2E_ZETTLE_TOKEN"):
        plan_project(repo, env={})
    assert httpx.get(sandbox.url + "/_sandbox/requests").json() == {}


def test_verify_absolute_operations_from_live_state(sim: ZettleSimulator, conn: ZettleConnector) -> None:
    reset = op(OpKind.RESET, "TEE-M", change=5, expected=9, actual=4)
    assert conn.verify(reset) is Verification.NOT_APPLIED
    conn.execute([reset])
    assert conn.verify(reset) is Verification.APPLIED
    level = op(OpKind.SETTINGS, "TEE-M", settings=Settings(low_stock_level=4))
    assert conn.verify(level) is Verification.NOT_APPLIED
    conn.execute([level])
    assert conn.verify(level) is Verification.APPLIED


@pytest.mark.parametrize("fault", [{"drop_next_writes": 1}, {"error_next_writes": 1, "error_after_write_status": 502},
                                   {"error_next_writes": 1, "error_after_write_status": 504}])
def test_e2e_ambiguous_answer_is_verified_by_rereading_never_resent(tmp_path: Path, sandbox: SandboxProcess,
                                                                   monkeypatch: pytest.MonkeyPatch, fault: dict[str, int]) -> None:
    from reconciler.workflow import apply_saved_plan, plan_project

    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    repo = e2e_repo(tmp_path / "repo", sandbox.url)
    assert apply_saved_plan(repo, plan_project(repo, env=E2E_ENV), env=E2E_ENV).ok
    write_location(repo, {"TEE-S": 14, "TEE-M": 4, "MUG": 2})
    plan = plan_project(repo, env=E2E_ENV)
    before = len(httpx.get(sandbox.url + "/_sandbox/movements").json()["movements"])
    httpx.put(sandbox.url + "/_sandbox/faults", json=fault).raise_for_status()
    report = apply_saved_plan(repo, plan, env=E2E_ENV)
    [adjust] = report.ops
    # committed, then answered ambiguously: the re-read shows 12 -> 14 with a new change stamp
    assert adjust.status == "applied" and adjust.kind == "adjust", adjust
    moved = httpx.get(sandbox.url + "/_sandbox/movements").json()["movements"][before:]
    assert [(m["variant_uuid"], m["change"]) for m in moved] == [(V1, 2)]  # sent once, never doubled
    assert live_stock(sandbox)[V1] == 14
    assert not plan_project(repo, env=E2E_ENV).has_changes


def test_e2e_prune_deletes_and_settings(tmp_path: Path, sandbox: SandboxProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.workflow import apply_saved_plan, plan_project

    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    repo = e2e_repo(tmp_path / "repo", sandbox.url, prune=True)
    assert apply_saved_plan(repo, plan_project(repo, env=E2E_ENV), env=E2E_ENV).ok
    write_location(repo, {"TEE-S": 12, "TEE-M": {"quantity": 4, "low_stock_level": 2}})
    plan = plan_project(repo, env=E2E_ENV, guard_overrides={"allow_mass_delete": True})
    assert sorted((op.kind, op.item) for op in plan.changes) == [(OpKind.DELETE, "MUG"), (OpKind.SETTINGS, "TEE-M")]
    assert apply_saved_plan(repo, plan, env=E2E_ENV).ok
    rows = {r["item"]["variant"]: r for r in httpx.get(sandbox.url + "/_sandbox/stock").json()["stock"]}
    assert rows[V4]["tracked"] is False and rows[V2]["low_stock_level"] == 2
    assert not plan_project(repo, env=E2E_ENV).has_changes


def test_retries_429_and_5xx_then_applies_once(sim: ZettleSimulator) -> None:
    """v3: a 503 without Retry-After is ambiguous for a movement; the re-read proves it was not
    applied (balances and change stamps as before), and only then is it sent again."""
    from reconciler.connectors._http import RetryPolicy

    conn = ZettleConnector(context(api_version="v3"), transport=sim.wsgi_transport())
    sim.faults.update({"rate_429": 0.3, "rate_5xx": 0.3, "seed": 3})
    conn.http.retry = RetryPolicy(max_attempts=30, base=0.0, max_wait=0.0, jitter=0.0)
    results = [r for n in range(4) for r in conn.execute([op(OpKind.RESET, "TEE-M", expected=6 + n, op_id=f"r{n}")])]
    assert [r.outcome for r in results] == [Outcome.APPLIED] * 4 and stock(sim)[V2]["quantity"] == 9
    counts = sim.request_counts
    assert sum(v for k, v in counts.items() if k.startswith("POST")) > 4  # some were refused and retried
    # an injected 429/5xx is refused before the handler runs, so each reset landed once: 4 -> 6, 7, 8, 9
    assert [m["change"] for m in sim.movements()[-4:]] == [2, 1, 1, 1]
