"""The README's first command, run as a user runs it, on a copy of the example repository.

The command is read from README.md (its first ``bash`` block), minus the install steps (the
package is installed in the test's environment already), and run by a shell in a temporary copy
of the example (``reconciler.yaml``, ``stock/``, ``plans/``). ``reconciler sandbox up`` starts the
five sandboxes as real detached processes on the ports ``reconciler.yaml`` names, so the copy's
urls are rewritten to free ports (other engineers may be using the example's 8701-8705). No
credential is exported: the sandboxes' tokens reach the CLI through ``.reconciler/sandbox.env``.

Afterwards every sandbox's stock, read on its TEST-ONLY inspection path, must hold the desired
quantity (and settings) of every position the example manages, and what the example does not
manage must be untouched.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from example_repo import example_root
from reconciler.config import load_project

ROOT = Path(__file__).resolve().parents[2]
# The example paces X-Series at 1 request/s (its real 5-minute budget) and Zettle at 4/s; the
# copy lifts both so the run takes seconds, not a minute. Pacing is tested in tests/connectors.
FAST_RATE = "rate_limit: 100.0"


def readme_command() -> str:
    """The README's first command from ``reconciler sandbox up`` on (the install is done)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)\n```", text, re.S)
    assert block, "README.md has no ```bash block"
    command = block.group(1).strip()
    start = command.index("reconciler sandbox up")
    assert command[:start].rstrip().endswith("&&"), command
    return command[start:]


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def copy_example(dest: Path) -> Path:
    example_root(dest)  # the committed example, never the checkout's stock/ as edited
    (dest / "plans").mkdir(exist_ok=True)
    config = (dest / "reconciler.yaml").read_text(encoding="utf-8")
    urls = re.findall(r"url: (http://127\.0\.0\.1:\d+)", config)
    assert len(urls) == 5, urls
    for url, port in zip(urls, free_ports(len(urls))):
        config = config.replace(f"url: {url}", f"url: http://127.0.0.1:{port}")
    config = re.sub(r"rate_limit: [0-9.]+", FAST_RATE, config)
    (dest / "reconciler.yaml").write_text(config, encoding="utf-8")
    return dest


def user_env() -> dict[str, str]:
    """The environment of a fresh shell with the venv active: no reconciler settings or tokens."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def shell(command: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=user_env(), capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Path]:
    path = copy_example(tmp_path / "example")
    try:
        yield path
    finally:
        down = shell("reconciler sandbox down", path, timeout=60)
        assert down.returncode == 0, down.stderr
        leftovers = list((path / ".reconciler" / "sandboxes").glob("*.pid"))
        assert not leftovers, leftovers


def vendor_key(kind: str, ids: Any, fixtures: dict[str, Any]) -> str:
    """How the sandbox's inspection names a catalog item (Run Free names items by UPC; the
    sandbox gave sku/size/width items one, recorded in the fixtures `up` wrote)."""
    if kind == "runfree":
        wanted = {"upc": ids} if isinstance(ids, str) else dict(ids)
        [full] = [item["id"] for item in fixtures["items"] if wanted.items() <= item["id"].items()]
        ids = {"upc": full["upc"]}
    return json.dumps(ids, sort_keys=True)


def live_records(url: str) -> dict[tuple[str, str], dict[str, Any]]:
    # a target's url may carry a path and query (Ka-ching's pasted import URL): the sandbox is its origin
    origin = urlsplit(url)._replace(path="", query="", fragment="").geturl()
    body = httpx.get(origin + "/_sandbox/stock", timeout=10).json()
    assert body["test_only"] is True
    return {(r["location"], json.dumps(r["item"], sort_keys=True)): r for r in body["stock"]}


def test_readme_first_command_plans_applies_and_then_shows_no_changes(repo: Path) -> None:
    command = readme_command()
    assert command.endswith("reconciler plan --detailed-exitcode"), command
    result = shell(command, repo)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert "Plan: no changes" in result.stdout
    assert "0 failed, 0 in doubt" in result.stdout
    assert (repo / "plans" / "example.json").is_file()
    env_file = repo / ".reconciler" / "sandbox.env"
    assert env_file.stat().st_mode & 0o077 == 0  # the tokens file is private

    project = load_project(repo)
    checked = 0
    for target, config in project.config.targets.items():
        folder = repo / ".reconciler" / "sandboxes"
        fixtures = json.loads((folder / f"{target}.fixtures.json").read_text(encoding="utf-8"))
        live = live_records(config.url)
        expected = {(r["location"], json.dumps(r["item"], sort_keys=True)): r for r in fixtures["stock"]}
        managed: dict[tuple[str, str], Any] = {}
        for (t, location, sku), position in project.desired.positions.items():
            if t == target:
                key = (config.locations[location], vendor_key(config.kind, project.catalog[sku].ids[target], fixtures))
                managed[key] = position
        assert managed, f"the example manages nothing in {target}"
        for key, position in managed.items():
            record = live.get(key)
            assert record is not None, (target, key)
            assert record["quantity"] == position.quantity, (target, position.location, position.item)
            for name, value in position.settings.as_dict().items():
                assert record.get(name) == value, (target, position.item, name)
            checked += 1
        for key, start in expected.items():  # what the example does not manage is untouched
            if key not in managed:
                assert live[key]["quantity"] == start["quantity"], (target, key)
    assert checked == len(project.desired.positions)

    # a user edits a YAML file and sees the plan change: +3 red T-shirts S in Oslo
    oslo = repo / "stock" / "oslo.yaml"
    text = oslo.read_text(encoding="utf-8")
    assert "    TSHIRT-RED-S: 10\n" in text
    oslo.write_text(text.replace("    TSHIRT-RED-S: 10\n", "    TSHIRT-RED-S: 13\n"), encoding="utf-8")
    edited = shell("reconciler plan --detailed-exitcode --format json", repo)
    assert edited.returncode == 2, edited.stderr
    ops = [op for op in json.loads(edited.stdout)["operations"] if op["kind"] != "drift"]
    assert [(op["kind"], op["target"], op["item"], op["legs"][0]["change"]) for op in ops] == [
        ("adjust", "xs-main", "TSHIRT-RED-S", 3)]



def test_the_example_commits_no_plan_and_ignores_the_ones_the_quickstart_writes() -> None:
    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=30)

    tracked = git("ls-files", "plans")
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    assert tracked.stdout.split() == ["plans/.gitkeep"]  # no stale plan that `apply` would refuse
    for name in ("plans/example.json", "plans/pr-7.json"):
        assert git("check-ignore", "--no-index", "-q", name).returncode == 0, name
