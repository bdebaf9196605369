"""The PR comment and the drift issue body, as the GitOps workflows use them (issue 6)."""

from __future__ import annotations

import dataclasses
import re

import pytest

from render_helpers import huge_plan, small_plan
from reconciler.model import Leg, OpKind, Operation, Plan
from reconciler.render import MARKER, render_markdown, render_text
from reconciler.render.drift import DRIFT_MARKER, render_drift
from reconciler.workflow import DriftEntry, DriftReport, DriftThreshold

LIMIT = 65_536


def wide_plan(n_locations: int, n_items: int) -> Plan:
    """A plan of n_locations * n_items adjustments, built directly: the planner would take seconds."""
    ops = [
        Operation(f"op-{i:04d}-{j:06d}", OpKind.ADJUST, "xs", f"SKU-{j:06d}",
                  (Leg(f"store-{i:04d}", 1, 0, j % 9 + 1, j % 9 + 1, j % 9 + 2),), "D != B", write_mode="delta")
        for i in range(n_locations) for j in range(n_items)
    ]
    return dataclasses.replace(small_plan(allow_negative=True), operations=ops, warnings=[])


def test_markdown_of_100k_operations_has_every_part_and_stays_under_the_limit() -> None:
    plan = wide_plan(200, 500)
    assert len(plan.operations) == 100_000
    md = render_markdown(plan)
    assert len(md) <= LIMIT
    lines = md.splitlines()
    assert lines[0] == MARKER
    assert lines[1].startswith("**Plan: 100,000 adjustments** (units +")
    assert "| target | location | resets | adjustments | movements | deletions |" in md
    assert "units up | units down |" in md
    assert "| xs | store-0000 | 0 | 500 | 0 | 0 |" in md
    assert "<details><summary>100,000 operations</summary>" in md
    shown = md.count("\n| adjust | xs |")
    hidden = re.search(r"… ([\d,]+) more operations not shown", md)
    assert hidden is not None and shown > 100 and shown + int(hidden.group(1).replace(",", "")) == 100_000
    assert md.rstrip().endswith("</details>")


def test_warnings_and_guard_overrides_come_before_the_tables() -> None:
    plan = small_plan(allow_negative=True)
    md = render_markdown(plan)
    warnings = md.index("**Warnings**")
    assert warnings < md.index("| target | location |") < md.index("<details>")
    assert "1 operation carries overridden guards" in md[warnings:md.index("| target | location |")]
    # the operation itself says which guard was overridden
    row = next(line for line in md.splitlines() if line.startswith("| adjust | xs | bergen | NEG"))
    assert "\u26a0 overridden: negative" in row


def test_thousands_of_warnings_cannot_push_out_the_summary() -> None:
    plan = small_plan(allow_negative=True)
    plan.warnings = [f"warning number {i} " + "x" * 200 for i in range(5_000)]
    md = render_markdown(plan)
    assert len(md) <= LIMIT
    assert "1 operation carries overridden guards" in md  # ours are listed first
    assert "more warnings; see the saved plan" in md
    assert "| xs | oslo |" in md and "<details>" in md


def test_dirty_plan_says_so_in_markdown_and_text() -> None:
    plan = dataclasses.replace(small_plan(allow_negative=True), git_dirty=True)
    md = render_markdown(plan)
    assert "made from a working tree with uncommitted changes to the desired files" in md
    assert "--allow-dirty" in md
    assert "uncommitted changes" in render_text(plan)
    clean = render_markdown(small_plan(allow_negative=True))
    assert "uncommitted" not in clean


@pytest.mark.parametrize("limit", [2_000, 10_000, LIMIT])
def test_markdown_never_exceeds_the_limit_even_with_long_names(limit: int) -> None:
    plan = huge_plan(30, 50)
    plan.warnings = ["w" * 3_000] * 3
    md = render_markdown(plan, limit=limit)
    assert len(md) <= limit and md.startswith(MARKER + "\n**Plan: ")


# --- drift -----------------------------------------------------------------------------------


def _report(n: int, *, step: int = 1, base: int = 10) -> DriftReport:
    entries = [DriftEntry("xs", f"store-{i % 7}", f"SKU-{i:06d}", base, base + (step if i % 2 else -step)) for i in range(n)]
    return DriftReport(entries, ["kaching-dk"], checked_positions=max(n, 1) * 2, applied_units=max(n, 1) * 2 * base)


def test_drift_thresholds_in_units_and_percent() -> None:
    report = _report(10, step=3)  # 30 units of drift over 200 applied units: 15%
    assert report.drift_units == 30 and report.drift_percent == pytest.approx(15.0)
    assert DriftThreshold().exceeded_by(report)
    assert DriftThreshold(units=29).exceeded_by(report)
    assert not DriftThreshold(units=30).exceeded_by(report)  # "exceeds" is strictly more
    assert DriftThreshold(percent=14.9).exceeded_by(report)
    assert not DriftThreshold(percent=15.0).exceeded_by(report)
    assert DriftThreshold(units=100, percent=10).exceeded_by(report)  # either limit is enough
    assert not DriftThreshold(units=100, percent=20).exceeded_by(report)
    none = DriftReport([], [], 5, 50)
    assert not DriftThreshold().exceeded_by(none) and not DriftThreshold(units=0).exceeded_by(none)
    nothing_applied = DriftReport([DriftEntry("xs", "oslo", "A", 0, 2)], [], 1, 0)
    assert nothing_applied.drift_percent is None and DriftThreshold(percent=50).exceeded_by(nothing_applied)


def test_drift_markdown_has_marker_threshold_and_summary() -> None:
    report = _report(10, step=3)
    md = render_drift(report, "markdown", DriftThreshold(units=20))
    lines = md.splitlines()
    assert lines[0] == DRIFT_MARKER
    assert lines[1] == ("**Drift in 10 of 20 positions: 30 units away from what was applied "
                        "(15.0% of 200 applied units).**")
    assert "Threshold: 20 units; exceeded." in md
    assert "| xs | store-1 | 2 | +3 | \u22123 |" in md  # entries 1 and 8: one up, one down
    assert "Not checked (write-only APIs): `kaching-dk`" in md
    assert "| xs | store-0 | SKU-000000 | 10 | 7 | -3 |" in md
    calm = render_drift(report, "markdown", DriftThreshold(units=20, percent=50))
    assert "Threshold: 20 units or 50% of the applied units; exceeded." in calm
    assert "Threshold: 40 units; not exceeded." in render_drift(report, "text", DriftThreshold(units=40))


def test_drift_markdown_of_100k_positions_stays_under_the_limit() -> None:
    report = _report(100_000)
    md = render_drift(report, "markdown", DriftThreshold())
    assert len(md) <= LIMIT and md.startswith(DRIFT_MARKER + "\n**Drift in 100,000 of")
    hidden = re.search(r"… ([\d,]+) more positions not shown", md)
    assert hidden is not None
    assert md.count("\n| xs | store-") - 7 + int(hidden.group(1).replace(",", "")) == 100_000


def test_no_drift_and_json() -> None:
    import json

    none = DriftReport([], ["kaching-dk"], 4, 40)
    md = render_drift(none, "markdown", DriftThreshold(units=5))
    assert md.startswith(DRIFT_MARKER + "\n**No drift: live stock matches what was last applied (4 positions checked).**")
    assert "not exceeded" in md and "<details>" not in md
    doc = json.loads(render_drift(_report(4, step=2), "json", DriftThreshold(percent=1)))
    assert doc["drift_units"] == 8 and doc["threshold_exceeded"] is True and doc["unreadable_targets"] == ["kaching-dk"]
    assert len(doc["drift"]) == 4 and doc["threshold"] == "1% of the applied units"
