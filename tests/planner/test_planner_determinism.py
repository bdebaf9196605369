"""Deterministic ids and plan ids; the clock only when created_at is not given; scale."""

from __future__ import annotations

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


@pytest.mark.slow
def test_million_positions_plan_quickly() -> None:
    locs = [f"loc{i:03d}" for i in range(200)]
    items = [f"SKU{i:05d}" for i in range(5_000)]
    dpos, bpos, apos = {}, {}, {}
    for n, loc in enumerate(locs):
        for m, item in enumerate(items):
            key = ("x", loc, item)
            dpos[key] = DesiredPosition("x", loc, item, 5 + (n + m) % 3 if m % 50 == 0 else 5)
            bpos[key] = Record(5)
            apos[(loc, item)] = Record(5 if m % 77 else 4)
    pol = Policy(targets={"x": TargetPolicy()}, capabilities={"x": FULL}, guards=Guards())
    started = time.perf_counter()
    p = make_plan(DesiredState(dpos), base(bpos), {"x": TargetActual(True, apos)}, pol, created_at="t")
    elapsed = time.perf_counter() - started
    assert len(p.operations) > 10_000
    assert elapsed < 5.0, f"planning 1M positions took {elapsed:.1f}s"


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
