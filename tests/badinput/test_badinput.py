"""The bad-input corpus (issue 8, point 3): every broken repository and plan file is refused
with its exact error, exit code 1, no traceback, and nothing written or sent.

Cases live as files beside this test (README.md); their expected.txt were reviewed by hand.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
from badinput_kit import (
    BASE,
    PLAN_CASES,
    REPO_CASES,
    assemble,
    credential_env,
    expected_lines,
    live_sandboxes,
    plan_cases,
    repo_cases,
    request_counts,
    run_cli,
    snapshot,
)

# Problems about a file as a whole, where no line exists to point at.
WHOLE_FILE = ("not found (", "cannot read the file:")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("RECONCILER_STATE", "RECONCILER_REPO"):
        monkeypatch.delenv(var, raising=False)


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'s' if n != 1 else ''}"


def test_the_corpus_is_complete() -> None:
    repos, plans = repo_cases(), plan_cases()
    assert len(repos) >= 40 and len(plans) >= 10
    for case in [REPO_CASES / c for c in repos] + [PLAN_CASES / c for c in plans]:
        assert (case / "expected.txt").read_text(encoding="utf-8").strip(), f"{case.name} has no expected error"
    assert run_cli("-C", str(BASE), "validate").code == 0  # the cases are broken, not the base


@pytest.mark.parametrize("case", repo_cases())
def test_broken_repository_is_refused_by_validate_and_plan(case: str, tmp_path: Path) -> None:
    root = assemble(REPO_CASES / case, tmp_path / "repo")
    expected = expected_lines(REPO_CASES / case)
    before = snapshot(root)

    validate = run_cli("-C", str(root), "validate")
    plan = run_cli("-C", str(root), "plan", "--out", "plans/new.json")

    assert (validate.code, validate.stderr) == (1, "")
    assert validate.stdout.splitlines() == [
        *expected, f"{_count(len(expected), 'problem')} found; nothing is valid until all are fixed."]
    assert (plan.code, plan.stdout) == (1, "")
    assert plan.stderr == (f"Error: {_count(len(expected), 'problem')} in the stock repository:\n"
                           + "".join(f"  {line}\n" for line in expected))
    assert "Traceback" not in validate.stdout + plan.stderr
    assert snapshot(root) == before  # no state database, no plan file, nothing touched


@pytest.mark.parametrize("case", repo_cases())
def test_every_problem_names_its_file_and_line(case: str, tmp_path: Path) -> None:
    root = assemble(REPO_CASES / case, tmp_path / "repo")

    report = json.loads(run_cli("-C", str(root), "validate", "--format", "json").stdout)

    assert report["valid"] is False and report["problems"]
    for problem in report["problems"]:
        assert problem["file"] and (root / problem["file"]).parent.is_dir(), problem
        assert problem["hint"], problem  # what to do
        if not problem["message"].startswith(problem["file"]) and not any(w in problem["message"] for w in WHOLE_FILE):
            assert isinstance(problem["line"], int) and problem["line"] >= 1, problem


# --- plan files --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, object]]]:
    """The base repository with a live sandbox per target (each with its own token)."""
    root = tmp_path_factory.mktemp("live") / "repo"
    shutil.copytree(BASE, root)
    variables = credential_env(root)
    tokens = {target: f"badinput-{target}-token" for target in variables}
    with pytest.MonkeyPatch.context() as mp, live_sandboxes(root, tokens) as servers:
        for target, var in variables.items():
            mp.setenv(var, tokens[target])
        for var in ("RECONCILER_STATE", "RECONCILER_REPO"):
            mp.delenv(var, raising=False)
        yield root, servers


def _all_requests(servers: dict[str, object]) -> dict[str, dict[str, int]]:
    return {target: request_counts(server) for target, server in servers.items()}


@pytest.mark.parametrize("case", plan_cases())
def test_broken_plan_file_is_refused_by_show_and_apply(
    case: str, live: tuple[Path, dict[str, object]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, servers = live
    shutil.copyfile(PLAN_CASES / case / "plan.json", tmp_path / "plan.json")
    monkeypatch.chdir(tmp_path)  # the error names the path as the user typed it
    expected = (PLAN_CASES / case / "expected.txt").read_text(encoding="utf-8")
    before, sent_before = snapshot(root), _all_requests(servers)

    for argv in (["show", "plan.json"], ["show", "plan.json", "--format", "markdown"],
                 ["-C", str(root), "apply", "plan.json"]):
        run = run_cli(*argv)
        assert (run.code, run.stdout, run.stderr) == (1, "", expected), argv

    assert snapshot(root) == before  # no state database created
    assert _all_requests(servers) == sent_before  # not one request reached any vendor


def test_the_request_log_sees_an_apply(live: tuple[Path, dict[str, object]], tmp_path: Path) -> None:
    """The control for the test above: a good plan does reach the sandboxes' request logs."""
    root, servers = live
    plan_file = str(tmp_path / "good.json")
    assert run_cli("-C", str(root), "plan", "--out", plan_file).code == 0
    before = _all_requests(servers)

    applied = run_cli("-C", str(root), "apply", plan_file, "--no-progress")

    assert applied.code == 0, applied.stderr
    writes = {target: sum(n for key, n in counts.items() if not key.startswith("GET ")) for target, counts in _all_requests(servers).items()}
    old = {target: sum(n for key, n in counts.items() if not key.startswith("GET ")) for target, counts in before.items()}
    assert all(writes[t] > old[t] for t in writes), (old, writes)
    shutil.rmtree(root / ".reconciler")  # later cases compare against a repository without state


# --- the console script as a user runs it ------------------------------------------------------


@pytest.mark.parametrize("case,argv", [
    ("repos/yaml-tab-indentation", ["validate"]),
    ("repos/many-problems-at-once", ["plan"]),
    ("repos/deep-nesting", ["plan", "--format", "json"]),
    ("plans/deep-nesting", ["show", "plan.json"]),
    ("plans/not-utf8", ["apply", "plan.json"]),
])
def test_console_script_exits_1_without_traceback(case: str, argv: list[str], tmp_path: Path) -> None:
    kind, name = case.split("/")
    if kind == "repos":
        cwd = assemble(REPO_CASES / name, tmp_path / "repo")
    else:
        cwd = assemble(REPO_CASES / "unknown-sku", tmp_path / "repo")  # apply refuses the plan before the repo
        shutil.copyfile(PLAN_CASES / name / "plan.json", cwd / "plan.json")
    env = {k: v for k, v in os.environ.items() if k not in ("RECONCILER_STATE", "RECONCILER_REPO")}

    run = subprocess.run([sys.executable, "-m", "reconciler", *argv], cwd=cwd, capture_output=True, timeout=60, env=env)

    assert run.returncode == 1
    assert b"Traceback" not in run.stdout + run.stderr
    assert b"Error: " in run.stderr or b"problem" in run.stdout
    assert not (cwd / ".reconciler").exists()
