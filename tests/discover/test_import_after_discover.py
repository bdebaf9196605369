"""``reconciler import`` after ``discover``: positions mapped since are adopted and said so; the
lock is taken before anything is read or written."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import yaml

from cli_kit import run_cli
from discover_kit import XS_TOKEN_ENV, write_xs_repo, xs_fixtures
from reconciler.config import load_project
from reconciler.sandbox._core import ServerThread
from reconciler.sandbox.xseries import XSeriesSimulator
from reconciler.workflow import open_store


@pytest.fixture
def xs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerThread]:
    monkeypatch.setenv(XS_TOKEN_ENV, XSeriesSimulator.default_token)
    with ServerThread(XSeriesSimulator(state=tmp_path / "xs.db", fixtures=xs_fixtures(), rate_budget=0)) as server:
        yield server


def test_import_adopts_positions_discover_mapped(tmp_path: Path, xs: ServerThread) -> None:
    repo = write_xs_repo(tmp_path / "repo", xs.url, map_outlets=True)
    before = run_cli("-C", str(repo), "import", "--target", "xs")
    assert before.code == 0 and not (repo / "stock" / "oslo.yaml").exists() or "TEE-S" not in (
        repo / "stock" / "oslo.yaml").read_text()  # TEE-S has no id yet: nothing of it to import
    assert run_cli("-C", str(repo), "discover", "xs", "--write").code == 0
    out = run_cli("-C", str(repo), "import", "--target", "xs")
    assert out.code == 0, out
    assert "2 position(s) are new to the files" in out.stdout and "Recorded 2 position(s) as applied" in out.stdout
    assert yaml.safe_load((repo / "stock" / "oslo.yaml").read_text())["stock"]["xs"]["TEE-S"] == 4
    assert yaml.safe_load((repo / "stock" / "bergen.yaml").read_text())["stock"]["xs"]["TEE-M"] == 7
    assert run_cli("-C", str(repo), "plan", "--detailed-exitcode").code == 0


def test_import_takes_the_lock_before_writing_anything(tmp_path: Path, xs: ServerThread) -> None:
    repo = write_xs_repo(tmp_path / "repo", xs.url, map_outlets=True)
    assert run_cli("-C", str(repo), "discover", "xs", "--write").code == 0
    store = open_store(load_project(repo))
    lock = store.acquire_lock("someone applying", 600.0, ["xs"])
    try:
        out = run_cli("-C", str(repo), "import", "--target", "xs")
    finally:
        store.release_lock(lock.id)
        store.close()
    assert out.code == 5, out  # LockHeld
    assert not (repo / "stock" / "oslo.yaml").exists() and not (repo / "stock" / "bergen.yaml").exists()
