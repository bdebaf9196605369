"""The shipped GitHub Actions workflows: valid by GitHub's schema, and safe by construction."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gitops_kit import ROOT, STATE_MODES, STATE_SCRIPT, WORKFLOWS, steps, workflow
from reconciler.render.drift import DRIFT_MARKER
from reconciler.render.markdown import MARKER

NAMES = ("reconciler-plan.yml", "reconciler-apply.yml", "reconciler-drift.yml")
DOCS = ("docs/gitops.md", "docs/state.md")
YAML_BLOCK = re.compile(r"^```ya?ml[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
CREDENTIAL_VARS = re.compile(r"credentials_env:\s*(\S+)")


def _run_text(doc: dict) -> str:
    return "\n".join(s.get("run", "") for s in steps(doc))


def _check_workflow_schema(files: list[str]) -> None:
    exe = Path(sys.executable).parent / "check-jsonschema"
    done = subprocess.run([str(exe), "--builtin-schema", "vendor.github-workflows", *files],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_workflows_pass_the_github_workflow_schema() -> None:
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert {Path(f).name for f in files} >= set(NAMES)
    _check_workflow_schema(files)


def _doc_workflows() -> list[tuple[str, str, dict]]:
    """(``doc:line``, text, data) of every GitHub workflow in a ```yaml block of the CI docs (it
    has `on:` and `jobs:`); every other block (GitLab CI) must at least parse as a mapping."""
    found = []
    for doc in DOCS:
        text = (ROOT / doc).read_text(encoding="utf-8")
        for match in YAML_BLOCK.finditer(text):
            where = f"{doc}:{text.count(chr(10), 0, match.start()) + 1}"
            data = yaml.safe_load(match.group(1))
            assert isinstance(data, dict), f"{where}: the yaml block is not a mapping"
            if "jobs" in data and (True in data or "on" in data):  # YAML 1.1 reads `on` as true
                found.append((where, match.group(1), data))
    return found


def test_github_workflows_in_the_docs_pass_the_schema(tmp_path: Path) -> None:
    found = _doc_workflows()
    assert any(where.startswith("docs/state.md:") for where, _, _ in found), found  # the matrix example
    files = []
    for where, text, _ in found:
        path = tmp_path / (where.replace("/", "-").replace(":", "-line") + ".yml")
        path.write_text(text, encoding="utf-8")
        files.append(str(path))
    _check_workflow_schema(files)


def test_matrix_example_names_the_example_targets_and_their_secrets() -> None:
    config = yaml.safe_load((ROOT / "reconciler.yaml").read_text(encoding="utf-8"))
    targets = config["targets"]
    for where, text, data in _doc_workflows():
        for job in data["jobs"].values():
            matrix = job.get("strategy", {}).get("matrix", {})
            if "target" not in matrix:
                continue
            assert sorted(matrix["target"]) == sorted(targets), where
            for spec in targets.values():
                var = spec["credentials_env"]
                assert job["env"].get(var) == f"${{{{ secrets.{var} }}}}", f"{where}: {var} is not passed from a secret"
            assert "--target ${{ matrix.target }}" in text or '--target "$TARGET"' in text, where


def test_apply_applies_the_saved_plan_and_never_plans() -> None:
    doc = workflow("reconciler-apply.yml")
    assert doc["concurrency"] == {"group": "reconciler-apply", "cancel-in-progress": False}
    on = doc[True] if True in doc else doc["on"]  # YAML 1.1 reads the key `on` as true
    assert on["push"]["branches"] == ["main"] and set(on["push"]["paths"]) == {"stock/**", "reconciler.yaml"}
    runs = _run_text(doc)
    assert "reconciler plan" not in runs
    assert 'reconciler apply "$PLAN"' in runs and "--allow-dirty" not in runs
    download = next(s for s in steps(doc) if str(s.get("uses", "")).startswith("actions/download-artifact@"))
    assert download["with"]["run-id"] == "${{ steps.find.outputs.run_id }}"
    assert "reconciler-plan-pr${number}-${head}" in runs  # the artifact of the PR's reviewed head
    names = [s.get("id") for s in doc["jobs"]["apply"]["steps"]]
    assert names.index("claim") < names.index("apply")  # the state is claimed before anything is sent
    save = next(s for s in doc["jobs"]["apply"]["steps"] if s.get("name") == "Save the state")
    assert save["if"].startswith("always()")


def test_plan_comments_labels_and_uploads() -> None:
    doc = workflow("reconciler-plan.yml")
    on = doc[True] if True in doc else doc["on"]
    assert set(on["pull_request"]["paths"]) == {"stock/**", "reconciler.yaml"}
    runs = _run_text(doc)
    assert 'reconciler plan --out "$PLAN_FILE" --format markdown --detailed-exitcode' in runs
    assert doc["env"]["PLAN_FILE"] == "plans/pr-${{ github.event.pull_request.number }}.json"
    assert MARKER in runs and "--add-label stock-changes" in runs and "--remove-label stock-changes" in runs
    upload = next(s for s in steps(doc) if str(s.get("uses", "")).startswith("actions/upload-artifact@"))
    assert upload["with"]["name"] == "${{ env.PLAN_ARTIFACT }}"
    assert doc["env"]["PLAN_ARTIFACT"].endswith("${{ github.event.pull_request.head.sha }}")
    assert doc["permissions"]["contents"] == "read"  # a pull request never writes the state


def test_drift_is_scheduled_with_thresholds_and_one_issue() -> None:
    doc = workflow("reconciler-drift.yml")
    on = doc[True] if True in doc else doc["on"]
    assert "schedule" in on and "workflow_dispatch" in on
    runs = _run_text(doc)
    assert "reconciler drift" in runs and "--detailed-exitcode" in runs and "--threshold-units" in runs
    assert DRIFT_MARKER in runs and "--label stock-drift" in runs


@pytest.mark.parametrize("name", NAMES)
def test_every_credential_comes_from_a_secret(name: str) -> None:
    config = (WORKFLOWS.parents[1] / "reconciler.yaml").read_text(encoding="utf-8")
    wanted = set(CREDENTIAL_VARS.findall(config))
    assert wanted
    text = (WORKFLOWS / name).read_text(encoding="utf-8")
    for var in wanted:  # every workflow that talks to vendors needs every target's credential
        assert f"{var}: ${{{{ secrets.{var} }}}}" in text


def test_every_workflow_calls_the_shared_state_script_after_checkout_and_none_embeds_it() -> None:
    script = ROOT / STATE_SCRIPT
    text = script.read_text(encoding="utf-8")
    assert script.stat().st_mode & 0o111, f"{STATE_SCRIPT} is not executable"
    assert text.startswith("#!/usr/bin/env bash\n") and "\nset -euo pipefail\n" in text
    assert "--force-with-lease" in text and "python3" not in text  # reconciler's own commands, no inline python
    assert 'reconciler state snapshot "$copy" --state "$state"' in text and 'reconciler state init --state "$state"' in text
    modes: set[str] = set()
    for name in NAMES:
        raw = (WORKFLOWS / name).read_text(encoding="utf-8")
        assert "<<'SCRIPT'" not in raw and "git push" not in raw and "--force-with-lease" not in raw, name
        calls = 0
        for job_name, job in workflow(name)["jobs"].items():
            uses = [str(s.get("uses", "")) for s in job["steps"]]
            for index, step in enumerate(job["steps"]):
                if STATE_SCRIPT not in step.get("run", ""):
                    continue
                words = step["run"].split()
                assert words[:2] == ["bash", STATE_SCRIPT] and len(words) == 3 and words[2] in STATE_MODES, step
                assert any(u.startswith("actions/checkout@") for u in uses[:index]), f"{name}/{job_name}: no checkout before {step}"
                modes.add(words[2])
                calls += 1
        assert calls, f"{name} never calls {STATE_SCRIPT}"
    assert modes == set(STATE_MODES)
    save = next(s for s in workflow("reconciler-apply.yml")["jobs"]["apply"]["steps"] if s.get("name") == "Save the state")
    assert save["run"].split()[-1] == "save" and save["if"].startswith("always()")


def test_the_state_script_is_valid_bash_and_refuses_an_unknown_mode(tmp_path: Path) -> None:
    assert subprocess.run(["bash", "-n", str(ROOT / STATE_SCRIPT)], timeout=30).returncode == 0
    done = subprocess.run(["bash", str(ROOT / STATE_SCRIPT), "push"], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "usage: reconciler-state.sh read|claim|save|init" in done.stderr
