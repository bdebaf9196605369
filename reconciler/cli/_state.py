"""``state lock``, ``unlock``, ``history`` and ``resolve``: look at and repair the state DB."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import click

from reconciler.cli import cli
from reconciler.errors import StateError

_STATE_OPTION_HELP = "The state database (default: from reconciler.yaml; env RECONCILER_STATE)."


def _state_path(ctx: click.Context, explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    if os.environ.get("RECONCILER_STATE"):
        return Path(os.environ["RECONCILER_STATE"])
    from reconciler.config import load_project  # the project says where its state lives

    return Path(load_project((ctx.obj or {}).get("repo", ".")).state_path)


def _open(ctx: click.Context, explicit: str | None) -> Any:
    from reconciler.state import open_state_store

    path = _state_path(ctx, explicit)
    if not path.exists():
        raise StateError(f"no state database at {path}", hint="Nothing has been planned or applied with this state yet.")
    return open_state_store(path)


def _who() -> str:
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = os.environ.get("GITHUB_ACTOR", "unknown")
    return f"{user}@{socket.gethostname()}"


def _state_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--state", "state_file", type=click.Path(dir_okay=False), default=None, help=_STATE_OPTION_HELP)(fn)


@cli.group("state")
def state_group() -> None:
    """Inspect the state database."""


@state_group.command("lock")
@_state_option
@click.pass_context
def state_lock(ctx: click.Context, state_file: str | None) -> None:
    """Show who holds the apply lock."""
    from reconciler.state.render import render_lock

    with _open(ctx, state_file) as store:
        click.echo(render_lock(store.current_lock()))


@cli.command()
@click.argument("lock_id")
@_state_option
@click.pass_context
def unlock(ctx: click.Context, lock_id: str, state_file: str | None) -> None:
    """Remove the apply lock LOCK_ID (only when its apply is dead)."""
    with _open(ctx, state_file) as store:
        current = store.current_lock()
        if not store.release_lock(lock_id):
            held = f"; the lock now is {current.id} held by {current.holder}" if current else "; no lock is held"
            raise StateError(f"no apply lock with id {lock_id}{held}", hint="See `reconciler state lock`.")
        click.echo(f"Removed lock {lock_id}.")


@cli.command()
@click.argument("run_id", required=False)
@click.option("--limit", type=int, default=20, show_default=True, help="How many runs to list.")
@_state_option
@click.pass_context
def history(ctx: click.Context, run_id: str | None, limit: int, state_file: str | None) -> None:
    """List recent applies, or show one RUN and its operations."""
    from reconciler.state.render import render_history, render_run

    with _open(ctx, state_file) as store:
        if run_id is None:
            click.echo(render_history(store.runs(limit)))
            return
        run = store.run(run_id)
        if run is None:
            raise StateError(f"no run {run_id} in the state history", hint="`reconciler history` lists the runs.")
        click.echo(render_run(run, store.journal(run.plan_id).values()))


@cli.command()
@click.argument("op_id")
@click.option("--applied/--not-applied", "applied", default=None, help="What the vendor shows for this operation.")
@click.option("--plan", "plan_id", default=None, help="The plan, when the operation id occurs in several.")
@_state_option
@click.pass_context
def resolve(ctx: click.Context, op_id: str, applied: bool | None, plan_id: str | None, state_file: str | None) -> None:
    """Settle an operation in doubt: say whether the vendor applied it."""
    from reconciler.apply import resolve_op

    if applied is None:
        raise click.UsageError("say what the vendor shows: --applied or --not-applied")
    with _open(ctx, state_file) as store:
        entry = resolve_op(store, op_id, applied, holder=_who(), plan_id=plan_id)
    then = "its base position was updated" if applied else "the next apply of the plan will send it again"
    click.echo(f"Operation {entry.op_id} of plan {entry.plan_id} is now {entry.status.value}; {then}.")
