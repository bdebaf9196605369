"""``count start`` and ``count finish``: a physical stock count from the shop floor to a PR (docs/counts.md)."""

from __future__ import annotations

import click

from reconciler.cli import cli
from reconciler.cli._plan import state_option, stderr_progress


@cli.group("count")
def count_group() -> None:
    """Stock counts: snapshot live stock, count, and commit the variances (docs/counts.md)."""


@count_group.command("start")
@click.option("--location", required=True, help="The canonical location to count.")
@click.option("--items", "items", multiple=True, help="A SKU to count (repeatable; several may follow one --items).")
@click.option("--all", "all_items", is_flag=True, help="Count every item the location's stock files list.")
@click.option("--note", default="", help="A note kept with the count (who, which shelf).")
@click.option("--out-dir", type=click.Path(file_okay=False), default=None,
              help="Where to write the count sheets (default: the working directory).")
@state_option
@click.argument("more_items", nargs=-1)
@click.pass_context
def start_command(ctx: click.Context, location: str, items: tuple[str, ...], all_items: bool, note: str,
                  out_dir: str | None, state_file: str | None, more_items: tuple[str, ...]) -> None:
    """Snapshot the live stock of LOCATION and write a count sheet (YAML, and CSV for scanners)."""
    from reconciler.counts import start_count
    from reconciler.counts._render import render_started

    if more_items and not items:
        raise click.UsageError(f"unexpected argument {more_items[0]!r}: give SKUs after --items")
    if (items or more_items) and all_items:
        raise click.UsageError("give either --items SKU ... or --all, not both")
    started = start_count(ctx.obj["repo"], location, items=[*items, *more_items], all_items=all_items, note=note,
                          out_dir=out_dir, state=state_file, progress=stderr_progress)
    click.echo(render_started(started))


@count_group.command("finish")
@click.argument("count_id")
@click.option("--sheet", required=True, type=click.Path(dir_okay=False, exists=True),
              help="The filled count sheet (YAML or CSV), or a scanner export of barcode-or-SKU,quantity lines.")
@state_option
@click.pass_context
def finish_command(ctx: click.Context, count_id: str, sheet: str, state_file: str | None) -> None:
    """Write the counted quantities of COUNT_ID into the location's stock file, for a PR."""
    from reconciler.counts import finish_count
    from reconciler.counts._render import render_finished

    click.echo(render_finished(finish_count(ctx.obj["repo"], count_id, sheet, state=state_file)))
