"""Renderers: a plan in, a string out (text for terminals, markdown for PR comments, JSON).

Renderers never print; the CLI does.
"""

from __future__ import annotations

from reconciler.errors import PlanError
from reconciler.model import Plan
from reconciler.render.jsonfmt import render_json
from reconciler.render.markdown import GITHUB_COMMENT_LIMIT, MARKER, render_markdown
from reconciler.render.text import render_text

FORMATS = ("text", "markdown", "json")


def render(plan: Plan, fmt: str, color: bool = False, width: int | None = 140) -> str:
    """Render ``plan`` as "text", "markdown" or "json". ``width``: the terminal's columns for
    text (None: not a terminal, plain lines)."""
    if fmt == "text":
        return render_text(plan, color, width=width)
    if fmt == "markdown":
        return render_markdown(plan)
    if fmt == "json":
        return render_json(plan)
    raise PlanError(f"unknown plan format {fmt!r}; use one of: {', '.join(FORMATS)}")


__all__ = ["FORMATS", "GITHUB_COMMENT_LIMIT", "MARKER", "render", "render_json", "render_markdown", "render_text"]
