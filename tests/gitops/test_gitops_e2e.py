"""The GitOps loop end to end with real git: a bare remote, clones playing the developer and the
CI jobs, the workflows' own state steps (.github/scripts/reconciler-state.sh, copied into the stock
repository as a user copies it) keeping the state on its branch, reconciler run as a
subprocess, and the five vendor sandboxes on loopback."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from gitops_kit import (
    Sandboxes,
    cli,
    clone,
    example_root,
    git,
    plan_json,
    reconciler,
    run_state,
    sandbox_item,
    sandbox_quantities,
    seed_remote,
)
from reconciler.config import load_project
from reconciler.render.drift import DRIFT_MARKER
from reconciler.render.markdown import MARKER

pytestmark = pytest.mark.timeout(120)


class Loop:
    """A remote with the example on main and an initialised state branch."""

    def __init__(self, tmp: Path, sandboxes: Sandboxes) -> None:
        self.tmp, self.sandboxes, self.env = tmp, sandboxes, sandboxes.env
        self.remote = seed_remote(tmp, sandboxes)
        init = clone(self.remote, tmp / "ci-init")
        done, out = run_state("init", init, tmp)
        assert done.returncode == 0, done.stderr
        self.dev = clone(self.remote, tmp / "dev")

    def edit(self, branch: str | None, old: str, new: str, message: str) -> None:
        """A developer commits a change to stock/oslo.yaml on ``branch`` (None: on main) and pushes."""
        git(self.dev, "checkout", "--quiet", "main")
        git(self.dev, "pull", "--quiet", "origin", "main")
        if branch:
            git(self.dev, "checkout", "--quiet", "-b", branch)
        path = self.dev / "stock" / "oslo.yaml"
        text = path.read_text(encoding="utf-8")
        assert old in text
        path.write_text(text.replace(old, new), encoding="utf-8")
        git(self.dev, "commit", "--quiet", "-am", message)
        git(self.dev, "push", "--quiet", "origin", branch or "main")

    def plan_job(self, branch: str, number: int) -> tuple[Path, str]:
        """reconciler-plan.yml: restore the state read-only, plan, keep the saved plan (the artifact)."""
        job = clone(self.remote, self.tmp / f"ci-plan-{number}", branch)
        done, _ = run_state("read", job, self.tmp)
        assert done.returncode == 0, done.stderr
        plan = reconciler(job, "plan", "--out", f"plans/pr-{number}.json", "--format", "markdown",
                          "--detailed-exitcode", env=self.env)
        assert plan.returncode == 2, plan.stderr
        artifact = self.tmp / "artifacts" / f"pr-{number}.json"
        artifact.parent.mkdir(exist_ok=True)
        shutil.copy(job / "plans" / f"pr-{number}.json", artifact)
        return artifact, plan.stdout

    def merge(self, branch: str) -> None:
        git(self.dev, "checkout", "--quiet", "main")
        git(self.dev, "pull", "--quiet", "origin", "main")
        git(self.dev, "merge", "--quiet", "--no-ff", "-m", f"Merge {branch}", branch)
        git(self.dev, "push", "--quiet", "origin", "main")

    def apply_job(self, artifact: Path, number: int) -> tuple[Path, int, str]:
        """reconciler-apply.yml: claim the state, apply the downloaded plan (never re-plan), save."""
        job = clone(self.remote, self.tmp / f"ci-apply-{number}")
        shutil.copy(artifact, job / "plans" / artifact.name)
        done, out = run_state("claim", job, self.tmp)
        assert done.returncode == 0, done.stderr
        assert git(job, "ls-tree", "--name-only", out["claim"]).split() == ["LOCK", "state.db"]
        applied = reconciler(job, "apply", f"plans/{artifact.name}", "--no-progress", env=self.env)
        saved, _ = run_state("save", job, self.tmp, STATE_CLAIM=out["claim"])
        assert saved.returncode == 0, saved.stderr
        return job, applied.returncode, applied.stdout + applied.stderr

    def state_branch_files(self) -> list[str]:
        return git(self.remote, "ls-tree", "--name-only", "reconciler-state").split()


@pytest.fixture
def loop(tmp_path: Path) -> Iterator[Loop]:
    with Sandboxes(example_root(tmp_path / "example")) as sandboxes:
        yield Loop(tmp_path, sandboxes)


def test_reviewed_plan_is_applied_on_merge_and_the_sandboxes_hold_its_results(loop: Loop) -> None:
    loop.edit("more-caps", "CAP-BLACK: 20", "CAP-BLACK: 26", "Oslo: more caps")
    artifact, comment = loop.plan_job("more-caps", 1)
    assert comment.startswith(MARKER + "\n**Plan: ")
    job = loop.tmp / "ci-plan-1"
    shown = cli(job, "show", str(artifact), "--format", "markdown", env=loop.env)
    assert shown.exit_code == 0 and shown.output == comment  # the same comment from the saved plan
    plan = plan_json(artifact)
    assert plan["git_commit"] == git(job, "rev-parse", "HEAD") and plan["git_dirty"] is False

    loop.merge("more-caps")
    _, code, output = loop.apply_job(artifact, 1)
    assert code == 0, output
    assert loop.state_branch_files() == ["state.db"]  # saved, claim released
    assert git(loop.remote, "rev-list", "--count", "reconciler-state") == "3"  # init, claim, save

    project = load_project(loop.tmp / "ci-apply-1")
    checked = 0
    for op in plan["operations"]:
        if op["kind"] not in ("reset", "adjust", "move", "record"):  # a record: the vendor already held D
            continue
        target = project.config.targets[op["target"]]
        live = sandbox_quantities(loop.sandboxes, op["target"])
        for leg in op["legs"]:
            key = (target.locations[leg["location"]], sandbox_item(target.kind, project.catalog[op["item"]].ids[op["target"]]))
            assert live[key] == leg["expected"], (op["id"], leg)
            checked += 1
    assert checked >= 50  # the first plan adopts every position of the example
    caps = next(op for op in plan["operations"] if op["item"] == "CAP-BLACK" and op["target"] == "xs-main"
                and op["legs"][0]["location"] == "oslo")
    assert caps["legs"][0]["expected"] == 26

    # the next plan job (a fresh clone of main, the state restored from its branch) has nothing to do
    nxt = clone(loop.remote, loop.tmp / "ci-plan-next")
    assert run_state("read", nxt, loop.tmp)[0].returncode == 0
    again = cli(nxt, "plan", "--detailed-exitcode", env=loop.env)
    assert again.exit_code == 0 and "Plan: no changes" in again.output, again.output

    # drift, as the scheduled job runs it: units sold in X-Series (some may be of unmanaged products)
    xs = loop.sandboxes.servers["xs-main"].url
    assert httpx.post(xs + "/_sandbox/sell", json={"count": 5}).status_code == 200
    drift = ("drift", "--detailed-exitcode", "--format", "markdown", "--threshold-units")
    alarm = cli(nxt, *drift, "0", env=loop.env)
    assert alarm.exit_code == 2 and alarm.output.startswith(DRIFT_MARKER + "\n**Drift in ")
    found = re.search(r"positions: (\d+) units away from what was applied", alarm.output)
    assert found is not None and 1 <= int(found.group(1)) <= 5, alarm.output
    units = int(found.group(1))
    assert "Threshold: 0 units; exceeded." in alarm.output and "| xs-main |" in alarm.output
    calm = cli(nxt, *drift, str(units), env=loop.env)
    assert calm.exit_code == 0 and f"Threshold: {units} units; not exceeded." in calm.output


def test_apply_refuses_when_main_moved_on_after_the_plan(loop: Loop) -> None:
    loop.edit("more-caps", "CAP-BLACK: 20", "CAP-BLACK: 26", "Oslo: more caps")
    artifact, _ = loop.plan_job("more-caps", 2)
    loop.edit(None, "TSHIRT-RED-S: 10", "TSHIRT-RED-S: 7", "Oslo: fewer red T-shirts, straight on main")
    loop.merge("more-caps")  # merges cleanly: another line of the same file
    before = loop.sandboxes.writes()
    job, code, output = loop.apply_job(artifact, 2)
    assert code == 1, output
    assert "changed since the plan was made" in output and "reconciler plan --out" in output
    assert loop.sandboxes.writes() == before  # not one write request reached a vendor
    assert loop.state_branch_files() == ["state.db"]  # the claim is released all the same
    # a second claim holds off a concurrent apply before it can send anything
    other = clone(loop.remote, loop.tmp / "ci-other")
    _, claimed = run_state("claim", job, loop.tmp)
    done, _ = run_state("claim", other, loop.tmp)
    assert done.returncode == 1 and "claimed by another apply" in done.stderr
    stale, _ = run_state("save", other, loop.tmp, STATE_CLAIM=git(loop.remote, "rev-parse", "reconciler-state~1"))
    assert stale.returncode == 1 and "moved under this run" in stale.stderr  # compare-and-swap
    ok, _ = run_state("save", job, loop.tmp, STATE_CLAIM=claimed["claim"])
    assert ok.returncode == 0, ok.stderr
