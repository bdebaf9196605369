"""The terminal report, drawn with rich into a string (only the CLI prints)."""

from __future__ import annotations

import io
from itertools import groupby, islice

from rich.console import Console
from rich.table import Table
from rich.text import Text

from reconciler.model import OpKind, Operation, Plan
from reconciler.render._summary import NOUNS, Summary, describe_legs, summarize, verdict

KIND_STYLE = {
    OpKind.RESET: "yellow",
    OpKind.ADJUST: "cyan",
    OpKind.MOVE: "blue",
    OpKind.DELETE: "bold red",
    OpKind.RELEASE: "magenta",
    OpKind.SETTINGS: "green",
    OpKind.DRIFT: "dim",
}
# Operations drawn as table rows. Rich takes about 1.5 ms a row: 1,000 rows were most of the
# time of `reconciler plan` on a large chain, and nobody reads them in a terminal. Beyond this a
# per-location summary comes first; --out and --format json carry every operation.
DEFAULT_MAX_OPS = 200
MAX_LOCATION_ROWS = 50


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


def _header(console: Console, plan: Plan, summary: Summary) -> None:
    console.print(Text(f"Plan: {verdict(summary)}", style="bold"))
    commit = plan.git_commit or "no commit"
    dirty = " (made from a working tree with uncommitted changes to the desired files)" if plan.git_dirty else ""
    console.print(
        Text(f"plan {plan.plan_id} made {plan.created_at} from {commit}{dirty}; "
             f"state {plan.lineage} serial {plan.serial}", style="dim")
    )
    for warning in plan.warnings:
        console.print(Text(f"warning: {warning}", style="bold yellow"))
    for note in plan.notes:
        console.print(Text(f"note: {note}", style="dim"))


def _location_table(summary: Summary, rows: int = MAX_LOCATION_ROWS) -> Table:
    """Operations per (target, location) and kind, for a plan too large to list."""
    kinds = [k for k in NOUNS if summary.total.counts[k]]
    table = Table(title="Operations per location", title_justify="left", expand=False, show_lines=False)
    table.add_column("target")
    table.add_column("location")
    for kind in kinds:
        table.add_column(NOUNS[kind][1], justify="right")
    table.add_column("units", justify="right")
    items = list(summary.by_location.items())
    for (target, location), tally in items[:rows]:
        units = f"+{tally.up:,} / \u2212{tally.down:,}" if tally.up or tally.down else ""
        table.add_row(target, location, *(f"{tally.counts[k]:,}" for k in kinds), units)
    if len(items) > rows:
        table.caption = f"\u2026 {len(items) - rows:,} more locations not shown"
    return table


def render_text(plan: Plan, color: bool = False, *, width: int = 140, max_ops: int = DEFAULT_MAX_OPS) -> str:
    """Summary, warnings, then changes grouped by target and location, then drift notes.

    A plan of more than ``max_ops`` operations (a chain's first plan has a million) gets a table
    per location first, and only its first ``max_ops`` changes and drift notes are listed."""
    console, buf = _console(color, width)
    summary = summarize(plan)
    _header(console, plan, summary)
    ops = plan.operations
    if len(ops) > max_ops:
        console.print()
        console.print(_location_table(summary))
    changes = list(islice((op for op in ops if op.kind is not OpKind.DRIFT), max_ops))
    drift = list(islice((op for op in ops if op.kind is OpKind.DRIFT), max_ops))
    for (target, location), group in groupby(changes, key=lambda op: (op.target, op.location)):
        console.print()
        console.print(_table(f"{target} / {location}", list(group)))
    if drift:
        console.print()
        console.print(_table("Drift (reported, never overwritten)", drift))
    hidden = len(ops) - len(changes) - len(drift)
    if hidden > 0:
        console.print(Text(f"\u2026 {hidden:,} more operations not shown; `reconciler plan --out FILE` saves "
                           "every one, `--format json` prints them all", style="dim"))
    return buf.getvalue()
