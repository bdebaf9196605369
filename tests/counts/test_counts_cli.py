"""count start / finish as a user runs them: errors that say what and where, counts of two
locations started at the same moment by two processes, `uncounted: zero`, comments kept."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from campaign_shop import SPECS, Shop

SPEC = SPECS["xseries"]


def _shop(tmp_path: Path) -> Shop:
    starting = {(f"loc{l}", f"SKU-{n:04d}"): 5 for l in range(SPEC.locations) for n in range(SPEC.items)}
    shop = Shop(SPEC, tmp_path, starting)
    shop.starting = starting  # type: ignore[attr-defined]
    return shop


def test_bad_input_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    with _shop(tmp_path) as shop:
        shop.write_desired(shop.starting)  # type: ignore[attr-defined]
        nothing = shop.cli("count", "start", "--location", "loc0")
        assert nothing.code == 1 and "--items SKU ... or --all" in nothing.err
        unknown = shop.cli("count", "start", "--location", "oslo", "--all")
        assert unknown.code == 1 and "unknown location 'oslo'" in unknown.err and "loc0" in unknown.err
        sku = shop.cli("count", "start", "--location", "loc0", "--items", "NOPE")
        assert sku.code == 1 and "not in stock/catalog.yaml: NOPE" in sku.err
        (tmp_path / "scan.csv").write_text("SKU-0001,3\nSKU-0002,x\n", encoding="utf-8")
        missing = shop.cli("count", "finish", "loc0-nope", "--sheet", str(tmp_path / "scan.csv"))
        assert missing.code == 1 and "no count 'loc0-nope' in the state" in missing.err
        started = shop.cli("count", "start", "--location", "loc0", "--out-dir", str(tmp_path / "s"), "--items", "SKU-0001")
        count_id = started.out.split()[2]
        before = (shop.root / "stock" / "loc0.yaml").read_text(encoding="utf-8")
        bad = shop.cli("count", "finish", count_id, "--sheet", str(tmp_path / "scan.csv"))
        assert bad.code == 1 and "scan.csv:2 (SKU-0002): counted quantity 'x' is not a whole number" in bad.err
        assert (shop.root / "stock" / "loc0.yaml").read_text(encoding="utf-8") == before
        assert not (shop.root / "stock" / "counts").exists()


def test_two_locations_start_at_once_in_two_processes(tmp_path: Path) -> None:
    with _shop(tmp_path) as shop:
        shop.write_desired(shop.starting)  # type: ignore[attr-defined]
        procs = [subprocess.Popen([sys.executable, "-m", "reconciler", "-C", str(shop.root), "count", "start",
                                   "--location", loc, "--all", "--out-dir", str(tmp_path / loc)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for loc in ("loc0", "loc1", "loc0")]
        outs = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], [o[1] for o in outs]
        ids = {o[0].decode().split()[2] for o in outs}
        assert len(ids) == 3
        assert shop.cli("state", "lock").out.count("count ") == 0  # every read lock was released


def test_uncounted_zero_and_comments_kept(tmp_path: Path) -> None:
    with _shop(tmp_path) as shop:
        shop.write_desired(shop.starting)  # type: ignore[attr-defined]
        stock = shop.root / "stock" / "loc1.yaml"
        stock.write_text("# Bergen back room\n" + stock.read_text(encoding="utf-8"), encoding="utf-8")
        shop._commit("comment")
        started = shop.cli("count", "start", "--location", "loc1", "--out-dir", str(tmp_path / "s"),
                           "--items", "SKU-0001", "SKU-0002", "SKU-0003")
        count_id = started.out.split()[2]
        sheet = tmp_path / "s" / f"{count_id}.yaml"
        text = sheet.read_text(encoding="utf-8").replace("\nuncounted: leave\n", "\nuncounted: zero\n")
        sheet.write_text(text.replace("    counted:\n", "    counted: 9\n", 1), encoding="utf-8")
        done = shop.cli("count", "finish", count_id, "--sheet", str(sheet))
        assert done.code == 0, done.err
        assert stock.read_text(encoding="utf-8").startswith("# Bergen back room\n")
        held = yaml.safe_load(stock.read_text(encoding="utf-8"))["stock"]["shop"]
        assert (held["SKU-0001"], held["SKU-0002"], held["SKU-0003"], held["SKU-0004"]) == (9, 0, 0, 5)
        record = yaml.safe_load((shop.root / "stock" / "counts" / f"{count_id}.yaml").read_text(encoding="utf-8"))
        assert [(p["item"], p["counted"], p["snapshot"]) for p in record["positions"]] == [
            ("SKU-0001", 9, 5), ("SKU-0002", 0, 5), ("SKU-0003", 0, 5)]
        again = shop.cli("count", "finish", count_id, "--sheet", str(sheet))
        assert again.code == 1 and "was finished at" in again.err
