"""The X-Series sandbox refuses what the vendor documents as wrong: one test per rule, each with
a wrong client; the switches for undocumented behaviour each do what they say."""

from __future__ import annotations

from typing import Any, Iterator

import httpx
import pytest

from reconciler.errors import ConfigError
from reconciler.sandbox.xseries import XSeriesSimulator

OUTLET, OUTLET2 = "o-main", "o-north"
FIXTURES = {
    "locations": [{"id": OUTLET}, {"id": OUTLET2}],
    "items": [{"id": "p-plain"}, {"id": "p-untracked", "track_inventory": False}, {"id": "tee"},
              {"id": "tee-s", "variant_parent_id": "tee"}, {"id": "tee-m", "variant_parent_id": "tee"}],
    "stock": [{"location": OUTLET, "item": "p-plain", "quantity": 10}, {"location": OUTLET, "item": "tee-s", "quantity": 2},
              {"location": OUTLET2, "item": "tee-m", "quantity": 3}],
    "custom_reasons": [{"id": "cr-neg", "type": "NEGATIVE"}],
}


def make(**options: Any) -> tuple[XSeriesSimulator, httpx.Client]:
    sim = XSeriesSimulator(fixtures=FIXTURES, rate_budget=0, **options)
    client = httpx.Client(transport=sim.wsgi_transport(), base_url="http://127.0.0.1",
                          headers={"Authorization": f"Bearer {sim.token}"})
    return sim, client


@pytest.fixture
def xs() -> Iterator[tuple[XSeriesSimulator, httpx.Client]]:
    sim, client = make()
    yield sim, client
    client.close()
    sim.close()


def amount(sim: XSeriesSimulator, outlet: str, product: str) -> float | None:
    return next((r["quantity"] for r in sim.inspect_stock() if (r["location"], r["item"]) == (outlet, product)), None)


def adjust(client: httpx.Client, *items: dict[str, Any], version: str = "2026-01") -> httpx.Response:
    return client.post(f"/api/{version}/stock_adjustments", json={"stock_adjustments": list(items)})


def item(quantity: Any = "+2", reason: str = "STOCK_FOUND", **extra: Any) -> dict[str, Any]:
    return {"product_id": "p-plain", "outlet_id": OUTLET, "quantity": quantity, "reason": reason, **extra}


# --- stock adjustments ----------------------------------------------------------------------------


def test_a_right_adjustment_moves_stock_and_is_listed_by_version(xs: tuple[XSeriesSimulator, httpx.Client]) -> None:
    sim, client = xs
    created = adjust(client, item("+2"), item("-3", "THEFT"), item("-1", "CUSTOM", custom_inventory_adjustment_reason_id="cr-neg"))
    assert created.status_code == 201 and [a["quantity"] for a in created.json()["data"]] == ["+2", "-3", "-1"]
    assert amount(sim, OUTLET, "p-plain") == 8
    listed = client.get("/api/2026-01/stock_adjustments", params={"after": 0}).json()
    assert [a["id"] for a in listed["data"]] == [a["id"] for a in created.json()["data"]]
    after = client.get("/api/2026-01/stock_adjustments", params={"after": listed["version"]["max"]}).json()
    assert after == {"data": []}


@pytest.mark.parametrize(("bad", "fragment"), [
    (item(3), "signed numeric string"),                  # a number, not the documented string
    (item("+2", "DAMAGE"), "not valid for a positive"),  # a negative reason on a positive quantity
    (item("-2", "STOCK_FOUND"), "not valid for a negative"),
    (item("-2", "RECOUNT"), "not valid"),
    (item("0", "DAMAGE"), "non-zero"),
    (item("-1", "CUSTOM"), "custom_inventory_adjustment_reason_id"),
    (item("+1", "CUSTOM", custom_inventory_adjustment_reason_id="cr-neg"), "NEGATIVE"),
    ({**item(), "product_id": "p-untracked"}, "does not track inventory"),
    ({**item(), "outlet_id": "nowhere"}, "not an outlet"),
])
def test_a_wrong_adjustment_is_refused_and_the_call_writes_nothing(
        xs: tuple[XSeriesSimulator, httpx.Client], bad: dict[str, Any], fragment: str) -> None:
    sim, client = xs
    refused = adjust(client, item("+1"), bad)
    assert refused.status_code == 422 and fragment in refused.json()["error"] and "[1]" in refused.json()["error"]
    assert amount(sim, OUTLET, "p-plain") == 10 and not sim.db.query("SELECT * FROM xs_stock_adjustments")


def test_adjustment_calls_hold_1_to_1000_items_and_exist_from_2026_01(xs: tuple[XSeriesSimulator, httpx.Client]) -> None:
    _, client = xs
    assert adjust(client, *[item("+1")] * 1001).status_code == 422
    assert client.post("/api/2026-01/stock_adjustments", json={"stock_adjustments": []}).status_code == 422
    assert client.post("/api/2026-01/stock_adjustments", json=[item()]).status_code == 422  # not wrapped
    assert adjust(client, item(), version="2.0").status_code == 404
    assert adjust(client, item(), version="2025-10").status_code == 404
    assert adjust(client, *[item("+1")] * 1000).status_code == 201


# --- consignments -------------------------------------------------------------------------------------


def supplier_order(client: httpx.Client) -> str:
    created = client.post("/api/2.0/consignments", json={"name": "o", "outlet_id": OUTLET, "type": "SUPPLIER"})
    return created.json()["data"]["id"]


FULL = {"name": "o", "outlet_id": OUTLET, "type": "SUPPLIER"}


def test_the_old_client_sequence_is_refused(xs: tuple[XSeriesSimulator, httpx.Client]) -> None:
    """OPEN, a single line with received, a partial PUT RECEIVED: what the connector used to send."""
    sim, client = xs
    cid = supplier_order(client)
    line = client.post(f"/api/2.0/consignments/{cid}/products", json={"product_id": "p-plain", "count": 5, "received": 5})
    assert line.status_code == 200 and line.json()["data"]["received"] is None  # dropped on an OPEN order
    partial = client.put(f"/api/2.0/consignments/{cid}", json={"status": "RECEIVED"})
    assert partial.status_code == 422 and "name, outlet_id, type are required" in partial.json()["error"]
    full = client.put(f"/api/2.0/consignments/{cid}", json={**FULL, "status": "RECEIVED"})
    assert full.status_code == 422 and "cannot go from OPEN" in full.json()["error"]
    assert amount(sim, OUTLET, "p-plain") == 10


def test_the_documented_sequence_receives(xs: tuple[XSeriesSimulator, httpx.Client]) -> None:
    sim, client = xs
    cid = supplier_order(client)
    client.post(f"/api/2.0/consignments/{cid}/products", json={"product_id": "p-plain", "count": 5})
    assert client.put(f"/api/2.0/consignments/{cid}", json={**FULL, "status": "SENT"}).status_code == 200
    client.put(f"/api/2.0/consignments/{cid}/products/p-plain", json={"product_id": "p-plain", "received": 5})
    assert client.get(f"/api/2.0/consignments/{cid}").json()["data"]["status"] == "DISPATCHED"  # auto, SENT only
    assert client.put(f"/api/2.0/consignments/{cid}", json={**FULL, "status": "RECEIVED"}).status_code == 200
    assert amount(sim, OUTLET, "p-plain") == 15


@pytest.mark.parametrize(("switch", "line_status", "order_status"), [
    ("drop", 200, "OPEN"), ("reject", 422, "OPEN"), ("dispatch", 200, "DISPATCHED")])
def test_the_open_line_received_switch(switch: str, line_status: int, order_status: str) -> None:
    sim, client = make(open_line_received=switch)
    cid = supplier_order(client)
    line = client.post(f"/api/2.0/consignments/{cid}/products", json={"product_id": "p-plain", "count": 5, "received": 5})
    assert line.status_code == line_status
    assert client.get(f"/api/2.0/consignments/{cid}").json()["data"]["status"] == order_status
    sim.close()


def test_the_partial_status_put_switch_accepts_a_partial_body() -> None:
    sim, client = make(partial_status_put="accept")
    cid = supplier_order(client)
    client.post(f"/api/2.0/consignments/{cid}/products", json={"product_id": "p-plain", "count": 5})
    assert client.put(f"/api/2.0/consignments/{cid}", json={"status": "SENT"}).status_code == 200
    sim.close()


def test_unknown_switch_values_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="open_line_received"):
        XSeriesSimulator(open_line_received="maybe")
    with pytest.raises(ConfigError, match="oldest_version"):
        XSeriesSimulator(oldest_version="latest")


# --- families ----------------------------------------------------------------------------------------------


def test_stopping_tracking_of_one_variant_stops_the_whole_family(xs: tuple[XSeriesSimulator, httpx.Client]) -> None:
    sim, client = xs
    stopped = client.put("/api/2.1/products/tee-s", json={"common": {"track_inventory": False}})
    assert stopped.status_code == 200
    held = {(r["location"], r["item"]) for r in sim.inspect_stock()}
    assert (OUTLET, "tee-s") not in held and (OUTLET2, "tee-m") not in held and (OUTLET, "p-plain") in held
    assert client.get("/api/2.0/products/tee-m").json()["data"]["has_inventory"] is False
    variants = client.get("/api/2.0/search", params={"type": "products", "variant_parent_id": "tee"}).json()["data"]
    assert sorted(p["id"] for p in variants) == ["tee-m", "tee-s"]


# --- dated inventory reads ----------------------------------------------------------------------------------


def test_2026_04_inventory_is_a_post_and_get_is_refused(xs: tuple[XSeriesSimulator, httpx.Client]) -> None:
    sim, client = xs
    assert client.get("/api/2026-04/inventory").status_code == 405
    assert client.post("/api/2026-01/inventory", json={}).status_code == 405
    newest_first = client.post("/api/2026-04/inventory", json={}).json()
    assert [r["version"] for r in newest_first] == sorted((r["version"] for r in newest_first), reverse=True)
    assert "current_inventory_level" in newest_first[0] and "inventory_level" not in newest_first[0]
    client.put("/api/2.1/products/tee-s", json={"common": {"track_inventory": False}})
    live = client.post("/api/2026-04/inventory", json={"sort_direction": "asc"}).json()
    everything = client.post("/api/2026-04/inventory", json={"sort_direction": "asc", "include_deleted": True}).json()
    assert len(everything) == len(live) + 2 and all(r["deleted_at"] is None for r in live)
    assert client.post("/api/2026-04/inventory", json={"size": 5001}).status_code == 422
    assert client.post("/api/2026-04/inventory", json={"page_size": 10}).status_code == 422


def test_negative_levels_are_shown_as_they_are_before_2026_04(xs: tuple[XSeriesSimulator, httpx.Client]) -> None:
    sim, client = xs
    assert adjust(client, item("-12", "DAMAGE")).status_code == 201
    [record] = [r for r in client.get("/api/2026-01/inventory").json()["data"] if r["product_id"] == "p-plain"]
    assert record["inventory_level"] == -2


def test_an_end_of_life_version_is_served_by_the_oldest_supported() -> None:
    sim, client = make(oldest_version="2026-04")
    refused = client.get("/api/2026-01/inventory")
    assert refused.status_code == 405 and "serving 2026-04" in refused.json()["error"]
    assert client.post("/api/2026-01/inventory", json={"sort_direction": "asc"}).status_code == 200
    sim.close()


def test_a_token_without_the_scope_is_refused() -> None:
    sim, client = make(scopes="inventory:read products:write consignments:write:stock_transfer")
    assert adjust(client, item()).status_code == 403
    assert client.get("/api/2026-01/stock_adjustments").status_code == 403  # the GET needs inventory:write too
    refused = client.post("/api/2.0/consignments", json={"name": "o", "outlet_id": OUTLET, "type": "SUPPLIER"})
    assert refused.status_code == 403 and "consignments:write:stock_order" in refused.json()["error"]
    transfer = {"name": "t", "outlet_id": OUTLET, "source_outlet_id": OUTLET2, "type": "OUTLET"}
    assert client.post("/api/2.0/consignments", json=transfer).status_code == 201
    assert amount(sim, OUTLET, "p-plain") == 10
    sim.close()
