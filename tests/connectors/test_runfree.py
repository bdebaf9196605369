"""The Run Free connector against the real simulator (write-only, one item per request).

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
from reconciler.connectors.base import Outcome, Secret, TargetContext
from reconciler.connectors.runfree import RunFreeConnector
from reconciler.errors import InsecureTransportError, NotSupported
from reconciler.model import Leg, OpKind, Operation
from reconciler.sandbox._core import ServerThread
from reconciler.sandbox._process import SandboxProcess
from reconciler.sandbox.runfree import RunFreeSimulator

TOKEN = "rf-test-token-456def"
ITEMS: dict[str, Any] = {
    "ZOOT-34D": {"sku": "ZOOT-SUIT", "size": "34", "width": "D"},
    "SHOE-9": {"upc": "849632048260"},
}
STORES = {"downtown": "3", "mall": "7"}
FAST = RetryPolicy(max_attempts=6, base=0.0, max_wait=0.0, jitter=0.0)


def fixtures() -> dict[str, Any]:
    return {
        "locations": [{"id": "3"}, {"id": "7"}],
        "items": [{"id": {"upc": "849632048260", "sku": "SHOE", "size": "9", "width": "M"}},
                  {"id": {"upc": "111111111111", "sku": "ZOOT-SUIT", "size": "34", "width": "D"}}],
        "stock": [{"location": "3", "item": {"upc": "849632048260"}, "quantity": 5}],
    }


def context(base_url: str = "http://127.0.0.1", items: dict[str, Any] | None = None) -> TargetContext:
    return TargetContext(name="rf", kind="runfree", base_url=base_url, credential=Secret(TOKEN),
                         location_ids=STORES, item_ids=items or ITEMS)


# Run Free documents no status for its errors: the connector is tested against both readings.
@pytest.fixture(params=["200", "4xx"])
def sim(request: pytest.FixtureRequest) -> Iterator[RunFreeSimulator]:
    s = RunFreeSimulator(token=TOKEN, fixtures=fixtures(), error_status=request.param)
    yield s
    s.close()


@pytest.fixture
def conn(sim: RunFreeSimulator) -> Iterator[RunFreeConnector]:
    c = RunFreeConnector(context(), transport=sim.wsgi_transport(), retry=FAST)
    yield c
    c.close()


def op(kind: OpKind, item: str, location: str = "downtown", expected: int | None = None) -> Operation:
    leg = Leg(location, None, None, expected, 0, expected)
    return Operation(f"{kind.value}-{item}-{location}", kind, "rf", item, (leg,), "test", write_mode="absolute")


def stock(sim: RunFreeSimulator) -> dict[tuple[str, str], int]:
    return {(r["location"], r["item"]["upc"]): r["quantity"] for r in sim.inspect_stock()}


def run(conn: RunFreeConnector, *ops: Operation) -> list:
    return [r for batch in conn.batches(list(ops)) for r in conn.execute(batch)]


def test_read_is_not_supported(conn: RunFreeConnector) -> None:
    assert RunFreeConnector.capabilities.readable is False
    with pytest.raises(NotSupported, match="cannot be read"):
        conn.read_stock()


def test_reset_by_upc_and_by_sku_size_width_one_request_each(sim: RunFreeSimulator, conn: RunFreeConnector) -> None:
    ops = [op(OpKind.RESET, "SHOE-9", expected=12), op(OpKind.RESET, "ZOOT-34D", "mall", expected=44)]
    assert [len(b) for b in conn.batches(ops)] == [1, 1]
    results = run(conn, *ops)
    assert [r.outcome for r in results] == [Outcome.APPLIED] * 2
    assert stock(sim) == {("3", "849632048260"): 12, ("7", "111111111111"): 44}
    assert sim.request_counts["POST /api/product/inventory"] == 2


def test_an_adjust_arriving_here_writes_its_expected_quantity(sim: RunFreeSimulator, conn: RunFreeConnector) -> None:
    [result] = run(conn, op(OpKind.ADJUST, "SHOE-9", expected=8))
    assert result.outcome is Outcome.APPLIED and stock(sim)[("3", "849632048260")] == 8


def test_delete_and_move_are_not_expressible(conn: RunFreeConnector) -> None:
    assert RunFreeConnector.capabilities.delete is False and RunFreeConnector.capabilities.native_move is False
    with pytest.raises(NotSupported, match="cannot express a delete"):
        conn.execute([op(OpKind.DELETE, "SHOE-9")])


def test_vendor_error_is_verbatim_and_others_still_run(sim: RunFreeSimulator) -> None:
    items = {**ITEMS, "GHOST": {"sku": "GHOST", "size": "1", "width": "B"}}
    conn = RunFreeConnector(context(items=items), transport=sim.wsgi_transport(), retry=FAST)
    results = run(conn, op(OpKind.RESET, "GHOST", expected=1), op(OpKind.RESET, "SHOE-9", expected=3))
    assert [r.outcome for r in results] == [Outcome.FAILED, Outcome.APPLIED]
    assert results[0].response == '{"error":"Product not found: sku GHOST, size 1, width B"}'
    assert results[0].error is not None and results[0].error.endswith(": Product not found: sku GHOST, size 1, width B")
    assert stock(sim)[("3", "849632048260")] == 3


def test_an_error_body_fails_the_operation_whatever_the_status(sim: RunFreeSimulator) -> None:
    """Run Free documents {"error": ...} without a status. Under the sandbox's strict default it
    comes with 200: the old connector (any 2xx is applied) recorded these as applied."""
    conn = RunFreeConnector(context(items={"BAD": {"sku": "ZOOT-SUIT", "size": "34", "width": "E"}}),
                            transport=sim.wsgi_transport(), retry=FAST)
    [result] = run(conn, op(OpKind.RESET, "BAD", expected=2))
    assert result.outcome is Outcome.FAILED
    assert "Product not found: sku ZOOT-SUIT, size 34, width E" in (result.error or "")
    status = "200" if sim.error_status == "200" else "404"
    assert f"HTTP {status}" in (result.error or "")
    bad_token = RunFreeConnector(TargetContext(**{**context().__dict__, "credential": Secret("wrong-token-1")}),
                                 transport=sim.wsgi_transport(), retry=FAST)
    [refused] = run(bad_token, op(OpKind.RESET, "SHOE-9", expected=2))
    assert refused.outcome is Outcome.FAILED and "Invalid or missing Bearer token" in (refused.error or "")
    assert stock(sim) == {("3", "849632048260"): 5}


@pytest.mark.parametrize(("success_body", "outcome"),
                         [("relay", Outcome.APPLIED), ("empty", Outcome.APPLIED), ("unknown", Outcome.IN_DOUBT)])
def test_each_plausible_success_body(success_body: str, outcome: Outcome) -> None:
    """Run Free documents no success body: {"success": true} (its Relay API's) and an empty 200
    are success; a shape nobody documents is in doubt, its body verbatim, never applied."""
    sim = RunFreeSimulator(token=TOKEN, fixtures=fixtures(), success_body=success_body)
    conn = RunFreeConnector(context(), transport=sim.wsgi_transport(), retry=FAST)
    [result] = run(conn, op(OpKind.RESET, "SHOE-9", expected=6))
    assert result.outcome is outcome
    if outcome is Outcome.IN_DOUBT:
        assert result.response == '{"status":"queued"}' and '{"status":"queued"}' in (result.error or "")
    assert stock(sim)[("3", "849632048260")] == 6
    conn.close()
    sim.close()


@pytest.mark.parametrize(("empty_width", "outcome"), [("refuse", Outcome.FAILED), ("accept", Outcome.APPLIED)])
def test_an_empty_width_is_sent_as_configured_against_each_plausible_answer(empty_width: str, outcome: Outcome) -> None:
    """Whether Run Free takes "width": "" is unknown: the connector sends it as configured and
    reports what Run Free says, never guesses another width."""
    tee = {"upc": "000000000099", "sku": "TEE", "size": "M", "width": ""}
    sim = RunFreeSimulator(token=TOKEN, fixtures={**fixtures(), "items": [*fixtures()["items"], {"id": tee}]},
                           empty_width=empty_width)
    conn = RunFreeConnector(context(items={"TEE-M": {"sku": "TEE", "size": "M", "width": ""}}),
                            transport=sim.wsgi_transport(), retry=FAST)
    [result] = run(conn, op(OpKind.RESET, "TEE-M", expected=6))
    assert result.outcome is outcome
    if outcome is Outcome.FAILED:
        assert "Missing required field: width" in (result.error or "")
    assert stock(sim).get(("3", "000000000099")) == (6 if outcome is Outcome.APPLIED else None)
    conn.close()
    sim.close()


def test_a_gateway_error_after_the_commit_is_resent_because_the_write_is_absolute(sim: RunFreeSimulator) -> None:
    """Commit, then 502/504 over real HTTP: the absolute write is sent again; nothing is doubled
    (setting 9 twice is 9)."""
    with ServerThread(sim) as server:
        conn = RunFreeConnector(context(server.url), retry=FAST)
        for status in (502, 504):
            sim.faults.update({"error_next_writes": 1, "error_after_write_status": status})
            [result] = run(conn, op(OpKind.RESET, "SHOE-9", expected=9 + status % 2))
            assert result.outcome is Outcome.APPLIED
        conn.close()
    assert stock(sim)[("3", "849632048260")] == 9
    assert sim.request_counts["POST /api/product/inventory"] == 4


def test_retries_429_and_5xx(sim: RunFreeSimulator, conn: RunFreeConnector) -> None:
    sim.faults.update({"rate_429": 0.4, "rate_5xx": 0.4, "retry_after_s": 0})
    conn.http.retry = RetryPolicy(max_attempts=30, base=0.0, max_wait=0.0, jitter=0.0)
    results = [r for n in range(5) for r in run(conn, op(OpKind.RESET, "SHOE-9", expected=20 + n))]
    assert [r.outcome for r in results] == [Outcome.APPLIED] * 5
    assert stock(sim)[("3", "849632048260")] == 24
    assert sim.request_counts["POST /api/product/inventory"] > 5


def test_a_dropped_answer_is_resent_because_the_write_is_absolute(sim: RunFreeSimulator) -> None:
    with ServerThread(sim) as server:
        conn = RunFreeConnector(context(server.url), retry=FAST)
        sim.faults.update({"drop_next_writes": 1})
        [result] = run(conn, op(OpKind.RESET, "SHOE-9", expected=9))
        conn.close()
    assert result.outcome is Outcome.APPLIED and stock(sim)[("3", "849632048260")] == 9
    assert sim.request_counts["POST /api/product/inventory"] == 2


def test_plain_http_to_a_non_loopback_host_is_refused() -> None:
    with pytest.raises(InsecureTransportError):
        RunFreeConnector(context("http://store.runfreeproject.com"))


# --- end to end: a sandbox in its own process, a repository on disk, plan/apply via workflow ------

E2E_ENV = {"E2E_RF_TOKEN": TOKEN}


def e2e_repo(root: Path, url: str, prune: bool = False, extra: str = "") -> Path:
    (root / "stock").mkdir(parents=True)
    (root / "reconciler.yaml").write_text(textwrap.dedent(f"""\
        version: 1
        locations: {{downtown: {{}}, mall: {{}}}}
        targets:
          rf:
            kind: runfree
            url: {url}
            credentials_env: E2E_RF_TOKEN
            prune: {str(prune).lower()}
            locations: {{downtown: "3", mall: "7"}}
        """))
    (root / "stock" / "catalog.yaml").write_text(textwrap.dedent("""\
        items:
          SHOE-9: {ids: {rf: {upc: "849632048260"}}}
          ZOOT-34D: {ids: {rf: {sku: ZOOT-SUIT, size: "34", width: D}}}
        """) + extra)
    write_stores(root, {"SHOE-9": 10, "ZOOT-34D": 4}, {"SHOE-9": 2})
    return root


def write_stores(root: Path, downtown: dict[str, Any], mall: dict[str, Any], strategy: str | None = None) -> None:
    for name, stock_ in (("downtown", downtown), ("mall", mall)):
        data: dict[str, Any] = {"location": name, **({"strategy": strategy} if strategy else {}), "stock": {"rf": stock_}}
        (root / "stock" / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxProcess]:
    fx = tmp_path / "fixtures.json"
    fx.write_text(json.dumps(fixtures()))
    with SandboxProcess("runfree", state=tmp_path / "rf.db", fixtures_path=fx, token=TOKEN) as sb:
        yield sb


def live(sb: SandboxProcess) -> dict[tuple[str, str], int]:
    return {(r["location"], r["item"]["upc"]): r["quantity"] for r in httpx.get(sb.url + "/_sandbox/stock").json()["stock"]}


def test_e2e_plan_apply_edit_and_what_happens_to_sales(tmp_path: Path, sandbox: SandboxProcess,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.workflow import apply_saved_plan, plan_project

    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    repo = e2e_repo(tmp_path / "repo", sandbox.url)
    first = plan_project(repo, env=E2E_ENV)
    assert first.unreadable_targets == ["rf"]
    assert {op.kind for op in first.changes} == {OpKind.RESET}
    assert apply_saved_plan(repo, first, env=E2E_ENV).ok
    assert live(sandbox) == {("3", "849632048260"): 10, ("3", "111111111111"): 4, ("7", "849632048260"): 2}
    assert not plan_project(repo, env=E2E_ENV).has_changes

    # an edit: without a read API, a change of D - B is written as the absolute B + (D - B) = D;
    # sales made since the last apply cannot be seen, so they are overwritten (documented)
    write_stores(repo, {"SHOE-9": 7, "ZOOT-34D": 4}, {"SHOE-9": 5})
    edit = plan_project(repo, env=E2E_ENV)
    assert sorted((op.kind.value, op.location) for op in edit.changes) == [("reset", "downtown"), ("reset", "mall")]
    httpx.post(sandbox.url + "/_sandbox/sell", json={"count": 3})
    assert apply_saved_plan(repo, edit, env=E2E_ENV).ok
    now = live(sandbox)
    assert (now[("3", "849632048260")], now[("7", "849632048260")]) == (7, 5)
    # the position the plan did not touch keeps whatever was sold there
    assert now[("3", "111111111111")] <= 4

    # replace behaves the same on a write-only target: it resets where D differs from B
    write_stores(repo, {"SHOE-9": 6, "ZOOT-34D": 4}, {"SHOE-9": 5}, strategy="replace")
    replace = plan_project(repo, env=E2E_ENV)
    assert [(op.kind.value, op.location, op.item) for op in replace.changes] == [("reset", "downtown", "SHOE-9")]
    assert apply_saved_plan(repo, replace, env=E2E_ENV).ok
    assert live(sandbox)[("3", "849632048260")] == 6


def test_e2e_delete_is_a_plan_time_error(tmp_path: Path, sandbox: SandboxProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.errors import ReconcilerError
    from reconciler.workflow import apply_saved_plan, plan_project

    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    repo = e2e_repo(tmp_path / "repo", sandbox.url, prune=True)
    assert apply_saved_plan(repo, plan_project(repo, env=E2E_ENV), env=E2E_ENV).ok
    before = dict(httpx.get(sandbox.url + "/_sandbox/requests").json())
    write_stores(repo, {"SHOE-9": 10}, {"SHOE-9": 2})
    with pytest.raises(ReconcilerError, match="ZOOT-34D"):
        plan_project(repo, env=E2E_ENV, guard_overrides={"allow_mass_delete": True})
    assert httpx.get(sandbox.url + "/_sandbox/requests").json() == before


def test_e2e_vendor_error_verbatim_beside_its_operation(tmp_path: Path, sandbox: SandboxProcess,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.workflow import apply_saved_plan, plan_project

    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    repo = e2e_repo(tmp_path / "repo", sandbox.url, extra='  GHOST: {ids: {rf: {upc: "000000000000"}}}\n')
    write_stores(repo, {"SHOE-9": 10, "GHOST": 1}, {"SHOE-9": 2})
    report = apply_saved_plan(repo, plan_project(repo, env=E2E_ENV), env=E2E_ENV)
    failed = [o for o in report.ops if o.status == "failed"]
    assert [o.item for o in failed] == ["GHOST"]
    assert failed[0].response == '{"error":"Product not found: upc 000000000000"}'
    assert "Product not found: upc 000000000000" in (failed[0].error or "")
    assert TOKEN not in (failed[0].error or "") + failed[0].response
    assert live(sandbox)[("7", "849632048260")] == 2  # the others were applied


def test_e2e_missing_credential_fails_before_any_request(tmp_path: Path, sandbox: SandboxProcess,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.errors import CredentialsError
    from reconciler.workflow import apply_saved_plan, plan_project

    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    monkeypatch.delenv("E2E_RF_TOKEN", raising=False)
    repo = e2e_repo(tmp_path / "repo", sandbox.url)
    # a write-only target is never contacted while planning (a CI plan job holds read-only
    # credentials only, docs/gitops.md): planning needs no key; applying fails before any request
    plan = plan_project(repo, env={})
    with pytest.raises(CredentialsError, match="E2E_RF_TOKEN"):
        apply_saved_plan(repo, plan, env={})
    assert httpx.get(sandbox.url + "/_sandbox/requests").json() == {}
