"""``discover`` and ``init --from``: from a live account to a managed stock repository."""

from __future__ import annotations

import click

from reconciler.cli import cli
from reconciler.cli._plan import state_option


@cli.command("discover", short_help="Map catalog SKUs and locations to a target's vendor ids.")
@click.argument("target")
@click.option("--match", "by", type=click.Choice(["sku", "barcode"]), default="sku", show_default=True,
              help="Match each canonical SKU against the vendor's SKUs or its barcodes.")
@click.option("--add", is_flag=True, help="Also add every vendor SKU (and location) the repository lacks.")
@click.option("--write", is_flag=True, help="Write the matched ids into stock/catalog.yaml and reconciler.yaml, in place.")
@click.option("--from-csv", "from_csv", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Read the ids from the merchant's export instead of the API (write-only targets).")
@click.option("--columns", default=None, help="With --from-csv: field=column pairs, e.g. sku=SKU,id=ItemID.")
@click.pass_context
def discover_cmd(ctx: click.Context, target: str, by: str, add: bool, write: bool, from_csv: str | None,
                 columns: str | None) -> None:
    """Read TARGET's catalogue and locations and map every canonical SKU of stock/catalog.yaml to them.

    Ambiguous SKUs (two vendor items share one) are never guessed, and ids already in the files
    are never replaced; both are listed for you to decide."""
    from reconciler.discover import discover

    result = discover(ctx.obj["repo"], target, by=by, add=add, write=write, from_csv=from_csv, columns=columns)
    click.echo(result.summary())


@cli.command("init", short_help="Scaffold a stock repository from a live account (init --from).")
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--from", "kind", required=True, help="The vendor kind to read: xseries, zettle, ...")
@click.option("--url", required=True, help="The vendor's API base URL (e.g. https://STORE.retail.lightspeed.app).")
@click.option("--credentials-env", "credentials_env", default=None,
              help="Environment variable holding the token (default RECONCILER_<NAME>_TOKEN).")
@click.option("--name", "name", default=None, help="The target's name in reconciler.yaml (default: <kind>-main).")
@click.option("--option", "option_pairs", multiple=True, metavar="KEY=VALUE",
              help="A target option for reconciler.yaml (repeatable), e.g. page_size=10000 (docs/connectors/).")
@click.option("--no-state", is_flag=True, help="Write the files only; do not record the positions as applied.")
@state_option
def init_cmd(directory: str, kind: str, url: str, credentials_env: str | None, name: str | None,
             option_pairs: tuple[str, ...], no_state: bool, state_file: str | None) -> None:
    """Create DIRECTORY as a stock repository holding TARGET's locations, catalogue and today's
    live stock, with the GitHub workflows, and record that stock as applied so the first
    `reconciler plan` shows no changes."""
    from reconciler.discover._init import init_from, parse_options

    result = init_from(directory, kind, url, name=name, credentials_env=credentials_env, options=parse_options(option_pairs),
                       record_state=not no_state, state=state_file, progress=True)
    click.echo(result.summary())
