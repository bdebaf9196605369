"""JSON rendering: the plan file text itself, so `show --format json` output can be saved."""

from __future__ import annotations

from reconciler.model import Plan
from reconciler.planfile import dump_plan


def render_json(plan: Plan) -> str:
    return dump_plan(plan)
