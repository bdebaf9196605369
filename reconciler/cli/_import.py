"""``reconciler import``: write a readable target's live stock as desired state."""

from __future__ import annotations

import click

from reconciler.cli import cli
from reconciler.cli._plan import state_option


@cli.command("import", short_help="Write a target's live stock into stock/ as desired.")
@click.option("--target", required=True, help="The target (from reconciler.yaml) whose live stock to import.")
@click.option("--location", default=None, help="Import only this canonical location (default: all of the target's).")
@click.option("--out-dir", default="stock", show_default=True,
              help="Folder (inside stock/) for location files that do not exist yet.")
@click.option("--no-state", is_flag=True, default=False,
              help="Only write the YAML; do not record the imported positions as applied in the state.")
@click.option("--local-state", is_flag=True, default=False,
              help="Record into the local default state even where CI keeps the state elsewhere (reconciler-state.sh).")
@state_option
@click.pass_context
def import_cmd(ctx: click.Context, target: str, location: str | None, out_dir: str, no_state: bool,
               local_state: bool, state_file: str | None) -> None:
    """Read TARGET's live stock and write it into stock/<location>.yaml, merging into existing files.

    The imported positions are also recorded as applied in the state, so the next plan shows no
    changes. In a repository whose CI keeps its state on the reconciler-state branch that local
    state is not CI's: the import then refuses unless --no-state, --state or --local-state."""
    from reconciler.importer import import_target

    result = import_target(ctx.obj["repo"], target, location=location, out_dir=out_dir, record_state=not no_state,
                           state=state_file, local_state=local_state)
    click.echo(result.summary())
