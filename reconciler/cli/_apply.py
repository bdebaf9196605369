"""``reconciler apply``: execute a saved plan, or plan, confirm and apply in one go."""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import click

from reconciler.cli import cli
from reconciler.cli._plan import guard_options, guard_overrides, state_option, stderr_progress, text_width, use_color
from reconciler.errors import AlreadyApplied, ApplyIncomplete, InDoubt, PlanError


@contextmanager
def apply_progress(enabled: bool) -> Iterator[Callable[[Any], None] | None]:
    """A progress callback safe to call from the applier's worker threads (one per target).

    On a terminal: a rich progress bar per target on stderr. Otherwise (CI logs): one line per
    batch, so a log shows how far an interrupted apply got.
    """
    if not enabled:
        yield None
        return
    if not sys.stderr.isatty():
        yield _LineProgress()
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bars: dict[str, Any] = {}
    mutex = threading.Lock()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:

        def update(event: Any) -> None:
            with mutex:
                if event.target not in bars:
                    bars[event.target] = progress.add_task(event.target, total=event.ops_total)
                progress.update(bars[event.target], completed=event.ops_done)

        yield update


class _LineProgress:
    """One line per batch. Failures and doubts are counted per target so far, like the operations,
    so the last line of a target says how it ended (events carry per-batch counts)."""

    def __init__(self) -> None:
        self._problems: dict[str, list[int]] = {}
        self._mutex = threading.Lock()

    def __call__(self, event: Any) -> None:
        with self._mutex:
            tally = self._problems.setdefault(event.target, [0, 0])
            tally[0] += event.failed
            tally[1] += event.in_doubt
            failed, in_doubt = tally
        problems = f", {failed} failed, {in_doubt} in doubt" if failed or in_doubt else ""
        click.echo(
            f"{event.target}: batch {event.batch}/{event.batches}, {event.ops_done}/{event.ops_total} operations{problems}",
            err=True,
        )


def _confirm_or_refuse(auto_approve: bool) -> None:
    if auto_approve:
        return
    if not sys.stdin.isatty():
        raise PlanError(
            "refusing to apply an unsaved plan without confirmation: standard input is not a terminal.",
            hint="Review the plan above and pass --auto-approve, or save it with `reconciler plan --out FILE` "
            "and apply that file.",
        )
    if not click.confirm("Apply these operations?", default=False, err=True):
        raise click.Abort()


@cli.command("apply", short_help="Apply a saved plan exactly once (or plan, confirm, apply).")
@click.argument("plan_file", required=False, type=click.Path(dir_okay=False))
@click.option("--auto-approve", is_flag=True, help="Apply an unsaved plan without asking (for scripts).")
@click.option(
    "--allow-dirty",
    is_flag=True,
    help="Apply a plan that was made from a working tree with uncommitted changes to the desired files.",
)
@click.option("--target", "targets", multiple=True, help="Apply only this target's part of the plan (repeatable).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Report progress on stderr.")
@click.option("--color/--no-color", default=None, help="Colour the plan (default: when a terminal).")
@guard_options
@state_option
@click.pass_context
def apply_cmd(
    ctx: click.Context,
    plan_file: str | None,
    auto_approve: bool,
    allow_dirty: bool,
    targets: tuple[str, ...],
    progress: bool,
    color: bool | None,
    state_file: str | None,
    **kwargs: Any,
) -> None:
    """Execute PLAN_FILE exactly once; with no file, plan, show it and ask before applying.

    An interrupted apply resumes when the same plan is applied again. Exit codes: 0 all applied
    (or already applied before: nothing sent), 3 some operations failed, 4 some are in doubt,
    5 another apply holds the lock.
    """
    from reconciler.apply import render_apply_summary
    from reconciler.planfile import load_plan
    from reconciler.render import render
    from reconciler.workflow import apply_saved_plan, plan_project

    overrides = guard_overrides(kwargs)
    if plan_file:
        if overrides:
            raise PlanError("guard flags apply when planning, not to a saved plan.", hint="Pass them to `reconciler plan`.")
        plan = load_plan(plan_file)
    else:
        plan = plan_project(ctx.obj["repo"], only_targets=targets or None, guard_overrides=overrides,
                            progress=stderr_progress, state=state_file)
        # color= as well: click.echo strips ANSI codes from a non-terminal unless told otherwise
        click.echo(render(plan, "text", color=use_color(color), width=text_width()), color=use_color(color))
        if not plan.has_changes:
            return
        _confirm_or_refuse(auto_approve)
    try:
        with apply_progress(progress) as on_progress:
            report = apply_saved_plan(
                ctx.obj["repo"], plan, allow_dirty=allow_dirty, only_targets=targets or None, progress=on_progress,
                state=state_file,
            )
    except AlreadyApplied as exc:
        # A re-run of a successful apply (a CI job run again) is not a failure: say so, exit 0.
        click.echo(f"Already applied, nothing sent: {exc.message}. `reconciler history` shows the run that applied it.")
        return
    click.echo(render_apply_summary(report))
    if report.outcome == "in_doubt":
        raise InDoubt("some operations are in doubt.", hint="Check them with the vendor and settle each with `reconciler resolve`.")
    if report.outcome == "failed":
        raise ApplyIncomplete("some operations failed.", hint="Fix the cause shown above and run the same apply again; it resumes.")
