"""X-Series counts: the variance value at average_cost in the count block, and the count reasons
the stock adjustments carry (count_via: adjustment)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import yaml
from campaign_shop import SPECS, TARGET, Shop
from test_counts_e2e import LOC, _fill, _plan, _start

from reconciler.sandbox import simulator_class


def _with_costs(shop: Shop, cost: float) -> None:
    path = shop.root / "fixtures.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    for rec in data["stock"]:
        rec["average_cost"] = cost
    path.write_text(json.dumps(data), encoding="utf-8")


def test_count_block_values_variance_at_average_cost_and_adjustments_carry_count_reasons(tmp_path: Path) -> None:
    spec = SPECS["xseries"]
    starting = {(f"loc{l}", f"SKU-{n:04d}"): 20 for l in range(spec.locations) for n in range(spec.items)}
    shop = Shop(spec, tmp_path, starting)
    _with_costs(shop, 2.5)
    with shop:
        config = yaml.safe_load((shop.root / "reconciler.yaml").read_text(encoding="utf-8"))
        config["targets"][TARGET]["options"] = {"count_reasons": {"decrease": "DAMAGE"}}
        (shop.root / "reconciler.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        shop.write_desired(starting)
        path, _ = _plan(shop)
        assert shop.cli("apply", str(path), "--no-progress").code == 0
        count_id = _start(shop, ["SKU-0000", "SKU-0001", "SKU-0002"])
        sheet = _fill(shop, count_id, {"SKU-0000": 23, "SKU-0001": 14, "SKU-0002": 20})
        assert shop.cli("count", "finish", count_id, "--sheet", str(sheet)).code == 0
        shop._commit("count")
        path, doc = _plan(shop)
        block = doc["counts"][0].splitlines()
        assert block[0] == (f"count {count_id}: {LOC}, counted at {block[0].split('counted at ')[1].split(',')[0]}, "
                            "3 position(s), 3 unit(s) over, 6 under, variance value at cost -7.50 (3 of 3 positions have a cost)")
        assert block[1].split() == ["-6", "SKU-0001", "in", "shop:", "counted", "14,", "expected", "20,", "-15.00", "at", "cost"]
        markdown = shop.cli("show", str(path), "--format", "markdown").out
        assert f"**Stock count {count_id}: {LOC}" in markdown and "-15.00 at cost" in markdown
        assert shop.cli("apply", str(path), "--no-progress").code == 0
        token = simulator_class("xseries").default_token
        listed = httpx.get(f"{shop.sandbox.url}/api/2026-01/stock_adjustments", params={"after": 0},
                           headers={"Authorization": f"Bearer {token}"}).json()["data"]
        assert sorted((int(float(a["quantity"])), a["reason"]) for a in listed) == [(-6, "DAMAGE"), (3, "STOCK_FOUND")]
