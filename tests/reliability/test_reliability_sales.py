"""Concurrent sales during plan and apply under the merge strategy, for the vendors with a read API:
the sandbox's sales generator sells random units the whole time, and afterwards every position
must hold the planned stock minus what was sold there (known from `/_sandbox/sales`), with the
planned stock computed by the test from the desired states, not taken from the plan.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from campaign import Figures, Size, adopt_desired, compare, expected_stock, new_plan, next_desired, starting_stock
from campaign_shop import SPECS, Shop

pytestmark = pytest.mark.slow
# The supplier feed takes absolute quantities only: apply re-reads each item and PUTs live + d, and a
# sale landing between that GET and the PUT is overwritten (the feed has no delta or conditional
# write). The campaign found it with whole batches of reads before one PUT; each such write now goes
# alone right after its GET, which narrows the window to one round trip but cannot close it, so the
# result may or may not match here: a documented vendor limitation (docs/reliability.md), not strict.
FEED_LOSES_SALES = pytest.mark.xfail(strict=False, reason="supplier feed: a sale between re-read and PUT is overwritten")
READABLE = [pytest.param(kind, marks=FEED_LOSES_SALES) if kind == "lightspeed-supplier" else kind
            for kind, spec in sorted(SPECS.items()) if spec.readable]


@pytest.mark.parametrize("kind", READABLE)
def test_sales_during_apply_survive_merge(kind: str, tmp_path: Path, size: Size, figures: Any) -> None:
    rng = random.Random(f"{size.seed}-{kind}-sales")
    fig: Figures = figures(kind, "sales")
    spec = SPECS[kind]
    starting = starting_stock(rng, spec, size.scale)
    with Shop(spec, tmp_path, starting, scale=size.scale) as shop:
        desired = adopt_desired(rng, shop)
        plan = new_plan(shop, fig, starting, desired, size.min_ops)
        plan.until_done()
        stock = plan.finish("adopt")  # resets overwrite sales by definition: none run yet

        # From here every operation is an adjustment or a movement: merge adds D - B to live stock.
        desired = next_desired(rng, shop, {k: v + 10 for k, v in desired.items()}, moves=spec.moves,
                               min_ops=size.min_ops)
        desired = {k: v for k, v in desired.items() if k in plan.desired}  # nothing newly adopted (a reset)
        sold_before = len(shop.sales())
        shop.control("PUT", "sales", {"rate": size.sale_rate})
        try:
            time.sleep(0.3)  # sales before the plan, between plan and apply, and during apply
            plan = new_plan(shop, fig, stock, desired, 1)
            kinds = Counter(o["kind"] for o in plan.doc["operations"])
            assert kinds["adjust"] + kinds["move"] >= size.min_ops // 2, kinds
            assert not kinds["reset"], "a reset would overwrite sales: the test must plan deltas only"
            plan.until_done()
            time.sleep(0.2)
        finally:
            shop.control("PUT", "sales", {"rate": 0})
        sold = Counter(shop.sales()[sold_before:])
        fig.units_sold += sum(sold.values())
        assert sum(sold.values()) >= 10, f"the generator sold only {sum(sold.values())} units"
        fig.plans += 1
        fig.operations += len(plan.doc["operations"])
        planned = expected_stock(stock, desired)
        compare(fig, shop.stock(), {pos: qty - sold[pos] for pos, qty in planned.items()}, "sales during apply")
