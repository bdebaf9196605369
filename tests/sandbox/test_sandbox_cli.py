"""`reconciler sandbox serve|up|down|status` as real subprocesses."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from reconciler.sandbox._fixtures import position_quantity
from reconciler.sandbox._process import SandboxError, SandboxProcess

RF_FIXTURES = {
    "locations": [{"id": "3"}],
    "items": [{"id": {"upc": "849632048260", "sku": "ZOOT-SUIT", "size": "34", "width": "D"}}],
    "stock": [],
}


def reconciler(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reconciler", *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd)


def write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


# --- serve ------------------------------------------------------------------------------------


def test_serve_in_a_subprocess_answers_and_persists(tmp_path: Path) -> None:
    fixtures = write_json(tmp_path / "rf.json", RF_FIXTURES)
    state = tmp_path / "rf.db"
    body = {"upc": "849632048260", "store": "3", "quantity": 12}
    with SandboxProcess("runfree", state=state, fixtures_path=fixtures, token="tok-1") as sandbox:
        assert sandbox.url.startswith("http://127.0.0.1:")
        response = httpx.post(sandbox.url + "/api/product/inventory", json=body, headers={"Authorization": "Bearer tok-1"})
        assert response.json() == {"success": True}
    assert sandbox.proc is not None and sandbox.proc.poll() is not None  # stopped on exit
    # a new process on the same state file still has the stock (and the fixtures do not reset it)
    with SandboxProcess("runfree", state=state, fixtures_path=fixtures) as again:
        stock = httpx.get(again.url + "/_sandbox/stock").json()["stock"]
        assert stock == [{"location": "3", "item": {"upc": "849632048260"}, "quantity": 12}]
        refused = httpx.post(again.url + "/api/product/inventory", json=body, headers={"Authorization": "Bearer tok-1"})
        assert refused.json() == {"error": "Invalid or missing Bearer token"}  # default token now


def test_serve_passes_kind_options(tmp_path: Path) -> None:
    fixtures = write_json(tmp_path / "kc.json", {"locations": [{"id": "oslo"}]})
    options = {"account": "acme", "integration": "q1", "delay": "0"}
    with SandboxProcess("kaching", state=tmp_path / "kc.db", fixtures_path=fixtures, options=options) as sandbox:
        params = {"account": "acme", "integration": "q1", "apikey": "kaching-sandbox-apikey"}
        response = httpx.post(sandbox.url + "/imports/stock", params=params, json={"oslo": {"p1": 3}})
        assert response.json() == {"status": "OK", "message": "Import of 1 stock value(s) initiated"}
        assert httpx.get(sandbox.url + "/_sandbox/stock").json()["stock"] == [
            {"location": "oslo", "item": {"product": "p1"}, "quantity": 3}]


def test_serve_on_a_fixed_port_prints_it(tmp_path: Path) -> None:
    port = free_port()
    with SandboxProcess("lightspeed-supplier", state=tmp_path / "s.db", port=port) as sandbox:
        assert sandbox.url == f"http://127.0.0.1:{port}"
        assert httpx.get(sandbox.url + "/_sandbox/health").json()["kind"] == "lightspeed-supplier"


def test_sandbox_process_reports_why_it_did_not_start(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="no sandbox for target kind 'nope'"):
        with SandboxProcess("nope", state=tmp_path / "x.db"):
            pass


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sandbox", "serve", "kaching", "-o", "bogus=1"], "the kaching sandbox has no option bogus"),
        (["sandbox", "serve", "kaching", "-o", "delay"], "is not KEY=VALUE"),
        (["sandbox", "serve", "runfree", "--fixtures", "/nonexistent/f.yaml"], "cannot read the fixtures file"),
    ],
)
def test_serve_errors_are_clear(args: list[str], message: str) -> None:
    result = reconciler(*args)
    assert result.returncode == 1
    assert message in result.stderr


def test_serve_rejects_bad_fixtures_with_location(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("locations:\n  - id: '3'\nitems:\n  - id: {upc: '1'}\n", encoding="utf-8")
    result = reconciler("sandbox", "serve", "runfree", "--fixtures", str(path))
    assert result.returncode == 1
    assert "items[0].id" in result.stderr and "upc, sku, size and width" in result.stderr


def test_serve_on_a_busy_port_fails_clearly(tmp_path: Path) -> None:
    with SandboxProcess("runfree", state=tmp_path / "a.db") as sandbox:
        port = sandbox.url.rsplit(":", 1)[1]
        result = reconciler("sandbox", "serve", "runfree", "--port", port)
        assert result.returncode == 1
        assert f"the runfree sandbox could not start on 127.0.0.1:{port}" in result.stderr
        assert "address already in use" in result.stderr


# --- up / down / status on a small project ---------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[Path, dict[str, int]]]:
    pytest.importorskip("reconciler.config", reason="the project loader is not available")
    ports = {"kc": free_port(), "rf": free_port(), "sup": free_port()}
    root = tmp_path / "repo"
    (root / "stock").mkdir(parents=True)
    (root / "reconciler.yaml").write_text(f"""\
version: 1
locations:
  oslo: {{}}
  bergen: {{}}
targets:
  kc:
    kind: kaching
    url: http://127.0.0.1:{ports['kc']}
    credentials_env: KC_TOKEN
    locations: {{oslo: "loc-oslo", bergen: "loc-bergen"}}
    options: {{account: "acme", integration: "stock-q"}}
  rf:
    kind: runfree
    url: http://127.0.0.1:{ports['rf']}
    credentials_env: RF_TOKEN
    locations: {{oslo: "3"}}
  sup:
    kind: lightspeed-supplier
    url: http://localhost:{ports['sup']}
    credentials_env: SUP_TOKEN
    locations: {{oslo: "warehouse"}}
  remote:
    kind: runfree
    url: https://runfree.example.com
    credentials_env: REMOTE_TOKEN
    locations: {{oslo: "9"}}
""", encoding="utf-8")
    (root / "stock" / "catalog.yaml").write_text("""\
items:
  RED-M:
    ids:
      kc: {product: "p-red", variant: "m"}
      rf: {upc: "849632048260"}
      sup: "uuid-red-m"
  BLUE-L:
    ids:
      kc: "p-blue-l"
      rf: {sku: "ZOOT", size: "34", width: "D"}
""", encoding="utf-8")
    (root / "stock" / "oslo.yaml").write_text("location: oslo\nstock:\n  kc:\n    RED-M: 5\n", encoding="utf-8")
    yield root, ports
    reconciler("-C", str(root), "sandbox", "down")


def test_up_status_down(project: tuple[Path, dict[str, int]]) -> None:
    root, ports = project
    result = reconciler("-C", str(root), "sandbox", "up")
    assert result.returncode == 0, result.stderr
    assert sorted(line.split(":")[0] for line in result.stdout.splitlines() if "started at" in line) == ["kc", "rf", "sup"]
    assert "remote" not in result.stdout  # not on loopback: a real vendor, left alone

    # each sandbox answers on its configured port with fixtures built from the catalog
    kc = f"http://127.0.0.1:{ports['kc']}"
    kc_stock = {(r["location"], json.dumps(r["item"], sort_keys=True)): r["quantity"]
                for r in httpx.get(kc + "/_sandbox/stock").json()["stock"]}
    expected = {(loc, json.dumps(item, sort_keys=True)): position_quantity("kc", loc, item)
                for loc in ("loc-oslo", "loc-bergen") for item in ({"product": "p-red", "variant": "m"}, {"product": "p-blue-l"})}
    assert kc_stock == expected
    rf_stock = httpx.get(f"http://127.0.0.1:{ports['rf']}/_sandbox/stock").json()["stock"]
    assert len(rf_stock) == 2 and {"location": "3", "item": {"upc": "849632048260"},
                                   "quantity": position_quantity("rf", "3", {"upc": "849632048260"})} in rf_stock
    sup = httpx.get(f"http://localhost:{ports['sup']}/_sandbox/stock").json()["stock"]
    assert [r["item"] for r in sup] == ["uuid-red-m"]

    # sandbox.env carries each target's credential, which the sandbox accepts (with the options)
    from reconciler.config import read_env_file

    env = read_env_file(root / ".reconciler" / "sandbox.env")
    assert set(env) == {"KC_TOKEN", "RF_TOKEN", "SUP_TOKEN"}
    assert os.stat(root / ".reconciler" / "sandbox.env").st_mode & 0o777 == 0o600
    params = {"account": "acme", "integration": "stock-q", "apikey": env["KC_TOKEN"]}
    assert httpx.post(kc + "/imports/stock", params=params, json={"loc-oslo": {"p-red": {"m": 1}}}).status_code == 200

    again = reconciler("-C", str(root), "sandbox", "up")
    assert again.returncode == 0 and again.stdout.count("already up") == 3

    status = reconciler("-C", str(root), "sandbox", "status")
    assert status.stdout.count(" running") == 3
    pids = [int(p) for p in (json.loads(f.read_text())["pid"] for f in (root / ".reconciler" / "sandboxes").glob("*.pid"))]

    down = reconciler("-C", str(root), "sandbox", "down")
    assert down.returncode == 0 and down.stdout.count("stopped") == 3
    assert not list((root / ".reconciler" / "sandboxes").glob("*.pid"))
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
    with pytest.raises(httpx.HTTPError):
        httpx.get(kc + "/_sandbox/health", timeout=1)
    assert "No sandbox is running" in reconciler("-C", str(root), "sandbox", "status").stdout


def test_up_keeps_state_across_down_unless_reset(project: tuple[Path, dict[str, int]]) -> None:
    root, ports = project
    rf = f"http://127.0.0.1:{ports['rf']}"
    assert reconciler("-C", str(root), "sandbox", "up").returncode == 0
    headers = {"Authorization": "Bearer runfree-sandbox-token"}
    body = {"upc": "849632048260", "store": "3", "quantity": 99}
    assert httpx.post(rf + "/api/product/inventory", json=body, headers=headers).status_code == 200
    reconciler("-C", str(root), "sandbox", "down")
    assert reconciler("-C", str(root), "sandbox", "up").returncode == 0
    quantities = {r["item"].get("upc"): r["quantity"] for r in httpx.get(rf + "/_sandbox/stock").json()["stock"]}
    assert quantities["849632048260"] == 99
    reset = reconciler("-C", str(root), "sandbox", "down", "--reset")
    assert "removed" in reset.stdout
    assert reconciler("-C", str(root), "sandbox", "up").returncode == 0
    quantities = {r["item"].get("upc"): r["quantity"] for r in httpx.get(rf + "/_sandbox/stock").json()["stock"]}
    assert quantities["849632048260"] == position_quantity("rf", "3", {"upc": "849632048260"})


def test_up_reports_a_port_in_use(project: tuple[Path, dict[str, int]]) -> None:
    root, ports = project
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", ports["rf"]))
        blocker.listen()
        result = reconciler("-C", str(root), "sandbox", "up")
    assert result.returncode == 1
    assert f"port {ports['rf']} of target rf (runfree) is held by pid {os.getpid()}" in result.stderr
    assert not list((root / ".reconciler" / "sandboxes").glob("*.pid"))  # nothing was started


def test_down_never_kills_a_process_that_is_not_a_sandbox(tmp_path: Path) -> None:
    folder = tmp_path / ".reconciler" / "sandboxes"
    folder.mkdir(parents=True)
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (folder / "x.pid").write_text(json.dumps({"target": "x", "kind": "runfree", "pid": stranger.pid,
                                                  "url": "http://127.0.0.1:1", "state": "x.db"}))
        result = reconciler("-C", str(tmp_path), "sandbox", "down")
        assert "x: was not running" in result.stdout
        assert stranger.poll() is None and not (folder / "x.pid").exists()
    finally:
        stranger.kill()
        stranger.wait()

