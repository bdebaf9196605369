"""The Zettle connector on inventory v3 against the strict simulator: STORE discovery, Link
paging, 204 movements verified by re-reading, every plausible behaviour where Zettle does not
document one, and ambiguous answers that must never double a movement (issue 16 points 3, 4).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest

from reconciler.connectors.base import Outcome, Secret, TargetContext
from reconciler.connectors.zettle import ZettleConnector
from reconciler.errors import ConfigError, VendorRejected
from reconciler.model import OpKind, Settings
from reconciler.sandbox._core import ServerThread
from reconciler.sandbox.zettle import ZettleSimulator

try:
    from test_zettle import ITEMS, LOC, P1, P3, STORE, V1, V2, V3, V4, fixtures, op, sell, stock  # type: ignore[import-not-found]
except ImportError:  # tests/connectors is a package
    from .test_zettle import ITEMS, LOC, P1, P3, STORE, V1, V2, V3, V4, fixtures, op, sell, stock  # type: ignore[no-redef]


def ctx(base_url: str = "http://127.0.0.1", store: str = "STORE", **options: Any) -> TargetContext:
    return TargetContext(name="zettle-main", kind="zettle", base_url=base_url, credential=Secret(ZettleSimulator.default_token),
                         location_ids={LOC: store}, item_ids=ITEMS, options=options)


def simulator(**options: Any) -> ZettleSimulator:
    return ZettleSimulator(fixtures=fixtures(), options=options or None)


class Hooked(httpx.BaseTransport):
    """Passes requests to the simulator; ``after_write`` may act after a committed POST /v3/movements
    (a till sale in between, a gateway error in place of the answer). Keeps every request."""

    def __init__(self, sim: ZettleSimulator, after_write: Callable[[httpx.Request], httpx.Response] | None = None,
                 rewrite: Callable[[httpx.Request, httpx.Response], httpx.Response] | None = None) -> None:
        self.inner, self.after_write, self.rewrite, self.requests = sim.wsgi_transport(), after_write, rewrite, []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = self.inner.handle_request(request)
        if self.after_write and request.method == "POST" and request.url.path == "/v3/movements":
            response.read()
            return self.after_write(request)
        return self.rewrite(request, response) if self.rewrite else response


def connector(sim: ZettleSimulator, **kw: Any) -> ZettleConnector:
    transport = kw.pop("transport", None) or sim.wsgi_transport()
    return ZettleConnector(ctx(**kw), transport=transport)


# --- the STORE is discovered, not typed --------------------------------------------------------------


def test_the_word_store_finds_the_default_store_inventory() -> None:
    sim = simulator()
    recording = Hooked(sim)
    conn = ZettleConnector(ctx(), transport=recording)
    assert conn.system_locations()["STORE"] == STORE
    assert conn.read_stock()[(LOC, "TEE-S")].quantity == 10
    assert [r.url.path for r in recording.requests][:2] == ["/v3/inventories", f"/v3/stock/{STORE}"]


def test_a_store_uuid_is_checked_against_the_inventories() -> None:
    sim = simulator()
    assert connector(sim, store=STORE.upper()).read_stock()[(LOC, "TEE-S")].quantity == 10
    bin_uuid = {loc.type: loc.uuid for loc in sim.store.locations()}["BIN"]
    with pytest.raises(ConfigError, match="is not a STORE inventory"):
        connector(sim, store=bin_uuid).read_stock()


def test_a_store_id_not_listed_is_a_config_error_naming_the_stores() -> None:
    with pytest.raises(ConfigError, match=f"shop-1 is not a STORE inventory .*lists {STORE}"):
        connector(simulator(), store="shop-1").read_stock()


def test_a_bad_api_version_is_a_config_error_before_any_request() -> None:
    with pytest.raises(ConfigError, match="api_version must be v3 or v2"):
        ZettleConnector(ctx(api_version="v4"), transport=httpx.MockTransport(lambda r: pytest.fail("sent")))


def test_validate_names_the_line_of_a_bad_api_version(tmp_path: Path) -> None:
    from reconciler.config.loader import load

    (tmp_path / "stock").mkdir()
    (tmp_path / "stock" / "catalog.yaml").write_text("items: {}\n")
    (tmp_path / "reconciler.yaml").write_text(textwrap.dedent("""\
        version: 1
        locations: {oslo: {}}
        targets:
          zettle-main:
            kind: zettle
            url: https://inventory.izettle.com
            credentials_env: ZETTLE_TOKEN
            locations:
              oslo: shop-1
            options: {api_version: v4}
        """))
    found = [(p.line, p.message) for p in load(tmp_path).problems]
    assert found == [(10, "target 'zettle-main': options.api_version must be v3 or v2, not 'v4'")]


# --- reads --------------------------------------------------------------------------------------------


def test_stock_is_read_through_every_link_page() -> None:
    sim = simulator(page_size=1)
    recording = Hooked(sim)
    got = ZettleConnector(ctx(), transport=recording).read_stock()
    assert {k: r.quantity for k, r in got.items()} == {(LOC, "TEE-S"): 10, (LOC, "TEE-M"): 4, (LOC, "MUG"): 0}
    assert got[(LOC, "TEE-S")].settings == Settings(low_stock_level=2)  # from the stock rows
    assert sum(r.url.path.startswith("/v3/stock") for r in recording.requests) == 3  # 3 rows, 1 per page


def test_a_next_link_to_another_host_is_refused_and_never_called() -> None:
    sim = simulator(page_size=1)

    def elsewhere(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if "link" in response.headers:
            response.headers["link"] = response.headers["link"].replace("http://127.0.0.1", "https://evil.example")
        return response

    transport = Hooked(sim, rewrite=elsewhere)
    with pytest.raises(VendorRejected, match="another host"):
        ZettleConnector(ctx(), transport=transport).read_stock()
    assert "evil.example" not in {r.url.host for r in transport.requests}


@pytest.mark.parametrize("zeros", ["listed", "omitted"])
def test_reads_and_writes_under_either_zero_balance_behaviour(zeros: str) -> None:
    """Zettle does not say whether /v3/stock lists a tracked variant holding 0."""
    sim = simulator(v3_zero_balances=zeros)
    sell(sim, V2, P1, 4)  # TEE-M to 0; its product stays listed through TEE-S
    conn = connector(sim)
    got = {k: r.quantity for k, r in conn.read_stock().items()}
    assert got[(LOC, "TEE-M")] == 0
    # MUG's product holds only 0: listed as 0, or (omitted) indistinguishable from untracked
    assert got.get((LOC, "MUG")) == (0 if zeros == "listed" else None)
    results = conn.execute([op(OpKind.ADJUST, "MUG", change=3), op(OpKind.RESET, "TEE-M", expected=2, actual=0)])
    assert [r.outcome for r in results] == [Outcome.APPLIED, Outcome.APPLIED]
    assert stock(sim)[V4]["quantity"] == 3 and stock(sim)[V2]["quantity"] == 2
    assert [r.actual_after for r in results] == [{LOC: 3}, {LOC: 2}]
    [deleted] = conn.execute([op(OpKind.DELETE, "MUG", op_id="del-mug")])
    assert deleted.outcome is Outcome.APPLIED and stock(sim)[V4]["tracked"] is False


@pytest.mark.parametrize("options", [{"v3_untracked_moves": "refuse"}, {"v3_untracked_moves": "accept"},
                                     {"lenient": True, "page_size": 2}])
def test_adopting_an_untracked_product_under_either_untracked_move_behaviour(options: dict[str, Any]) -> None:
    """Zettle does not say whether v3 refuses a movement of an untracked product: the connector
    enables tracking first either way, and counts from the balance Zettle kept while untracked."""
    sim = simulator(**options)
    recording = Hooked(sim)
    [result] = ZettleConnector(ctx(), transport=recording).execute([op(OpKind.RESET, "CAP", expected=9, actual=None)])
    assert result.outcome is Outcome.APPLIED and "started tracking" in result.response
    assert stock(sim)[V3]["quantity"] == 9 and stock(sim)[V3]["tracked"] is True
    assert [m["change"] for m in sim.movements()] == [2]  # 7 kept while untracked, +2
    paths = [f"{r.method} {r.url.path}" for r in recording.requests]
    assert paths.index("POST /v3/products") < paths.index("POST /v3/movements")


# --- writes: 204 and what is not 204 -------------------------------------------------------------------


def test_a_204_is_verified_by_rereading_the_balances_it_touched() -> None:
    sim = simulator()
    recording = Hooked(sim)
    conn = ZettleConnector(ctx(), transport=recording)
    [result] = conn.execute([op(OpKind.ADJUST, "TEE-S", change=5)])
    paths = [f"{r.method} {r.url.path}" for r in recording.requests]
    assert paths.index("POST /v3/movements") < len(paths) - 1 and paths[-1] == f"GET /v3/stock/{STORE}"
    assert result.outcome is Outcome.APPLIED and result.actual_after == {LOC: 15}


def test_a_sale_between_the_204_and_the_reread_is_reported_not_hidden() -> None:
    sim = simulator()

    def sale_after(request: httpx.Request) -> httpx.Response:
        sell(sim, V1, P1, 1)
        return httpx.Response(204, request=request)

    [result] = connector(sim, transport=Hooked(sim, sale_after)).execute([op(OpKind.ADJUST, "TEE-S", change=5)])
    assert result.outcome is Outcome.APPLIED and result.actual_after == {LOC: 14}
    assert "expected 15, now 14" in result.response


def test_a_2xx_of_unknown_shape_is_verified_and_kept_verbatim() -> None:
    sim = simulator(movements_answer="200-body")
    [result] = connector(sim).execute([op(OpKind.ADJUST, "TEE-S", change=2)])
    assert result.outcome is Outcome.APPLIED and '{"accepted":1}' in result.response.replace(" ", "")
    assert "verified applied by re-reading" in result.response and stock(sim)[V1]["quantity"] == 12
    assert len(sim.movements()) == 1


def test_a_2xx_carrying_an_error_is_failed_with_the_body_when_nothing_moved() -> None:
    sim = simulator(movements_answer="200-error")
    [result] = connector(sim).execute([op(OpKind.ADJUST, "TEE-S", change=2)])
    assert result.outcome is Outcome.FAILED and "INTERNAL_ERROR" in result.response
    assert "verified NOT applied" in (result.error or "") and stock(sim)[V1]["quantity"] == 10
    assert sim.movements() == []


def gateway_error_after(sim: ZettleSimulator, sale: bool) -> Callable[[httpx.Response], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        if sale:
            sell(sim, V1, P1, 1)  # a till sale lands between the write and our re-read
        return httpx.Response(502, json={"error": "bad gateway"}, request=request)

    return answer


def test_ambiguous_answer_with_a_sale_in_between_is_in_doubt_not_resent() -> None:
    sim = simulator()
    conn = connector(sim, transport=Hooked(sim, gateway_error_after(sim, sale=True)))
    [adjust] = conn.execute([op(OpKind.ADJUST, "TEE-S", change=5)])
    assert adjust.outcome is Outcome.IN_DOUBT and "before 10, expected 15, now 14" in (adjust.error or "")
    assert "bad gateway" in adjust.response  # the answer, verbatim
    assert [m["change"] for m in sim.movements() if m["source"] == "V3"] == [5]  # sent once


def test_an_ambiguous_reset_fails_so_the_next_apply_rereads_and_sends_the_difference() -> None:
    sim = simulator()
    conn = connector(sim, transport=Hooked(sim, gateway_error_after(sim, sale=True)))
    [reset] = conn.execute([op(OpKind.RESET, "TEE-S", expected=20, actual=10)])
    assert reset.outcome is Outcome.FAILED and "sends it again" in (reset.error or "")
    [again] = connector(sim).execute([op(OpKind.RESET, "TEE-S", expected=20, actual=19, op_id="r2")])
    assert again.outcome is Outcome.APPLIED and stock(sim)[V1]["quantity"] == 20


def test_many_movements_under_gateway_errors_are_never_doubled() -> None:
    """Issue 16 point 3 over real HTTP: every other committed write is answered 502 or 504."""
    sim = simulator()
    sim.faults.update({"error_after_write": 0.5, "seed": 11})
    changes = [3, -2, 5, -1, 4, -3, 2, 1, -4, 6, -2, 2, 1, -1, 3, -5, 2, 4, -2, 1]
    with ServerThread(sim) as server:
        conn = connector(sim, base_url=server.url)
        outcomes = []
        for n, change in enumerate(changes):
            sim.faults.update({"error_after_write_status": 504 if n % 2 else 502})
            [result] = conn.execute([op(OpKind.ADJUST, "TEE-S", change=change, op_id=f"a{n}")])
            outcomes.append(result.outcome)
        conn.close()
    assert outcomes == [Outcome.APPLIED] * len(changes)  # each ambiguous answer verified by re-reading
    moved = [m["change"] * (1 if m["to_uuid"] == STORE else -1) for m in sim.movements()]
    assert moved == changes and stock(sim)[V1]["quantity"] == 10 + sum(changes)
    assert sim.request_counts["POST /v3/movements"] == len(changes)  # no request sent twice


@pytest.mark.parametrize(("version", "path", "message"), [
    ("v3", "/v3/products", "not the documented 204"),
    ("v2", "/organizations/self/inventory", "without the documented"),
])
def test_tracking_answer_not_documented_stops_the_batch_before_any_movement(version: str, path: str, message: str) -> None:
    sim = simulator()

    def undocumented(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.method == "POST" and request.url.path == path:
            return httpx.Response(200, json={"developerMessage": "queued", "errorType": "LATER"}, request=request)
        return response

    with pytest.raises(VendorRejected, match=message):
        connector(sim, transport=Hooked(sim, rewrite=undocumented), api_version=version).execute(
            [op(OpKind.ADJUST, "CAP", change=1)])
    assert sim.movements() == []


# --- v1/v2 behind the switch ---------------------------------------------------------------------------


def test_v2_against_retired_paths_says_so() -> None:
    sim = simulator(v1v2="gone")
    with pytest.raises(VendorRejected, match="retired"):
        connector(sim, api_version="v2").read_stock()
    assert connector(sim).read_stock()[(LOC, "TEE-S")].quantity == 10


def test_settings_are_written_and_read_back_through_the_stock_rows() -> None:
    sim = simulator()
    conn = connector(sim)
    [result] = conn.execute([op(OpKind.SETTINGS, "TEE-M", settings=Settings(low_stock_level=4))])
    assert result.outcome is Outcome.APPLIED
    assert conn.read_stock()[(LOC, "TEE-M")].settings == Settings(low_stock_level=4)
    assert P3 not in {r["item"]["product"] for r in sim.inspect_stock() if r.get("low_stock_level") == 4}


def test_a_fresh_reread_stands_in_for_the_next_delta_batch_but_never_for_a_reset() -> None:
    sim = simulator()
    recording = Hooked(sim)
    conn = ZettleConnector(ctx(), transport=recording)
    reads = lambda: sum(r.url.path.startswith("/v3/stock") for r in recording.requests)  # noqa: E731
    conn.execute([op(OpKind.ADJUST, "TEE-S", change=1, op_id="a1")])
    assert reads() == 2  # before and after
    conn.execute([op(OpKind.ADJUST, "TEE-S", change=1, op_id="a2")])
    assert reads() == 3  # the previous re-read was the "before"
    sell(sim, V1, P1, 2)  # 12 -> 10, after the last read
    [reset] = conn.execute([op(OpKind.RESET, "TEE-S", expected=15, actual=12, op_id="r1")])
    assert reads() == 5 and stock(sim)[V1]["quantity"] == 15  # a reset reads anew: it moved +5, not +3
    assert "moved by -2" in reset.response
