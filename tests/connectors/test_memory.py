"""The file-backed memory connector: capabilities from options, stock, ops log, verify, faults."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "apply"))

from applykit import adjust, connector, delete, memory_ctx, move, ops_log, reset, settings, stock_of  # noqa: E402

from reconciler.connectors.base import Connector, Outcome, Verification, connector_class  # noqa: E402
from reconciler.connectors.memory import CONNECTOR, MemoryConnector  # noqa: E402
from reconciler.errors import ConfigError, NotSupported, VendorRejected, VendorUnavailable  # noqa: E402
from reconciler.model import Record, Settings  # noqa: E402


def test_found_by_kind_and_capabilities_follow_options(tmp_path: Path) -> None:
    assert connector_class("memory") is CONNECTOR is MemoryConnector
    plain = connector("a", tmp_path / "a.sqlite")
    limited = connector("b", tmp_path / "b.sqlite", readable=False, delta=False, max_batch=3, verifiable=True)
    assert isinstance(limited, Connector) and isinstance(limited, MemoryConnector)
    assert type(plain).capabilities.readable and type(plain).capabilities.max_batch == 10
    caps = type(limited).capabilities
    assert (caps.readable, caps.delta, caps.max_batch, caps.verifiable_deltas) == (False, False, 3, True)
    assert [len(b) for b in limited.batches([reset("b", "o", f"I{i}", None, 1) for i in range(7)])] == [3, 3, 1]
    with pytest.raises(NotSupported):
        limited.read_stock()


def test_missing_path_is_a_config_error() -> None:
    ctx = memory_ctx("x", Path("unused"))
    with pytest.raises(ConfigError, match="options.path"):
        MemoryConnector(type(ctx)(**{**ctx.__dict__, "options": {}}))


def test_writes_follow_each_kind(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    conn = connector("t", path)
    results = conn.execute([reset("t", "oslo", "A", None, 10), reset("t", "bergen", "A", None, 2), reset("t", "oslo", "B", None, 4)])
    assert [r.outcome for r in results] == [Outcome.APPLIED] * 3
    conn.execute([adjust("t", "oslo", "A", 10, 10, 7), move("t", "A", ("oslo", 7), ("bergen", 2), 5)])
    conn.execute([delete("t", "oslo", "B", 4), settings("t", "bergen", "A", 7, Settings(reorder_point=3))])
    assert stock_of(path) == {("oslo", "A"): 2, ("bergen", "A"): 7}
    assert conn.read_stock()[("bergen", "A")] == Record(7, Settings(reorder_point=3))
    assert sum(ops_log(path).values()) == 7


def test_verify_uses_the_ops_log_only_when_verifiable(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    op, other = reset("t", "oslo", "A", None, 1), reset("t", "oslo", "B", None, 1)
    connector("t", path).execute([op])
    assert connector("t", path).verify(op) is Verification.UNKNOWN
    checker = connector("t", path, verifiable=True)
    assert checker.verify(op) is Verification.APPLIED and checker.verify(other) is Verification.NOT_APPLIED


def test_injected_faults(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with pytest.raises(VendorRejected) as err:
        connector("t", path, fail_items=["A"]).execute([reset("t", "oslo", "A", None, 1)])
    assert err.value.status == 422 and "does not exist" in (err.value.body or "")
    assert ops_log(path) == {}
    with pytest.raises(VendorUnavailable) as drop:
        connector("t", path, drop_items=["B"]).execute([reset("t", "oslo", "B", None, 1)])
    assert drop.value.in_doubt and ops_log(path) == {"reset-t-oslo-B": 1}  # applied, then the line dropped


def test_every_batch_is_logged_as_a_request_and_the_faults_file_is_read_per_batch(tmp_path: Path) -> None:
    import json
    import time

    path, faults = tmp_path / "s.sqlite", tmp_path / "faults.json"
    conn = connector("t", path, faults_file=str(faults))
    conn.execute([reset("t", "oslo", "A", None, 1)])  # no faults file yet: applied
    faults.write_text(json.dumps({"fail_items": ["A"], "delay_s": 0.2}), encoding="utf-8")
    started = time.monotonic()
    with pytest.raises(VendorRejected):
        conn.execute([reset("t", "oslo", "A", None, 2), reset("t", "oslo", "B", None, 2)])
    assert time.monotonic() - started >= 0.2
    faults.unlink()  # the fault is cleared between two batches of the same connector
    conn.execute([reset("t", "oslo", "A", None, 3)])
    assert conn.requests_received() == 3  # the rejected batch counts: it reached the vendor
    assert stock_of(path) == {("oslo", "A"): 3} and sum(ops_log(path).values()) == 2
