"""A write-only target has no snapshot: its counted positions are resets, with a plan warning."""

from __future__ import annotations

import json
from pathlib import Path

from campaign_shop import SPECS, Shop
from test_counts_e2e import LOC, _fill, _start


def test_write_only_count_is_a_reset_with_a_warning(tmp_path: Path) -> None:
    spec = SPECS["runfree"]
    starting = {(f"loc{l}", f"SKU-{n:04d}"): 9 for l in range(spec.locations) for n in range(spec.items)}
    with Shop(spec, tmp_path, starting) as shop:
        shop.write_desired(starting)
        path, _ = shop.plan()
        assert shop.cli("apply", str(path), "--no-progress").code == 0
        count_id = _start(shop, ["SKU-0000", "SKU-0001"])
        sheet = _fill(shop, count_id, {"SKU-0000": 4})  # SKU-0001 left uncounted: left alone
        assert shop.cli("count", "finish", count_id, "--sheet", str(sheet)).code == 0
        shop._commit("count")
        path, doc = shop.plan()
        ops = [op for op in doc["operations"] if op["kind"] != "drift"]
        assert [(op["kind"], op["item"], op["legs"][0]["expected"]) for op in ops] == [("reset", "SKU-0000", 4)]
        assert any("write-only" in w and "cannot be kept" in w for w in doc["warnings"])
        assert shop.cli("apply", str(path), "--no-progress").code == 0
        assert shop.stock()[(LOC, "SKU-0000")] == 4 and shop.stock()[(LOC, "SKU-0001")] == 9
        _, again = shop.plan()
        assert not [op for op in again["operations"] if op["kind"] != "drift"]


def test_without_a_state_a_count_is_adopted_never_applied_as_a_variance(tmp_path: Path) -> None:
    """The state lost after the count was applied: its journal cannot say so, so the counted
    positions are reset to the counted quantity (adoption) rather than moved by the variance again."""
    spec = SPECS["xseries"]
    starting = {(f"loc{l}", f"SKU-{n:04d}"): 9 for l in range(spec.locations) for n in range(spec.items)}
    with Shop(spec, tmp_path, starting) as shop:
        shop.write_desired(starting)
        path, _ = shop.plan()
        assert shop.cli("apply", str(path), "--no-progress").code == 0
        count_id = _start(shop, ["SKU-0000"])
        assert shop.cli("count", "finish", count_id, "--sheet", str(_fill(shop, count_id, {"SKU-0000": 4}))).code == 0
        shop._commit("count")
        path, _ = shop.plan()
        assert shop.cli("apply", str(path), "--no-progress").code == 0
        assert shop.stock()[(LOC, "SKU-0000")] == 4
        for leftover in shop.state_path.parent.glob("state.db*"):
            leftover.unlink()
        path, doc = shop.plan()
        [op] = [op for op in doc["operations"] if op["item"] == "SKU-0000" and op["legs"][0]["location"] == LOC]
        assert op["kind"] == "record" and any("no snapshot of SKU-0000" in w for w in doc["warnings"])
        assert shop.cli("apply", str(path), "--no-progress").code == 0
        assert shop.stock()[(LOC, "SKU-0000")] == 4
