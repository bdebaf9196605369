"""GitHub's side of the pull-request loop for the end-to-end tests, and a runner that runs the
shipped workflows' jobs step by step as a GitHub runner does.

- :class:`GitHub`: the bare remote is the repository; pull requests get ``refs/pull/N/head`` and
  ``refs/pull/N/merge`` as GitHub makes them; comments, labels, issues and artifacts live in one
  JSON file that ``fake_gh.py`` (on PATH as ``gh``) serves to the workflows' scripts.
- :class:`Runner`: reads a job from ``.github/workflows/*.yml`` and runs each step in order:
  ``if:`` and ``${{ }}`` expressions are evaluated (contexts github, env, secrets, vars, inputs,
  steps; always/success/failure), ``run:`` goes to ``bash --noprofile --norc -eo pipefail`` as on
  a runner, with GITHUB_OUTPUT/GITHUB_STEP_SUMMARY; ``actions/checkout`` clones the remote at the
  step's ref into its path; ``upload-artifact``/``download-artifact`` keep files per name.
  ``setup-python`` and the "Install reconciler" step are this test environment (reconciler is
  installed in it already): nothing else is skipped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gitops_kit import WORKFLOWS, git

REPO = "acme/stock"
SERVER = "https://github.test"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
PROVIDED_BY_THE_TEST_ENVIRONMENT = ("actions/setup-python@", )
INSTALL_STEP = "Install reconciler"


class _Missing:
    """What a missing property evaluates to: falsy, equal to '', and missing all the way down."""

    __hash__ = None  # type: ignore[assignment]

    def __getattr__(self, name: str) -> _Missing:
        return self

    def __bool__(self) -> bool:
        return False

    def __eq__(self, other: object) -> bool:
        return other in ("", None) or isinstance(other, _Missing)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __str__(self) -> str:
        return ""


MISSING = _Missing()


class Ctx(dict):  # type: ignore[type-arg]
    """A context object: attribute access, and MISSING ('' in effect) for what is not there."""

    def __getattr__(self, name: str) -> Any:
        if name not in self:
            return MISSING
        value = self[name]
        return Ctx(value) if isinstance(value, dict) and not isinstance(value, Ctx) else value


def _python(expr: str) -> str:
    out = re.sub(r"&&", " and ", expr)
    out = re.sub(r"\|\|", " or ", out)
    out = re.sub(r"!(?!=)", " not ", out)
    return out


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or isinstance(value, _Missing):
        return ""
    return str(value)


@dataclass
class StepResult:
    name: str
    outcome: str  # success | failure | skipped
    outputs: dict[str, str] = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""
    id: str = ""


@dataclass
class JobResult:
    steps: list[StepResult]
    summary: str

    @property
    def conclusion(self) -> str:
        return "failure" if any(s.outcome == "failure" for s in self.steps) else "success"

    def step(self, name_or_id: str) -> StepResult:
        return next(s for s in self.steps if name_or_id in (s.name, s.id))

    def log(self) -> str:
        return "\n".join(f"--- {s.name} [{s.outcome}]\n{s.stdout}{s.stderr}" for s in self.steps)


class GitHub:
    """The bare remote plus pull requests, comments, labels, issues and artifacts."""

    def __init__(self, tmp: Path, remote: Path) -> None:
        self.tmp, self.remote = tmp, remote
        self.db_path = tmp / "github.json"
        self.db_path.write_text(json.dumps({"pulls": [], "issues": [], "labels": [], "artifacts": [], "calls": [],
                                            "denied": [], "next_id": 1000}), encoding="utf-8")
        self.bin = tmp / "gh-bin"
        self.bin.mkdir()
        gh = self.bin / "gh"
        gh.write_text(f"#!/bin/sh\nexec {sys.executable} {Path(__file__).with_name('fake_gh.py')} \"$@\"\n")
        gh.chmod(0o755)
        self.artifact_store = tmp / "artifact-store"
        self.runs = 0

    @property
    def db(self) -> dict[str, Any]:
        return json.loads(self.db_path.read_text(encoding="utf-8"))

    def _save(self, db: dict[str, Any]) -> None:
        self.db_path.write_text(json.dumps(db, indent=1), encoding="utf-8")

    def sha(self, ref: str) -> str:
        return git(self.remote, "rev-parse", ref)

    def open_pr(self, branch: str, *, fork: bool = False) -> int:
        db = self.db
        number = len(db["pulls"]) + 1
        head = self.sha(f"refs/heads/{branch}")
        git(self.remote, "update-ref", f"refs/pull/{number}/head", head)
        db["pulls"].append({"number": number, "state": "open", "merged_at": None, "labels": [], "comments": [],
                            "head": {"sha": head, "ref": branch,
                                     "repo": {"full_name": "someone/stock-fork" if fork else REPO}},
                            "base": {"ref": "main", "sha": self.sha("refs/heads/main")}})
        self._save(db)
        self.update_merge_ref(number)
        return number

    def update_head(self, number: int) -> None:
        db = self.db
        pr = next(p for p in db["pulls"] if p["number"] == number)
        pr["head"]["sha"] = self.sha(f"refs/heads/{pr['head']['ref']}")
        git(self.remote, "update-ref", f"refs/pull/{number}/head", pr["head"]["sha"])
        self._save(db)
        self.update_merge_ref(number)

    def update_merge_ref(self, number: int) -> None:
        """refs/pull/N/merge: the head merged into the current main, as GitHub keeps it."""
        work = self.tmp / f"merge-ref-{number}"
        shutil.rmtree(work, ignore_errors=True)
        git(self.tmp, "clone", "--quiet", str(self.remote), str(work))
        git(work, "checkout", "--quiet", "--detach", "origin/main")
        git(work, "fetch", "--quiet", "origin", f"refs/pull/{number}/head")
        git(work, "merge", "--quiet", "--no-ff", "-m", f"Merge {number} into main", "FETCH_HEAD")
        git(work, "push", "--quiet", "--force", "origin", f"HEAD:refs/pull/{number}/merge")  # GitHub rewrites it
        db = self.db
        pr = next(p for p in db["pulls"] if p["number"] == number)
        pr["base"]["sha"] = self.sha("refs/heads/main")
        self._save(db)

    def merge_pr(self, number: int) -> str:
        """Merge as the button does (a merge commit on main); returns the new main commit."""
        work = self.tmp / f"merge-{number}"
        git(self.tmp, "clone", "--quiet", str(self.remote), str(work))
        git(work, "fetch", "--quiet", "origin", f"refs/pull/{number}/head")
        git(work, "merge", "--quiet", "--no-ff", "-m", f"Merge pull request #{number}", "FETCH_HEAD")
        git(work, "push", "--quiet", "origin", "main")
        sha = self.sha("refs/heads/main")
        db = self.db
        pr = next(p for p in db["pulls"] if p["number"] == number)
        pr.update(state="closed", merged_at="2026-12-04T12:00:00Z", merge_commit_sha=sha)
        self._save(db)
        return sha

    def pr(self, number: int) -> dict[str, Any]:
        return next(p for p in self.db["pulls"] if p["number"] == number)

    def add_artifact(self, name: str, run_id: int, source: Path) -> None:
        dest = self.artifact_store / name
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, dest / source.name)
        db = self.db
        db["next_id"] += 1
        db["artifacts"].append({"id": db["next_id"], "name": name, "expired": False,
                                "created_at": f"2026-12-04T12:{run_id % 60:02d}:00Z", "workflow_run": {"id": run_id}})
        self._save(db)


class Runner:
    """Runs one job of a shipped workflow, step by step, in a fresh workspace."""

    def __init__(self, github: GitHub, *, secrets: dict[str, str], variables: dict[str, str] | None = None) -> None:
        self.github, self.secrets, self.vars = github, secrets, variables or {}

    def run(self, workflow_file: str, job_name: str, *, event_name: str, event: dict[str, Any] | None = None,
            sha: str | None = None, inputs: dict[str, Any] | None = None, token: str = "write") -> JobResult:
        doc = yaml.safe_load((WORKFLOWS / workflow_file).read_text(encoding="utf-8"))
        self.github.runs += 1
        run_id = 5000 + self.github.runs
        workspace = self.github.tmp / f"run-{run_id}"
        workspace.mkdir()
        files = {n: self.github.tmp / f"run-{run_id}.{n}" for n in ("summary",)}
        files["summary"].touch()
        github_ctx = {"event_name": event_name, "event": event or {}, "sha": sha or self.github.sha("refs/heads/main"),
                      "repository": REPO, "run_id": run_id, "run_attempt": 1, "server_url": SERVER,
                      "token": token, "workspace": str(workspace)}
        steps: dict[str, Any] = {}
        ctx = {"github": Ctx(github_ctx), "secrets": Ctx(self.secrets), "vars": Ctx(self.vars),
               "inputs": Ctx(inputs or {}), "steps": Ctx(steps), "env": Ctx({})}
        env: dict[str, str] = {}
        for key, value in (doc.get("env") or {}).items():
            env[key] = self.substitute(str(value), ctx)
            ctx["env"] = Ctx(env)
        job = doc["jobs"][job_name]
        results: list[StepResult] = []
        for index, step in enumerate(job["steps"]):
            name = step.get("name") or step.get("uses") or f"step {index}"
            failed = any(r.outcome == "failure" for r in results)
            condition = str(step.get("if", "success()"))
            if not self.condition(condition, ctx, failed):
                result = StepResult(name, "skipped")
            else:
                result = self.step(step, name, ctx, env, workspace, files["summary"], run_id)
            result.id = str(step.get("id", ""))
            results.append(result)
            if step.get("id"):
                steps[step["id"]] = {"outputs": result.outputs, "outcome": result.outcome,
                                     "conclusion": result.outcome}
                ctx["steps"] = Ctx(steps)
        return JobResult(results, files["summary"].read_text(encoding="utf-8"))

    # --- expressions -------------------------------------------------------------------------------

    def evaluate(self, expr: str, ctx: dict[str, Any], failed: bool = False) -> Any:
        names = {**ctx, "always": lambda: True, "success": lambda: not failed, "failure": lambda: failed,
                 "true": True, "false": False}
        return eval(_python(expr), {"__builtins__": {}}, names)  # noqa: S307 - the shipped workflows only

    def substitute(self, text: str, ctx: dict[str, Any]) -> str:
        return EXPRESSION.sub(lambda m: _text(self.evaluate(m.group(1), ctx)), text)

    def condition(self, condition: str, ctx: dict[str, Any], failed: bool) -> bool:
        expr = condition.strip()
        if expr.startswith("${{"):
            expr = EXPRESSION.fullmatch(expr).group(1)  # type: ignore[union-attr]
        if not re.search(r"\b(always|success|failure|cancelled)\(\)", expr):
            expr = f"success() && ({expr})"
        return bool(self.evaluate(expr, ctx, failed))

    # --- steps -------------------------------------------------------------------------------------

    def step(self, step: dict[str, Any], name: str, ctx: dict[str, Any], env: dict[str, str], workspace: Path,
             summary: Path, run_id: int) -> StepResult:
        with_ = {k: self.substitute(str(v), ctx) for k, v in (step.get("with") or {}).items()}
        uses = str(step.get("uses", ""))
        if uses.startswith(PROVIDED_BY_THE_TEST_ENVIRONMENT) or name == INSTALL_STEP:
            return StepResult(name, "success")
        if uses.startswith("actions/checkout@"):
            return self.checkout(name, with_, ctx, workspace)
        if uses.startswith("actions/upload-artifact@"):
            source = workspace / with_["path"]
            if not source.exists():
                return StepResult(name, "failure", stderr=f"no file {source}")
            self.github.add_artifact(with_["name"], run_id, source)
            return StepResult(name, "success")
        if uses.startswith("actions/download-artifact@"):
            stored = self.github.artifact_store / with_["name"]
            if not stored.is_dir():
                return StepResult(name, "failure", stderr=f"no artifact {with_['name']}")
            dest = workspace / with_.get("path", ".")
            dest.mkdir(parents=True, exist_ok=True)
            for item in stored.iterdir():
                shutil.copy(item, dest / item.name)
            return StepResult(name, "success")
        assert "run" in step, f"the runner does not know {uses}"
        return self.shell(step, name, ctx, env, workspace, summary)

    def checkout(self, name: str, with_: dict[str, str], ctx: dict[str, Any], workspace: Path) -> StepResult:
        dest = workspace / with_.get("path", ".")
        github = ctx["github"]
        ref = with_.get("ref") or (f"refs/pull/{github.event.pull_request.number}/merge"
                                   if github.event_name == "pull_request" else github.sha)
        git(workspace.parent, "clone", "--quiet", "--no-checkout", str(self.github.remote), str(dest / ".clone"))
        # actions/checkout checks out into an existing (possibly non-empty) workspace
        for item in (dest / ".clone").iterdir():
            shutil.move(str(item), str(dest / item.name))
        (dest / ".clone").rmdir()
        git(dest, "fetch", "--quiet", "origin", ref)
        git(dest, "checkout", "--quiet", "--detach", "FETCH_HEAD")
        return StepResult(name, "success")

    def shell(self, step: dict[str, Any], name: str, ctx: dict[str, Any], env: dict[str, str], workspace: Path,
              summary: Path) -> StepResult:
        output = workspace.parent / f"output-{ctx['github'].run_id}-{len(os.listdir(workspace.parent))}"
        output.touch()
        step_env = {k: self.substitute(str(v), ctx) for k, v in (step.get("env") or {}).items()}
        path = os.pathsep.join([str(self.github.bin), str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        base = {k: v for k, v in os.environ.items() if not k.startswith(("RECONCILER_", "GITHUB_", "GH_"))}
        full = {**base, **env, **step_env, "PATH": path, "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary),
                "GITHUB_REPOSITORY": REPO, "GITHUB_RUN_ID": str(ctx["github"].run_id), "GITHUB_SERVER_URL": SERVER,
                "GITHUB_WORKSPACE": str(workspace), "FAKE_GITHUB": str(self.github.db_path), "CI": "true",
                "GIT_CONFIG_NOSYSTEM": "1"}
        script = self.substitute(step["run"], ctx)
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=workspace,
                              capture_output=True, text=True, env=full, timeout=180)
        outputs = dict(line.split("=", 1) for line in output.read_text(encoding="utf-8").splitlines() if "=" in line)
        return StepResult(name, "success" if done.returncode == 0 else "failure", outputs, done.stdout, done.stderr)
