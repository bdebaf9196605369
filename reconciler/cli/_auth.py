"""``auth login`` and ``auth status``: sign a target in once, and see what its credential covers."""

from __future__ import annotations

import click

from reconciler.cli import cli


@cli.group("auth")
def auth_group() -> None:
    """Credentials: browser sign-in for OAuth targets, and their status (docs/auth.md)."""


@auth_group.command("login")
@click.argument("target")
@click.option("--no-browser", is_flag=True, help="Only print the URL to open (e.g. on a server over SSH).")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Loopback port for the redirect (default: auth.redirect_port, 8765); the app's redirect URI must match.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(1, 3600), default=300.0, show_default=True,
              help="Seconds to wait for the sign-in.")
@click.pass_context
def login_command(ctx: click.Context, target: str, no_browser: bool, port: int | None, timeout_s: float) -> None:
    """Sign TARGET in through the vendor's consent page (PKCE) and keep its refresh token in the state store."""
    from reconciler.auth._login import login
    from reconciler.auth._render import render_login
    from reconciler.config import load_project

    project = load_project(ctx.obj["repo"])

    def show(url: str) -> None:
        click.echo(f"Open this URL in a browser and sign in:\n\n  {url}\n", err=True)

    result = login(project, target, port=port, open_browser=not no_browser, show=show, timeout_s=timeout_s)
    click.echo(render_login(result))


@auth_group.command("status")
@click.argument("targets", nargs=-1)
@click.option("--plan", "plan_file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="A saved plan: say whether the scopes cover what it will do.")
@click.option("--check", is_flag=True, help="Fetch an access token now, proving the credential works.")
@click.pass_context
def status_command(ctx: click.Context, targets: tuple[str, ...], plan_file: str | None, check: bool) -> None:
    """Per target: flow, expiry of the current token, scopes, and what they cover."""
    from reconciler.auth._login import auth_status
    from reconciler.auth._render import render_status
    from reconciler.config import load_project
    from reconciler.planfile import load_plan

    project = load_project(ctx.obj["repo"])
    plan = load_plan(plan_file) if plan_file else None
    rows = auth_status(project, plan=plan, check=check, targets=targets or None)
    click.echo(render_status(rows), nl=False)
    if any(row.problem for row in rows) or any(row.planned and any(row.covers.get(w) for w in row.planned) for row in rows):
        ctx.exit(1)
