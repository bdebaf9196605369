"""discover on a copy of the example repository, against sandboxes built from it as `sandbox up`
builds them (their products carry the catalogue's SKUs): everything is already mapped."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.config import load_project
from reconciler.discover import discover
from reconciler.discover._match import Status
from reconciler.sandbox._core import ServerThread
from reconciler.sandbox._fixtures import target_fixtures
from reconciler.sandbox.xseries import XSeriesSimulator
from reconciler.sandbox.zettle import ZettleSimulator


@pytest.mark.parametrize("target,sim,port", [("xs-main", XSeriesSimulator, "8701"), ("zettle-main", ZettleSimulator, "8703")])
def test_example_targets_are_fully_mapped(example_repo: Path, monkeypatch: pytest.MonkeyPatch, target: str,
                                          sim: type, port: str) -> None:
    fixtures = target_fixtures(load_project(example_repo), target)
    kwargs = {"rate_budget": 0} if sim is XSeriesSimulator else {}
    with ServerThread(sim(fixtures=fixtures, **kwargs)) as server:
        config = example_repo / "reconciler.yaml"
        config.write_text(config.read_text().replace(f"http://127.0.0.1:{port}", server.url))
        env_var = load_project(example_repo).target(target).credentials_env
        monkeypatch.setenv(env_var, sim.default_token)
        result = discover(example_repo, target)
    mapped = [r for r in result.items if r.current is not None]
    assert mapped and {r.status for r in mapped} == {Status.ALREADY}
    assert {r.status for r in result.items if r.current is None} == {Status.UNMATCHED}
    assert any(r.status is Status.ALREADY for r in result.locations)
