"""The X-Series simulator: seed 000 replay, inventory paging, consignments, rate budget, faults, persistence."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from starlette.responses import JSONResponse

sys.path.insert(0, str(Path(__file__).parent.parent))
from json_typed import typed as _typed  # noqa: E402
from reconciler.sandbox._core import ServerThread
from reconciler.sandbox._xseries_common import collection
from reconciler.sandbox.xseries import XSeriesSimulator, inventory_body

SEED = next(Path("/work/shared/seeds").glob("000_*.txt"), None)
OUTLET = "b8ca3a65-0183-11e4-fbb5-2816d2677218"  # the outlet in the seed's payloads
OUTLET2 = "b1e04bd8-f019-11e3-a0f5-b8ca3a64f8f4"
PRODUCT = "b8ca3a65-0183-11e4-fbb5-7988a6ed80f8"
PRODUCT2 = "a0369f1f-9083-11e4-f68e-d26298afef03"
UNAUTHORIZED = {"error": "Access token is not valid"}


class FakeClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def xs_fixture_data(extra_products: int = 0) -> dict[str, Any]:
    items = [{"id": PRODUCT, "sku": "787878", "name": "Bravo"}, {"id": PRODUCT2, "sku": "0003", "name": "Alpha"}]
    items += [{"id": f"p-{i:03d}", "sku": f"S{i:03d}", "name": f"Item {i}"} for i in range(extra_products)]
    stock = [
        {"location": OUTLET, "item": PRODUCT, "quantity": 8, "reorder_point": 5, "reorder_amount": 20},
        {"location": OUTLET2, "item": PRODUCT, "quantity": 19, "reorder_point": 5, "reorder_amount": 20},
        {"location": OUTLET, "item": PRODUCT2, "quantity": 4},
    ]
    stock += [{"location": OUTLET2, "item": f"p-{i:03d}", "quantity": i} for i in range(extra_products)]
    return {
        "locations": [{"id": OUTLET, "name": "Second Outlet"}, {"id": OUTLET2, "name": "Main Outlet"}],
        "items": items,
        "stock": stock,
    }


def xs_client(sim: XSeriesSimulator) -> httpx.Client:
    return httpx.Client(
        transport=sim.wsgi_transport(), base_url="http://shop.retail.lightspeed.app",
        headers={"Authorization": f"Bearer {sim.token}"},
    )


@pytest.fixture
def xs_sim() -> Iterator[XSeriesSimulator]:
    sim = XSeriesSimulator(fixtures=xs_fixture_data(), rate_budget=0)
    yield sim
    sim.close()


@pytest.fixture
def xs_http(xs_sim: XSeriesSimulator) -> Iterator[httpx.Client]:
    with xs_client(xs_sim) as client:
        yield client


def xs_record(client: httpx.Client, product: str, outlet: str) -> dict[str, Any]:
    records = client.get(f"/api/2.0/products/{product}/inventory").json()["data"]
    return next(r for r in records if r["outlet_id"] == outlet)


def xs_put_inventory(client: httpx.Client, product: str, **line: Any) -> httpx.Response:
    return client.put(f"/api/2.1/products/{product}", json={"details": {"inventory": [line]}})


def xs_amounts(client: httpx.Client, product: str) -> tuple[float, float]:
    """(OUTLET2, OUTLET) stock of a product: the sender and the receiver of the transfers below."""
    return xs_record(client, product, OUTLET2)["current_amount"], xs_record(client, product, OUTLET)["current_amount"]


def xs_seed_payloads() -> list[dict[str, Any]]:
    """The two request bodies printed in seed 000, parsed from the document itself."""
    assert SEED is not None, "seed 000 is missing from /work/shared/seeds"
    text, decoder, found, at = SEED.read_text(), json.JSONDecoder(), [], 0
    while (at := text.find('{\n"details"', at)) >= 0:
        payload, end = decoder.raw_decode(text, at)
        found.append(payload)
        at = end
    assert len(found) == 2
    return found


# --- seed 000: the direct update ---------------------------------------------------------------


def test_seed_full_payload_sets_amount_and_reorder_fields(xs_http: httpx.Client) -> None:
    full, _ = xs_seed_payloads()
    response = xs_http.put(f"/api/2.1/products/{PRODUCT}", json=full)
    assert response.status_code == 200
    expected = full["details"]["inventory"][0]
    record = xs_record(xs_http, PRODUCT, OUTLET)
    assert record["current_amount"] == record["inventory_level"] == expected["current_amount"]
    assert record["reorder_point"] == expected["reorder_point"]
    assert record["reorder_amount"] == expected["reorder_amount"]
    body_records = response.json()["data"]["inventory"]
    assert [r for r in body_records if r["outlet_id"] == OUTLET] == [record]


def test_seed_amount_only_payload_keeps_reorder_fields(xs_http: httpx.Client) -> None:
    full, amount_only = xs_seed_payloads()
    xs_http.put(f"/api/2.1/products/{PRODUCT}", json=full)
    amount_only["details"]["inventory"][0]["current_amount"] = 33
    assert xs_http.put(f"/api/2.1/products/{PRODUCT}", json=amount_only).status_code == 200
    record = xs_record(xs_http, PRODUCT, OUTLET)
    assert record["current_amount"] == 33
    assert (record["reorder_point"], record["reorder_amount"]) == (5, 10)


def test_null_reorder_fields_become_empty_string_and_minus_one_clears(xs_http: httpx.Client) -> None:
    nulls = {"outlet_id": OUTLET, "current_amount": 3, "reorder_point": None, "reorder_amount": None}
    assert xs_http.put(f"/api/2.1/products/{PRODUCT}", json={"details": {"inventory": [nulls]}}).status_code == 200
    record = xs_record(xs_http, PRODUCT, OUTLET)
    assert (record["reorder_point"], record["reorder_amount"]) == ("", "")
    clear = {"outlet_id": OUTLET, "current_amount": 3, "reorder_point": -1, "reorder_amount": -1}
    xs_http.put(f"/api/2.1/products/{PRODUCT}", json={"details": {"inventory": [clear]}})
    record = xs_record(xs_http, PRODUCT, OUTLET)
    assert (record["reorder_point"], record["reorder_amount"]) == (None, None)
    # the seed's older name restock_level is reorder_amount
    restock = {"outlet_id": OUTLET2, "current_amount": 1, "restock_level": None}
    xs_http.put(f"/api/2.1/products/{PRODUCT}", json={"details": {"inventory": [restock]}})
    record = xs_record(xs_http, PRODUCT, OUTLET2)
    assert (record["reorder_point"], record["reorder_amount"]) == (5, "")


@pytest.mark.parametrize(
    ("item", "status"),
    [
        ({"current_amount": 1}, 422),
        ({"outlet_id": OUTLET}, 422),
        ({"outlet_id": OUTLET, "current_amount": "21"}, 422),
        ({"outlet_id": OUTLET, "current_amount": True}, 422),
        ({"outlet_id": "no-such-outlet", "current_amount": 1}, 422),
        ({"outlet_id": OUTLET, "current_amount": 1, "reorder_point": "5"}, 422),
    ],
)
def test_invalid_direct_update_changes_nothing(
    xs_sim: XSeriesSimulator, xs_http: httpx.Client, item: dict[str, Any], status: int
) -> None:
    before = xs_http.get("/api/2.0/inventory").json()
    good = {"outlet_id": OUTLET2, "current_amount": 99}
    response = xs_http.put(f"/api/2.1/products/{PRODUCT}", json={"details": {"inventory": [good, item]}})
    assert response.status_code == status
    assert set(response.json()) == {"error"} and response.json()["error"]
    assert xs_http.get("/api/2.0/inventory").json() == before


def test_unknown_product_is_404_and_bad_json_is_400(xs_http: httpx.Client) -> None:
    payload = {"details": {"inventory": [{"outlet_id": OUTLET, "current_amount": 1}]}}
    response = xs_http.put("/api/2.1/products/nope", json=payload)
    assert response.status_code == 404 and "nope" in response.json()["error"]
    response = xs_http.put(
        f"/api/2.1/products/{PRODUCT}", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400 and "JSON" in response.json()["error"]


def test_stop_tracking_retires_inventory_records(xs_sim: XSeriesSimulator, xs_http: httpx.Client) -> None:
    response = xs_http.put(f"/api/2.1/products/{PRODUCT}", json={"common": {"track_inventory": False}})
    assert response.status_code == 200 and response.json()["data"]["track_inventory"] is False
    records = xs_http.get(f"/api/2.0/products/{PRODUCT}/inventory").json()["data"]
    assert records and all(r["deleted_at"] for r in records)
    assert all(s["item"] != PRODUCT for s in xs_sim.inspect_stock())
    payload = {"details": {"inventory": [{"outlet_id": OUTLET, "current_amount": 1}]}}
    assert xs_http.put(f"/api/2.1/products/{PRODUCT}", json=payload).status_code == 422


# --- read side ------------------------------------------------------------------------------


def test_inventory_pages_by_version_until_an_empty_page() -> None:
    sim = XSeriesSimulator(fixtures=xs_fixture_data(extra_products=30), rate_budget=0)
    with xs_client(sim) as client:
        seen, after, pages = [], 0, 0
        while True:
            page = client.get("/api/2.0/inventory", params={"after": after, "page_size": 7}).json()
            if not page["data"]:
                assert page == {"data": []}
                break
            versions = [r["version"] for r in page["data"]]
            assert versions == sorted(versions) and min(versions) > after
            assert page["version"] == {"min": min(versions), "max": max(versions)}
            assert len(page["data"]) <= 7
            seen.extend(page["data"])
            after, pages = page["version"]["max"], pages + 1
        assert len(seen) == 33 and pages == 5
        assert len({r["id"] for r in seen}) == 33
        gaps = {b["version"] - a["version"] for a, b in zip(seen, seen[1:])}
        assert max(gaps) > 1, "versions must not be consecutive"
        bounded = client.get("/api/2.0/inventory", params={"before": seen[3]["version"]}).json()["data"]
        assert [r["id"] for r in bounded] == [r["id"] for r in seen[:3]]
        # an incremental sync after a write sees only the changed record
        xs_put_inventory(client, PRODUCT2, outlet_id=OUTLET, current_amount=2)
        changed = client.get("/api/2.0/inventory", params={"after": after}).json()["data"]
        assert [(r["product_id"], r["current_amount"]) for r in changed] == [(PRODUCT2, 2)]
        assert client.get("/api/2.0/inventory", params={"page_size": "x"}).status_code == 400
    sim.close()


def _python_page(sim: XSeriesSimulator, where: str = "1") -> bytes:
    """The page as the simulator built it before JSON1: a dict per row, encoded by JSONResponse."""
    rows = sim.db.query(f"SELECT * FROM xs_inventory WHERE {where} ORDER BY version")
    return JSONResponse(collection([inventory_body(r) for r in rows])).body


# Every shape a field can take: whole / negative / fractional amounts and costs, reorder values
# as integers, fractions, null and the quirky "", a retired record, ids with non-ASCII and
# characters JSON must escape.
_VARIANT_STOCK = [
    {"location": "out-é", "item": 'p-"q\\"', "quantity": 8, "reorder_point": 5, "reorder_amount": 20},
    {"location": "out-é", "item": "p-\u2028\x01", "quantity": -3, "reorder_point": 2.5, "average_cost": 12.75},
    {"location": "out-é", "item": "p-plain", "quantity": 0.5, "average_cost": 1e-7},
    {"location": "out-é", "item": "p-big", "quantity": 4503599627370495, "average_cost": 3},
]


def test_sql_built_inventory_page_matches_the_python_built_page() -> None:
    fixtures = {
        "locations": [{"id": "out-é", "name": "E"}],
        "items": [{"id": e["item"], "sku": f"S{i}", "name": f"I{i}"} for i, e in enumerate(_VARIANT_STOCK)]
        + [{"id": "p-retired", "sku": "R", "name": "R"}],
        "stock": _VARIANT_STOCK + [{"location": "out-é", "item": "p-retired", "quantity": 1}],
    }
    sim = XSeriesSimulator(fixtures=fixtures, rate_budget=0)
    with xs_client(sim) as client:
        # null reorder values become "" (seed 000); stopping tracking sets deleted_at
        assert xs_put_inventory(client, "p-plain", outlet_id="out-é", current_amount=0.5,
                                reorder_point=None, reorder_amount=7).status_code == 200
        assert client.put("/api/2.1/products/p-retired", json={"common": {"track_inventory": False}}).status_code == 200
        page = client.get("/api/2.0/inventory", params={"page_size": 100})
        assert page.headers["content-type"] == "application/json"
        records = page.json()["data"]
        assert {type(r["reorder_point"]) for r in records} == {int, float, str, type(None)}
        assert any(r["deleted_at"] for r in records) and any(isinstance(r["current_amount"], float) for r in records)
        assert _typed(page.json()) == _typed(json.loads(_python_page(sim)))
        # without exponent-form floats (1e-07 is 1.0e-07 in SQLite) the text is the same, byte for byte
        plain = client.get("/api/2.0/inventory", params={"before": records[2]["version"]})
        assert plain.content == _python_page(sim, f"version < {records[2]['version']}")
        assert client.get("/api/2.0/inventory", params={"after": records[-1]["version"]}).content == b'{"data":[]}'
    sim.close()


@pytest.mark.parametrize(
    "column, stored",
    [("current_amount", 0.1 + 0.2), ("average_cost", 2.0**60), ("current_amount", float("inf")),
     ("reorder_point", "NaN"), ("reorder_amount", "Infinity")],
)
def test_values_sqlite_cannot_write_exactly_take_the_python_page(column: str, stored: Any) -> None:
    """SQLite 3.40 writes REALs with 15 digits and saturates big whole numbers; NaN is not JSON."""
    sim = XSeriesSimulator(fixtures=xs_fixture_data(), rate_budget=0)
    sim.db.execute(f"UPDATE xs_inventory SET {column} = ? WHERE product_id = ?", (stored, PRODUCT2))
    with xs_client(sim) as client:
        response = client.get("/api/2.0/inventory")
        if isinstance(stored, str) or stored == float("inf"):  # refused as before: a 500, never wrong JSON
            assert response.status_code == 500
        else:
            assert response.status_code == 200
            assert response.content == _python_page(sim)
            record = next(r for r in response.json()["data"] if r["product_id"] == PRODUCT2)
            assert record[column] == (int(stored) if stored == 2.0**60 else stored)
    sim.close()


def test_catalog_and_dated_inventory_path(xs_http: httpx.Client) -> None:
    outlets = xs_http.get("/api/2.0/outlets/").json()["data"]
    assert {o["id"]: o["name"] for o in outlets} == {OUTLET: "Second Outlet", OUTLET2: "Main Outlet"}
    by_sku = xs_http.get("/api/2.0/products", params={"sku": "787878"}).json()["data"]
    assert [(p["id"], p["name"], p["track_inventory"]) for p in by_sku] == [(PRODUCT, "Bravo", True)]
    deprecated = xs_http.get(f"/api/2.0/products/{PRODUCT}/inventory").json()
    assert len(deprecated["data"]) == 2
    assert xs_http.get(f"/api/2026-01/inventory/{PRODUCT}").json() == deprecated
    assert xs_http.get(f"/api/2.0/products/missing/inventory").status_code == 404


# --- consignments -------------------------------------------------------------------------------


def xs_create(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = client.post("/api/2.0/consignments", json={"data": {"name": "op", **fields}})
    assert response.status_code == 201, response.text
    return response.json()["data"]


def xs_status(client: httpx.Client, cid: str, status: str) -> httpx.Response:
    """A status PUT as documented: name, outlet_id, type (and the set outlet/supplier ids) with it."""
    current = client.get(f"/api/2.0/consignments/{cid}").json()["data"]
    keep = {k: current[k] for k in ("name", "outlet_id", "type", "source_outlet_id", "supplier_id") if current.get(k)}
    return client.put(f"/api/2.0/consignments/{cid}", json={"data": {**keep, "status": status}})


def test_supplier_order_receives_stock(xs_sim: XSeriesSimulator, xs_http: httpx.Client) -> None:
    order = xs_create(xs_http, outlet_id=OUTLET, type="SUPPLIER", reference="op-1")
    cid = order["id"]
    assert order["status"] == "OPEN" and order["reference"] == "op-1"
    line = xs_http.post(f"/api/2.0/consignments/{cid}/products", json={"data": {"product_id": PRODUCT, "count": 10}})
    assert line.status_code == 200 and line.json()["data"]["count"] == "10.00000"
    assert xs_status(xs_http, cid, "SENT").status_code == 200
    assert xs_status(xs_http, cid, "DISPATCHED").status_code == 200
    refused = xs_status(xs_http, cid, "RECEIVED")
    assert refused.status_code == 422 and "received" in refused.json()["error"]
    assert xs_record(xs_http, PRODUCT, OUTLET)["current_amount"] == 8
    xs_http.put(f"/api/2.0/consignments/{cid}/products/{PRODUCT}", json={"received": "7"})
    version_before = xs_record(xs_http, PRODUCT, OUTLET)["version"]
    done = xs_status(xs_http, cid, "RECEIVED")
    assert done.status_code == 200 and done.json()["data"]["received_at"]
    record = xs_record(xs_http, PRODUCT, OUTLET)
    assert record["current_amount"] == 15 and record["version"] > version_before
    found = xs_http.get("/api/2.0/consignments", params={"reference": "op-1"}).json()["data"]
    assert [c["id"] for c in found] == [cid] and found[0]["status"] == "RECEIVED"


def test_return_removes_count_when_sent(xs_http: httpx.Client) -> None:
    ret = xs_http.post("/api/2.0/consignments", json={"name": "r", "outlet_id": OUTLET2, "type": "RETURN"})
    cid = ret.json()["data"]["id"]  # the unwrapped body of the stock-order tutorial
    xs_http.post(f"/api/2.0/consignments/{cid}/products", json={"product_id": PRODUCT, "count": 4})
    assert xs_status(xs_http, cid, "SENT").status_code == 200
    assert xs_record(xs_http, PRODUCT, OUTLET2)["current_amount"] == 15
    assert xs_status(xs_http, cid, "CANCELLED").status_code == 422
    assert xs_record(xs_http, PRODUCT, OUTLET2)["current_amount"] == 15


def test_outlet_transfer_moves_stock(xs_http: httpx.Client) -> None:
    cid = xs_create(xs_http, outlet_id=OUTLET, source_outlet_id=OUTLET2, type="OUTLET")["id"]
    xs_http.post(f"/api/2.0/consignments/{cid}/products", json={"product_id": PRODUCT, "count": 3})
    xs_status(xs_http, cid, "SENT")
    assert xs_amounts(xs_http, PRODUCT) == (16, 8)
    assert xs_status(xs_http, cid, "RECEIVED").status_code == 200
    assert xs_amounts(xs_http, PRODUCT) == (16, 11)
    # a second transfer counts 2 received of 3 sent, a third is cancelled after SENT
    cid2 = xs_create(xs_http, outlet_id=OUTLET, source_outlet_id=OUTLET2, type="OUTLET")["id"]
    xs_http.post(f"/api/2.0/consignments/{cid2}/products", json={"product_id": PRODUCT, "count": 3})
    xs_status(xs_http, cid2, "SENT")
    xs_http.put(f"/api/2.0/consignments/{cid2}/products/{PRODUCT}", json={"data": {"received": 2}})
    xs_status(xs_http, cid2, "RECEIVED")
    assert xs_amounts(xs_http, PRODUCT) == (13, 13)
    cid3 = xs_create(xs_http, outlet_id=OUTLET, source_outlet_id=OUTLET2, type="OUTLET")["id"]
    xs_http.post(f"/api/2.0/consignments/{cid3}/products", json={"product_id": PRODUCT, "count": 5})
    xs_status(xs_http, cid3, "SENT")
    assert xs_status(xs_http, cid3, "CANCELLED").status_code == 200
    assert xs_record(xs_http, PRODUCT, OUTLET2)["current_amount"] == 13


@pytest.mark.parametrize(
    ("create", "steps", "bad_body", "fragment"),
    [
        ({"type": "SUPPLIER", "status": "RECEIVED"}, [], None, "cannot be created"),
        ({"type": "SUPPLIER", "status": "DISPATCHED"}, [], None, "cannot be created"),
        ({"type": "SUPPLIER"}, [], {"status": "SENT"}, "no products"),
        ({"type": "SUPPLIER"}, ["line"], {"status": "RECEIVED"}, "cannot go from OPEN"),
        ({"type": "SUPPLIER"}, ["line"], {"type": "RETURN"}, "type"),
        ({"type": "RETURN"}, ["line"], {"status": "RECEIVED"}, "cannot go from OPEN"),
        ({"type": "SUPPLIER"}, ["line", "CANCELLED"], {"name": "renamed"}, "cannot be edited"),
        ({"type": "SUPPLIER"}, ["received", "RECEIVED"], {"status": "CANCELLED"}, "cannot be edited"),
        ({"type": "STOCKTAKE", "filters": [{"type": "product", "value": PRODUCT}] * 26}, [], None, "at most 25"),
    ],
)
def test_illegal_consignment_changes_are_rejected(
    xs_sim: XSeriesSimulator, xs_http: httpx.Client, create: dict[str, Any], steps: list[str],
    bad_body: dict[str, Any] | None, fragment: str,
) -> None:
    response = xs_http.post("/api/2.0/consignments", json={"name": "x", "outlet_id": OUTLET, **create})
    if bad_body is None:
        assert response.status_code == 422 and fragment in response.json()["error"]
        assert xs_http.get("/api/2.0/consignments").json() == {"data": []}
        return
    cid = response.json()["data"]["id"]
    for step in steps:
        if step == "line":
            xs_http.post(f"/api/2.0/consignments/{cid}/products", json={"product_id": PRODUCT, "count": 2})
        elif step == "received":  # through /bulk, which dispatches an OPEN order (2024-03 changelog)
            xs_http.post(f"/api/2.0/consignments/{cid}/bulk", json=[{"product_id": PRODUCT, "count": 2, "received": 2}])
        else:
            assert xs_status(xs_http, cid, step).status_code == 200
    before, stock = xs_http.get(f"/api/2.0/consignments/{cid}").json(), xs_sim.inspect_stock()
    full = {"name": "x", "outlet_id": OUTLET, "type": create["type"], **bad_body}  # the documented PUT fields
    refused = xs_http.put(f"/api/2.0/consignments/{cid}", json=full)
    assert refused.status_code == 422 and fragment in refused.json()["error"]
    assert xs_http.get(f"/api/2.0/consignments/{cid}").json() == before
    assert xs_sim.inspect_stock() == stock


def test_bulk_accumulates_auto_dispatches_and_caps_at_500(xs_sim: XSeriesSimulator, xs_http: httpx.Client) -> None:
    cid = xs_create(xs_http, outlet_id=OUTLET, type="SUPPLIER")["id"]
    lines = [{"product_id": PRODUCT, "count": 60}, {"product_id": PRODUCT2, "count": "1.5"}]
    first = xs_http.post(f"/api/2.0/consignments/{cid}/bulk", json=lines)
    assert first.json() == {"data": {PRODUCT: {"count": "60.00000"}, PRODUCT2: {"count": "1.50000"}}}
    again = xs_http.post(f"/api/2.0/consignments/{cid}/bulk", json=[{"product_id": PRODUCT, "count": 5, "received": 4}])
    assert again.json() == {"data": {PRODUCT: {"count": "65.00000", "received": "4.00000"}}}
    assert xs_http.get(f"/api/2.0/consignments/{cid}").json()["data"]["status"] == "DISPATCHED"
    lines_before = xs_http.get(f"/api/2.0/consignments/{cid}/products").json()
    too_many = [{"product_id": PRODUCT2, "count": 1}] * 501
    refused = xs_http.post(f"/api/2.0/consignments/{cid}/bulk", json=too_many)
    assert refused.status_code == 422 and "500" in refused.json()["error"]
    lines = [{"product_id": PRODUCT2, "count": 1}, {"product_id": "zz", "count": 1}]
    unknown = xs_http.post(f"/api/2.0/consignments/{cid}/bulk", json=lines)
    assert unknown.status_code == 422 and "[1]" in unknown.json()["error"]
    assert xs_http.get(f"/api/2.0/consignments/{cid}/products").json() == lines_before


def test_consignment_list_filters_paging_and_delete(xs_http: httpx.Client) -> None:
    ids = [xs_create(xs_http, outlet_id=OUTLET, type="SUPPLIER", reference=f"r{i}")["id"] for i in range(5)]
    xs_create(xs_http, outlet_id=OUTLET2, type="RETURN")
    page = xs_http.get("/api/2.0/consignments", params={"type": "SUPPLIER", "page_size": 3}).json()
    rest = xs_http.get("/api/2.0/consignments", params={"type": "SUPPLIER", "after": page["version"]["max"]}).json()
    assert [c["id"] for c in page["data"] + rest["data"]] == ids
    assert len(xs_http.get("/api/2.0/consignments", params={"outlet_id": OUTLET2}).json()["data"]) == 1
    assert xs_http.delete(f"/api/2.0/consignments/{ids[0]}").status_code == 204
    assert xs_http.get(f"/api/2.0/consignments/{ids[0]}").status_code == 404
    assert xs_http.get("/api/2.0/consignments", params={"reference": "r0"}).json() == {"data": []}


# --- auth and the request budget -------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic xseries-sandbox-token", "xseries-sandbox-token"])
def test_bad_credentials_get_401(xs_sim: XSeriesSimulator, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    with httpx.Client(transport=xs_sim.wsgi_transport(), base_url="http://anything.vendhq.com") as client:
        response = client.get("/api/2.0/inventory", headers=headers)
    assert (response.status_code, response.json()) == (401, UNAUTHORIZED)


def test_request_budget_gives_429_with_http_date_until_the_window_resets() -> None:
    clock = FakeClock()
    sim = XSeriesSimulator(fixtures=xs_fixture_data(), rate_budget=3, rate_window_s=300, clock=clock)
    with xs_client(sim) as client:
        remaining = [client.get("/api/2.0/outlets").headers["X-RateLimit-Remaining"] for _ in range(3)]
        assert remaining == ["2", "1", "0"]
        clock.now += 100
        limited = client.get("/api/2.0/outlets")
        assert limited.status_code == 429
        retry_at = parsedate_to_datetime(limited.headers["Retry-After"]).timestamp()
        assert retry_at == 1_800_000_300.0
        body = limited.json()
        assert body["error"] == "Too Many Requests" and body["retry-after"] == limited.headers["Retry-After"]
        assert body["limits"]["limit"] == 3 and limited.headers["X-RateLimit-Limit"] == "3"
        clock.now = retry_at
        assert client.get("/api/2.0/outlets").status_code == 200
    sim.close()


# --- fault switches and the sales generator over a real server ----------------------------------


@pytest.fixture
def xs_server(xs_sim: XSeriesSimulator) -> Iterator[tuple[ServerThread, httpx.Client]]:
    with ServerThread(xs_sim) as server, httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {xs_sim.token}"}, timeout=10
    ) as client:
        yield server, client


def test_rate_control_path_sets_the_budget(xs_server: tuple[ServerThread, httpx.Client]) -> None:
    _, client = xs_server
    assert client.put("/_sandbox/rate", json={"limit": 1, "reset": True}).json()["remaining"] == 1
    assert client.get("/api/2.0/outlets").status_code == 200
    limited = client.get("/api/2.0/outlets")
    assert limited.status_code == 429 and parsedate_to_datetime(limited.headers["Retry-After"]).timestamp() > time.time()
    assert client.put("/_sandbox/rate", json={"limit": 0}).json()["limit"] == 0
    assert client.get("/api/2.0/outlets").status_code == 200


def test_fault_latency(xs_server: tuple[ServerThread, httpx.Client]) -> None:
    _, client = xs_server
    client.put("/_sandbox/faults", json={"latency_ms": 250})
    started = time.monotonic()
    assert client.get("/api/2.0/outlets").status_code == 200
    assert time.monotonic() - started >= 0.25


def test_fault_429_is_vendor_shaped(xs_server: tuple[ServerThread, httpx.Client]) -> None:
    _, client = xs_server
    client.put("/_sandbox/faults", json={"rate_429": 1.0, "retry_after_s": 30})
    response = client.get("/api/2.0/inventory")
    assert response.status_code == 429
    wait = parsedate_to_datetime(response.headers["Retry-After"]).timestamp() - time.time()
    assert 25 <= wait <= 31
    assert set(response.json()) == {"error", "limits", "retry-after"}


def test_fault_5xx(xs_server: tuple[ServerThread, httpx.Client]) -> None:
    _, client = xs_server
    client.put("/_sandbox/faults", json={"rate_5xx": 1.0})
    response = client.get("/api/2.0/inventory")
    assert response.status_code >= 500 and set(response.json()) == {"error"}


def test_fault_drop_after_write_commits(xs_server: tuple[ServerThread, httpx.Client]) -> None:
    _, client = xs_server
    client.put("/_sandbox/faults", json={"drop_next_writes": 1})
    payload = {"details": {"inventory": [{"outlet_id": OUTLET, "current_amount": 42}]}}
    with pytest.raises(httpx.TransportError):
        client.put(f"/api/2.1/products/{PRODUCT}", json=payload)
    assert xs_record(client, PRODUCT, OUTLET)["current_amount"] == 42


def test_sales_generator_sells_and_bumps_versions(xs_server: tuple[ServerThread, httpx.Client]) -> None:
    _, client = xs_server
    total = lambda: sum(r["current_amount"] for r in client.get("/api/2.0/inventory").json()["data"])  # noqa: E731
    start_total, start_max = total(), client.get("/api/2.0/inventory").json()["version"]["max"]
    client.put("/_sandbox/sales", json={"rate": 200})
    deadline = time.monotonic() + 5
    while total() > start_total - 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    sold = client.put("/_sandbox/sales", json={"rate": 0}).json()["sold"]
    assert len(sold) >= 5 and total() == start_total - len(sold)
    changed = client.get("/api/2.0/inventory", params={"after": start_max}).json()["data"]
    assert {(r["outlet_id"], r["product_id"]) for r in changed} == {(s["location"], s["item"]) for s in sold}


def test_sell_one_stops_when_nothing_is_in_stock() -> None:
    stock = [{"location": OUTLET, "item": PRODUCT, "quantity": 2}]
    fixtures = {"locations": [{"id": OUTLET}], "items": [{"id": PRODUCT}], "stock": stock}
    sim = XSeriesSimulator(fixtures=fixtures)
    assert [sim.sell_one(), sim.sell_one(), sim.sell_one()] == [
        {"location": OUTLET, "item": PRODUCT, "quantity": 1},
        {"location": OUTLET, "item": PRODUCT, "quantity": 0},
        None,
    ]
    sim.close()


# --- persistence --------------------------------------------------------------------------------


def test_state_survives_restart(tmp_path: Path) -> None:
    state = tmp_path / "xseries.sqlite"
    sim = XSeriesSimulator(state=state, fixtures=xs_fixture_data())
    with xs_client(sim) as client:
        xs_put_inventory(client, PRODUCT, outlet_id=OUTLET, current_amount=77, reorder_point=None)
        cid = xs_create(client, outlet_id=OUTLET, type="SUPPLIER", reference="keep")["id"]
        inventory = client.get("/api/2.0/inventory").json()
    sim.close()
    # restarting with the same fixtures must not reset what was written
    again = XSeriesSimulator(state=state, fixtures=xs_fixture_data())
    with xs_client(again) as client:
        assert client.get("/api/2.0/inventory").json() == inventory
        assert client.get(f"/api/2.0/consignments/{cid}").json()["data"]["reference"] == "keep"
        assert xs_record(client, PRODUCT, OUTLET)["reorder_point"] == ""
        xs_put_inventory(client, PRODUCT, outlet_id=OUTLET, current_amount=1)
        assert xs_record(client, PRODUCT, OUTLET)["version"] > inventory["version"]["max"]
    again.close()


def test_bad_fixtures_are_reported_together() -> None:
    from reconciler.errors import ConfigError

    stock = [{"location": "o", "item": "p", "quantity": "five"}]
    bad = {"locations": [{"id": True}], "items": [{"id": "p"}], "stock": stock}
    with pytest.raises(ConfigError) as caught:
        XSeriesSimulator(fixtures=bad)
    text = str(caught.value)
    assert "locations[0].id" in text and "stock[0].quantity" in text
    with pytest.raises(ConfigError, match=r"stock\[0\].location 'o' is not a known outlet"):
        XSeriesSimulator(fixtures={"locations": [], "items": [{"id": "p"}], "stock": [{"location": "o", "item": "p"}]})


CLI = [sys.executable, "-c", "from reconciler.cli import main; main()"]


def xs_serve(state: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([*CLI, "sandbox", "serve", "xseries", "--port", str(port), "--state", str(state), *extra])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/_sandbox/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("reconciler sandbox serve xseries did not come up")


def test_cli_serve_keeps_state_across_restart(tmp_path: Path) -> None:
    if subprocess.run([*CLI, "sandbox", "serve", "--help"], capture_output=True).returncode != 0:
        pytest.skip("`reconciler sandbox serve` is not available yet (owned by the sandbox CLI)")
    fixtures = tmp_path / "fixtures.json"
    fixtures.write_text(json.dumps(xs_fixture_data()))
    state, headers = tmp_path / "xs.sqlite", {"Authorization": f"Bearer {XSeriesSimulator.default_token}"}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    proc = xs_serve(state, port, "--fixtures", str(fixtures))
    try:
        payload = {"details": {"inventory": [{"outlet_id": OUTLET, "current_amount": 55}]}}
        assert httpx.put(f"{base}/api/2.1/products/{PRODUCT}", json=payload, headers=headers).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    proc = xs_serve(state, port, "-o", "rate_budget=5", "-o", "rate_window_s=300")
    try:
        response = httpx.get(f"{base}/api/2.0/products/{PRODUCT}/inventory", headers=headers)
        records = response.json()["data"]
        assert {r["outlet_id"]: r["current_amount"] for r in records} == {OUTLET: 55, OUTLET2: 19}
        assert (response.headers["X-RateLimit-Limit"], response.headers["X-RateLimit-Remaining"]) == ("5", "4")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_bad_rate_options_are_config_errors() -> None:
    from reconciler.errors import ConfigError

    with pytest.raises(ConfigError, match="rate_budget must be a number"):
        XSeriesSimulator(rate_budget="lots")
    with pytest.raises(ConfigError, match="rate_window_s must be 0 or more"):
        XSeriesSimulator(rate_window_s="-5")
