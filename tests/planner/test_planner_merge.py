"""DESIGN.md section 3, row by row: the merge table and the replace strategy."""

from __future__ import annotations

import pytest

from planner_helpers import FULL, WRITE_ONLY, actual, base, desired, kinds, plan, policy
from reconciler.model import DesiredPosition, OpKind

K = ("x", "oslo", "SKU1")


@pytest.mark.parametrize(
    "d, b, a, prune, want_kind, want_change, want_expected",
    [
        # D absent, B absent: not managed, whatever the vendor holds
        (None, None, 5, False, None, None, None),
        # D absent, B present: delete with pruning on, release with it off (vendor untouched)
        (None, 4, 5, True, OpKind.DELETE, 0, None),
        (None, 4, 5, False, OpKind.RELEASE, 0, 5),
        # D present, B absent: adopt = reset to D
        (9, None, 5, False, OpKind.RESET, 4, 9),
        (9, None, None, False, OpKind.RESET, 9, 9),  # vendor holds nothing: A = 0
        # D == B and A == B: nothing
        (6, 6, 6, False, None, None, None),
        # D == B, A != B: drift note, never overwritten
        (6, 6, 2, False, OpKind.DRIFT, 0, 2),
        # D != B: adjust by D - B on top of live stock, so sales survive
        (10, 6, 4, False, OpKind.ADJUST, 4, 8),
        (3, 6, 4, False, OpKind.ADJUST, -3, 1),
    ],
)
def test_merge_table(d, b, a, prune, want_kind, want_change, want_expected) -> None:
    # A position that needs nothing keeps the location file non-empty (see the guard tests).
    keep = {("x", "oslo", "KEEP"): 1}
    p = plan(
        desired({**keep, **({K: d} if d is not None else {})}),
        base({**keep, **({K: b} if b is not None else {})}),
        actual({**keep, **({K: a} if a is not None else {})}),
        policy(prune=prune),
    )
    if want_kind is None:
        assert p.operations == []
        assert not p.has_changes
        return
    [op] = p.operations
    assert op.kind is want_kind
    assert op.legs[0].change == want_change
    assert op.legs[0].expected == want_expected
    assert op.legs[0].desired == d and op.legs[0].base == b
    assert p.has_changes is (want_kind is not OpKind.DRIFT)


def test_adopt_reason_says_adopt() -> None:
    p = plan(desired({K: 9}), base({}), actual({K: 5}))
    assert "adopt" in p.operations[0].reason
    assert p.operations[0].write_mode == "absolute"


def test_drift_reason_says_left_as_is() -> None:
    [op] = plan(desired({K: 6}), base({K: 6}), actual({K: 2})).operations
    assert "drift" in op.reason and "left as is" in op.reason


def test_write_only_adjust_plans_against_base_and_says_so() -> None:
    p = plan(desired({K: 10}), base({K: 6}), actual({}, unreadable=("x",)), policy({"x": WRITE_ONLY}))
    [op] = p.operations
    assert op.kind is OpKind.ADJUST and op.write_mode == "delta"
    leg = op.legs[0]
    assert (leg.actual, leg.base, leg.change, leg.expected) == (None, 6, 4, 10)
    assert "write-only" in op.reason
    assert p.unreadable_targets == ["x"]
    assert any("write-only" in w for w in p.warnings)


def test_write_only_target_missing_from_actual_is_unknown_not_zero() -> None:
    p = plan(desired({K: 10}), base({K: 6}), {}, policy({"x": WRITE_ONLY}))
    assert p.operations[0].legs[0].actual is None
    assert p.unreadable_targets == ["x"]


def test_write_only_no_drift_note_when_d_equals_b() -> None:
    p = plan(desired({K: 6}), base({K: 6}), actual({}, unreadable=("x",)), policy({"x": WRITE_ONLY}))
    assert p.operations == []


def _replace(q: int) -> DesiredPosition:
    return DesiredPosition(*K, quantity=q, strategy="replace")


@pytest.mark.parametrize(
    "d, b, a, want_change",
    [
        (10, 10, 7, 3),  # A != D: reset, even though D == B (replace overwrites drift)
        (10, 4, 10, None),  # A == D: nothing sent (B is recorded: see the next test)
        (10, 4, 12, -2),
        (10, None, 3, 7),  # adopt
    ],
)
def test_replace_resets_to_desired_wherever_actual_differs(d, b, a, want_change) -> None:
    p = plan(desired({K: _replace(d)}), base({K: b} if b is not None else {}), actual({K: a}))
    if want_change is None:
        assert [op.kind for op in p.operations] == [OpKind.RECORD]
        return
    [op] = p.operations
    assert op.kind is OpKind.RESET and op.write_mode == "absolute"
    assert (op.legs[0].change, op.legs[0].expected) == (want_change, d)
    assert "replace" in op.reason or "adopt" in op.reason


@pytest.mark.parametrize("b, want", [(4, 10), (10, None), (None, 10)])
def test_replace_with_unknown_actual_compares_base(b, want) -> None:
    p = plan(desired({K: _replace(10)}), base({K: b} if b is not None else {}), actual({}, unreadable=("x",)),
             policy({"x": WRITE_ONLY}))
    if want is None:
        assert p.operations == []
    else:
        [op] = p.operations
        assert op.kind is OpKind.RESET and op.legs[0].expected == want


def test_positions_only_at_the_vendor_are_not_managed() -> None:
    p = plan(desired({K: 3}), base({K: 3}), actual({K: 3, ("x", "oslo", "OTHER"): 50}))
    assert p.operations == []


def test_scope_restricts_targets_and_locations() -> None:
    caps = {"x": FULL, "y": FULL}
    d = desired({("x", "oslo", "A"): 1, ("x", "bergen", "A"): 2, ("y", "oslo", "A"): 3})
    b = base({("x", "oslo", "A"): 0, ("x", "bergen", "A"): 0, ("y", "oslo", "A"): 0, ("x", "bergen", "Z"): 1})
    a = actual({("x", "oslo", "A"): 0, ("x", "bergen", "A"): 0, ("y", "oslo", "A"): 0})
    p = plan(d, b, a, policy(caps, moves=False, only_targets=frozenset({"x"}), only_locations=frozenset({"bergen"})))
    assert sorted((op.target, op.location, op.item) for op in p.operations) == [
        ("x", "bergen", "A"), ("x", "bergen", "Z")]
    assert p.scope == {"targets": ["x"], "locations": ["bergen"]}


def test_kinds_sorted_by_target_location_item() -> None:
    d = desired({("x", "b", "I2"): 1, ("x", "a", "I9"): 1, ("x", "a", "I1"): 1})
    p = plan(d, base({}), actual({("x", "a", "I1"): 0}))
    assert [(op.location, op.item) for op in p.operations] == [("a", "I1"), ("a", "I9"), ("b", "I2")]
    assert kinds(p) == [OpKind.RESET] * 3


@pytest.mark.parametrize(
    "d, b, a, strategy",
    [
        (10, 4, 10, "replace"),  # replace, the vendor already holds D, B says otherwise
        (10, None, 10, "merge"),  # adopt, the vendor already holds D
        (10, None, 10, "replace"),
    ],
)
def test_a_vendor_already_holding_d_gets_a_state_only_record_so_b_follows(d, b, a, strategy) -> None:
    """Issue 16, point 5: nothing to send, but B must become D, or a later edit (or a switch of
    strategy to merge) adjusts by D' - B from a B the vendor does not hold."""
    dp = DesiredPosition(*K, quantity=d, strategy=strategy)
    [op] = plan(desired({K: dp}), base({K: b} if b is not None else {}), actual({K: a})).operations
    assert op.kind is OpKind.RECORD and op.write_mode == ""
    assert (op.legs[0].desired, op.legs[0].change, op.legs[0].expected) == (d, 0, a)
    assert "nothing sent" in op.reason
    # once recorded (B = D), the same inputs plan nothing at all
    assert plan(desired({K: dp}), base({K: d}), actual({K: a})).operations == []


def test_a_write_only_target_still_resets_on_adopt() -> None:
    """A is unknown there, so 'already holds D' cannot be known: the adopt stays a reset."""
    caps = policy({K[0]: WRITE_ONLY})
    [op] = plan(desired({K: DesiredPosition(*K, quantity=10)}), base({}), actual({}, unreadable=(K[0],)), caps).operations
    assert op.kind is OpKind.RESET
