"""Fault injection over real HTTP: for each vendor, plans of 200+ operations applied while the
sandbox (a real server process) injects, in turn, latency, 429 storms with Retry-After, 5xx
bursts and connections dropped after the write was committed. After each, apply is re-run
until done; the vendor's stock must equal the expectation computed from the desired states
and the seeded starting stock: no unit lost, none doubled. Operations the tool cannot verify
must be reported in doubt (exit code 4), and are settled from the sandbox's truth.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import pytest
from campaign import (
    Figures, PlanRun, Size, Driver, StatusCounter, adopt_desired, disarm, drops, new_plan, next_desired,
    starting_stock, storm,
)
from campaign_shop import SPECS, Position, Shop

pytestmark = pytest.mark.slow


def _run(plan: PlanRun, what: str) -> dict[Position, int]:
    started = time.monotonic()
    plan.until_done()
    plan.figures.seconds[what] = round(time.monotonic() - started, 1)
    return plan.finish(what)


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_faults_lose_and_double_nothing(kind: str, tmp_path: Path, size: Size, figures: Any) -> None:
    rng = random.Random(f"{size.seed}-{kind}-faults")
    fig: Figures = figures(kind, "faults")
    spec = SPECS[kind]
    starting = starting_stock(rng, spec, size.scale)
    with Shop(spec, tmp_path, starting, scale=size.scale) as shop:
        # 1. latency on every request, while the first plan adopts 90% of the positions
        desired = adopt_desired(rng, shop)
        plan = new_plan(shop, fig, starting, desired, size.min_ops)
        served = shop.requests_served()
        shop.faults(latency_ms=size.latency_ms)
        stock = _run(plan, "latency")
        shop.faults(latency_ms=0)
        fig.faults["latency"] += shop.requests_served() - served

        # 2. 429 storms, each 429 asking for a 1 s wait (Retry-After; an HTTP date from X-Series)
        desired = next_desired(rng, shop, desired, moves=spec.moves, min_ops=size.min_ops)
        plan = new_plan(shop, fig, stock, desired, size.min_ops)
        with StatusCounter() as seen, Driver(shop, rng, limit=size.storms, **storm("rate_429", retry_after_s=1)):
            stock = _run(plan, "429 storms")
        shop.faults(rate_429=0)
        fig.faults["429"] += seen.counts["429"]
        assert seen.counts["429"] > 0

        # 3. 5xx bursts
        desired = next_desired(rng, shop, desired, moves=spec.moves, min_ops=size.min_ops)
        plan = new_plan(shop, fig, stock, desired, size.min_ops)
        with StatusCounter() as seen, Driver(shop, rng, limit=size.storms, **storm("rate_5xx")):
            stock = _run(plan, "5xx bursts")
        shop.faults(rate_5xx=0)
        fig.faults["5xx"] += seen.counts["5xx"]
        assert seen.counts["5xx"] > 0

        # 4. connections dropped after the write was committed
        desired = next_desired(rng, shop, desired, moves=spec.moves, min_ops=size.min_ops)
        plan = new_plan(shop, fig, stock, desired, size.min_ops)
        doubts = fig.in_doubt
        with Driver(shop, rng, limit=size.storms, **drops()) as dropping:
            stock = _run(plan, "dropped connections")
        disarm(dropping)
        fig.faults["drop_after_write"] += dropping.count
        assert dropping.count > 0
