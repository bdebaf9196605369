"""The pull-request loop end to end (issue 21, point 9): a bare remote standing in for GitHub,
a developer's clone and the CI jobs' fresh checkouts, the shipped workflows' jobs run step by step
as a runner runs them (actions_kit.Runner: their own `run:` scripts, `if:` conditions and
expressions), `gh` answered by a stand-in that keeps comments, labels, issues and artifacts, and
the five vendor sandboxes on loopback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from actions_kit import GitHub, JobResult, Runner
from gitops_kit import Sandboxes, clone, example_root, git, run_state, seed_remote
from reconciler.render.drift import DRIFT_MARKER
from reconciler.render.markdown import MARKER

pytestmark = pytest.mark.timeout(300)


class Loop:
    """main holds the example; the state branch was made by the apply workflow's init-state job."""

    def __init__(self, tmp: Path, sandboxes: Sandboxes) -> None:
        self.tmp, self.sandboxes = tmp, sandboxes
        self.remote = seed_remote(tmp, sandboxes)
        self.github = GitHub(tmp, self.remote)
        readonly = {f"{var}_READONLY": token for var, token in sandboxes.env.items()
                    if var in ("RECONCILER_XS_MAIN_TOKEN", "RECONCILER_LS_SUPPLIER_TOKEN", "RECONCILER_ZETTLE_MAIN_TOKEN")}
        self.runner = Runner(self.github, secrets={**sandboxes.env, **readonly})
        init = self.runner.run("reconciler-apply.yml", "init-state", event_name="workflow_dispatch")
        assert init.conclusion == "success", init.log()
        self.dev = clone(self.remote, tmp / "dev")

    def change(self, branch: str, path: str, old: str | None, new: str, message: str) -> int:
        """A developer edits ``path`` on a new branch, pushes it and opens a pull request."""
        git(self.dev, "checkout", "--quiet", "main")
        git(self.dev, "pull", "--quiet", "origin", "main")
        git(self.dev, "checkout", "--quiet", "-b", branch)
        file = self.dev / path
        text = file.read_text(encoding="utf-8") if file.exists() else ""
        if old is not None:
            assert old in text, (path, old)
        file.write_text(text.replace(old, new) if old is not None else text + new, encoding="utf-8")
        git(self.dev, "add", path)
        git(self.dev, "commit", "--quiet", "-m", message)
        git(self.dev, "push", "--quiet", "origin", branch)
        return self.github.open_pr(branch)

    def push(self, branch: str, number: int, path: str, old: str, new: str, message: str) -> None:
        """Another commit on the pull request's branch (GitHub moves its head and merge refs)."""
        git(self.dev, "checkout", "--quiet", branch)
        file = self.dev / path
        file.write_text(file.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
        git(self.dev, "commit", "--quiet", "-am", message)
        git(self.dev, "push", "--quiet", "origin", branch)
        self.github.update_head(number)

    def plan(self, number: int, **kw: Any) -> JobResult:
        pr = self.github.pr(number)
        return self.runner.run("reconciler-plan.yml", "plan", event_name="pull_request", event={"pull_request": pr},
                               sha=self.github.sha(f"refs/pull/{number}/merge"), **kw)

    def apply(self, sha: str) -> JobResult:
        return self.runner.run("reconciler-apply.yml", "apply", event_name="push", sha=sha)

    def comments(self, number: int) -> list[str]:
        return [c["body"] for c in self.github.pr(number)["comments"]]


@pytest.fixture
def loop(tmp_path: Path) -> Iterator[Loop]:
    with Sandboxes(example_root(tmp_path / "example")) as sandboxes:
        yield Loop(tmp_path, sandboxes)


def test_a_reviewed_plan_is_applied_on_merge_and_a_rerun_sends_nothing(loop: Loop) -> None:
    number = loop.change("more-caps", "stock/oslo.yaml", "CAP-BLACK: 20", "CAP-BLACK: 26", "Oslo: more caps")
    planned = loop.plan(number)
    assert planned.conclusion == "success", planned.log()
    [comment] = loop.comments(number)
    assert comment.startswith(MARKER + "\n**Plan: ") and "CAP-BLACK" in comment
    assert "every position will be adopted" in comment  # the first plan against a new state says so
    assert loop.github.pr(number)["labels"] == ["stock-changes"]
    head = loop.github.pr(number)["head"]["sha"]
    assert [a["name"] for a in loop.github.db["artifacts"]] == [f"reconciler-plan-pr{number}-{head}"]

    # a push to the same PR re-plans: the one comment is updated in place, a new artifact saved
    loop.push("more-caps", number, "stock/oslo.yaml", "CAP-BLACK: 26", "CAP-BLACK: 27", "Oslo: even more caps")
    assert loop.plan(number).conclusion == "success"
    [comment] = loop.comments(number)
    assert "27" in comment and len(loop.github.db["artifacts"]) == 2

    sha = loop.github.merge_pr(number)
    applied = loop.apply(sha)
    assert applied.conclusion == "success", applied.log()
    assert loop.comments(number)[-1].startswith("**reconciler apply**: Applied: every operation")
    assert git(loop.remote, "ls-tree", "--name-only", "reconciler-state").split() == ["state.db"]
    writes = loop.sandboxes.writes()

    # "Re-run jobs" on the same push: exit 0, nothing sent, and the PR is told so
    again = loop.apply(sha)
    assert again.conclusion == "success", again.log()
    assert again.step("apply").stdout.startswith("Already applied, nothing sent: plan ")
    assert loop.comments(number)[-1].startswith("**reconciler apply**: Already applied, nothing sent")
    assert loop.sandboxes.writes() == writes

    # the next pull request's plan, from the saved state, knows what was applied
    docs = loop.change("readme", "NOTES.md", None, "a note\n", "A note, no stock")
    nochange = loop.plan(docs)
    assert nochange.conclusion == "success" and nochange.step("Plan").outcome == "skipped", nochange.log()
    assert loop.comments(docs) == [MARKER + "\n**No stock change**: this pull request changes no file under stock/ "
                                   "and not reconciler.yaml, so there is nothing to plan or apply.\n"]


def test_a_stale_plan_names_the_changed_files_and_a_held_claim_names_its_run(loop: Loop) -> None:
    first = loop.change("caps", "stock/oslo.yaml", "CAP-BLACK: 20", "CAP-BLACK: 26", "Oslo: more caps")
    second = loop.change("socks", "stock/oslo.yaml", "TSHIRT-RED-S: 10", "TSHIRT-RED-S: 7", "Oslo: fewer shirts")
    assert loop.plan(first).conclusion == "success" and loop.plan(second).conclusion == "success"
    assert loop.apply(loop.github.merge_pr(first)).conclusion == "success"

    before = loop.sandboxes.writes()
    stale = loop.apply(loop.github.merge_pr(second))  # reviewed before the first was applied
    assert stale.conclusion == "failure"
    report = loop.comments(second)[-1]
    assert report.startswith("**reconciler apply**: Not applied (exit 1): the plan was refused before anything was sent")
    assert "the desired files changed since the plan was made: stock/oslo.yaml (changed)" in report
    assert "the state moved too: the plan was made against serial" in report
    assert loop.sandboxes.writes() == before

    # another apply holds the state claim (a runner that is still running, or died): this run
    # stops before sending anything and the PR learns which run holds it
    third = loop.change("hats", "stock/oslo.yaml", "CAP-BLACK: 26", "CAP-BLACK: 30", "Oslo: caps again")
    assert loop.plan(third).conclusion == "success"
    other = clone(loop.remote, loop.tmp / "other-runner")
    claimed, _ = run_state("claim", other, loop.tmp, GITHUB_RUN_ID="777", GITHUB_SERVER_URL="https://github.test",
                           GITHUB_REPOSITORY="acme/stock")
    assert claimed.returncode == 0, claimed.stderr
    blocked = loop.apply(loop.github.merge_pr(third))
    assert blocked.step("claim").outcome == "failure" and blocked.step("apply").outcome == "skipped"
    assert loop.comments(third)[-1].startswith(
        "**reconciler apply**: Not applied: the state is claimed by another run "
        "(apply in progress: https://github.test/acme/stock/actions/runs/777). Nothing was sent.")
    assert loop.sandboxes.writes() == before


def test_forks_and_changed_endpoints_wait_for_a_maintainer(loop: Loop) -> None:
    git(loop.dev, "checkout", "--quiet", "-b", "fork-change")
    oslo = loop.dev / "stock" / "oslo.yaml"
    oslo.write_text(oslo.read_text(encoding="utf-8").replace("CAP-BLACK: 20", "CAP-BLACK: 21"), encoding="utf-8")
    git(loop.dev, "commit", "--quiet", "-am", "from a fork")
    git(loop.dev, "push", "--quiet", "origin", "fork-change")
    fork = loop.github.open_pr("fork-change", fork=True)

    # GitHub gives a fork's run no secrets and a read-only token
    check = loop.runner.run("reconciler-plan.yml", "plan", event_name="pull_request", token="read-only",
                            event={"pull_request": loop.github.pr(fork)}, sha=loop.github.sha(f"refs/pull/{fork}/merge"))
    assert check.conclusion == "failure" and check.step("Plan").outcome == "skipped"
    assert "pull requests from forks are planned by a maintainer" in check.summary
    assert loop.github.db["denied"] == []  # it never tried to comment: no 403
    # a maintainer reads it and runs the plan by hand; the fork's check then passes on re-run
    manual = loop.runner.run("reconciler-plan.yml", "plan", event_name="workflow_dispatch", inputs={"pr": fork})
    assert manual.conclusion == "success", manual.log()
    assert loop.comments(fork)[0].startswith(MARKER + "\n**Plan: ")
    rerun = loop.runner.run("reconciler-plan.yml", "plan", event_name="pull_request", token="read-only",
                            event={"pull_request": loop.github.pr(fork)}, sha=loop.github.sha(f"refs/pull/{fork}/merge"))
    assert rerun.conclusion == "success", rerun.log()

    # a pull request that sends a target's credential elsewhere is not planned automatically
    xs_url = loop.sandboxes.servers["xs-main"].url
    moved = loop.change("exfiltrate", "reconciler.yaml", f"url: {xs_url}\n", "url: http://127.0.0.1:9\n", "Move xs")
    guarded = loop.plan(moved)
    assert guarded.conclusion == "failure" and guarded.step("Plan").outcome == "skipped"
    body = loop.comments(moved)[-1]
    assert body.startswith(MARKER + "\n**Not planned automatically**") and "target xs-main: url" in body


def test_the_drift_job_opens_updates_and_closes_one_issue(loop: Loop) -> None:
    number = loop.change("caps", "stock/oslo.yaml", "CAP-BLACK: 20", "CAP-BLACK: 26", "Oslo: more caps")
    assert loop.plan(number).conclusion == "success"
    assert loop.apply(loop.github.merge_pr(number)).conclusion == "success"

    calm = loop.runner.run("reconciler-drift.yml", "drift", event_name="schedule")
    assert calm.conclusion == "success" and loop.github.db["issues"] == [], calm.log()

    xs = loop.sandboxes.servers["xs-main"].url
    assert httpx.post(xs + "/_sandbox/sell", json={"count": 5}).status_code == 200
    alarm = loop.runner.run("reconciler-drift.yml", "drift", event_name="schedule")
    assert alarm.conclusion == "success", alarm.log()
    [issue] = loop.github.db["issues"]
    assert issue["state"] == "open" and issue["body"].startswith(DRIFT_MARKER) and issue["labels"] == ["stock-drift"]

    again = loop.runner.run("reconciler-drift.yml", "drift", event_name="schedule")
    assert again.conclusion == "success"
    [issue] = loop.github.db["issues"]  # still one issue, updated in place
    assert issue["edits"] == 1 and issue["state"] == "open"

    # back within the threshold (here: a manual run with a higher threshold): closed with a word
    settled = loop.runner.run("reconciler-drift.yml", "drift", event_name="workflow_dispatch",
                              inputs={"threshold_units": "1000"})
    assert settled.conclusion == "success", settled.log()
    [issue] = loop.github.db["issues"]
    assert issue["state"] == "closed" and issue["comments"][-1].startswith("Drift is back within the threshold")
    published = json.dumps(loop.github.db)  # every comment, issue and call the workflows made
    assert all(token not in published for token in loop.sandboxes.env.values())
