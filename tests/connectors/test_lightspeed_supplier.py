"""The Lightspeed supplier-feed connector against the real simulator (in-process and on loopback).

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

from reconciler.connectors._http import RetryPolicy
from reconciler.connectors.base import Outcome, Secret, TargetContext, Verification
from reconciler.connectors.lightspeed_supplier import MAX_BATCH, AssumedReadConnector, LightspeedSupplierConnector
from reconciler.errors import ConfigError, InsecureTransportError, NotSupported
from reconciler.model import Leg, OpKind, Operation, Record, Settings
from reconciler.sandbox._core import ServerThread
from reconciler.sandbox._process import SandboxProcess
from reconciler.sandbox.lightspeed_supplier import LightspeedSupplierSimulator

TOKEN = "ls-test-token-xyz789"
ITEMS = {f"SKU-{i:03d}": f"item-{i:03d}" for i in range(300)}
FAST = RetryPolicy(max_attempts=6, base=0.0, max_wait=0.1, jitter=0.0)


def fixtures() -> dict[str, Any]:
    return {
        "locations": [{"id": "warehouse"}],
        "items": [{"id": vid} for vid in [*ITEMS.values(), "item-unmapped"]],
        "stock": [{"item": vid, "location": "warehouse", "quantity": i, "tracking": True, "backordering": i % 2 == 0}
                  for i, vid in enumerate(ITEMS.values())],
    }


def context(base_url: str = "http://127.0.0.1", locations: dict[str, str] | None = None, **options: Any) -> TargetContext:
    return TargetContext(name="ls", kind="lightspeed-supplier", base_url=base_url, credential=Secret(TOKEN),
                         location_ids=locations or {"main": "warehouse"}, item_ids=ITEMS, options=options)


# Most tests below exercise the UNVERIFIED read path (`read_api: assumed`) on a sandbox that
# serves it; the documented, write-only default has its own section.
@pytest.fixture
def sim() -> Iterator[LightspeedSupplierSimulator]:
    s = LightspeedSupplierSimulator(token=TOKEN, fixtures=fixtures(), read_api="assumed")
    yield s
    s.close()


@pytest.fixture
def conn(sim: LightspeedSupplierSimulator) -> Iterator[LightspeedSupplierConnector]:
    c = LightspeedSupplierConnector(context(read_api="assumed"), transport=sim.wsgi_transport(), retry=FAST)
    yield c
    c.close()


def op(kind: OpKind, item: str, change: int = 0, expected: int | None = None, actual: int | None = None,
       mode: str = "absolute", settings: Settings | None = None, op_id: str | None = None) -> Operation:
    leg = Leg("main", actual, None, expected, change, expected)
    return Operation(op_id or f"{kind.value}-{item}", kind, "ls", item, (leg,), "test",
                     settings_after=settings, write_mode=mode)


def stock(sim: LightspeedSupplierSimulator) -> dict[str, dict[str, Any]]:
    return {r["item"]: r for r in sim.inspect_stock()}


def run(conn: LightspeedSupplierConnector, *ops: Operation) -> list:
    return [r for batch in conn.batches(list(ops)) for r in conn.execute(batch)]


def test_read_pages_through_every_product_and_ignores_unmapped(sim: LightspeedSupplierSimulator,
                                                              conn: LightspeedSupplierConnector) -> None:
    live = conn.read_stock()
    assert len(live) == 300
    assert live[("main", "SKU-007")] == Record(7, Settings(tracking=True, backordering=False))
    assert live[("main", "SKU-010")] == Record(10, Settings(tracking=True, backordering=True))
    assert sim.request_counts["GET /products"] == 2  # 301 products at 250 a page


def test_resets_are_batched_into_one_put(sim: LightspeedSupplierSimulator, conn: LightspeedSupplierConnector) -> None:
    ops = [op(OpKind.RESET, sku, expected=100 + i) for i, sku in enumerate(list(ITEMS)[:5])]
    results = run(conn, *ops)
    assert [r.outcome for r in results] == [Outcome.APPLIED] * 5
    assert sim.request_counts["PUT /inventory"] == 1
    assert [stock(sim)[f"item-{i:03d}"]["quantity"] for i in range(5)] == [100, 101, 102, 103, 104]
    assert results[2].actual_after == {"main": 102}


def test_batches_respect_the_limit_and_never_repeat_an_item() -> None:
    conn = LightspeedSupplierConnector(context())
    many = [op(OpKind.RESET, f"X{i}", expected=1) for i in range(MAX_BATCH + 5)]
    assert [len(b) for b in conn.batches(many)] == [MAX_BATCH, 5]
    twice = [op(OpKind.RESET, "A", expected=1), op(OpKind.SETTINGS, "A"), op(OpKind.RESET, "A", expected=2, op_id="r2")]
    assert [[o.id for o in b] for b in conn.batches(twice)] == [["reset-A"], ["settings-A"], ["r2"]]


def test_read_modify_write_keeps_sales_made_since_the_plan(sim: LightspeedSupplierSimulator,
                                                          conn: LightspeedSupplierConnector) -> None:
    # planned against 20 units; 3 are sold before the apply
    sim.db.execute("UPDATE items SET quantity = 17 WHERE id = 'item-020'")
    [result] = run(conn, op(OpKind.ADJUST, "SKU-020", change=5, expected=25, actual=20, mode="read-modify-write"))
    assert result.outcome is Outcome.APPLIED
    assert stock(sim)["item-020"]["quantity"] == 22  # 17 live + 5, not the planned 25
    assert "re-read live quantity 17" in result.response
    assert "moved by -3 since the plan" in result.response


def test_read_modify_write_within_tolerance_is_not_flagged(sim: LightspeedSupplierSimulator) -> None:
    conn = LightspeedSupplierConnector(context(drift_tolerance=5, read_api="assumed"), transport=sim.wsgi_transport(), retry=FAST)
    sim.db.execute("UPDATE items SET quantity = 17 WHERE id = 'item-020'")
    [result] = run(conn, op(OpKind.ADJUST, "SKU-020", change=-2, expected=18, actual=20, mode="read-modify-write"))
    assert stock(sim)["item-020"]["quantity"] == 15
    assert "NOTE" not in result.response


def test_a_negative_read_modify_write_fails_alone(sim: LightspeedSupplierSimulator, conn: LightspeedSupplierConnector) -> None:
    results = run(conn, op(OpKind.ADJUST, "SKU-002", change=-5, expected=0, actual=5, mode="read-modify-write"),
                  op(OpKind.RESET, "SKU-003", expected=9))
    assert [r.outcome for r in results] == [Outcome.FAILED, Outcome.APPLIED]
    assert "negative" in (results[0].error or "")
    assert (stock(sim)["item-002"]["quantity"], stock(sim)["item-003"]["quantity"]) == (2, 9)


def test_delete_stops_tracking_and_settings_write_only_managed_flags(sim: LightspeedSupplierSimulator,
                                                                    conn: LightspeedSupplierConnector) -> None:
    results = run(conn, op(OpKind.DELETE, "SKU-004"), op(OpKind.SETTINGS, "SKU-005", settings=Settings(backordering=True)))
    assert [r.outcome for r in results] == [Outcome.APPLIED] * 2
    assert stock(sim)["item-004"]["tracking"] is False
    assert (stock(sim)["item-005"]["backordering"], stock(sim)["item-005"]["tracking"]) == (True, True)


def test_vendor_4xx_reaches_every_op_of_the_batch_verbatim(sim: LightspeedSupplierSimulator) -> None:
    ctx = TargetContext(name="ls", kind="lightspeed-supplier", base_url="http://127.0.0.1", credential=Secret(TOKEN),
                        location_ids={"main": "warehouse"}, item_ids={**ITEMS, "GHOST": "item-ghost"})
    conn = LightspeedSupplierConnector(ctx, transport=sim.wsgi_transport(), retry=FAST)
    results = run(conn, op(OpKind.RESET, "SKU-001", expected=50), op(OpKind.RESET, "GHOST", expected=1))
    assert [r.outcome for r in results] == [Outcome.FAILED] * 2
    assert results[1].response == '{"error":"Product not found: item-ghost"}'
    assert results[1].error == "the feed refused the PUT (HTTP 404): Product not found: item-ghost"
    assert stock(sim)["item-001"]["quantity"] == 1  # the vendor refused the whole PUT


def test_retries_429_and_5xx(sim: LightspeedSupplierSimulator, conn: LightspeedSupplierConnector) -> None:
    sim.faults.update({"rate_429": 0.4, "rate_5xx": 0.4, "retry_after_s": 0})
    conn.http.retry = RetryPolicy(max_attempts=30, base=0.0, max_wait=0.0, jitter=0.0)
    results = [r for n in range(5) for r in run(conn, op(OpKind.RESET, "SKU-001", expected=40 + n))]
    assert [r.outcome for r in results] == [Outcome.APPLIED] * 5 and stock(sim)["item-001"]["quantity"] == 44
    assert sim.request_counts["PUT /inventory"] > 5  # some answers were 429/5xx and were retried


def test_a_dropped_answer_to_an_absolute_write_is_resent_safely(sim: LightspeedSupplierSimulator) -> None:
    with ServerThread(sim) as server:
        conn = LightspeedSupplierConnector(context(server.url, read_api="assumed"), retry=FAST)
        sim.faults.update({"drop_next_writes": 1})
        [result] = run(conn, op(OpKind.RESET, "SKU-001", expected=42))
        conn.close()
    assert result.outcome is Outcome.APPLIED  # idempotent PUT: the http layer resent it
    assert stock(sim)["item-001"]["quantity"] == 42
    assert sim.request_counts["PUT /inventory"] == 2


def test_verify_of_a_read_modify_write_is_unknown(conn: LightspeedSupplierConnector) -> None:
    assert conn.verify(op(OpKind.ADJUST, "SKU-001", change=1, mode="read-modify-write")) is Verification.UNKNOWN


def test_one_location_only_and_no_moves(sim: LightspeedSupplierSimulator, conn: LightspeedSupplierConnector) -> None:
    with pytest.raises(ConfigError, match="one stock location"):
        LightspeedSupplierConnector(context(locations={"a": "w1", "b": "w2"}))
    with pytest.raises(NotSupported):
        conn.execute([op(OpKind.MOVE, "SKU-001")])


def test_plain_http_to_a_non_loopback_host_is_refused() -> None:
    with pytest.raises(InsecureTransportError):
        LightspeedSupplierConnector(context("http://lsapi-product.lightspeedapp.com"))


# --- the documented feed: write-only by default, and the PUT's answer is read ---------------------


def test_write_only_by_default_and_read_api_assumed_picks_the_reading_connector(sim: LightspeedSupplierSimulator) -> None:
    default = LightspeedSupplierConnector(context(), transport=sim.wsgi_transport())
    assert type(default) is LightspeedSupplierConnector
    caps = type(default).capabilities
    assert (caps.readable, caps.delta, caps.delete, caps.settings) == (False, False, False, frozenset())
    with pytest.raises(NotSupported, match="cannot be read"):
        default.read_stock()
    with pytest.raises(NotSupported):
        default.execute([op(OpKind.DELETE, "SKU-001")])
    with pytest.raises(NotSupported, match="absolute quantities only"):
        default.execute([op(OpKind.ADJUST, "SKU-001", change=2, mode="read-modify-write")])
    assumed = LightspeedSupplierConnector(context(read_api="assumed"), transport=sim.wsgi_transport())
    assert type(assumed) is AssumedReadConnector and type(assumed).capabilities.readable
    assert sim.request_counts == {}  # nothing was read by the default connector
    with pytest.raises(ConfigError, match="read_api must be one of none, assumed"):
        LightspeedSupplierConnector(context(read_api="yes"))


def _answering(status: int, body: str | bytes) -> LightspeedSupplierConnector:
    def vendor(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, request=request)

    return LightspeedSupplierConnector(context(), transport=httpx.MockTransport(vendor), retry=FAST)


@pytest.mark.parametrize(("status", "body", "outcomes", "fragment"), [
    (200, b'{"products":[{"id":"item-001","quantity":7},{"id":"item-002","quantity":8}]}', ["applied", "applied"], ""),
    (204, b"", ["applied", "applied"], ""),
    (200, b'{"error":"Invalid products payload"}', ["failed", "failed"], "Invalid products payload"),
    (200, b'{"errors":[{"message":"quota"}]}', ["failed", "failed"], "quota"),
    (200, b'{"products":[{"id":"item-001","quantity":7}]}', ["applied", "in_doubt"], "leaves this item out"),
    (200, b'{"products":[{"id":"item-001","quantity":7},{"id":"item-002","quantity":0}]}', ["applied", "in_doubt"],
     "gives it quantity 0"),
    (200, b'{"ok":true}', ["in_doubt", "in_doubt"], "no known shape"),
    (200, b"<html>Sign in</html>", ["in_doubt", "in_doubt"], "<html>Sign in</html>"),
])
def test_the_put_answer_is_checked_not_trusted(status: int, body: bytes, outcomes: list[str], fragment: str) -> None:
    """The old connector read the answer only for "after" figures: every 2xx was applied."""
    conn = _answering(status, body)
    results = run(conn, op(OpKind.RESET, "SKU-001", expected=7), op(OpKind.RESET, "SKU-002", expected=8))
    assert [r.outcome.value for r in results] == outcomes
    for r in results:
        if r.outcome is not Outcome.APPLIED:
            assert fragment in (r.error or "") and r.response == body.decode()
    assert results[0].actual_after == ({"main": 7} if body.startswith(b'{"products"') else {})


def test_resets_against_each_plausible_put_answer(tmp_path: Path) -> None:
    for answer in ("echo", "empty"):
        s = LightspeedSupplierSimulator(token=TOKEN, fixtures=fixtures(), put_answer=answer)
        conn = LightspeedSupplierConnector(context(), transport=s.wsgi_transport(), retry=FAST)
        results = run(conn, op(OpKind.RESET, "SKU-001", expected=31), op(OpKind.RESET, "SKU-002", expected=32))
        assert [r.outcome for r in results] == [Outcome.APPLIED] * 2, answer
        assert (stock(s)["item-001"]["quantity"], stock(s)["item-002"]["quantity"]) == (31, 32)
        conn.close()
        s.close()


def test_a_gateway_error_after_the_commit_resends_the_absolute_put_and_doubles_nothing() -> None:
    s = LightspeedSupplierSimulator(token=TOKEN, fixtures=fixtures())
    with ServerThread(s) as server:
        conn = LightspeedSupplierConnector(context(server.url), retry=FAST)
        for status in (502, 504):
            s.faults.update({"error_next_writes": 1, "error_after_write_status": status})
            [result] = run(conn, op(OpKind.RESET, "SKU-001", expected=60, op_id=f"r{status}"))
            assert result.outcome is Outcome.APPLIED
        conn.close()
    assert stock(s)["item-001"]["quantity"] == 60
    assert s.request_counts["PUT /inventory"] == 4  # each committed, answered 502/504, sent again
    s.close()


# --- end to end: a sandbox in its own process, a repository on disk, plan/apply via workflow ------

E2E_ENV = {"E2E_LS_TOKEN": TOKEN}
E2E_ITEMS = {"BOOT": "item-001", "SOCK": "item-002", "LACE": "item-003"}


def e2e_repo(root: Path, url: str, extra_items: dict[str, str] | None = None, read_api: str | None = "assumed") -> Path:
    (root / "stock").mkdir(parents=True)
    options = f"\n    options: {{read_api: {read_api}}}" if read_api else ""
    (root / "reconciler.yaml").write_text(textwrap.dedent(f"""\
        version: 1
        locations: {{warehouse: {{}}}}
        targets:
          ls:
            kind: lightspeed-supplier
            url: {url}
            credentials_env: E2E_LS_TOKEN
            locations: {{warehouse: warehouse}}""") + options + "\n")
    items = {**E2E_ITEMS, **(extra_items or {})}
    catalog = {"items": {sku: {"ids": {"ls": vid}} for sku, vid in items.items()}}
    (root / "stock" / "catalog.yaml").write_text(yaml.safe_dump(catalog))
    if read_api == "assumed":
        write_stock(root, {"BOOT": 10, "SOCK": {"quantity": 20, "backordering": True}, "LACE": 5})
    else:
        write_stock(root, {"BOOT": 10, "SOCK": 20, "LACE": 5})
    return root


def write_stock(root: Path, stock_: dict[str, Any], strategy: str | None = None) -> None:
    data: dict[str, Any] = {"location": "warehouse", **({"strategy": strategy} if strategy else {}), "stock": {"ls": stock_}}
    (root / "stock" / "warehouse.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def _sandbox(tmp_path: Path, **options: str) -> SandboxProcess:
    fx = tmp_path / "fixtures.json"
    fx.write_text(json.dumps({"locations": [{"id": "warehouse"}], "items": [{"id": v} for v in E2E_ITEMS.values()],
                              "stock": [{"location": "warehouse", "item": "item-001", "quantity": 4, "tracking": True}]}))
    return SandboxProcess("lightspeed-supplier", state=tmp_path / "ls.db", fixtures_path=fx, token=TOKEN, options=options)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxProcess]:
    """Serves the assumed read path too."""
    with _sandbox(tmp_path, read_api="assumed") as sb:
        yield sb


@pytest.fixture(params=["echo", "empty"])
def strict_sandbox(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[SandboxProcess]:
    """The sandbox's defaults: only the documented PUT exists; its answer is each plausible one."""
    with _sandbox(tmp_path, put_answer=request.param) as sb:
        yield sb


def live(sb: SandboxProcess) -> dict[str, dict[str, Any]]:
    return {r["item"]: r for r in httpx.get(sb.url + "/_sandbox/stock").json()["stock"]}


def test_e2e_plan_apply_edit_and_replace(tmp_path: Path, sandbox: SandboxProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.workflow import apply_saved_plan, plan_project

    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    repo = e2e_repo(tmp_path / "repo", sandbox.url)
    first = plan_project(repo, env=E2E_ENV)
    assert all(op.kind in (OpKind.RESET, OpKind.SETTINGS) for op in first.changes)
    assert apply_saved_plan(repo, first, env=E2E_ENV).ok
    assert {k: v["quantity"] for k, v in live(sandbox).items()} == {"item-001": 10, "item-002": 20, "item-003": 5}
    assert not plan_project(repo, env=E2E_ENV).has_changes

    # an edit: more boots, fewer laces, track boots, no more backordering of socks
    write_stock(repo, {"BOOT": {"quantity": 15, "tracking": True}, "SOCK": {"quantity": 20, "backordering": False},
                       "LACE": 2})
    edit = plan_project(repo, env=E2E_ENV)
    assert {op.item for op in edit.changes if op.kind is OpKind.SETTINGS} == {"BOOT", "SOCK"}
    assert {op.item for op in edit.changes if op.kind in (OpKind.RESET, OpKind.ADJUST)} == {"BOOT", "LACE"}
    assert apply_saved_plan(repo, edit, env=E2E_ENV).ok
    now = live(sandbox)
    assert (now["item-001"]["quantity"], now["item-003"]["quantity"]) == (15, 2)
    assert (now["item-001"]["tracking"], now["item-002"]["backordering"]) == (True, False)
    assert not plan_project(repo, env=E2E_ENV).has_changes

    # replace: sales made between plan and apply are overwritten by the absolute write
    write_stock(repo, {"BOOT": {"quantity": 12, "tracking": True}, "SOCK": {"quantity": 20, "backordering": False},
                       "LACE": 2}, strategy="replace")
    replace = plan_project(repo, env=E2E_ENV)
    httpx.post(sandbox.url + "/_sandbox/sell", json={"count": 4})
    assert apply_saved_plan(repo, replace, env=E2E_ENV).ok
    assert live(sandbox)["item-001"]["quantity"] == 12


def test_e2e_merge_keeps_sales_made_between_plan_and_apply(tmp_path: Path, sandbox: SandboxProcess,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.workflow import apply_saved_plan, plan_project

    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    repo = e2e_repo(tmp_path / "repo", sandbox.url)
    assert apply_saved_plan(repo, plan_project(repo, env=E2E_ENV), env=E2E_ENV).ok
    write_stock(repo, {"BOOT": 15, "SOCK": {"quantity": 20, "backordering": True}, "LACE": 5})
    edit = plan_project(repo, env=E2E_ENV)
    [boot] = edit.changes
    assert (boot.kind, boot.write_mode) == (OpKind.ADJUST, "read-modify-write")
    sold: list[dict[str, Any]] = []
    for _ in range(60):  # the till sells until at least two boots are gone
        sold += httpx.post(sandbox.url + "/_sandbox/sell", json={"count": 1}).json()["sold"]
        if sum(1 for s in sold if s["item"] == "item-001") >= 2:
            break
    report = apply_saved_plan(repo, edit, env=E2E_ENV)
    assert report.ok
    boots_sold = sum(1 for s in sold if s["item"] == "item-001")
    assert boots_sold >= 2
    # the write re-read the live quantity and added +5, so the boots sold meanwhile stay sold
    assert live(sandbox)["item-001"]["quantity"] == 15 - boots_sold, (boot.kind, boot.write_mode)


def test_e2e_vendor_error_verbatim_beside_its_operation(tmp_path: Path, sandbox: SandboxProcess,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.workflow import apply_saved_plan, plan_project

    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    repo = e2e_repo(tmp_path / "repo", sandbox.url, extra_items={"GHOST": "item-ghost"})
    write_stock(repo, {"BOOT": 10, "GHOST": 1})
    report = apply_saved_plan(repo, plan_project(repo, env=E2E_ENV), env=E2E_ENV)
    failed = [o for o in report.ops if o.status == "failed"]
    assert failed and any(o.item == "GHOST" for o in failed)
    for o in failed:
        assert "Product not found: item-ghost" in (o.error or "")
        assert TOKEN not in (o.error or "") + o.response


def test_e2e_write_only_by_default_plans_against_b_with_resets_only(tmp_path: Path, strict_sandbox: SandboxProcess,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.errors import ReconcilerError
    from reconciler.workflow import apply_saved_plan, plan_project

    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    repo = e2e_repo(tmp_path / "repo", strict_sandbox.url, read_api=None)
    first = plan_project(repo, env=E2E_ENV)
    assert first.unreadable_targets == ["ls"]
    assert {op.kind for op in first.changes} == {OpKind.RESET}
    assert apply_saved_plan(repo, first, env=E2E_ENV).ok
    assert {k: v["quantity"] for k, v in live(strict_sandbox).items()} == {"item-001": 10, "item-002": 20, "item-003": 5}
    assert not plan_project(repo, env=E2E_ENV).has_changes

    # an edit under merge: B + (D - B) written as an absolute reset; a sale since is not seen
    httpx.post(strict_sandbox.url + "/_sandbox/sell", json={"count": 2})
    write_stock(repo, {"BOOT": 15, "SOCK": 20, "LACE": 2})
    edit = plan_project(repo, env=E2E_ENV)
    assert sorted((op.kind.value, op.item) for op in edit.changes) == [("reset", "BOOT"), ("reset", "LACE")]
    assert apply_saved_plan(repo, edit, env=E2E_ENV).ok
    now = live(strict_sandbox)
    assert (now["item-001"]["quantity"], now["item-003"]["quantity"]) == (15, 2)
    served = httpx.get(strict_sandbox.url + "/_sandbox/requests").json()
    assert set(served) == {"PUT /inventory"}  # never a read: the read endpoint is not documented

    # a flag in the stock file is a plan-time error naming the file and line
    write_stock(repo, {"BOOT": {"quantity": 15, "tracking": True}, "SOCK": 20, "LACE": 2})
    with pytest.raises(ReconcilerError, match=r"stock/warehouse.yaml:\d+.*cannot hold the setting\(s\) tracking"):
        plan_project(repo, env=E2E_ENV)


def test_e2e_missing_credential_fails_before_any_request(tmp_path: Path, sandbox: SandboxProcess,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.errors import CredentialsError
    from reconciler.workflow import plan_project

    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    monkeypatch.delenv("E2E_LS_TOKEN", raising=False)
    repo = e2e_repo(tmp_path / "repo", sandbox.url)
    with pytest.raises(CredentialsError, match="E2E_LS_TOKEN"):
        plan_project(repo, env={})
    assert httpx.get(sandbox.url + "/_sandbox/requests").json() == {}
