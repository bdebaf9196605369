"""`reconciler validate`: check the stock repository and list every problem."""

from __future__ import annotations

import json

import click

from reconciler.cli import cli
from reconciler.config import load
from reconciler.errors import Problem


@cli.command(short_help="Check reconciler.yaml and stock/; every problem at once.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Output format.")
@click.pass_context
def validate(ctx: click.Context, fmt: str) -> None:
    """Check reconciler.yaml and stock/ and report every problem (exit 1 if any)."""
    loaded = load(ctx.obj["repo"])
    problems = loaded.problems
    targets = len(loaded.config.targets) if loaded.config else 0
    summary = {
        "valid": not problems,
        "positions": loaded.position_count,
        "files": len(loaded.stock_files),
        "targets": targets,
        "problems": [_as_dict(p) for p in problems],
    }
    if fmt == "json":
        click.echo(json.dumps(summary, indent=2))
    elif problems:
        for problem in problems:
            click.echo(str(problem))
        click.echo(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found; nothing is valid until all are fixed.")
    else:
        click.echo(f"valid: {summary['positions']} positions in {summary['files']} files across {targets} targets")
    if problems:
        ctx.exit(1)


def _as_dict(problem: Problem) -> dict[str, object]:
    return {"file": problem.file, "line": problem.line, "message": problem.message, "hint": problem.hint}
