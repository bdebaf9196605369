"""Property tests: plans reach D, are deterministic, and movements conserve units."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from planner_helpers import ABSOLUTE_ONLY, FULL, WRITE_ONLY
from reconciler.model import (
    BaseState,
    DesiredPosition,
    DesiredState,
    Guards,
    OpKind,
    Plan,
    Policy,
    Record,
    TargetActual,
    TargetPolicy,
)
from reconciler.planfile import dump_plan, loads_plan
from reconciler.planner import make_plan

TARGETS = {"full": FULL, "wo": WRITE_ONLY, "abs": ABSOLUTE_ONLY}
LOCS = ("a", "b", "c")
ITEMS = ("I1", "I2", "I3")


def _mostly(values: st.SearchStrategy) -> st.SearchStrategy:
    # Present three times in four, and small, so equalities (D == B, A == B) and pairs of
    # opposite changes (movements) come up often.
    return st.sampled_from([True, True, True, False]).flatmap(lambda present: values if present else st.none())


position = st.tuples(
    _mostly(st.integers(0, 8)),  # D
    _mostly(st.integers(0, 8)),  # B
    _mostly(st.integers(-3, 8)),  # A (readable targets only; None: vendor holds nothing)
    st.sampled_from(["merge", "merge", "merge", "replace"]),
)


@st.composite
def worlds(draw):
    cells = draw(st.dictionaries(
        st.tuples(st.sampled_from(sorted(TARGETS)), st.sampled_from(LOCS), st.sampled_from(ITEMS)),
        position, max_size=25,
    ))
    d, b = {}, {}
    a = {t: TargetActual(readable=caps.readable) for t, caps in TARGETS.items()}
    for key, (dq, bq, aq, strategy) in cells.items():
        if dq is not None:
            d[key] = DesiredPosition(*key, quantity=dq, strategy=strategy)
        if bq is not None:
            b[key] = Record(bq)
        if aq is not None and TARGETS[key[0]].readable:
            a[key[0]].positions[key[1:]] = Record(aq)
    moves = draw(st.booleans())
    prune = draw(st.booleans())
    policy = Policy(
        targets={t: TargetPolicy(prune=prune and TARGETS[t].delete, infer_movements=moves) for t in TARGETS},
        capabilities=TARGETS,
        guards=Guards(allow_negative=True, allow_missing_location=True, allow_mass_delete=True),
    )
    declared = {k[:2]: "f.yaml" for k in d}
    return DesiredState(d, declared, {"f.yaml": "00"}, "dig"), BaseState("lin", 3, b), a, policy


def _make(world) -> Plan:
    return make_plan(*world, created_at="2026-01-01T00:00:00Z")


def _start(world, key) -> int | None:
    _, base, actual, _ = world
    ta = actual[key[0]]
    if ta.readable:
        rec = ta.positions.get(key[1:])
        return rec.quantity if rec is not None else 0
    rec = base.positions.get(key)
    return rec.quantity if rec is not None else None


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_applying_changes_gives_expected_and_reaches_desired(world) -> None:
    desired, base, actual, _ = world
    p = _make(world)
    stock: dict = {}
    for op in p.operations:
        for leg in op.legs:
            key = (op.target, leg.location, op.item)
            now = stock[key] if key in stock else _start(world, key)
            if op.kind in (OpKind.RESET, OpKind.ADJUST, OpKind.MOVE):
                now = (now or 0) + leg.change
                assert now == leg.expected, op
                stock[key] = now
    for key, dp in desired.positions.items():
        start = _start(world, key)
        final = stock.get(key, start)
        b = base.positions.get(key)
        a_known = actual[key[0]].readable
        if dp.strategy == "replace" or b is None or not a_known or start == b.quantity:
            assert final == dp.quantity, (key, p.operations)
        else:
            assert final == start + dp.quantity - b.quantity


@settings(max_examples=150, deadline=None)
@given(worlds())
def test_same_inputs_same_plan(world) -> None:
    p1, p2 = _make(world), _make(world)
    assert p1 == p2
    assert dump_plan(p1) == dump_plan(p2)
    assert loads_plan(dump_plan(p1)) == p1
    assert len({op.id for op in p1.operations}) == len(p1.operations)


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_movements_conserve_units(world) -> None:
    desired, base, _, _ = world
    p = _make(world)
    net: dict = defaultdict(int)
    for op in p.operations:
        if op.kind is OpKind.MOVE:
            assert len(op.legs) == 2 and sum(leg.change for leg in op.legs) == 0
            assert op.legs[0].change < 0 < op.legs[1].change
        if op.kind in (OpKind.ADJUST, OpKind.MOVE):
            net[(op.target, op.item)] += sum(leg.change for leg in op.legs)
    want: dict = defaultdict(int)
    for key, dp in desired.positions.items():
        b = base.positions.get(key)
        if TARGETS[key[0]].delta and dp.strategy == "merge" and b is not None:
            want[(key[0], key[2])] += dp.quantity - b.quantity
    assert {k: v for k, v in net.items() if v} == {k: v for k, v in want.items() if v}
    # absolute-only targets never get movements (or adjustments)
    assert not any(op.target == "abs" and op.kind in (OpKind.MOVE, OpKind.ADJUST) for op in p.operations)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.sampled_from([f"loc{i}" for i in range(6)]), st.integers(-10, 10), min_size=2),
    st.integers(0, 5),
)
def test_inferred_movements_reach_desired_and_conserve(deltas, drift) -> None:
    # one item, one target, many locations: the case movement inference is for
    b = {("full", loc, "I"): Record(10) for loc in deltas}
    d = {k: DesiredPosition(*k, quantity=10 + deltas[k[1]]) for k in b}
    a = TargetActual(True, {k[1:]: Record(10 - drift) for k in b})
    policy = Policy(targets={"full": TargetPolicy()}, capabilities={"full": FULL},
                    guards=Guards(allow_negative=True, allow_mass_delete=True))
    world = (DesiredState(d, {("full", loc): "f" for loc in deltas}), BaseState("l", 1, b), {"full": a}, policy)
    p = _make(world)
    final = {k: 10 - drift for k in b}
    for op in p.operations:
        assert op.kind in (OpKind.MOVE, OpKind.ADJUST, OpKind.DRIFT)
        for leg in op.legs:
            final[("full", leg.location, "I")] += leg.change
    assert final == {k: 10 - drift + deltas[k[1]] for k in b}
    moves = [op for op in p.operations if op.kind is OpKind.MOVE]
    assert all(-op.legs[0].change == op.legs[1].change > 0 for op in moves)
    falls, rises = -sum(v for v in deltas.values() if v < 0), sum(v for v in deltas.values() if v > 0)
    assert sum(op.units for op in moves) == min(falls, rises)
