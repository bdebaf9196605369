"""Settings changes (DESIGN.md section 2, issue 2 point 4), one row per setting the model holds:
planned as a settings operation beside the quantity, never instead of it; unchanged, nothing."""

from __future__ import annotations

import pytest

from planner_helpers import actual, base, desired, plan, policy
from reconciler.model import SETTING_NAMES, Capabilities, DesiredPosition, OpKind, Record, Settings

K = ("x", "oslo", "SKU1")
ALL_SETTINGS = Capabilities(readable=True, absolute=True, delta=True, native_move=True, delete=True,
                            settings=frozenset(SETTING_NAMES))

# (setting, value in B and A, value in D)
ROWS = [
    ("reorder_point", 2, 5),
    ("reorder_amount", 10, 0),
    ("tracking", True, False),
    ("backordering", False, True),
    ("low_stock_level", 0, 3),
]


def test_the_table_covers_every_setting() -> None:
    assert sorted(r[0] for r in ROWS) == sorted(SETTING_NAMES)


@pytest.mark.parametrize(("name", "before", "after"), ROWS, ids=[r[0] for r in ROWS])
def test_a_changed_setting_is_planned_beside_the_quantity(name: str, before: object, after: object) -> None:
    held = Record(5, Settings(**{name: before}))
    d = desired({K: DesiredPosition(*K, quantity=7, settings=Settings(**{name: after}))})

    p = plan(d, base({K: held}), actual({K: held}), policy({"x": ALL_SETTINGS}))

    [quantity, change] = p.operations
    assert (quantity.kind, quantity.legs[0].change) == (OpKind.ADJUST, 2)
    assert change.kind is OpKind.SETTINGS and change.write_mode == "absolute"
    assert change.settings_before == Settings(**{name: before}) and change.settings_after == Settings(**{name: after})
    assert f"{name} " in change.reason and p.has_changes


@pytest.mark.parametrize(("name", "before", "after"), ROWS, ids=[r[0] for r in ROWS])
def test_an_unchanged_setting_plans_nothing(name: str, before: object, after: object) -> None:
    held = Record(5, Settings(**{name: after}))
    d = desired({K: DesiredPosition(*K, quantity=5, settings=Settings(**{name: after}))})

    assert plan(d, base({K: held}), actual({K: held}), policy({"x": ALL_SETTINGS})).operations == []


@pytest.mark.parametrize(("name", "before", "after"), ROWS, ids=[r[0] for r in ROWS])
def test_a_setting_not_in_the_yaml_is_left_alone(name: str, before: object, after: object) -> None:
    held = Record(5, Settings(**{name: before}))  # the vendor holds it, the YAML does not manage it

    assert plan(desired({K: 5}), base({K: held}), actual({K: held}), policy({"x": ALL_SETTINGS})).operations == []
