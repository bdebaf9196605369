"""The library functions behind the commands: B and A read at the same time, and what that must
not change (a broken state fails before any vendor request; no thread outlives a plan)."""

from __future__ import annotations

import gc
import threading
from pathlib import Path

import httpx
import pytest

from connectors.test_xseries import E2E_ENV, e2e_repo
from connectors.test_xseries import sim  # noqa: F401  (the simulator fixture)
from reconciler.errors import StateError, VendorError
from reconciler.model import gc_paused
from reconciler.sandbox.xseries import XSeriesSimulator
from reconciler.workflow import apply_saved_plan, plan_project


class Counting(httpx.BaseTransport):
    """The simulator's in-process transport, counting the requests that reach it."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner, self.requests = inner, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return self.inner.handle_request(request)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    return e2e_repo(tmp_path / "repo", "https://xs.example.test")


def helper_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(("state-read", "xseries-prefetch"))]


def test_plan_reads_state_and_live_stock_and_leaves_no_thread(repo: Path, sim: XSeriesSimulator) -> None:
    transport = Counting(sim.wsgi_transport())
    first = plan_project(repo, env=E2E_ENV, transports={"xs": transport})
    assert first.has_changes and transport.requests > 0
    assert apply_saved_plan(repo, first, env=E2E_ENV, transports={"xs": transport}).ok
    again = plan_project(repo, env=E2E_ENV, transports={"xs": transport})
    assert not again.has_changes  # B (read on the worker) and A (read here) both came back
    # the run's start and close moved the serial, and so did every batch's outcome commit
    assert again.serial > first.serial + 2 and not helper_threads()


def test_a_broken_state_fails_before_any_vendor_request(repo: Path, sim: XSeriesSimulator) -> None:
    (repo / ".reconciler").mkdir()
    (repo / ".reconciler" / "state.db").write_bytes(b"this is not a SQLite database\n" * 200)
    transport = Counting(sim.wsgi_transport())
    with pytest.raises(StateError):
        plan_project(repo, env=E2E_ENV, transports={"xs": transport})
    assert transport.requests == 0 and not helper_threads()


def test_a_vendor_error_during_the_read_ends_the_state_thread_too(repo: Path, sim: XSeriesSimulator) -> None:
    transport = Counting(sim.wsgi_transport())
    with pytest.raises(VendorError):
        plan_project(repo, env={"E2E_XS_TOKEN": "revoked"}, transports={"xs": transport})
    assert transport.requests > 0 and not helper_threads()


def test_gc_pauses_are_counted_across_threads() -> None:
    assert gc.isenabled()
    inside, leave = threading.Event(), threading.Event()

    def other() -> None:
        with gc_paused():
            inside.set()
            leave.wait(5)

    worker = threading.Thread(target=other)
    with gc_paused():
        worker.start()
        inside.wait(5)
    assert not gc.isenabled()  # this pause ended first; the other thread's still holds
    leave.set()
    worker.join()
    assert gc.isenabled()
