"""``state init``, ``state lock``, ``state migrate``, ``state snapshot``, ``unlock``, ``history``
and ``resolve``: create, look at, copy, move and repair the state (SQLite file or PostgreSQL
schema)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from reconciler.cli import cli
from reconciler.cli._plan import state_option
from reconciler.errors import StateError



def _location(ctx: click.Context, explicit: str | None) -> tuple[str, str, Path | None]:
    """(URL or path, where it came from, folder relative paths are relative to)."""
    if explicit:
        return explicit, "--state", None
    if os.environ.get("RECONCILER_STATE"):
        return os.environ["RECONCILER_STATE"], "$RECONCILER_STATE", None
    from reconciler.config import load_project  # the project says where its state lives

    project = load_project((ctx.obj or {}).get("repo", "."))
    location, origin = project.state_location
    return location, origin, project.root


def _url(ctx: click.Context, explicit: str | None) -> Any:
    from reconciler.state import parse_state_url

    location, origin, root = _location(ctx, explicit)
    return parse_state_url(location, root=root, env=os.environ, origin=origin)


def _open(ctx: click.Context, explicit: str | None, *, create: bool = False) -> Any:
    from reconciler.state import open_state_store

    return open_state_store(_url(ctx, explicit), create=create)


def who() -> str:
    """reconciler.workflow.who, imported when a command needs it (it pulls in httpx and the
    planner, which `state lock` and `history` never use)."""
    from reconciler.workflow import who as workflow_who

    return workflow_who()


@cli.group("state")
def state_group() -> None:
    """Create, inspect, copy and move the state."""


@state_group.command("lock")
@state_option
@click.pass_context
def state_lock(ctx: click.Context, state_file: str | None) -> None:
    """List the apply locks: one per running apply, naming its targets and holder."""
    from reconciler.state.render import render_locks

    with _open(ctx, state_file) as store:
        click.echo(render_locks(store.locks(), store.describe()))


@state_group.command("init")
@state_option
@click.pass_context
def state_init(ctx: click.Context, state_file: str | None) -> None:
    """Create the state if it is absent, else open it and upgrade its schema; print its location,
    lineage and serial."""
    from reconciler.state.admin import init_state

    click.echo(init_state(_url(ctx, state_file)).render())


@state_group.command("snapshot")
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace DEST if it exists.")
@state_option
@click.pass_context
def state_snapshot(ctx: click.Context, dest: Path, force: bool, state_file: str | None) -> None:
    """Write a consistent copy of a SQLite state to DEST (SQLite's backup API: every committed
    change, also those still in the WAL). For PostgreSQL use pg_dump."""
    from reconciler.state.admin import snapshot_state

    click.echo(snapshot_state(_url(ctx, state_file), dest, force=force).render())


@state_group.command("migrate")
@click.option("--from", "source", required=True, help="The state to copy, e.g. sqlite:///path/state.db or a path.")
@click.option("--to", "destination", required=True, help="Where to copy it, e.g. postgresql://user@host/db?schema=NAME.")
@click.option("--force", is_flag=True, help="Replace a destination that already holds a state.")
def state_migrate(source: str, destination: str, force: bool) -> None:
    """Copy a whole state (lineage, serial, base, plans, runs, journal) and verify the copy."""
    from reconciler.state import open_state_store, parse_state_url
    from reconciler.state.migrate import migrate_state, render_migration

    src_url = parse_state_url(source, env=os.environ, origin="--from")
    dst_url = parse_state_url(destination, env=os.environ, origin="--to")
    with open_state_store(src_url, create=False) as src, open_state_store(dst_url, create=True) as dst:
        click.echo(render_migration(migrate_state(src, dst, holder=who(), force=force)))


@cli.command(short_help="Remove a stale apply lock.")
@click.argument("lock_id")
@state_option
@click.pass_context
def unlock(ctx: click.Context, lock_id: str, state_file: str | None) -> None:
    """Remove the apply lock LOCK_ID (only when its apply is dead or stuck).

    On PostgreSQL this ends the holder's lock connection, which releases the lock; that apply
    stops before its next batch."""
    with _open(ctx, state_file) as store:
        held = store.locks()
        if not store.release_lock(lock_id):
            now = "; locks held now: " + ", ".join(f"{lock.id} by {lock.holder}" for lock in held) if held else "; no lock is held"
            raise StateError(f"no apply lock with id {lock_id}{now}", hint="See `reconciler state lock`.")
        click.echo(f"Removed lock {lock_id}.")


@cli.command()
@click.argument("run_id", required=False)
@click.option("--limit", type=int, default=20, show_default=True, help="How many runs to list.")
@state_option
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
        click.echo(render_run(run, store.journal(run.plan_id).values(), store.plan_parts(run.plan_id)))


@cli.command()
@click.argument("op_ids", metavar="[OP]...", nargs=-1)
@click.option("--applied/--not-applied", "applied", default=None, help="What the vendor shows for these operations.")
@click.option("--plan", "plan_id", default=None, help="The plan, when an operation id occurs in several.")
@click.option("--all", "all_in_doubt", is_flag=True, help="Every operation of --plan left in doubt (after checking the vendor).")
@click.option("--target", default=None, help="With --all: only this target's operations.")
@state_option
@click.pass_context
def resolve(
    ctx: click.Context, op_ids: tuple[str, ...], applied: bool | None, plan_id: str | None, all_in_doubt: bool,
    target: str | None, state_file: str | None,
) -> None:
    """Settle operations in doubt: say whether the vendor applied them.

    Name each OP (its id or a unique prefix), or use --all --plan P when one lost answer put a
    whole request in doubt and the vendor shows it landed whole (or not at all).
    """
    from reconciler.apply import resolve_all_in_doubt, resolve_op

    if applied is None:
        raise click.UsageError("say what the vendor shows: --applied or --not-applied")
    if all_in_doubt == bool(op_ids) or (all_in_doubt and not plan_id) or (target and not all_in_doubt):
        raise click.UsageError("name the operations, or use --all --plan PLAN [--target T] (not both)")
    with _open(ctx, state_file) as store:
        if all_in_doubt:
            entries = resolve_all_in_doubt(store, plan_id or "", applied, holder=who(), target=target)
        else:
            entries = [resolve_op(store, op_id, applied, holder=who(), plan_id=plan_id) for op_id in op_ids]
    then = "its base position was updated" if applied else "the next apply of the plan will send it again"
    for entry in entries:
        click.echo(f"Operation {entry.op_id} of plan {entry.plan_id} is now {entry.status.value}; {then}.")
