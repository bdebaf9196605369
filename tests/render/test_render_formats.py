"""Renderers: text for terminals, markdown for PR comments (always under the limit), JSON."""

from __future__ import annotations

import json
import re

import pytest

from render_helpers import huge_plan, small_plan
from reconciler.errors import PlanError
from reconciler.planfile import loads_plan
from reconciler.render import MARKER, render, render_json, render_markdown, render_text

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_text_lists_every_operation_and_the_summary() -> None:
    plan = small_plan(allow_negative=True)
    text = render_text(plan, color=False)
    assert text.startswith("Plan: ")
    assert "1 movement" in text and "1 deletion" in text and "1 drift note" in text
    for op in plan.operations:
        assert op.item in text and op.kind.value in text
    assert "Drift (reported, never overwritten)" in text
    assert "xs / oslo" in text and "xs / bergen" in text
    assert "guard overridden (--allow-negative)" in text
    assert not ANSI.search(text)


def test_text_colour_only_when_asked() -> None:
    plan = small_plan(allow_negative=True)
    coloured = render_text(plan, color=True)
    assert ANSI.search(coloured)
    assert ANSI.sub("", coloured).splitlines()[0] == render_text(plan, color=False).splitlines()[0]


def test_text_caps_huge_plans() -> None:
    text = render_text(huge_plan(3, 1_000), max_ops=50)
    assert "2,950 more operations not shown" in text


def test_markdown_starts_with_marker_and_verdict() -> None:
    plan = small_plan(allow_negative=True)
    md = render_markdown(plan)
    lines = md.splitlines()
    assert lines[0] == MARKER
    assert lines[1].startswith("**Plan: ") and "movement" in lines[1] and "(units +" in lines[1]
    assert "| target | location | resets | adjustments | movements |" in md
    assert "<details><summary>" in md and "</details>" in md
    assert "guard overridden (--allow-negative)" in md
    assert "NEG\\|PIPE" in md  # pipes in names cannot break the table
    assert f"<summary>{len(plan.operations)} operations</summary>" in md
    # oslo: adopt B (+3), 5 moved out to bergen, GONE deleted, B's reorder point set
    assert "| xs | oslo | 1 | 0 | 1 | 1 | 0 | 0 | 1 | +3 | \u22125 |" in md
    # bergen: 5 moved in, NEG|PIPE adjusted by -5
    assert "| xs | bergen | 0 | 1 | 1 | 0 | 0 | 0 | 0 | +5 | \u22125 |" in md
    assert "1 operation carries overridden guards" in md
    assert md.index("**Warnings**") < md.index("<details>")


def test_markdown_of_empty_plan() -> None:
    plan = small_plan(allow_negative=True)
    plan.operations = []
    md = render_markdown(plan)
    assert "**Plan: no changes**\n" in md and "<details>" not in md


def test_markdown_of_200k_operations_stays_under_the_limit() -> None:
    plan = huge_plan(400, 500)
    assert len(plan.operations) == 200_000
    md = render_markdown(plan)
    assert len(md) <= 65_536
    assert md.startswith(MARKER + "\n**Plan: 200,000 adjustments")
    m = re.search(r"… ([\d,]+) more operations not shown; see the saved plan", md)
    assert m is not None
    shown = md.count("\n| adjust | xs |")
    assert shown + int(m.group(1).replace(",", "")) == 200_000
    assert md.rstrip().endswith("</details>")
    assert "more locations not shown" in md  # 400 locations: the summary table is capped too


@pytest.mark.parametrize("limit", [1_000, 5_000, 20_000])
def test_markdown_respects_any_limit(limit: int) -> None:
    md = render_markdown(huge_plan(20, 100), limit=limit)
    assert len(md) <= limit and md.startswith(MARKER)


def test_json_is_the_plan_file() -> None:
    plan = small_plan(allow_negative=True)
    text = render_json(plan)
    assert json.loads(text)["plan_id"] == plan.plan_id
    assert loads_plan(text) == plan


def test_dispatcher() -> None:
    plan = small_plan(allow_negative=True)
    assert render(plan, "json") == render_json(plan)
    assert render(plan, "markdown") == render_markdown(plan)
    assert render(plan, "text", color=True) == render_text(plan, color=True)
    with pytest.raises(PlanError, match="unknown plan format 'yaml'"):
        render(plan, "yaml")
