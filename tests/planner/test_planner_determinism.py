"""Deterministic ids and plan ids; the clock only when created_at is not given; scale."""

from __future__ import annotations

import os
import re
import time

import pytest

from planner_helpers import FULL, actual, base, desired, policy
from reconciler.model import DesiredPosition, DesiredState, Guards, Policy, Record, TargetActual, TargetPolicy
from reconciler.planner import make_plan

K = ("x", "oslo", "SKU1")


def _plan(serial: int = 7, created_at: str | None = "2026-01-01T00:00:00Z", d: int = 8):
    return make_plan(desired({K: d}), base({K: 5}, serial=serial), actual({K: 5}), policy(), created_at=created_at,
                     git_commit="abc123", git_dirty=True)


def test_ids_depend_on_inputs_not_on_time() -> None:
    p1, p2 = _plan(), _plan(created_at="2030-05-05T00:00:00Z")
    assert p1.operations[0].id == p2.operations[0].id and p1.plan_id == p2.plan_id
    assert re.fullmatch(r"[0-9a-f]{16}", p1.operations[0].id)
    assert _plan(serial=8).operations[0].id != p1.operations[0].id
    assert _plan(serial=8).plan_id != p1.plan_id
    assert _plan(d=9).operations[0].id != p1.operations[0].id


def test_plan_records_its_facts() -> None:
    p = _plan()
    assert (p.format_version, p.lineage, p.serial, p.desired_digest) == (1, "lin-1", 7, "d1")
    assert (p.git_commit, p.git_dirty, p.desired_files) == ("abc123", True, {"stock/x.yaml": "ab"})


def test_created_at_defaults_to_utc_now() -> None:
    p = _plan(created_at=None)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", p.created_at)


def test_inputs_are_not_mutated() -> None:
    d, b, a = desired({K: 8}), base({K: 5}), actual({K: 5})
    before = (dict(d.positions), dict(b.positions), dict(a["x"].positions))
    make_plan(d, b, a, policy(), created_at="t")
    assert before == (d.positions, b.positions, a["x"].positions)


def _chain(locations: int, skus: int):  # type: ignore[no-untyped-def]
    """D, B, A of a chain where 1 SKU in 50 changes and 1 in 77 drifted (a typical plan)."""
    locs = [f"loc{i:03d}" for i in range(locations)]
    items = [f"SKU{i:05d}" for i in range(skus)]
    dpos, bpos, apos = {}, {}, {}
    for n, loc in enumerate(locs):
        for m, item in enumerate(items):
            key = ("x", loc, item)
            dpos[key] = DesiredPosition("x", loc, item, 5 + (n + m) % 3 if m % 50 == 0 else 5)
            bpos[key] = Record(5)
            apos[(loc, item)] = Record(5 if m % 77 else 4)
    pol = Policy(targets={"x": TargetPolicy()}, capabilities={"x": FULL}, guards=Guards())
    return DesiredState(dpos), base(bpos), {"x": TargetActual(True, apos)}, pol


def _cpu_seconds_to_plan(locations: int, skus: int) -> tuple[float, int]:
    d, b, a, pol = _chain(locations, skus)
    # CPU, not wall: other test suites share the machine, and a plan makes no I/O.
    started = time.process_time()
    p = make_plan(d, b, a, pol, created_at="t")
    return time.process_time() - started, len(p.operations)


def test_100k_positions_plan_in_bounded_time() -> None:
    # ~0.3 s of CPU on a 2-core CI machine; the ceiling only catches an accidental quadratic
    # step or a per-position slowdown of an order of magnitude.
    elapsed, ops = _cpu_seconds_to_plan(20, 5_000)
    assert ops > 1_000
    assert elapsed < 10.0, f"planning 100k positions took {elapsed:.1f} s of CPU"


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("RECONCILER_BENCH_1M") != "1", reason="1M positions: set RECONCILER_BENCH_1M=1")
def test_million_positions_plan_quickly() -> None:
    elapsed, ops = _cpu_seconds_to_plan(200, 5_000)
    assert ops > 10_000
    assert elapsed < 10.0, f"planning 1M positions took {elapsed:.1f} s of CPU"


def test_garbage_collector_setting_is_restored() -> None:
    import gc

    assert gc.isenabled()
    _plan()
    assert gc.isenabled()
    gc.disable()
    try:
        _plan()
        assert not gc.isenabled()
    finally:
        gc.enable()
