"""Movement inference: pairing falls and rises of one item within one target."""

from __future__ import annotations

from planner_helpers import ABSOLUTE_ONLY, FULL, NO_NATIVE_MOVE, actual, base, desired, plan, policy
from reconciler.model import OpKind


def _inputs(deltas: dict[str, int], item: str = "A", target: str = "x"):
    b = {(target, loc, item): 10 for loc in deltas}
    d = {(target, loc, item): 10 + dd for loc, dd in deltas.items()}
    return desired(d), base(b), actual(b)


def test_fall_and_rise_pair_into_one_movement() -> None:
    p = plan(*_inputs({"oslo": -4, "bergen": +4}))
    [op] = p.operations
    assert op.kind is OpKind.MOVE and op.write_mode == "delta"
    src, dst = op.legs
    assert (src.location, src.change, src.expected) == ("oslo", -4, 6)
    assert (dst.location, dst.change, dst.expected) == ("bergen", 4, 14)
    assert op.units == 4


def test_inference_off_gives_adjustments() -> None:
    p = plan(*_inputs({"oslo": -4, "bergen": +4}), policy(moves=False))
    assert sorted(op.kind for op in p.operations) == [OpKind.ADJUST, OpKind.ADJUST]


def test_leftover_stays_adjustment() -> None:
    p = plan(*_inputs({"oslo": -6, "bergen": +4}))
    by_kind = {op.kind: op for op in p.operations}
    assert set(by_kind) == {OpKind.MOVE, OpKind.ADJUST}
    assert by_kind[OpKind.MOVE].units == 4
    assert (by_kind[OpKind.ADJUST].location, by_kind[OpKind.ADJUST].legs[0].change) == ("oslo", -2)
    # both operations touch oslo; expected values chain: 10 - 4 - 2 = 4 = D
    final = {leg.location: leg.expected for op in p.operations for leg in op.legs}
    assert final == {"oslo": 4, "bergen": 14}


def test_greedy_pairs_largest_first_by_name() -> None:
    p = plan(*_inputs({"a": -5, "b": -3, "c": +3, "d": +5}))
    moves = sorted((op.legs[0].location, op.legs[1].location, op.units) for op in p.operations)
    assert moves == [("a", "d", 5), ("b", "c", 3)]


def test_different_items_and_targets_never_pair() -> None:
    d = desired({("x", "oslo", "A"): 6, ("x", "bergen", "B"): 14, ("y", "bergen", "A"): 14})
    b = base({("x", "oslo", "A"): 10, ("x", "bergen", "B"): 10, ("y", "bergen", "A"): 10})
    a = actual({("x", "oslo", "A"): 10, ("x", "bergen", "B"): 10, ("y", "bergen", "A"): 10})
    p = plan(d, b, a, policy({"x": FULL, "y": FULL}))
    assert all(op.kind is OpKind.ADJUST for op in p.operations) and len(p.operations) == 3


def test_target_without_native_move_still_gets_movements_if_it_takes_deltas() -> None:
    p = plan(*_inputs({"oslo": -4, "bergen": +4}), policy({"x": NO_NATIVE_MOVE}))
    assert [op.kind for op in p.operations] == [OpKind.MOVE]


def test_absolute_only_target_gets_no_movements() -> None:
    d, b, _ = _inputs({"oslo": -4, "bergen": +4})
    p = plan(d, b, actual({}, unreadable=("x",)), policy({"x": ABSOLUTE_ONLY}))
    assert sorted(op.kind for op in p.operations) == [OpKind.RESET, OpKind.RESET]


def test_adopted_positions_are_not_paired() -> None:
    d = desired({("x", "oslo", "A"): 6, ("x", "bergen", "A"): 14})
    b = base({("x", "oslo", "A"): 10})
    p = plan(d, b, actual({("x", "oslo", "A"): 10}))
    assert sorted(op.kind.value for op in p.operations) == ["adjust", "reset"]
