"""The shipped GitHub Actions workflows: valid by GitHub's schema, and safe by construction."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from gitops_kit import WORKFLOWS, steps, workflow
from reconciler.render.drift import DRIFT_MARKER
from reconciler.render.markdown import MARKER

NAMES = ("reconciler-plan.yml", "reconciler-apply.yml", "reconciler-drift.yml")
CREDENTIAL_VARS = re.compile(r"credentials_env:\s*(\S+)")


def _run_text(doc: dict) -> str:
    return "\n".join(s.get("run", "") for s in steps(doc))


def test_workflows_pass_the_github_workflow_schema() -> None:
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert {Path(f).name for f in files} >= set(NAMES)
    exe = Path(sys.executable).parent / "check-jsonschema"
    done = subprocess.run([str(exe), "--builtin-schema", "vendor.github-workflows", *files],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


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


def test_the_state_script_is_the_same_in_every_workflow() -> None:
    scripts = {name: next(s["run"] for s in steps(workflow(name)) if s.get("id") == "state-script") for name in NAMES}
    assert len(set(scripts.values())) == 1
    assert "--force-with-lease" in scripts[NAMES[0]]
