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


def test_absolute_only_readable_target_resets_to_live_plus_delta() -> None:
    caps = Capabilities(readable=True, absolute=True, delta=False, native_move=False, delete=True)
    [op] = plan(desired({K: 8}), base({K: 5}), actual({K: 2}), policy({"x": caps})).operations
    assert (op.kind, op.legs[0].expected, op.legs[0].change) == (OpKind.RESET, 5, 3)


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
    assert [op.kind for op in p.operations] == [OpKind.RESET]  # adopt only, settings already there
    a2 = actual({K: Record(5, Settings(reorder_point=2))})
    p2 = plan(desired({K: _with_settings(5, reorder_point=3)}), base({}), a2)
    assert [op.kind for op in p2.operations] == [OpKind.RESET, OpKind.SETTINGS]


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
