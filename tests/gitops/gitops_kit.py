"""Real git repositories, the example stock repository, its five sandboxes and the workflows'
state script (.github/scripts/reconciler-state.sh), for the GitOps tests. Nothing here is stubbed: git is git, the sandboxes are the
HTTP simulators on loopback, reconciler runs as a subprocess the way CI runs it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Iterator

import httpx
import yaml

from example_repo import example_root  # noqa: F401  (re-exported for the GitOps tests)
from reconciler.config import load_project
from reconciler.sandbox import ServerThread, simulator_class
from reconciler.sandbox._fixtures import target_fixtures
from reconciler.sandbox._process import make_simulator

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
STATE_SCRIPT = ".github/scripts/reconciler-state.sh"  # relative to a checkout, as the workflows call it
STATE_MODES = ("read", "claim", "save", "init")
KIND_OPTIONS = ("account", "integration")  # the sandbox options the example's targets carry


def git(cwd: Path, *args: str, check: bool = True) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "dev", "GIT_AUTHOR_EMAIL": "dev@example.com",
           "GIT_COMMITTER_NAME": "dev", "GIT_COMMITTER_EMAIL": "dev@example.com", "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=60)
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed in {cwd}:\n{done.stdout}\n{done.stderr}")
    return done.stdout.strip()


def clone(remote: Path, into: Path, branch: str = "main") -> Path:
    git(remote.parent, "clone", "--quiet", "--branch", branch, str(remote), str(into))
    return into


class Sandboxes:
    """One in-memory simulator per target of the example, each on a free loopback port."""

    def __init__(self, example: Path) -> None:
        self.project = load_project(example)
        self.servers: dict[str, ServerThread] = {}
        self.env: dict[str, str] = {}
        self._stack = ExitStack()

    def __enter__(self) -> Sandboxes:
        for name, target in self.project.config.targets.items():
            options: dict[str, Any] = {k: v for k, v in target.options.items() if k in KIND_OPTIONS}
            if target.kind == "kaching":
                options["delay"] = 0  # the import queue processes at once: the test reads the result
            sim = make_simulator(target.kind, options=options)
            sim.load_fixtures(target_fixtures(self.project, name))
            self.servers[name] = self._stack.enter_context(ServerThread(sim))
            assert target.credentials_env
            self.env[target.credentials_env] = simulator_class(target.kind).default_token
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def stock(self, target: str) -> list[dict[str, Any]]:
        return httpx.get(self.servers[target].url + "/_sandbox/stock").json()["stock"]

    def writes(self) -> dict[str, int]:
        """Vendor requests other than reads served so far, per target."""
        counts = {}
        for name, server in self.servers.items():
            served = httpx.get(server.url + "/_sandbox/requests").json()
            counts[name] = sum(n for key, n in served.items() if not key.startswith(("GET", "HEAD")))
        return counts


def write_example(into: Path, sandboxes: Sandboxes) -> None:
    """The example stock repository that ``sandboxes`` were made from (see :func:`example_root`),
    its targets pointing at ``sandboxes``, with this repository's .github/ (workflows and the
    state script) as a stock repository copies it."""
    into.mkdir(parents=True, exist_ok=True)
    source = Path(sandboxes.project.root)
    shutil.copytree(source / "stock", into / "stock")
    shutil.copytree(ROOT / ".github", into / ".github")
    (into / "plans").mkdir()
    (into / "plans" / ".gitkeep").write_text("")
    text = (source / "reconciler.yaml").read_text(encoding="utf-8")
    for name, target in sandboxes.project.config.targets.items():
        assert target.url
        text = text.replace(f"url: {target.url}\n", f"url: {sandboxes.servers[name].url}\n")
    # The example throttles X-Series as a one-register shop must; the sandbox does not need it.
    text = re.sub(r"^\s*rate_limit:.*\n", "", text, flags=re.M)
    (into / "reconciler.yaml").write_text(text, encoding="utf-8")
    (into / ".gitignore").write_text(".reconciler/\n")


def seed_remote(tmp: Path, sandboxes: Sandboxes) -> Path:
    """A bare remote (GitHub's part) whose main holds the example stock repository."""
    remote = tmp / "remote.git"
    git(tmp, "init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    seed = tmp / "seed"
    write_example(seed, sandboxes)
    git(seed, "init", "--quiet", "--initial-branch=main")
    git(seed, "add", ".")
    git(seed, "commit", "--quiet", "-m", "stock repository")
    git(seed, "push", "--quiet", str(remote), "main")
    return remote


def reconciler(cwd: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reconciler", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


def ci_env(tmp: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a CI step: a fresh GITHUB_OUTPUT, RUNNER_TEMP, this venv's python and
    reconciler first on PATH."""
    output = tmp / f"github-output-{len(list(tmp.glob('github-output-*')))}"
    output.touch()
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "GITHUB_OUTPUT": str(output), "RUNNER_TEMP": str(tmp), "PATH": path,
            "STATE_BRANCH": "reconciler-state", "RECONCILER_STATE": ".reconciler/state.db",
            "GITHUB_RUN_ID": "4242", **(extra or {})}


def workflow(name: str) -> dict[str, Any]:
    return yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))


def steps(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for job in doc["jobs"].values():
        yield from job["steps"]


def state_step(mode: str) -> str:
    """The ``run:`` of the workflow step that calls the state script in ``mode`` (the first found)."""
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for step in steps(workflow(path.name)):
            if step.get("run", "").split() == ["bash", STATE_SCRIPT, mode]:
                return str(step["run"])
    raise AssertionError(f"no workflow step runs `bash {STATE_SCRIPT} {mode}`")


def run_state(mode: str, repo: Path, tmp: Path, **extra: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """The workflows' own state step for ``mode`` run in the checkout ``repo``, as the runner
    runs it; returns the process and the step's outputs."""
    env = ci_env(tmp, extra)
    done = subprocess.run(["bash", "-e", "-c", state_step(mode)], cwd=repo, capture_output=True, text=True,
                          env=env, timeout=60)
    outputs = dict(line.split("=", 1) for line in Path(env["GITHUB_OUTPUT"]).read_text().splitlines() if "=" in line)
    return done, outputs


def plan_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def sandbox_item(kind: str, catalog_id: Any) -> str:
    """How ``/_sandbox/stock`` names a catalog id of this kind (the shape the fixtures gave it)."""
    from reconciler.sandbox._fixtures import _ITEM_SHAPES, _generic_item, _stock_item

    shaped = _ITEM_SHAPES.get(kind, _generic_item)(catalog_id)
    return json.dumps(_stock_item(kind, shaped["id"]), sort_keys=True)


def sandbox_quantities(sandboxes: Sandboxes, target: str) -> dict[tuple[str, str], int]:
    return {(r["location"], json.dumps(r["item"], sort_keys=True)): r["quantity"] for r in sandboxes.stock(target)}


def cli(cwd: Path, *args: str, env: dict[str, str]) -> Any:
    """The CLI in-process (click's CliRunner): as a user runs it, without a new interpreter."""
    from click.testing import CliRunner

    from reconciler.cli import _register, cli as group

    _register()
    return CliRunner().invoke(group, ["-C", str(cwd), *args], env=env, catch_exceptions=False)
