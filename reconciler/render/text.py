"""The terminal report, drawn with rich into a string (only the CLI prints)."""

from __future__ import annotations

import io
from itertools import groupby, islice

from rich.console import Console
from rich.cells import cell_len
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
    OpKind.RECORD: "magenta",
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


COLUMNS = (("kind", "left"), ("item", "left"), ("location", "left"), ("A", "right"), ("B", "right"),
           ("D", "right"), ("change", "right"), ("expected", "right"))
MIN_REASON_WIDTH = 24  # narrower than this, a reason says nothing: the column is dropped


def _reason(op: Operation) -> str:
    if op.overridden_guards:
        return f"{op.reason} [guards overridden: {', '.join(op.overridden_guards)}]"
    return op.reason


def _cells(op: Operation) -> list[str]:
    location, a, b, d, change, expected = describe_legs(op)
    return [op.kind.value, op.item, location, a, b, d, change, expected]


def _table(ops: list[Operation], widths: list[int], reason_width: int | None) -> Table:
    """One line per operation: no cell wraps, each column as wide as its widest cell.
    ``reason_width``: None for the full reason, 0 to drop the column, else the reason is cut to
    that width with an ellipsis."""
    table = Table(expand=False, show_lines=False)
    for (name, justify), width in zip(COLUMNS, widths):
        table.add_column(name, justify=justify, no_wrap=True, min_width=width)  # type: ignore[arg-type]
    if reason_width != 0:
        table.add_column("reason", no_wrap=True, overflow="ellipsis", max_width=reason_width)
    for op in ops:
        cells: list[Text | str] = [Text(op.kind.value, style=KIND_STYLE[op.kind]), *_cells(op)[1:]]
        if reason_width != 0:
            cells.append(Text(_reason(op)))
        table.add_row(*cells)
    return table


def _fitted_table(console: Console, ops: list[Operation]) -> Table | None:
    """The widest table that fits the console on one line per row, or None when even the table
    without reasons does not fit (the caller then prints plain lines)."""
    widths = [max([cell_len(name)] + [cell_len(_cells(op)[i]) for op in ops]) for i, (name, _) in enumerate(COLUMNS)]
    bare = sum(widths) + 3 * len(widths) + 1  # a space either side of each cell, a rule between and around
    reason = max(cell_len(_reason(op)) for op in ops)
    if bare + reason + 3 <= console.width:
        return _table(ops, widths, None)
    room = console.width - bare - 3
    if room >= MIN_REASON_WIDTH:
        return _table(ops, widths, room)
    return _table(ops, widths, 0) if bare <= console.width else None


def _plain_lines(ops: list[Operation]) -> list[str]:
    """One self-contained line per operation, for logs (no terminal) and tables too wide."""
    lines = []
    for op in ops:
        location, a, b, d, change, expected = describe_legs(op)
        moved = f", change {change}" if change else ""
        lines.append(f"  {op.kind.value} {op.item} at {location}: A {a}, B {b}, D {d}{moved}, expected {expected}; "
                     f"{_reason(op)}")
    return lines


def _section(console: Console, title: str, ops: list[Operation], plain: bool) -> bool:
    """Print one group; True when reasons were cut to fit."""
    console.print()
    console.print(Text(title, style="bold"))
    table = None if plain else _fitted_table(console, ops)
    if table is None:
        for line in _plain_lines(ops):
            console.print(Text(line))  # a terminal wraps it at words; a log (no width) never
        return False
    console.print(table)
    return len(table.columns) == len(COLUMNS) or table.columns[-1].max_width is not None


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
    for block in plan.counts:  # stock counts (docs/counts.md)
        console.print(Text(block))


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


def render_text(plan: Plan, color: bool = False, *, width: int | None = 140, max_ops: int = DEFAULT_MAX_OPS) -> str:
    """Summary, warnings, then changes grouped by target and location, then drift notes.

    ``width``: the terminal's columns; every table row then stays on one line (reasons are cut,
    then dropped, then the group falls back to plain lines). None: no terminal (a CI log),
    plain lines only, each operation on one line however long.

    A plan of more than ``max_ops`` operations (a chain's first plan has a million) gets a table
    per location first, and only its first ``max_ops`` changes and drift notes are listed."""
    plain = width is None
    console, buf = _console(color, width or 10_000)
    summary = summarize(plan)
    _header(console, plan, summary)
    ops = plan.operations
    if len(ops) > max_ops:
        console.print()
        console.print(_location_table(summary))
    changes = list(islice((op for op in ops if op.kind is not OpKind.DRIFT), max_ops))
    drift = list(islice((op for op in ops if op.kind is OpKind.DRIFT), max_ops))
    cut = False
    for (target, location), group in groupby(changes, key=lambda op: (op.target, op.location)):
        cut |= _section(console, f"{target} / {location}", list(group), plain)
    if drift:
        cut |= _section(console, "Drift (reported, never overwritten)", drift, plain)
    hidden = len(ops) - len(changes) - len(drift)
    if hidden > 0:
        console.print(Text(f"\u2026 {hidden:,} more operations not shown; `reconciler plan --out FILE` saves "
                           "every one, `--format json` prints them all", style="dim"))
    if cut:
        console.print(Text(f"Reasons are cut to fit {width} columns; `reconciler show FILE --format markdown`, "
                           "a wider terminal or COLUMNS=200 shows them in full.", style="dim"))
    return "\n".join(line.rstrip() for line in buf.getvalue().split("\n"))
