"""``reconciler import``: write a readable target's live stock as desired state."""

from __future__ import annotations

import click

from reconciler.cli import cli


@cli.command("import")
@click.option("--target", required=True, help="The target (from reconciler.yaml) whose live stock to import.")
@click.option("--location", default=None, help="Import only this canonical location (default: all of the target's).")
@click.option("--out-dir", default="stock", show_default=True,
              help="Folder (inside stock/) for location files that do not exist yet.")
@click.option("--no-state", is_flag=True, default=False,
              help="Only write the YAML; do not record the imported positions as applied in the state.")
@click.pass_context
def import_cmd(ctx: click.Context, target: str, location: str | None, out_dir: str, no_state: bool) -> None:
    """Read TARGET's live stock and write it into stock/<location>.yaml, merging into existing files."""
    from reconciler.importer import import_target

    result = import_target(ctx.obj["repo"], target, location=location, out_dir=out_dir, record_state=not no_state)
    click.echo(result.summary())
