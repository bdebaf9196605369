"""``reconciler targets``: where each target's credential goes, and whether that moved."""

from __future__ import annotations

import click

from reconciler.cli import cli
from reconciler.errors import PlanError


@cli.command("targets", short_help="List the targets; --compare-with: refuse new endpoints.")
@click.option("--compare-with", "trusted", type=click.Path(file_okay=False), default=None,
              help="Another checkout (e.g. the base branch): exit 1 when a target is new or any field "
              "but its locations and pacing (kind, url, credentials_env, options) differs from there.")
@click.pass_context
def targets_cmd(ctx: click.Context, trusted: str | None) -> None:
    """List each target's kind, url, credentials_env and whether its stock can be read.

    With --compare-with, exit 1 when the repository would send a credential where the other
    checkout does not (the plan workflow's guard for pull requests, docs/gitops.md)."""
    from reconciler.config import load_project
    from reconciler.connectors.base import connector_class
    from reconciler.workflow import endpoint_changes

    project = load_project(ctx.obj["repo"])
    for name, target in sorted(project.config.targets.items()):
        readable = "readable" if connector_class(target.kind).capabilities.readable else "write-only"
        click.echo(f"{name}: {target.kind} {target.url or '-'} credentials_env {target.credentials_env or '-'} ({readable})")
    if trusted is None:
        return
    changes = endpoint_changes(project, load_project(trusted))
    if changes:
        raise PlanError(
            f"{len(changes)} target endpoint(s) differ from {trusted}: " + "; ".join(changes),
            hint="A person with write access reads the change before any credential is sent there.",
        )
    click.echo(f"Every target sends its credential where it does in {trusted}.")
