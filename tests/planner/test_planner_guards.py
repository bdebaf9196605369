"""Guards: each an error naming the override, unless overridden; then recorded on the ops."""

from __future__ import annotations

import pytest

from planner_helpers import actual, base, desired, plan, policy
from reconciler.errors import GuardError
from reconciler.model import DesiredPosition, Guards, OpKind, SourceRef

K = ("x", "oslo", "SKU1")


def _one_violation(p_kwargs: dict, *args) -> GuardError:
    with pytest.raises(GuardError) as err:
        plan(*args, policy(**p_kwargs))
    return err.value


# --- negative result -------------------------------------------------------------------------


def test_negative_result_is_error_naming_position_and_override() -> None:
    err = _one_violation({}, desired({K: 2}), base({K: 10}), actual({K: 3}))
    [v] = err.violations
    assert "x/oslo/SKU1" in v and "would leave -5" in v
    assert "--allow-negative" in v and "guards.allow_negative: true" in v


def test_negative_result_allowed_is_recorded() -> None:
    p = plan(desired({K: 2}), base({K: 10}), actual({K: 3}),
             policy(guards=Guards(max_delete_share=1.0, allow_negative=True)))
    [op] = p.operations
    assert op.legs[0].expected == -5 and op.overridden_guards == ("negative",)
    assert any("--allow-negative" in w for w in p.warnings)


def test_negative_guard_needs_known_actual() -> None:
    from planner_helpers import WRITE_ONLY
    p = plan(desired({K: 2}), base({K: 10}), actual({}, unreadable=("x",)), policy({"x": WRITE_ONLY}))
    assert p.operations[0].legs[0].expected == 2


def test_all_violations_reported_together() -> None:
    d = desired({K: 0, ("x", "oslo", "SKU2"): 0, ("x", "oslo", "SKU3"): 5})
    b = base({K: 10, ("x", "oslo", "SKU2"): 10, ("x", "oslo", "SKU3"): 5})
    a = actual({K: 3, ("x", "oslo", "SKU2"): 4, ("x", "oslo", "SKU3"): 5})
    err = _one_violation({}, d, b, a)
    assert len([v for v in err.violations if "--allow-negative" in v]) == 2


# --- missing or empty location file ----------------------------------------------------------


def _missing_inputs(declared: dict):
    d = desired({("x", "oslo", "A"): 1}, declared=declared)
    b = base({("x", "oslo", "A"): 1, ("x", "bergen", "A"): 3, ("x", "bergen", "B"): 4})
    a = actual({("x", "oslo", "A"): 1, ("x", "bergen", "A"): 3, ("x", "bergen", "B"): 4})
    return d, b, a


@pytest.mark.parametrize("prune", [True, False])
def test_missing_location_file_stops_the_plan(prune: bool) -> None:
    d, b, a = _missing_inputs({("x", "oslo"): "stock/oslo.yaml"})
    err = _one_violation({"prune": prune}, d, b, a)
    [v] = err.violations
    assert "x/bergen" in v and "no stock file declares it" in v
    assert "--allow-missing-location" in v and "guards.allow_missing_location: true" in v


def test_empty_location_file_names_the_file() -> None:
    d, b, a = _missing_inputs({("x", "oslo"): "stock/oslo.yaml", ("x", "bergen"): "stock/bergen.yaml"})
    [v] = _one_violation({}, d, b, a).violations
    assert "stock/bergen.yaml declares no items" in v


def test_missing_location_allowed_releases_and_records() -> None:
    d, b, a = _missing_inputs({("x", "oslo"): "stock/oslo.yaml"})
    p = plan(d, b, a, policy(guards=Guards(max_delete_share=1.0, allow_missing_location=True)))
    assert [op.kind for op in p.operations] == [OpKind.RELEASE, OpKind.RELEASE]
    assert all(op.overridden_guards == ("missing-location",) for op in p.operations)
    assert any("--allow-missing-location" in w for w in p.warnings)


# --- mass delete / zeroing -------------------------------------------------------------------


def _mass_inputs():
    keys = [("x", "oslo", f"I{i}") for i in range(8)]
    d = desired({k: 2 for k in keys[3:]})  # drops 3 of 8 = 37.5%
    b = base({k: 2 for k in keys})
    return d, b, actual({k: 2 for k in keys})


def test_mass_delete_over_share_is_error() -> None:
    err = _one_violation({"prune": True, "guards": Guards(max_delete_share=0.25)}, *_mass_inputs())
    [v] = err.violations
    assert "x/oslo" in v and "3 of 8" in v and "--allow-mass-delete" in v


def test_mass_delete_under_share_passes() -> None:
    p = plan(*_mass_inputs(), policy(prune=True, guards=Guards(max_delete_share=0.5)))
    assert [op.kind for op in p.operations] == [OpKind.DELETE] * 3
    assert all(op.overridden_guards == () for op in p.operations)


def test_mass_delete_allowed_is_recorded() -> None:
    p = plan(*_mass_inputs(), policy(prune=True, guards=Guards(max_delete_share=0.25, allow_mass_delete=True)))
    assert all(op.overridden_guards == ("mass-delete",) for op in p.operations)
    assert any("--allow-mass-delete" in w for w in p.warnings)


def test_zeroing_counts_as_mass_delete() -> None:
    keys = [("x", "oslo", f"I{i}") for i in range(4)]
    d = desired({k: (0 if i < 2 else 2) for i, k in enumerate(keys)})
    b = base({k: 2 for k in keys})
    err = _one_violation({"guards": Guards(max_delete_share=0.25)}, d, b, actual({k: 2 for k in keys}))
    assert "2 of 4" in err.violations[0]


def test_releases_do_not_count_as_mass_delete() -> None:
    p = plan(*_mass_inputs(), policy(prune=False, guards=Guards(max_delete_share=0.25)))
    assert [op.kind for op in p.operations] == [OpKind.RELEASE] * 3


# --- protected items -------------------------------------------------------------------------


def test_protect_flag_stops_any_change() -> None:
    dp = DesiredPosition(*K, quantity=5, protect=True, source=SourceRef("stock/oslo.yaml", 12))
    err = _one_violation({}, desired({K: dp}), base({K: 4}), actual({K: 4}))
    [v] = err.violations
    assert "stock/oslo.yaml:12" in v and "protected" in v and "--allow-protected" in v


def test_policy_protected_items_cover_deletes() -> None:
    d = desired({("x", "oslo", "KEEP"): 1})
    b = base({("x", "oslo", "KEEP"): 1, K: 4})
    err = _one_violation({"prune": True, "protected_items": frozenset({"SKU1"})}, d, b, actual({}))
    assert "x/oslo/SKU1 is protected" in err.violations[0] and "delete" in err.violations[0]


def test_protected_drift_is_not_a_change() -> None:
    dp = DesiredPosition(*K, quantity=5, protect=True)
    p = plan(desired({K: dp}), base({K: 5}), actual({K: 3}))
    assert [op.kind for op in p.operations] == [OpKind.DRIFT]


def test_protected_allowed_is_recorded() -> None:
    dp = DesiredPosition(*K, quantity=5, protect=True)
    p = plan(desired({K: dp}), base({K: 4}), actual({K: 4}),
             policy(guards=Guards(max_delete_share=1.0, allow_protected=True)))
    assert p.operations[0].overridden_guards == ("protected",)
    assert any("--allow-protected" in w for w in p.warnings)


def test_huge_violation_lists_are_capped_with_a_count() -> None:
    keys = [("x", "oslo", f"I{i:04d}") for i in range(300)]
    d = desired({k: 0 for k in keys})
    err = _one_violation({}, d, base({k: 10 for k in keys}), actual({k: 1 for k in keys}))
    assert len(err.violations) == 201
    assert err.violations[-1] == "... and 100 more violations"
