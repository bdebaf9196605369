"""`reconciler sandbox up` reports only sandboxes that are its own processes answering on their
ports (issue 21, point 3): real detached processes, real ports, two checkouts of one repository."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from reconciler.sandbox._process import SandboxError, SandboxProcess, serve_command, start_detached, wait_healthy

pytestmark = pytest.mark.timeout(120)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reconciler(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reconciler", *args], capture_output=True, text=True, timeout=60)


def checkout(path: Path, port: int) -> Path:
    """A stock repository with one Run Free target on ``port`` (as two clones of one repository)."""
    (path / "stock").mkdir(parents=True)
    (path / "reconciler.yaml").write_text(f"""\
version: 1
locations:
  oslo: {{}}
targets:
  rf:
    kind: runfree
    url: http://127.0.0.1:{port}
    credentials_env: RF_TOKEN
    locations: {{oslo: "3"}}
""", encoding="utf-8")
    (path / "stock" / "catalog.yaml").write_text('items:\n  RED-M:\n    ids:\n      rf: {upc: "849632048260"}\n',
                                                  encoding="utf-8")
    (path / "stock" / "oslo.yaml").write_text("location: oslo\nstock:\n  rf:\n    RED-M: 5\n", encoding="utf-8")
    return path


@pytest.fixture
def two_checkouts(tmp_path: Path) -> Iterator[tuple[Path, Path, int]]:
    port = free_port()
    first, second = checkout(tmp_path / "first", port), checkout(tmp_path / "second", port)
    yield first, second, port
    for root in (first, second):
        reconciler("-C", str(root), "sandbox", "down")


def test_a_port_held_by_another_checkouts_sandbox_is_an_error_naming_it(two_checkouts: tuple[Path, Path, int]) -> None:
    first, second, port = two_checkouts
    up = reconciler("-C", str(first), "sandbox", "up")
    assert up.returncode == 0 and f"rf: started at http://127.0.0.1:{port} (pid " in up.stdout, up.stderr
    pid = int(up.stdout.split("(pid ")[1].split(")")[0])

    other = reconciler("-C", str(second), "sandbox", "up")

    assert other.returncode == 1 and "started" not in other.stdout
    assert f"port {port} of target rf (runfree) is held by pid {pid} (reconciler sandbox serve runfree" in other.stderr
    assert f"in {first})" in other.stderr  # which checkout holds it
    assert "nothing was started" in other.stderr and "sandbox down" in other.stderr
    assert not list((second / ".reconciler" / "sandboxes").glob("*.pid"))

    again = reconciler("-C", str(first), "sandbox", "up")  # this checkout's own sandbox: already up
    assert again.returncode == 0 and again.stdout.startswith(f"rf: already up at http://127.0.0.1:{port} (pid {pid})")


def test_waiting_for_a_sandbox_never_accepts_another_one_on_its_port(tmp_path: Path) -> None:
    """The failure of the issue: a same-kind sandbox already answered on the url, so a sandbox
    that died with "address already in use" was reported as started."""
    with SandboxProcess("runfree", state=tmp_path / "theirs.db") as theirs:
        port = int(theirs.url.rsplit(":", 1)[1])
        log = tmp_path / "ours.log"
        ours = start_detached(serve_command("runfree", state=tmp_path / "ours.db", port=port), log_path=log, cwd=tmp_path)
        try:
            with pytest.raises(SandboxError) as caught:
                wait_healthy(theirs.url, "runfree", ours, log, timeout=15)
        finally:
            subprocess.run(["kill", str(ours)], check=False)
        assert f"did not become healthy (pid {ours}, exited)" in str(caught.value)
        assert "address already in use" in str(caught.value)
