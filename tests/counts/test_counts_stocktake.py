"""X-Series count_via: stocktake over real HTTP: the vendor's inventory count (STOCKTAKE
consignment) with the sandbox's asynchronous processing, under both readings of what completion
does to sales made during the count (stocktake_sales: variance | absolute)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from campaign_shop import SPECS, Shop
from test_counts_e2e import LOC, _fill, _plan, _start

from reconciler.sandbox import simulator_class

SKUS = [f"SKU-{n:04d}" for n in range(6)]


def _shop(tmp_path: Path, sales: str, delay: str = "0.3") -> Shop:
    base = SPECS["xseries"]
    spec = replace(base, sandbox_options={**base.sandbox_options, "stocktake_sales": sales, "stocktake_delay_s": delay},
                   target_options={"count_via": "stocktake"})
    starting = {(f"loc{l}", f"SKU-{n:04d}"): 30 for l in range(spec.locations) for n in range(spec.items)}
    shop = Shop(spec, tmp_path, starting)
    shop.starting = starting  # type: ignore[attr-defined]
    return shop


def _vendor(shop: Shop) -> httpx.Client:
    token = simulator_class("xseries").default_token
    return httpx.Client(base_url=shop.sandbox.url, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def _counted(shop: Shop) -> tuple[str, dict[str, int], int]:
    """Adopt, start a count, sell during it, finish it with a variance on every item, sell after."""
    shop.write_desired(shop.starting)  # type: ignore[attr-defined]
    path, _ = _plan(shop)
    assert shop.cli("apply", str(path), "--no-progress").code == 0
    count_id = _start(shop, SKUS)
    sold_at = len(shop.sales())
    shop.control("POST", "sell", {"count": 20})
    counted = {sku: 30 + (2 if n % 2 else -3) for n, sku in enumerate(SKUS)}
    assert shop.cli("count", "finish", count_id, "--sheet", str(_fill(shop, count_id, counted))).code == 0
    shop._commit("count")
    shop.control("POST", "sell", {"count": 20})
    return count_id, counted, sold_at


@pytest.mark.parametrize("sales", ["variance", "absolute"])
def test_stocktake_applies_the_variance_and_keeps_sales(sales: str, tmp_path: Path) -> None:
    with _shop(tmp_path, sales) as shop, _vendor(shop) as vendor:
        count_id, counted, sold_at = _counted(shop)
        path, doc = _plan(shop)
        assert shop.cli("apply", str(path), "--no-progress").code == 0
        sold = Counter(shop.sales()[sold_at:])
        live = shop.stock()
        assert {s: live[(LOC, s)] for s in SKUS} == {s: counted[s] - sold[(LOC, s)] for s in SKUS}
        takes = vendor.get("/api/2.0/consignments", params={"type": "STOCKTAKE"}).json()["data"]
        assert [t["status"] for t in takes] == ["STOCKTAKE_COMPLETE"]  # one count, its 6 products
        assert all(op["id"] in takes[0]["name"] for op in doc["operations"] if op["kind"] == "adjust")
        assert not vendor.get("/api/2026-01/stock_adjustments", params={"after": 0}).json()["data"]
        _, again = _plan(shop)
        assert not [op for op in again["operations"] if op["kind"] != "drift"]


def test_stocktake_killed_before_completion_is_cancelled_and_sent_again(tmp_path: Path) -> None:
    with _shop(tmp_path, "variance", delay="1.5") as shop, _vendor(shop) as vendor:
        count_id, counted, sold_at = _counted(shop)
        path, doc = _plan(shop)
        proc = shop.start_apply(path)
        deadline = time.monotonic() + 30
        while not vendor.get("/api/2.0/consignments", params={"type": "STOCKTAKE"}).json()["data"]:
            assert proc.poll() is None and time.monotonic() < deadline, shop.output()
            time.sleep(0.05)
        shop.kill(proc)  # the count exists at the vendor, still being processed: it moved nothing
        shop.control("POST", "sell", {"count": 10})
        done = shop.cli("apply", str(path), "--no-progress")
        assert done.code == 0, done.err + done.out
        takes = vendor.get("/api/2.0/consignments", params={"type": "STOCKTAKE"}).json()["data"]
        assert sorted(t["status"] for t in takes) == ["CANCELLED", "STOCKTAKE_COMPLETE"]
        sold = Counter(shop.sales()[sold_at:])
        live = shop.stock()
        assert {s: live[(LOC, s)] for s in SKUS} == {s: counted[s] - sold[(LOC, s)] for s in SKUS}


def test_sandbox_enforces_the_documented_stocktake_rules(tmp_path: Path) -> None:
    with _shop(tmp_path, "variance", delay="0") as shop, _vendor(shop) as vendor:
        outlet, product = shop.loc_ids[LOC], shop.item_ids["SKU-0000"]
        body = {"name": "c", "outlet_id": outlet, "type": "STOCKTAKE", "status": "STOCKTAKE_IN_PROGRESS",
                "filters": [{"type": "product", "value": product}]}
        too_many = vendor.post("/api/2.0/consignments", json={**body, "filters": body["filters"] * 26})
        assert too_many.status_code == 422 and "at most 25" in too_many.json()["error"]
        brand = vendor.post("/api/2.0/consignments", json={**body, "filters": [{"type": "brand", "value": "b"}]})
        assert brand.status_code == 422 and "not simulated" in brand.json()["error"]
        scheduled = vendor.post("/api/2.0/consignments", json={**body, "status": "STOCKTAKE_SCHEDULED"}).json()["data"]
        early = vendor.put(f"/api/2.0/consignments/{scheduled['id']}",
                           json={"name": "c", "outlet_id": outlet, "type": "STOCKTAKE", "status": "STOCKTAKE_COMPLETE"})
        assert early.status_code == 400 and "Invalid status change" in early.json()["error"]
        cid = vendor.post("/api/2.0/consignments", json=body).json()["data"]["id"]
        assert vendor.get(f"/api/2.0/consignments/{cid}").json()["data"]["status"] == "STOCKTAKE_IN_PROGRESS_PROCESSED"
        lines = vendor.get(f"/api/2.0/consignments/{cid}/products").json()["data"]
        assert [(l["product_id"], float(l["count"])) for l in lines] == [(product, 30.0)]
        no_received = vendor.put(f"/api/2.0/consignments/{cid}/products/{product}", json={"count": 3})
        assert no_received.status_code == 400 and "No valid data modification" in no_received.json()["error"]
        other = shop.item_ids["SKU-0001"]
        assert vendor.put(f"/api/2.0/consignments/{cid}/products/{other}", json={"received": 3}).status_code == 404
        assert vendor.put(f"/api/2.0/consignments/{cid}/products/{product}", json={"received": 27}).status_code == 200
        done = vendor.put(f"/api/2.0/consignments/{cid}",
                          json={"name": "c", "outlet_id": outlet, "type": "STOCKTAKE", "status": "STOCKTAKE_COMPLETE"})
        assert done.json()["data"]["status"] == "STOCKTAKE_COMPLETE"
        assert shop.stock()[(LOC, "SKU-0000")] == 27
