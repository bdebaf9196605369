"""No token anywhere (issue 3, point 7; DESIGN.md section 8): a full plan, apply, drift and
history through the CLI against the X-Series simulator on a loopback port, then a rejected token;
the token is in none of the files written (plan, state database and its WAL), none of the
output and none of the log records."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import pytest
from cli_kit import git, run_cli, write

from reconciler.sandbox._core import ServerThread
from reconciler.sandbox.xseries import XSeriesSimulator

TOKEN = "lsxs_pt_7Hq2Vb9Kd4Rw8Zy1Xc6Nm3"


@pytest.fixture
def xseries() -> Iterator[ServerThread]:
    sim = XSeriesSimulator(token=TOKEN, rate_budget=0, fixtures={
        "locations": [{"id": "outlet-oslo"}],
        "items": [{"id": "prod-tee"}, {"id": "prod-cap"}],
        "stock": [{"location": "outlet-oslo", "item": "prod-tee", "quantity": 10}],
    })
    with ServerThread(sim) as server:
        yield server
    sim.close()


def test_the_token_is_nowhere(xseries: ServerThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "repo"
    write(root, {
        "reconciler.yaml": f"version: 1\nlocations: {{oslo: {{}}}}\ntargets:\n  xs:\n    kind: xseries\n"
                           f"    url: {xseries.url}\n    credentials_env: XS_TOKEN\n    locations: {{oslo: outlet-oslo}}\n",
        "stock/catalog.yaml": "items:\n  TEE: {ids: {xs: prod-tee}}\n  CAP: {ids: {xs: prod-cap}}\n",
        "stock/oslo.yaml": "location: oslo\nstock:\n  xs:\n    TEE: {quantity: 12, reorder_point: 4}\n    CAP: 3\n",
        ".gitignore": ".reconciler/\n",
    })
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "stock")
    monkeypatch.chdir(root)
    monkeypatch.setenv("XS_TOKEN", TOKEN)
    caplog.set_level(logging.DEBUG)

    runs = [run_cli("plan", "--out", "plans/p.json"), run_cli("show", "plans/p.json", "--format", "markdown"),
            run_cli("apply", "plans/p.json"), run_cli("drift"), run_cli("history")]
    assert [r.code for r in runs] == [0] * 5, [r.stderr for r in runs]
    assert "3 applied, 0 failed" in runs[2].stdout  # two resets and a settings change
    xseries.sim.token = "rotated-by-the-vendor"  # the vendor now refuses the token we send
    refused = run_cli("plan")
    assert refused.code == 1 and "401" in refused.stderr

    written = [p for p in root.rglob("*") if p.is_file() and ".git" not in p.parts]
    assert {"plans/p.json", ".reconciler/state.db"} <= {p.relative_to(root).as_posix() for p in written}
    for path in written:
        assert TOKEN.encode() not in path.read_bytes(), path
    for result in [*runs, refused]:
        assert TOKEN not in result.stdout + result.stderr
    assert caplog.records and TOKEN not in caplog.text
