"""``reconciler sandbox serve|up|down|status``: the vendor simulators (docs/sandboxes.md)."""

from __future__ import annotations

import click

from reconciler.cli import cli


@cli.group(short_help="Run vendor simulators (sandboxes) on loopback.")
def sandbox() -> None:
    """Run vendor simulators (sandboxes) on loopback for demos and tests."""


def _options(pairs: tuple[str, ...]) -> dict[str, object]:
    """KEY=VALUE pairs; values read as YAML scalars, so ``true`` and ``0.5`` arrive typed."""
    import yaml

    options: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--option")
        try:
            options[key] = yaml.safe_load(value) if value else ""
        except yaml.YAMLError:
            options[key] = value
    return options


@sandbox.command()
@click.argument("kind")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="0 picks a free port.")
@click.option("--state", type=click.Path(dir_okay=False), default=None,
              help="SQLite file holding the sandbox's stock (kept across restarts); in memory when omitted.")
@click.option("--token", default=None, help="The credential the sandbox accepts (default: the kind's documented one).")
@click.option("--fixtures", "fixtures_path", type=click.Path(dir_okay=False), default=None,
              help="YAML or JSON with locations, items and stock to start with.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sales and fault randomness.")
@click.option("--option", "-o", "option_pairs", multiple=True, metavar="KEY=VALUE",
              help="A kind-specific setting, e.g. -o delay=0.5 for kaching. Repeatable.")
def serve(kind: str, host: str, port: int, state: str | None, token: str | None, fixtures_path: str | None,
          seed: int, option_pairs: tuple[str, ...]) -> None:
    """Serve the KIND sandbox in the foreground until interrupted."""
    from reconciler.sandbox._process import make_simulator, serve as run

    sim = make_simulator(kind, state=state, token=token, fixtures_path=fixtures_path, seed=seed,
                         options=_options(option_pairs))
    run(sim, host=host, port=port, on_ready=lambda url: click.echo(f"listening on {url}"))


@sandbox.command()
@click.pass_obj
def up(obj: dict[str, str]) -> None:
    """Start a sandbox for every target of the repository whose url is on loopback."""
    from reconciler.sandbox._process import ENV_FILE, sandboxes_up

    report = sandboxes_up(obj["repo"])
    if not report:
        click.echo("No target has a loopback url; nothing to start.")
    for target, what in report:
        click.echo(f"{target}: {what}")
    if report:
        click.echo(f"Credentials for these sandboxes are in {ENV_FILE}.")


@sandbox.command()
@click.option("--reset", is_flag=True, help="Also delete the sandboxes' stock, so the next `up` starts afresh.")
@click.pass_obj
def down(obj: dict[str, str], reset: bool) -> None:
    """Stop the sandboxes started by `reconciler sandbox up`."""
    from reconciler.sandbox._process import sandboxes_down

    report = sandboxes_down(obj["repo"], reset=reset)
    if not report:
        click.echo("No sandbox is running.")
    for target, what in report:
        click.echo(f"{target}: {what}")


@sandbox.command()
@click.pass_obj
def status(obj: dict[str, str]) -> None:
    """List the sandboxes started by `reconciler sandbox up`."""
    from reconciler.sandbox._process import sandbox_records

    records = sandbox_records(obj["repo"])
    if not records:
        click.echo("No sandbox is running.")
    for record, running in records:
        click.echo(f"{record.target}: {record.kind} {record.url} pid {record.pid} "
                   f"{'running' if running else 'NOT running (stale pid file)'}")
