"""The terminal report, drawn with rich into a string (only the CLI prints)."""

from __future__ import annotations

import io
from itertools import groupby

from rich.console import Console
from rich.table import Table
from rich.text import Text

from reconciler.model import OpKind, Operation, Plan
from reconciler.render._summary import describe_legs, summarize, verdict

KIND_STYLE = {
    OpKind.RESET: "yellow",
    OpKind.ADJUST: "cyan",
    OpKind.MOVE: "blue",
    OpKind.DELETE: "bold red",
    OpKind.RELEASE: "magenta",
    OpKind.SETTINGS: "green",
    OpKind.DRIFT: "dim",
}
DEFAULT_MAX_OPS = 1_000


def _console(color: bool, width: int) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    console = Console(
        file=buf,
        force_terminal=color,
        color_system="standard" if color else None,
        no_color=not color,
        width=width,
        highlight=False,
        emoji=False,
        soft_wrap=False,
    )
    return console, buf


def _table(title: str, ops: list[Operation]) -> Table:
    table = Table(title=title, title_justify="left", expand=False, show_lines=False)
    for name, justify in (("kind", "left"), ("item", "left"), ("location", "left"), ("A", "right"),
                          ("B", "right"), ("D", "right"), ("change", "right"), ("expected", "right"),
                          ("reason", "left")):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for op in ops:
        location, a, b, d, change, expected = describe_legs(op)
        reason = op.reason
        if op.overridden_guards:
            reason += f" [guards overridden: {', '.join(op.overridden_guards)}]"
        table.add_row(
            Text(op.kind.value, style=KIND_STYLE[op.kind]), op.item, location, a, b, d, change, expected,
            Text(reason),
        )
    return table


def _header(console: Console, plan: Plan) -> None:
    summary = summarize(plan)
    console.print(Text(f"Plan: {verdict(summary)}", style="bold"))
    commit = plan.git_commit or "no commit"
    dirty = " (made from a working tree with uncommitted changes to the desired files)" if plan.git_dirty else ""
    console.print(
        Text(f"plan {plan.plan_id} made {plan.created_at} from {commit}{dirty}; "
             f"state {plan.lineage} serial {plan.serial}", style="dim")
    )
    for warning in plan.warnings:
        console.print(Text(f"warning: {warning}", style="bold yellow"))


def render_text(plan: Plan, color: bool = False, *, width: int = 140, max_ops: int = DEFAULT_MAX_OPS) -> str:
    """Summary, warnings, then changes grouped by target and location, then drift notes."""
    console, buf = _console(color, width)
    _header(console, plan)
    changes = [op for op in plan.operations if op.kind is not OpKind.DRIFT][:max_ops]
    drift = [op for op in plan.operations if op.kind is OpKind.DRIFT][:max_ops]
    for (target, location), group in groupby(changes, key=lambda op: (op.target, op.location)):
        console.print()
        console.print(_table(f"{target} / {location}", list(group)))
    if drift:
        console.print()
        console.print(_table("Drift (reported, never overwritten)", drift))
    hidden = len(plan.operations) - len(changes) - len(drift)
    if hidden > 0:
        console.print(Text(f"\u2026 {hidden:,} more operations not shown; see the saved plan or use --format json",
                           style="dim"))
    return buf.getvalue()
