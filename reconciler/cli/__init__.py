"""The command line: parse options, call one library function, render, map errors to exit codes.

Each group of commands lives in its own module and registers itself on :data:`cli`.
Exit codes are documented in ``reconciler.errors`` and docs/exit-codes.md.
"""

from __future__ import annotations

import sys

import click

from reconciler.errors import ReconcilerError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-C",
    "--repo",
    "repo",
    type=click.Path(file_okay=False, path_type=str),
    default=".",
    show_default=True,
    envvar="RECONCILER_REPO",
    help="The stock repository (the folder holding reconciler.yaml).",
)
@click.version_option(package_name="reconciler")
@click.pass_context
def cli(ctx: click.Context, repo: str) -> None:
    """GitOps for retail stock: plan and apply desired stock levels."""
    ctx.obj = {"repo": repo}


def _register() -> None:
    """Import every command module (``reconciler/cli/_*.py``); each adds its commands to ``cli``."""
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script; turns library errors into exit codes."""
    _register()
    try:
        # Without standalone mode click *returns* the code of ctx.exit(n) instead of raising.
        code = cli.main(args=argv, standalone_mode=False, prog_name="reconciler")
        if isinstance(code, int) and code:
            sys.exit(code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        # Usage errors exit 1, not click's 2: 2 means "changes" for --detailed-exitcode.
        sys.exit(1)
    except ReconcilerError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(0)
