"""Helpers of the bad-input corpus: assemble a case's repository, run the CLI in-process.

A repository case is ``repos/<case>/``: the files that differ from ``base/`` (same relative
paths), an optional ``removed.txt`` (base files the case deletes, one path a line) and
``expected.txt`` (the exact problem lines ``reconciler validate`` prints). A plan-file case is
``plans/<case>/``: ``plan.json`` and ``expected.txt`` (the exact error line). See README.md.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
BASE = HERE / "base"
REPO_CASES = HERE / "repos"
PLAN_CASES = HERE / "plans"
MARKERS = frozenset({"expected.txt", "removed.txt", "README.md"})


def repo_cases() -> list[str]:
    return sorted(p.name for p in REPO_CASES.iterdir() if p.is_dir())


def plan_cases() -> list[str]:
    return sorted(p.name for p in PLAN_CASES.iterdir() if p.is_dir())


def assemble(case: Path, dest: Path) -> Path:
    """``base/`` with the case's files laid over it (symlinks kept as symlinks)."""
    shutil.copytree(BASE, dest, symlinks=True)
    removed = case / "removed.txt"
    if removed.exists():
        for rel in removed.read_text(encoding="utf-8").split():
            (dest / rel).unlink()
    for path in sorted(case.rglob("*")):
        rel = path.relative_to(case)
        if rel.as_posix() in MARKERS or (path.is_dir() and not path.is_symlink()):
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() or target.is_symlink():
            target.unlink()
        if path.is_symlink():
            os.symlink(os.readlink(path), target)
        else:
            shutil.copyfile(path, target)
    return dest


def expected_lines(case: Path) -> list[str]:
    return (case / "expected.txt").read_text(encoding="utf-8").splitlines()


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str


def run_cli(*argv: str) -> Run:
    """``reconciler ARGV`` through the console script's own ``main`` (exit-code mapping and error
    printing included), in this process: ~100 times faster than a subprocess. Anything but a
    SystemExit escaping ``main`` is a crash the user would see as a traceback, and fails the test."""
    from reconciler.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(argv))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return Run(code, out.getvalue(), err.getvalue())


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every path under ``root`` with its bytes (or its link target): to prove nothing was written."""
    found: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            found[rel] = path.read_bytes()
        else:
            found[rel] = "dir"
    return found


# --- the base repository served by live sandboxes ------------------------------------------------


@contextlib.contextmanager
def live_sandboxes(root: Path, tokens: dict[str, str]):  # type: ignore[no-untyped-def]
    """Serve a sandbox per target of the repository at ``root`` on a free loopback port (real
    HTTP, uvicorn threads), accepting ``tokens[target]``; rewrite each target's url to it.
    Yields {target: ServerThread}."""
    from reconciler.config import load_project
    from reconciler.sandbox import ServerThread, simulator_class
    from reconciler.sandbox._fixtures import target_fixtures

    project = load_project(root)
    options: dict[str, dict[str, object]] = {"kaching": {"delay": 0}}
    with contextlib.ExitStack() as stack:
        servers = {}
        for name, target in project.config.targets.items():
            kind_options = dict(options.get(target.kind, {}))
            if target.kind == "kaching":
                kind_options.update(target.options)
            sim = simulator_class(target.kind)(token=tokens[name], fixtures=target_fixtures(project, name),
                                               **kind_options)
            stack.callback(sim.close)
            servers[name] = stack.enter_context(ServerThread(sim))
        _point_targets_at(root / "reconciler.yaml", {name: s.url for name, s in servers.items()})
        yield servers


def _point_targets_at(config: Path, urls: dict[str, str]) -> None:
    """Replace the ``url:`` line of each target (two-space target names, as in base/)."""
    lines, current = [], None
    for line in config.read_text(encoding="utf-8").splitlines():
        if line.startswith("  ") and not line.startswith("   ") and line.rstrip().endswith(":"):
            current = line.strip()[:-1]
        if line.startswith("    url: ") and current in urls:
            line = f"    url: {urls[current]}"
        lines.append(line)
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")


def request_counts(server) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """The sandbox's own log of vendor requests served: {"METHOD /path": n}."""
    return _client().get(server.url + "/_sandbox/requests").json()


@functools.cache
def _client():  # type: ignore[no-untyped-def]
    import httpx

    return httpx.Client(timeout=5)  # one client: building one costs ~50 ms (its TLS context)


def credential_env(root: Path) -> dict[str, str]:
    """target -> the name of its credentials_env variable."""
    from reconciler.config import load_project

    return {name: t.credentials_env or "" for name, t in load_project(root).config.targets.items()}
