"""`reconciler validate` through click, and the project's own example repository."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from config_helpers import BASE_CONFIG, RepoFactory

from reconciler.cli import _register, cli
from reconciler.config import load_project, validate_project



def invoke(*args: str):  # type: ignore[no-untyped-def]
    _register()
    return CliRunner().invoke(cli, list(args))


def test_validate_lists_every_problem_and_exits_1(config_repo: RepoFactory) -> None:
    root = config_repo({
        "stock/oslo.yaml": "location: oslo\nstock:\n  xs:\n    RED-M: 2.5\n    BLUE-L: -1\n",
    })

    result = invoke("-C", str(root), "validate")

    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "stock/oslo.yaml:4: quantity of 'RED-M' in target 'xs' must be a whole number, not 2.5. "
        "Write a plain integer such as 12 (no quotes, no decimals, not true/false).",
        "stock/oslo.yaml:5: quantity of 'BLUE-L' in target 'xs' is negative (-1). "
        "Desired stock cannot be below 0: write 0 or more.",
        "2 problems found; nothing is valid until all are fixed.",
    ]


def test_validate_valid_repository_exits_0(config_repo: RepoFactory) -> None:
    root = config_repo({"stock/bergen.yaml": "location: bergen\nstock: {zt: {RED-M: 1}, xs: {RED-M: 2}}\n"})

    result = invoke("-C", str(root), "validate")

    assert result.exit_code == 0, result.output
    assert result.output == "valid: 4 positions in 2 files across 2 targets\n"


def test_validate_json(config_repo: RepoFactory) -> None:
    root = config_repo({"reconciler.yaml": BASE_CONFIG.replace("kind: xseries", "kind: xseries\n    timout: 3")})

    result = invoke("-C", str(root), "validate", "--format", "json")

    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["valid"] is False
    assert report["problems"] == [{
        "file": "reconciler.yaml", "line": 8, "message": "unknown field 'timout' in targets.xs",
        "hint": "Did you mean 'timeout'? Valid fields here: kind, url, credentials_env, locations, strategy, prune, "
                "infer_movements, rate_limit, rate_burst, concurrency, timeout, options, auth.",
    }]


def test_console_script_exit_codes(config_repo: RepoFactory) -> None:
    bad = config_repo({"stock/oslo.yaml": "location: oslo\nstock: {xs: {RED-M: -1}}\n"})

    run = subprocess.run([sys.executable, "-m", "reconciler", "-C", str(bad), "validate"], capture_output=True, text=True)

    assert run.returncode == 1
    assert "stock/oslo.yaml:2: quantity of 'RED-M' in target 'xs' is negative (-1)" in run.stdout


def test_the_example_repository_is_valid(example_repo: Path) -> None:
    assert validate_project(example_repo) == []
    project = load_project(example_repo)

    kinds = {t.kind for t in project.config.targets.values()}
    assert kinds == {"xseries", "lightspeed-supplier", "zettle", "kaching", "runfree"}
    assert len(project.catalog) >= 14
    # every target holds stock somewhere, and several SKUs are held by more than one target
    assert {target for target, _, _ in project.positions} == set(project.config.targets)
    per_sku: dict[str, set[str]] = {}
    for target, _, sku in project.positions:
        per_sku.setdefault(sku, set()).add(target)
    assert sum(1 for targets in per_sku.values() if len(targets) >= 3) >= 3
    assert any(not p.settings.is_empty() for p in project.positions.values())


def test_example_repository_through_the_cli(example_repo: Path) -> None:
    result = invoke("-C", str(example_repo), "validate")

    assert result.exit_code == 0, result.output
    assert result.output.startswith("valid: ")
