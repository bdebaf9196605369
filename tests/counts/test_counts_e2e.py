"""A stock count from the shop floor to the applied PR, over real HTTP to each readable vendor's
sandbox: started, sales during the count, sheet finished, sales after, applied later.
Afterwards live stock = counted - sales since the count started, exactly."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from campaign_shop import SPECS, Shop

import reconciler.counts._run as count_run

READABLE = sorted(kind for kind, spec in SPECS.items() if spec.readable)
LOC = "loc0"


def _start(shop: Shop, skus: list[str]) -> str:
    done = shop.cli("count", "start", "--location", LOC, "--out-dir", str(shop.root / "sheets"), "--items", *skus)
    assert done.code == 0, done.err
    return done.out.split()[2]


def _fill(shop: Shop, count_id: str, counted: dict[str, int]) -> Path:
    sheet = shop.root / "sheets" / f"{count_id}.csv"
    lines = sheet.read_text(encoding="utf-8").splitlines()
    out = [lines[0]] + [f"{l.split(',')[0]},,{counted[l.split(',')[0]]}" if l.split(",")[0] in counted else l
                        for l in lines[1:]]
    sheet.write_text("\n".join(out) + "\n", encoding="utf-8")
    return sheet


def _plan(shop: Shop, *extra: str) -> tuple[Path, dict]:
    shop.n_plans += 1
    path = shop.plans / f"plan-{shop.n_plans:03d}.json"
    done = shop.cli("plan", "--out", str(path), *extra)
    assert done.code == 0, done.err
    return path, json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("kind", READABLE)
def test_count_keeps_sales_during_and_after(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = SPECS[kind]
    skus = [f"SKU-{n:04d}" for n in range(12)]
    starting = {(f"loc{l}", f"SKU-{n:04d}"): 40 for l in range(spec.locations) for n in range(spec.items)}
    with Shop(spec, tmp_path, starting) as shop:
        shop.write_desired(starting)
        path, _ = _plan(shop)
        assert shop.cli("apply", str(path), "--no-progress").code == 0  # adopt: B = 40 everywhere
        shop.control("POST", "sell", {"count": 30})  # before the count: shrinkage the count must find
        before = shop.stock()

        # the count was taken six hours before the PR is applied (simulated time)
        six_hours_ago = datetime.now(timezone.utc) - timedelta(hours=6)
        monkeypatch.setattr(count_run, "utcnow", lambda: six_hours_ago)
        count_id = _start(shop, skus)
        monkeypatch.undo()
        snapshot = {sku: before[(LOC, sku)] for sku in skus}
        sold_at = len(shop.sales())
        shop.control("POST", "sell", {"count": 25})  # during the count
        # what was on the shelf at the start, minus a shrinkage of 2 on the first four
        counted = {sku: max(0, snapshot[sku] - (2 if n < 4 else 0)) for n, sku in enumerate(skus)}
        sheet = _fill(shop, count_id, counted)
        done = shop.cli("count", "finish", count_id, "--sheet", str(sheet))
        assert done.code == 0, done.err
        assert (shop.root / "stock" / "counts" / f"{count_id}.yaml").exists()
        shop._commit("count")
        shop.control("POST", "sell", {"count": 25})  # after the count, before the PR is applied

        path, doc = _plan(shop)
        counted_ops = [op for op in doc["operations"] if op["reason"].startswith(f"count {count_id}")]
        # a variance is an adjustment; a count equal to its snapshot only records B = counted
        assert {op["item"] for op in counted_ops if op["kind"] != "record"} == {s for s in skus if counted[s] != snapshot[s]}
        assert all(op["legs"][0]["change"] == counted[op["item"]] - snapshot[op["item"]] for op in counted_ops)
        assert doc["counts"][0].startswith(f"count {count_id}: {LOC}, counted at {six_hours_ago:%Y-%m-%dT%H:%M:%SZ}")
        assert shop.cli("apply", str(path), "--no-progress").code == 0

        sold = Counter(shop.sales()[sold_at:])
        live = shop.stock()
        for sku in skus:
            assert live[(LOC, sku)] == counted[sku] - sold[(LOC, sku)], sku

        # Applied twice: the next plan has no count operation, and nothing changes.
        _, again = _plan(shop)
        assert not [op for op in again["operations"] if op["kind"] != "drift"], again["operations"]
        assert shop.stock() == live


def test_old_count_is_a_guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import datetime, timedelta, timezone

    spec = SPECS["xseries"]
    starting = {(f"loc{l}", f"SKU-{n:04d}"): 10 for l in range(spec.locations) for n in range(spec.items)}
    with Shop(spec, tmp_path, starting) as shop:
        shop.write_desired(starting)
        path, _ = _plan(shop)
        assert shop.cli("apply", str(path), "--no-progress").code == 0
        monkeypatch.setattr(count_run, "utcnow", lambda: datetime.now(timezone.utc) - timedelta(days=8))
        count_id = _start(shop, ["SKU-0000"])
        sheet = _fill(shop, count_id, {"SKU-0000": 7})
        assert shop.cli("count", "finish", count_id, "--sheet", str(sheet)).code == 0
        shop._commit("old count")
        refused = shop.cli("plan")
        assert refused.code != 0 and "--allow-old-count" in refused.err and count_id in refused.err
        _, doc = _plan(shop, "--allow-old-count")
        assert [op["legs"][0]["change"] for op in doc["operations"] if op["item"] == "SKU-0000"] == [-3]


@pytest.mark.parametrize("kind", READABLE)
def test_count_killed_mid_apply_resumes_without_doubling(kind: str, tmp_path: Path) -> None:
    """Killed while its writes are in flight; the next apply verifies what it can (X-Series looks
    its adjustments up) and reports the rest in doubt (exit 4), settled here from the sandbox's
    truth with `reconciler resolve` as an operator would. No variance is ever applied twice."""
    import time

    spec = SPECS[kind]
    skus = [f"SKU-{n:04d}" for n in range(8)]
    starting = {(f"loc{l}", f"SKU-{n:04d}"): 20 for l in range(spec.locations) for n in range(spec.items)}
    with Shop(spec, tmp_path, starting) as shop:
        shop.write_desired(starting)
        path, _ = _plan(shop)
        assert shop.cli("apply", str(path), "--no-progress").code == 0
        count_id = _start(shop, skus)
        sold_at = len(shop.sales())
        counted = {sku: 20 - 1 - n % 3 for n, sku in enumerate(skus)}  # every position has a variance
        assert shop.cli("count", "finish", count_id, "--sheet", str(_fill(shop, count_id, counted))).code == 0
        shop._commit("count")
        shop.control("POST", "sell", {"count": 10})
        path, doc = _plan(shop)
        changes = {op["id"]: (op["item"], op["legs"][0]["change"]) for op in doc["operations"] if op["kind"] == "adjust"}
        assert len(changes) == len(skus)
        before = shop.stock()
        shop.faults(latency_ms=400)
        proc = shop.start_apply(path)
        deadline = time.monotonic() + 60
        while not shop.journal(doc["plan_id"]):
            assert proc.poll() is None and time.monotonic() < deadline, shop.output()
            time.sleep(0.01)
        time.sleep(0.1)  # a write on the wire
        shop.kill(proc)
        shop.faults(latency_ms=0)
        time.sleep(0.5)  # what the killed process sent reaches the sandbox
        left = Counter(shop.journal(doc["plan_id"]).values())
        assert left["applied"] < len(changes), f"the kill came after the whole plan: {left}"
        done = shop.cli("apply", str(path), "--no-progress")
        if done.code == 4:  # in doubt: settled from the truth, as docs/reliability.md says
            assert spec.kind != "xseries", done.out
            now = shop.stock()
            for op_id, status in shop.journal(doc["plan_id"]).items():
                if status == "in_doubt":
                    item, change = changes[op_id]
                    assert now[(LOC, item)] in (before[(LOC, item)], before[(LOC, item)] + change)
                    landed = now[(LOC, item)] == before[(LOC, item)] + change
                    assert shop.cli("resolve", op_id, "--applied" if landed else "--not-applied").code == 0
            done = shop.cli("apply", str(path), "--no-progress")
        assert done.code == 0, done.err + done.out
        sold = Counter(shop.sales()[sold_at:])
        live = shop.stock()
        assert {sku: live[(LOC, sku)] for sku in skus} == {sku: counted[sku] - sold[(LOC, sku)] for sku in skus}
        _, again = _plan(shop)
        assert not [op for op in again["operations"] if op["reason"].startswith("count ")]
