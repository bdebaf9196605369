"""SIGKILL of `reconciler apply FILE` (a real subprocess) at seeded random points, for each vendor
over real HTTP to its sandbox process, then apply re-run until done: the vendor's stock must equal
the independent expectation, and an operation the tool cannot verify is reported in doubt (exit
code 4) and settled from the sandbox's truth with `reconciler resolve`.

A kill point: the apply process has written its first journal row of this run (so a request is
about to leave or is in flight), then a seeded 0 ms, 0-20 ms or 0-150 ms passes, and it is killed
while still running with work left in the plan. The next run is the next victim, so kill points
walk through the plan. Vendors that write many operations per request (Ka-ching, the supplier
feed, Zettle) offer only a few distinct points per plan, so their campaign runs more plans.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import pytest
from campaign import SETTLE_S, Figures, PlanRun, Size, adopt_desired, new_plan, next_desired, starting_stock
from campaign_shop import SPECS, Shop

pytestmark = pytest.mark.slow
STARTUP_TIMEOUT_S = 60


def _kill_once(plan: PlanRun, rng: random.Random, fig: Figures, span_s: float) -> bool:
    """Start an apply and kill it at a seeded moment shortly after its first journal write (within
    ``span_s``, about one uninterrupted run, at most). False when it finished first, or had
    journalled everything (nothing left to survive)."""
    shop = plan.shop
    if plan.applied():
        return False
    started = shop.journal(plan.plan_id)
    proc = shop.start_apply(plan.path)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while proc.poll() is None and time.monotonic() < deadline and shop.journal(plan.plan_id) == started:
        time.sleep(0.002)
    # right after the first journal write (its request in flight), a little later, or later still
    time.sleep(rng.choice((0.0, rng.uniform(0, 0.02), rng.uniform(0, min(span_s, 0.15)))))
    if proc.poll() is not None:  # it finished first: an ordinary run, not a kill
        out, err = shop.output()
        plan.after_run(proc.returncode, out, err)
        return False
    shop.kill(proc)
    fig.apply_runs += 1
    if plan.applied():
        return False  # it had journalled everything: not a kill that left work behind
    fig.kills += 1
    time.sleep(SETTLE_S)  # whatever the dead process left in flight reaches the sandbox first
    return True


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_sigkill_at_random_points(kind: str, tmp_path: Path, size: Size, figures: Any) -> None:
    rng = random.Random(f"{size.seed}-{kind}-kills")
    fig: Figures = figures(kind, "sigkill")
    spec = SPECS[kind]
    starting = starting_stock(rng, spec, size.scale)
    with Shop(spec, tmp_path, starting, scale=size.scale) as shop:
        desired, stock, span_s = adopt_desired(rng, shop), starting, 0.5
        while fig.kills < size.kills:
            plan = new_plan(shop, fig, stock, desired, size.min_ops)
            kills_here = 0
            while fig.kills < size.kills and _kill_once(plan, rng, fig, span_s):
                kills_here += 1
                if kills_here >= size.kills // 2:
                    break  # spread the kills over more than one plan (and operation mix)
            plan.until_done()
            span_s = max(0.05, plan.last_run_s)
            stock = plan.finish(f"plan {plan.path.name} after {kills_here} kills")
            desired = next_desired(rng, shop, desired, moves=spec.moves, min_ops=size.min_ops)
    assert fig.kills >= size.kills
    if fig.unverifiable_ops:
        assert fig.in_doubt > 0, f"{kind}: {fig.kills} kills and never an operation in doubt"
    else:
        assert fig.in_doubt == 0
