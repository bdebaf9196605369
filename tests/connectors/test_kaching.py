"""The Ka-ching connector against the real Ka-ching simulator (write-only, asynchronous imports).

Stock is checked through the simulator's TEST-ONLY inspection, never through the connector.
"""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import yaml

from reconciler.connectors.base import Outcome, Secret, TargetContext, Verification
from reconciler.connectors.kaching import MAX_VALUES, KachingConnector
from reconciler.errors import ConfigError, NotSupported, ReconcilerError, VendorError
from reconciler.model import Leg, OpKind, Operation
from reconciler.sandbox._core import ServerThread
from reconciler.sandbox._process import SandboxProcess
from reconciler.sandbox.kaching import KachingSimulator

APIKEY = "kc-super-secret-apikey-123"
ITEMS = {
    "TEE-S": {"product": "tee", "variant": "s"},
    "TEE-M": {"product": "tee", "variant": "m"},
    "CAP": {"product": "cap"},
}
LOCATIONS = {"cph": "store-cph", "aar": "store-aar"}


def fixtures() -> dict[str, Any]:
    return {
        "locations": [{"id": "store-cph"}, {"id": "store-aar"}],
        "stock": [
            {"location": "store-cph", "item": {"product": "tee", "variant": "s"}, "quantity": 10},
            {"location": "store-cph", "item": "cap", "quantity": 3},
            {"location": "store-aar", "item": {"product": "tee", "variant": "s"}, "quantity": 2},
        ],
    }


def context(base_url: str = "http://127.0.0.1", locations: dict[str, str] | None = None) -> TargetContext:
    return TargetContext(
        name="kaching-dk", kind="kaching", base_url=base_url, credential=Secret(APIKEY),
        location_ids=locations or LOCATIONS, item_ids=ITEMS,
        options={"account": "sandbox-account", "integration": "sandbox-stock-queue"},
    )


def leg(loc: str, change: int = 0, expected: int | None = None) -> Leg:
    return Leg(loc, None, None, expected, change, expected)


def op(kind: OpKind, item: str, *legs: Leg, op_id: str | None = None) -> Operation:
    mode = "delta" if kind in (OpKind.ADJUST, OpKind.MOVE) else "absolute"
    return Operation(op_id or f"{kind.value}-{item}-{legs[0].location}", kind, "kaching-dk", item, legs, "test",
                     write_mode=mode)


def stock(sim: KachingSimulator) -> dict[tuple[str, str], int]:
    """TEST-ONLY inspection, after the import queue has drained."""
    deadline = time.monotonic() + 5
    while sim.pending() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sim.pending() == 0
    return {(r["location"], "/".join(r["item"].values())): r["quantity"] for r in sim.inspect_stock()}


@pytest.fixture
def sim() -> Iterator[KachingSimulator]:
    # The default asynchronous delay is kept: stock() waits for the worker like a user would.
    simulator = KachingSimulator(token=APIKEY, fixtures=fixtures())
    yield simulator
    simulator.close()


@pytest.fixture
def conn(sim: KachingSimulator) -> Iterator[KachingConnector]:
    connector = KachingConnector(context(), transport=sim.wsgi_transport())
    yield connector
    connector.close()


def test_write_only(conn: KachingConnector) -> None:
    assert not conn.capabilities.readable
    with pytest.raises(NotSupported):
        conn.read_stock()


def test_reset_posts_absolute_values(sim: KachingSimulator, conn: KachingConnector) -> None:
    ops = [op(OpKind.RESET, "TEE-S", leg("cph", expected=7)), op(OpKind.RESET, "CAP", leg("cph", expected=0)),
           op(OpKind.RESET, "TEE-M", leg("aar", expected=5))]
    [batch] = conn.batches(ops)
    results = conn.execute(batch)
    assert all(r.outcome is Outcome.APPLIED for r in results)
    assert "Import of 3 stock value(s) initiated" in results[0].response
    assert "asynchronously" in results[0].response
    got = stock(sim)
    assert got[("store-cph", "tee/s")] == 7 and got[("store-cph", "cap")] == 0 and got[("store-aar", "tee/m")] == 5
    assert {e["type"] for e in sim.events()[-3:]} == {"external_reset"}


def test_adjust_sends_deltas(sim: KachingSimulator, conn: KachingConnector) -> None:
    results = conn.execute([op(OpKind.ADJUST, "TEE-S", leg("cph", change=-4)), op(OpKind.ADJUST, "CAP", leg("cph", change=2))])
    assert [r.outcome for r in results] == [Outcome.APPLIED, Outcome.APPLIED]
    got = stock(sim)
    assert got[("store-cph", "tee/s")] == 6 and got[("store-cph", "cap")] == 5
    assert {e["type"] for e in sim.events()[-2:]} == {"external_adjustment"}


def test_move_is_one_adjustment_request_with_both_locations(sim: KachingSimulator, conn: KachingConnector) -> None:
    move = op(OpKind.MOVE, "TEE-S", leg("cph", change=-3), leg("aar", change=3))
    before = sum(sim.request_counts.values())
    [result] = conn.execute([move])
    assert result.outcome is Outcome.APPLIED and "Import of 2 stock value(s)" in result.response
    assert sum(sim.request_counts.values()) == before + 1
    got = stock(sim)
    assert got[("store-cph", "tee/s")] == 7 and got[("store-aar", "tee/s")] == 5


def test_delete_removes_stock_tracking(sim: KachingSimulator, conn: KachingConnector) -> None:
    [result] = conn.execute([op(OpKind.DELETE, "CAP", leg("cph"))])
    assert result.outcome is Outcome.APPLIED
    assert ("store-cph", "cap") not in stock(sim)


def test_batches_separate_modes_and_repeated_keys(conn: KachingConnector) -> None:
    ops = [op(OpKind.RESET, "TEE-S", leg("cph", expected=1), op_id="r1"),
           op(OpKind.ADJUST, "TEE-S", leg("cph", change=1), op_id="a1"),
           op(OpKind.ADJUST, "TEE-S", leg("cph", change=2), op_id="a2"),
           op(OpKind.DELETE, "CAP", leg("cph"), op_id="d1")]
    assert [[o.id for o in b] for b in conn.batches(ops)] == [["r1"], ["a1"], ["a2"], ["d1"]]
    many = [op(OpKind.RESET, f"X{i}", leg("cph", expected=1), op_id=f"x{i}") for i in range(MAX_VALUES + 1)]
    wide = KachingConnector(
        TargetContext(name="k", kind="kaching", base_url="http://127.0.0.1", credential=Secret(APIKEY),
                      location_ids=LOCATIONS, item_ids={f"X{i}": f"p{i}" for i in range(MAX_VALUES + 1)},
                      options={"account": "a", "integration": "i"}))
    assert [len(b) for b in wide.batches(many)] == [MAX_VALUES, 1]


def test_initiated_count_mismatch_is_not_reported_applied(conn: KachingConnector) -> None:
    def lying(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"status": "OK", "message": "Import of 1 stock value(s) initiated"})

    liar = KachingConnector(context(), transport=httpx.MockTransport(lying))
    adjust = [op(OpKind.ADJUST, "TEE-S", leg("cph", change=1)), op(OpKind.ADJUST, "CAP", leg("cph", change=1))]
    results = liar.execute(adjust)
    assert {r.outcome for r in results} == {Outcome.IN_DOUBT}
    assert "1 value(s) initiated, but 2 were sent" in (results[0].error or "")
    [reset] = liar.execute([op(OpKind.RESET, "TEE-S", leg("cph", expected=1)), op(OpKind.RESET, "CAP", leg("cph", expected=1))])[:1]
    assert reset.outcome is Outcome.FAILED


@pytest.mark.parametrize(("status", "body", "outcome", "fragment"), [
    (200, b'{"status":"ERROR","message":"Unknown stock location: x"}', Outcome.FAILED, "Unknown stock location: x"),
    (200, b'{"error":"queue is paused"}', Outcome.FAILED, "queue is paused"),
    (200, b'{"ok":true}', Outcome.IN_DOUBT, "no known shape"),
    (202, b"<html>Sign in</html>", Outcome.IN_DOUBT, "<html>Sign in</html>"),
])
@pytest.mark.parametrize("mode", ["reset", "adjustment"])
def test_the_answer_is_read_not_trusted(status: int, body: bytes, outcome: Outcome, fragment: str, mode: str) -> None:
    """A 2xx is not success until its body says "Import of N stock value(s) initiated"."""
    def vendor(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, request=request)

    conn = KachingConnector(context(), transport=httpx.MockTransport(vendor))
    ops = ([op(OpKind.RESET, "TEE-S", leg("cph", expected=1))] if mode == "reset"
           else [op(OpKind.ADJUST, "TEE-S", leg("cph", change=1))])
    [result] = conn.execute(ops)
    assert result.outcome is outcome and fragment in (result.error or "") and result.response == body.decode()


class Recording(httpx.BaseTransport):
    """Passes requests on to the sandbox and keeps their URLs (the test reads the query sent)."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner, self.urls = inner, []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(request.url)
        return self.inner.handle_request(request)


def test_the_pasted_back_office_url_is_used_as_is(sim: KachingSimulator) -> None:
    pasted = ("https://us-central1-ka-ching-base.cloudfunctions.net/imports/stock?integration=sandbox-stock-queue"
              "&account=sandbox-account&lang=da")
    ctx = TargetContext(name="kaching-dk", kind="kaching", base_url=pasted, credential=Secret(APIKEY),
                        location_ids=LOCATIONS, item_ids=ITEMS)
    recording = Recording(sim.wsgi_transport())
    conn = KachingConnector(ctx, transport=recording)
    results = conn.execute([op(OpKind.ADJUST, "CAP", leg("cph", change=2))])
    assert [r.outcome for r in results] == [Outcome.APPLIED]
    assert stock(sim)[("store-cph", "cap")] == 5
    [url] = recording.urls
    assert (url.host, url.path) == ("us-central1-ka-ching-base.cloudfunctions.net", "/imports/stock")
    assert dict(url.params) == {"integration": "sandbox-stock-queue", "account": "sandbox-account", "lang": "da",
                                "adjustment": "true", "apikey": APIKEY}


@pytest.mark.parametrize(("url", "message"), [
    (f"https://h.example/imports/stock?account=a&integration=i&apikey={APIKEY}", "it holds the apikey"),
    ("https://h.example/imports/products?account=a&integration=i", "'products' import queue"),
    ("https://h.example/imports/stock?account=a", "needs integration"),
])
def test_a_url_the_connector_cannot_use_is_a_config_error_without_the_key(url: str, message: str) -> None:
    ctx = TargetContext(name="kaching-dk", kind="kaching", base_url=url, credential=Secret(APIKEY),
                        location_ids=LOCATIONS, item_ids=ITEMS)
    with pytest.raises(ConfigError, match=message) as info:
        KachingConnector(ctx)
    assert APIKEY not in str(info.value) + repr(info.value.problems)


def test_unknown_location_error_verbatim_and_no_apikey(sim: KachingSimulator) -> None:
    connector = KachingConnector(context(locations={"cph": "store-nowhere"}), transport=sim.wsgi_transport())
    with pytest.raises(VendorError) as info:
        connector.execute([op(OpKind.RESET, "CAP", leg("cph", expected=1))])
    error = info.value
    assert error.body is not None and json.loads(error.body)["message"] == "Unknown stock location: store-nowhere"
    for text in (str(error), error.body, repr(error), str(error.hint)):
        assert APIKEY not in text


def test_apikey_is_sent_as_query_parameter_but_never_logged(sim: KachingSimulator, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    connector = KachingConnector(context(), transport=sim.wsgi_transport())
    [result] = connector.execute([op(OpKind.RESET, "CAP", leg("cph", expected=4))])
    assert result.outcome is Outcome.APPLIED  # the simulator accepted the three query parameters
    with pytest.raises(VendorError):
        KachingConnector(context(locations={"cph": "store-nowhere"}), transport=sim.wsgi_transport()).execute(
            [op(OpKind.RESET, "CAP", leg("cph", expected=1))])
    assert caplog.records and all(APIKEY not in r.getMessage() for r in caplog.records)
    assert APIKEY not in result.response


def test_wrong_apikey_error_never_shows_the_key(sim: KachingSimulator) -> None:
    ctx = context()
    ctx = TargetContext(**{**ctx.__dict__, "credential": Secret("kc-wrong-key-987")})
    with pytest.raises(VendorError) as info:
        KachingConnector(ctx, transport=sim.wsgi_transport()).execute([op(OpKind.RESET, "CAP", leg("cph", expected=1))])
    assert "kc-wrong-key-987" not in f"{info.value} {info.value.body} {info.value!r}"
    assert info.value.status == 403


def test_missing_account_option_is_a_config_error() -> None:
    ctx = TargetContext(name="kaching-dk", kind="kaching", base_url="http://127.0.0.1", credential=Secret(APIKEY),
                        location_ids=LOCATIONS, item_ids=ITEMS, options={"integration": "q"})
    with pytest.raises(ConfigError, match="account"):
        KachingConnector(ctx)


def test_over_loopback_and_deltas_unverifiable(sim: KachingSimulator) -> None:
    with ServerThread(sim) as server:
        connector = KachingConnector(context(server.url))
        adjust = op(OpKind.ADJUST, "TEE-S", leg("aar", change=5))
        [result] = connector.execute([adjust])
        assert result.outcome is Outcome.APPLIED
        assert connector.verify(adjust) is Verification.UNKNOWN
        connector.close()
    assert stock(sim)[("store-aar", "tee/s")] == 7


# --- end to end: a sandbox in its own process, a repository on disk, plan/apply via workflow ------

E2E_ENV = {"E2E_KACHING_KEY": APIKEY}


def e2e_repo(root: Path, url: str, cph_id: str = "store-cph", prune: bool = False, pasted: bool = False) -> Path:
    (root / "stock").mkdir(parents=True)
    ids = "account=sandbox-account&integration=sandbox-stock-queue"
    url, options = (f"{url}/imports/stock?{ids}", "{}") if pasted else (
        url, "{account: sandbox-account, integration: sandbox-stock-queue}")
    (root / "reconciler.yaml").write_text(textwrap.dedent(f"""\
        version: 1
        locations: {{copenhagen: {{}}, aarhus: {{}}}}
        targets:
          kaching-dk:
            kind: kaching
            url: {url}
            credentials_env: E2E_KACHING_KEY
            prune: {str(prune).lower()}
            locations: {{copenhagen: "{cph_id}", aarhus: "store-aar"}}
            options: {options}
        """))
    (root / "stock" / "catalog.yaml").write_text(textwrap.dedent("""\
        items:
          TEE-S: {ids: {kaching-dk: {product: tee, variant: s}}}
          TEE-M: {ids: {kaching-dk: {product: tee, variant: m}}}
          CAP: {ids: {kaching-dk: cap}}
        """))
    write_locations(root, {"TEE-S": 10, "CAP": 3}, {"TEE-S": 2, "TEE-M": 1})
    return root


def write_locations(root: Path, cph: dict[str, int], aar: dict[str, int], strategy: str | None = None) -> None:
    for name, stock_ in (("copenhagen", cph), ("aarhus", aar)):
        data: dict[str, Any] = {"location": name}
        if strategy:
            data["strategy"] = strategy
        data["stock"] = {"kaching-dk": stock_}
        (root / "stock" / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxProcess]:
    fx = tmp_path / "fixtures.json"
    fx.write_text(json.dumps(fixtures()))
    # delay 0: the queue applies values before answering, so the test needs no polling
    with SandboxProcess("kaching", state=tmp_path / "kaching.db", fixtures_path=fx, token=APIKEY,
                        options={"delay": "0"}) as sb:
        yield sb


def live_stock(sb: SandboxProcess) -> dict[tuple[str, str], int]:
    rows = httpx.get(sb.url + "/_sandbox/stock").json()["stock"]
    return {(r["location"], "/".join(r["item"].values())): r["quantity"] for r in rows}


def test_e2e_plan_apply_move_and_sales(tmp_path: Path, sandbox: SandboxProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.workflow import apply_saved_plan, plan_project

    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    repo = e2e_repo(tmp_path / "repo", sandbox.url)
    first = plan_project(repo, env=E2E_ENV)
    assert "kaching-dk" in first.unreadable_targets
    assert {op.kind for op in first.changes} == {OpKind.RESET}
    assert apply_saved_plan(repo, first, env=E2E_ENV).ok
    assert live_stock(sandbox)[("store-cph", "tee/s")] == 10 and live_stock(sandbox)[("store-aar", "tee/m")] == 1
    assert not plan_project(repo, env=E2E_ENV).has_changes

    # an edit: 3 tees move copenhagen -> aarhus (one native request), the cap goes up by 2
    write_locations(repo, {"TEE-S": 7, "CAP": 5}, {"TEE-S": 5, "TEE-M": 1})
    edit = plan_project(repo, env=E2E_ENV)
    assert sorted((op.kind, op.item) for op in edit.changes) == [(OpKind.ADJUST, "CAP"), (OpKind.MOVE, "TEE-S")]
    # merge: sales made between plan and apply survive, since the import is a delta
    sold = httpx.post(sandbox.url + "/_sandbox/sell", json={"count": 3}).json()["sold"]
    assert apply_saved_plan(repo, edit, env=E2E_ENV).ok
    expected = {("store-cph", "tee/s"): 7, ("store-cph", "cap"): 5, ("store-aar", "tee/s"): 5, ("store-aar", "tee/m"): 1}
    for sale in sold:
        expected[(sale["location"], "/".join(sale["item"].values()))] -= 1
    assert live_stock(sandbox) == expected

    # replace: resets to D overwrite what was sold (write-only: B stands in for A, so the
    # planner only resets where D differs from B; sales are invisible to it)
    write_locations(repo, {"TEE-S": 8, "CAP": 5}, {"TEE-S": 5, "TEE-M": 1}, strategy="replace")
    replace = plan_project(repo, env=E2E_ENV)
    assert [(op.kind, op.item, op.location) for op in replace.changes] == [(OpKind.RESET, "TEE-S", "copenhagen")]
    httpx.post(sandbox.url + "/_sandbox/sell", json={"count": 2})
    assert apply_saved_plan(repo, replace, env=E2E_ENV).ok
    assert live_stock(sandbox)[("store-cph", "tee/s")] == 8


def test_e2e_with_the_pasted_back_office_url(tmp_path: Path, sandbox: SandboxProcess,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.config import load_project
    from reconciler.sandbox._process import planned_sandboxes
    from reconciler.workflow import apply_saved_plan, plan_project

    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    repo = e2e_repo(tmp_path / "repo", sandbox.url, pasted=True)
    assert apply_saved_plan(repo, plan_project(repo, env=E2E_ENV), env=E2E_ENV).ok
    assert live_stock(sandbox)[("store-cph", "tee/s")] == 10
    assert not plan_project(repo, env=E2E_ENV).has_changes
    # `reconciler sandbox up` starts a sandbox that accepts the account and integration of the url
    [planned] = planned_sandboxes(load_project(repo))
    assert planned.options == {"account": "sandbox-account", "integration": "sandbox-stock-queue"}
    assert planned.url == sandbox.url


def test_e2e_unknown_location_error_verbatim(tmp_path: Path, sandbox: SandboxProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.workflow import apply_saved_plan, plan_project

    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    repo = e2e_repo(tmp_path / "repo", sandbox.url, cph_id="store-nowhere")
    report = apply_saved_plan(repo, plan_project(repo, env=E2E_ENV), env=E2E_ENV)
    failed = [o for o in report.ops if o.status == "failed"]
    assert failed and {o.location for o in failed} >= {"copenhagen"}
    for o in failed:
        assert "Unknown stock location: store-nowhere" in (o.error or "") + o.response
        assert APIKEY not in (o.error or "") + o.response


def test_e2e_missing_credential_fails_before_any_request(tmp_path: Path, sandbox: SandboxProcess,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.errors import CredentialsError
    from reconciler.workflow import apply_saved_plan, plan_project

    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    monkeypatch.delenv("E2E_KACHING_KEY", raising=False)
    repo = e2e_repo(tmp_path / "repo", sandbox.url)
    # a write-only target is never contacted while planning (a CI plan job holds read-only
    # credentials only, docs/gitops.md): planning needs no key; applying fails before any request
    plan = plan_project(repo, env={})
    with pytest.raises(CredentialsError, match="E2E_KACHING_KEY"):
        apply_saved_plan(repo, plan, env={})
    assert httpx.get(sandbox.url + "/_sandbox/requests").json() == {}


def test_e2e_prune_deletes(tmp_path: Path, sandbox: SandboxProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.workflow import apply_saved_plan, plan_project

    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    repo = e2e_repo(tmp_path / "repo", sandbox.url, prune=True)
    assert apply_saved_plan(repo, plan_project(repo, env=E2E_ENV), env=E2E_ENV).ok
    write_locations(repo, {"TEE-S": 10}, {"TEE-S": 2, "TEE-M": 1})
    plan = plan_project(repo, env=E2E_ENV, guard_overrides={"allow_mass_delete": True})
    assert [(op.kind, op.item) for op in plan.changes] == [(OpKind.DELETE, "CAP")]
    assert apply_saved_plan(repo, plan, env=E2E_ENV).ok
    assert ("store-cph", "cap") not in live_stock(sandbox)
    assert not plan_project(repo, env=E2E_ENV).has_changes


def test_e2e_an_adjustment_answered_502_after_the_commit_is_in_doubt_never_resent(
        tmp_path: Path, sandbox: SandboxProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over real HTTP: the sandbox commits the adjustment=true import, then answers 502 (then
    504). Nothing tells whether it landed, so the operation is in doubt and is not sent again,
    neither by the http layer nor by a second apply of the plan: no unit is doubled. A reset
    answered the same way is simply sent again (absolute)."""
    from reconciler.workflow import apply_saved_plan, plan_project

    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    repo = e2e_repo(tmp_path / "repo", sandbox.url)
    assert apply_saved_plan(repo, plan_project(repo, env=E2E_ENV), env=E2E_ENV).ok
    for status, cap in ((502, 5), (504, 7)):
        write_locations(repo, {"TEE-S": 10, "CAP": cap}, {"TEE-S": 2, "TEE-M": 1})
        edit = plan_project(repo, env=E2E_ENV)
        assert [(o.kind, o.item) for o in edit.changes] == [(OpKind.ADJUST, "CAP")]
        httpx.put(sandbox.url + "/_sandbox/faults", json={"error_next_writes": 1, "error_after_write_status": status})
        posts = httpx.get(sandbox.url + "/_sandbox/requests").json()["POST /imports/stock"]
        report = apply_saved_plan(repo, edit, env=E2E_ENV)
        assert [o.status for o in report.ops] == ["in_doubt"], report.ops
        assert f"HTTP {status}" in (report.ops[0].error or "")
        assert live_stock(sandbox)[("store-cph", "cap")] == cap  # landed once
        assert httpx.get(sandbox.url + "/_sandbox/requests").json()["POST /imports/stock"] == posts + 1
        try:
            again = apply_saved_plan(repo, edit, env=E2E_ENV)
            assert all(o.status != "applied" for o in again.ops)
        except ReconcilerError:
            pass  # refused: the operation is in doubt until resolved
        assert httpx.get(sandbox.url + "/_sandbox/requests").json()["POST /imports/stock"] == posts + 1
        assert live_stock(sandbox)[("store-cph", "cap")] == cap  # never twice
        resolve(repo, report.ops[0].op_id)

    # a reset answered 502 after its commit is sent again: absolute, so setting it twice is harmless
    write_locations(repo, {"TEE-S": 4, "CAP": 7}, {"TEE-S": 2, "TEE-M": 1}, strategy="replace")
    reset = plan_project(repo, env=E2E_ENV)
    assert [(o.kind, o.item) for o in reset.changes] == [(OpKind.RESET, "TEE-S")]
    httpx.put(sandbox.url + "/_sandbox/faults", json={"error_next_writes": 1, "error_after_write_status": 502})
    assert apply_saved_plan(repo, reset, env=E2E_ENV).ok
    assert live_stock(sandbox)[("store-cph", "tee/s")] == 4


def resolve(repo: Path, op_id: str) -> None:
    """Settle an in-doubt operation as applied, as the user does after checking Ka-ching."""
    from click.testing import CliRunner

    from reconciler.cli import _register, cli

    _register()
    result = CliRunner().invoke(cli, ["-C", str(repo), "resolve", op_id, "--applied"])
    assert result.exit_code == 0, result.output


def test_retries_429_and_5xx_then_applies(sim: KachingSimulator, conn: KachingConnector) -> None:
    from reconciler.connectors._http import RetryPolicy

    sim.faults.update({"rate_429": 0.3, "rate_5xx": 0.3, "retry_after_s": 0, "seed": 3})
    conn.http.retry = RetryPolicy(max_attempts=30, base=0.0, max_wait=0.0, jitter=0.0)
    results = [r for n in range(4) for r in conn.execute([op(OpKind.RESET, "TEE-S", leg("cph", expected=20 + n),
                                                               op_id=f"r{n}")])]
    assert [r.outcome for r in results] == [Outcome.APPLIED] * 4
    assert sim.request_counts["POST /imports/stock"] > 4  # some answers were 429/5xx and were retried
    assert stock(sim)[("store-cph", "tee/s")] == 23
