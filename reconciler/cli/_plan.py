"""``reconciler plan``, ``reconciler show`` and ``reconciler drift``."""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any, Callable

import click

from reconciler.cli import cli

FORMATS = click.Choice(["text", "markdown", "json"])

GUARD_FLAGS: list[tuple[str, str, str]] = [
    ("--allow-negative", "allow_negative", "Allow adjustments whose result would be negative."),
    (
        "--allow-missing-location",
        "allow_missing_location",
        "Allow a plan although a location file that state knows is missing or empty.",
    ),
    ("--allow-mass-delete", "allow_mass_delete", "Allow deleting or zeroing more than guards.max_delete_share of a location."),
    ("--allow-protected", "allow_protected", "Allow changes to items flagged protect: true."),
]


def guard_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for flag, name, text in reversed(GUARD_FLAGS):
        func = click.option(flag, name, is_flag=True, default=False, help=text)(func)
    return func


def guard_overrides(kwargs: dict[str, Any]) -> dict[str, bool]:
    """The guard flags the user set explicitly (unset flags leave reconciler.yaml in charge)."""
    return {name: True for _, name, _ in GUARD_FLAGS if kwargs.pop(name, False)}


STATE_OPTION_HELP = (
    "The state: a SQLite path (relative to the working directory), sqlite:///path or "
    "postgresql://user@host/db?schema=NAME (default: $RECONCILER_STATE, else state: in reconciler.yaml, "
    "else .reconciler/state.db in the repository). ${VAR} is read from the environment."
)


def state_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--state``, the same on every command that opens the state."""
    return click.option("--state", "state_file", default=None, metavar="STATE", help=STATE_OPTION_HELP)(func)


def stderr_progress(message: str) -> None:
    click.echo(message, err=True)


def use_color(color: bool | None) -> bool:
    return sys.stdout.isatty() if color is None else color


MIN_COLUMNS = 40


def text_width() -> int | None:
    """Columns for text output: $COLUMNS when set, else the terminal's width; None (plain lines,
    never cut) when standard output is not a terminal, as in a CI log."""
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return max(int(columns), MIN_COLUMNS)
    if not sys.stdout.isatty():
        return None
    return max(shutil.get_terminal_size().columns, MIN_COLUMNS)


@cli.command("plan", short_help="Make a plan: desired stock against state and live stock.")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the saved plan (JSON) to this file.")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True, help="How to print the plan.")
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there is nothing to do, 2 when there are changes, 1 on error.",
)
@click.option("--target", "targets", multiple=True, help="Plan only this target (repeatable).")
@click.option("--location", "locations", multiple=True, help="Plan only this location (repeatable).")
@click.option("--color/--no-color", default=None, help="Colour the text output (default: when a terminal).")
@guard_options
@click.option("--allow-old-count", is_flag=True, help="Apply stock counts older than --count-max-age (docs/counts.md).")
@click.option("--count-max-age", "count_max_age", type=click.FloatRange(0), default=7.0, show_default=True,
              metavar="DAYS", help="A stock count older than this many days stops the plan.")
@click.option("--refresh", is_flag=True,
              help="Read live stock in full and plan every position, not only what changed since the "
                   "last plan (docs/performance.md).")
@state_option
@click.pass_context
def plan_cmd(
    ctx: click.Context,
    out: str | None,
    fmt: str,
    detailed_exitcode: bool,
    targets: tuple[str, ...],
    locations: tuple[str, ...],
    color: bool | None,
    state_file: str | None,
    allow_old_count: bool,
    count_max_age: float,
    refresh: bool,
    **kwargs: Any,
) -> None:
    """Compare the desired stock with state and live stock, and print the plan."""
    from reconciler.planfile import save_plan
    from reconciler.render import render
    from reconciler.workflow import plan_project

    plan = plan_project(
        ctx.obj["repo"],
        only_targets=targets or None,
        only_locations=locations or None,
        guard_overrides=guard_overrides(kwargs),
        progress=stderr_progress,
        state=state_file,
        count_max_age_days=count_max_age,
        allow_old_count=allow_old_count,
        refresh=refresh,
    )
    if out:
        save_plan(plan, out)
    click.echo(render(plan, fmt, color=use_color(color), width=text_width()), color=use_color(color))
    if out:
        click.echo(f"Saved plan {plan.plan_id} to {out}. Apply it with: reconciler apply {out}", err=True)
    if detailed_exitcode and plan.has_changes:
        ctx.exit(2)


@cli.command("show")
@click.argument("plan_file", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@click.option("--color/--no-color", default=None)
def show_cmd(plan_file: str, fmt: str, color: bool | None) -> None:
    """Render a saved plan as text, markdown (for PR comments) or JSON."""
    from reconciler.planfile import load_plan
    from reconciler.render import render

    click.echo(render(load_plan(plan_file), fmt, color=use_color(color), width=text_width()), color=use_color(color))


@cli.command("drift", short_help="Live stock that differs from what was last applied.")
@click.option("--target", "targets", multiple=True, help="Check only this target (repeatable).")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there is no drift (or it is within the thresholds), 2 when there is.",
)
@click.option(
    "--threshold-units",
    type=click.IntRange(min=0),
    default=None,
    help="With --detailed-exitcode: exit 2 only when the total absolute drift exceeds N units.",
)
@click.option(
    "--threshold-percent",
    type=click.FloatRange(min=0),
    default=None,
    help="With --detailed-exitcode: exit 2 only when the total absolute drift exceeds P% of the applied units.",
)
@state_option
@click.pass_context
def drift_cmd(
    ctx: click.Context,
    targets: tuple[str, ...],
    fmt: str,
    detailed_exitcode: bool,
    threshold_units: int | None,
    threshold_percent: float | None,
    state_file: str | None,
) -> None:
    """Report positions whose live stock differs from what was last applied.

    With both thresholds, exceeding either one is enough; with none, any drift counts.
    """
    from reconciler.render.drift import render_drift
    from reconciler.workflow import DriftThreshold, drift_report

    threshold = DriftThreshold(units=threshold_units, percent=threshold_percent)
    report = drift_report(ctx.obj["repo"], only_targets=targets or None, state=state_file)
    if report.state_note:
        click.echo(f"note: {report.state_note}", err=True)
    click.echo(render_drift(report, fmt, threshold))
    if detailed_exitcode and threshold.exceeded_by(report):
        ctx.exit(2)
