"""Compiling operations to what each target can do (DESIGN.md section 4), and settings."""

from __future__ import annotations

import pytest

from planner_helpers import ABSOLUTE_ONLY, FULL, WRITE_ONLY, actual, base, desired, plan, policy
from reconciler.errors import PlanError
from reconciler.model import Capabilities, DesiredPosition, OpKind, Record, Settings

K = ("x", "oslo", "SKU1")
KEEP = {("x", "oslo", "KEEP"): 1}


def test_delta_target_gets_adjustment_in_delta_mode() -> None:
    [op] = plan(desired({K: 8}), base({K: 5}), actual({K: 5})).operations
    assert (op.kind, op.write_mode, op.legs[0].change) == (OpKind.ADJUST, "delta", 3)


def test_absolute_only_target_gets_reset_to_expected() -> None:
    # Run Free: no read API and no deltas; the adjustment becomes a reset to B + (D - B).
    p = plan(desired({K: 8}), base({K: 5}), actual({}, unreadable=("x",)), policy({"x": ABSOLUTE_ONLY}))
    [op] = p.operations
    assert (op.kind, op.write_mode) == (OpKind.RESET, "absolute")
    assert (op.legs[0].expected, op.legs[0].change, op.legs[0].actual) == (8, 3, None)
    assert "absolute quantities only" in op.reason


READABLE_ABSOLUTE = Capabilities(readable=True, absolute=True, delta=False, native_move=False, delete=True)


def test_absolute_only_readable_target_gets_read_modify_write_adjustment() -> None:
    # Lightspeed supplier feed: readable, absolute writes only. The adjustment must stay an
    # ADJUST (the connector re-reads and writes live + d at apply time), never a reset to A + d,
    # which would overwrite sales made between plan and apply.
    [op] = plan(desired({K: 8}), base({K: 5}), actual({K: 2}), policy({"x": READABLE_ABSOLUTE})).operations
    assert (op.kind, op.write_mode) == (OpKind.ADJUST, "read-modify-write")
    assert (op.legs[0].actual, op.legs[0].change, op.legs[0].expected) == (2, 3, 5)
    assert "re-reads live stock" in op.reason


def test_read_modify_write_is_not_paired_into_movements() -> None:
    # two locations of one item on a target without deltas: two adjustments, no movement
    k2 = ("x", "bergen", "SKU1")
    p = plan(desired({K: 3, k2: 7}), base({K: 5, k2: 5}), actual({K: 5, k2: 5}), policy({"x": READABLE_ABSOLUTE}))
    assert [(op.kind, op.write_mode, op.legs[0].change) for op in p.operations] == [
        (OpKind.ADJUST, "read-modify-write", 2), (OpKind.ADJUST, "read-modify-write", -2)]


def test_read_modify_write_keeps_the_negative_guard() -> None:
    from reconciler.errors import GuardError

    with pytest.raises(GuardError, match="would leave -1"):
        plan(desired({K: 1}), base({K: 5}), actual({K: 3}), policy({"x": READABLE_ABSOLUTE}))


def test_delete_on_target_without_delete_is_plan_error() -> None:
    d = desired(KEEP)
    b = base({**KEEP, K: 4, ("x", "oslo", "SKU2"): 1})
    with pytest.raises(PlanError) as err:
        plan(d, b, actual({}, unreadable=("x",)), policy({"x": ABSOLUTE_ONLY}, prune=True))
    text = str(err.value)
    assert "x/oslo/SKU1" in text and "x/oslo/SKU2" in text
    assert "prune: false" in text


def test_delete_unsupported_but_prune_off_releases() -> None:
    p = plan(desired(KEEP), base({**KEEP, K: 4}), actual({}, unreadable=("x",)), policy({"x": ABSOLUTE_ONLY}))
    assert [op.kind for op in p.operations] == [OpKind.RELEASE]


def test_target_without_capabilities_is_plan_error() -> None:
    with pytest.raises(PlanError, match="'y'"):
        plan(desired({("y", "oslo", "A"): 1}), base({}), actual({}))


def _with_settings(q: int, **settings: int) -> DesiredPosition:
    return DesiredPosition(*K, quantity=q, settings=Settings(**settings))


def test_settings_change_gets_settings_op_beside_quantity_op() -> None:
    b = base({K: Record(5, Settings(reorder_point=1, reorder_amount=4))})
    p = plan(desired({K: _with_settings(8, reorder_point=3)}), b, actual({K: 5}))
    assert [op.kind for op in p.operations] == [OpKind.ADJUST, OpKind.SETTINGS]
    op = p.operations[1]
    assert op.settings_before == Settings(reorder_point=1, reorder_amount=4)
    assert op.settings_after == Settings(reorder_point=3, reorder_amount=4)
    assert "reorder_point 1 -> 3" in op.reason and op.write_mode == "absolute"


def test_settings_unchanged_gives_no_op() -> None:
    b = base({K: Record(5, Settings(reorder_point=3))})
    assert plan(desired({K: _with_settings(5, reorder_point=3)}), b, actual({K: 5})).operations == []


def test_settings_compared_with_actual_when_base_absent() -> None:
    a = actual({K: Record(5, Settings(reorder_point=3))})
    p = plan(desired({K: _with_settings(5, reorder_point=3)}), base({}), a)
    # the vendor holds D and the settings: a state-only record, nothing sent (issue 16, point 5)
    assert [op.kind for op in p.operations] == [OpKind.RECORD]
    # ...and it carries the settings, so applying it records them in B (plan again: empty)
    assert p.operations[0].settings_after == Settings(reorder_point=3)
    assert "already holds reorder_point 3" in p.operations[0].reason
    a2 = actual({K: Record(5, Settings(reorder_point=2))})
    p2 = plan(desired({K: _with_settings(5, reorder_point=3)}), base({}), a2)
    assert [op.kind for op in p2.operations] == [OpKind.RECORD, OpKind.SETTINGS]
    # the settings operation records them; the adoption must not claim what it does not write
    assert p2.operations[0].settings_after is None


def test_adopted_settings_reach_base_and_the_next_plan_is_empty() -> None:
    from reconciler.apply._ops import base_updates

    a = actual({K: Record(5, Settings(reorder_point=3, reorder_amount=9))})
    d = desired({K: _with_settings(6, reorder_point=3)})
    [adopt] = plan(d, base({}), a).operations
    [update] = base_updates(adopt)
    b = base({K: Record(update.quantity, update.settings)})  # what the applier writes to B
    assert b.positions[K] == Record(6, Settings(reorder_point=3))  # only the managed setting
    assert plan(d, b, actual({K: Record(6, Settings(reorder_point=3, reorder_amount=9))})).operations == []


def test_unsupported_setting_is_plan_error() -> None:
    d = desired({K: DesiredPosition(*K, quantity=5, settings=Settings(low_stock_level=2))})
    with pytest.raises(PlanError, match="low_stock_level"):
        plan(d, base({K: 5}), actual({K: 5}))


def test_write_only_settings_planned_against_nothing_known() -> None:
    caps = Capabilities(readable=False, absolute=True, delta=True, native_move=False, delete=True,
                        settings=frozenset({"reorder_point"}))
    p = plan(desired({K: _with_settings(5, reorder_point=2)}), base({K: 5}), actual({}, unreadable=("x",)),
             policy({"x": caps}))
    [op] = p.operations
    assert op.kind is OpKind.SETTINGS and op.settings_after == Settings(reorder_point=2)


@pytest.mark.parametrize("caps", [FULL, WRITE_ONLY])
def test_no_settings_no_op(caps: Capabilities) -> None:
    p = plan(desired({K: 5}), base({K: 5}), actual({K: 5}) if caps.readable else {}, policy({"x": caps}))
    assert p.operations == []
