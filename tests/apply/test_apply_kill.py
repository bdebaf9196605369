"""End to end: a real apply process killed with SIGKILL at seeded points, then re-run to the end.

The final stock must equal the plan's result exactly, no delta operation may reach the vendor
twice, and operations end in doubt only where the connector cannot verify them.
"""

from __future__ import annotations

import os
import pickle
import random
import signal
import sqlite3
from contextlib import closing
import subprocess
import sys
import time
from pathlib import Path

import pytest
from applykit import connector, initial_stock, make_plan, ops_log, random_ops, reset, stock_of

from reconciler.apply import apply_plan, resolve_op
from reconciler.state import JournalStatus, SQLiteStateStore

DRIVER = Path(__file__).with_name("kill_driver.py")


def _prepare(tmp_path: Path) -> tuple[Path, Path, Path, object, dict]:
    state, stock = tmp_path / "state.db", tmp_path / "shop.sqlite"
    adopt = initial_stock()
    with SQLiteStateStore(state) as store:
        plan0 = make_plan([reset("shop", l, i, None, q, op_id=f"adopt-{l}-{i}") for (l, i), q in sorted(adopt.items())],
                          lineage=store.lineage(), serial=0, plan_id="adopt")
        conn = connector("shop", stock, max_batch=60)
        assert apply_plan(plan0, store, {"shop": conn}, desired_digest=None, holder="t@h").ok
        conn.close()
        ops, expected, _ = random_ops(11, "shop", adopt)
        plan = make_plan(ops, lineage=store.lineage(), serial=store.serial(), plan_id="p2")
    plan_file = tmp_path / "plan.pickle"
    plan_file.write_bytes(pickle.dumps(plan))
    return state, stock, plan_file, plan, expected


def _start(state: Path, stock: Path, plan_file: Path, *extra: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, str(DRIVER), str(state), str(stock), str(plan_file), "--max-batch", "2", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _applied_rows(state: Path) -> int:
    with closing(sqlite3.connect(state, timeout=10)) as conn:
        return int(conn.execute("SELECT count(*) FROM journal WHERE plan_id = 'p2' AND status = 'applied'").fetchone()[0])


def _kill_after(proc: subprocess.Popen[str], state: Path, target_rows: int) -> None:
    deadline = time.monotonic() + 30
    while proc.poll() is None and _applied_rows(state) < target_rows and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()


@pytest.mark.parametrize("verifiable", [True, False], ids=["verifiable", "unverifiable"])
def test_sigkill_then_resume_applies_exactly_once(tmp_path: Path, verifiable: bool) -> None:
    state, stock, plan_file, plan, expected = _prepare(tmp_path)
    flags = ["--delay", "0.01", "--delay-after", "0.02"] + (["--verifiable"] if verifiable else [])
    rng = random.Random(1234 + verifiable)
    for _ in range(5):
        proc = _start(state, stock, plan_file, *flags)
        _kill_after(proc, state, _applied_rows(state) + rng.randint(1, 10))
    in_doubt_seen: set[str] = set()
    for _ in range(10):
        proc = _start(state, stock, plan_file, *flags)
        out, err = proc.communicate(timeout=60)
        if proc.returncode == 0:
            break
        assert proc.returncode == 4, (out, err)
        with SQLiteStateStore(state) as store:
            doubtful = [e for e in store.journal("p2").values() if e.status is JournalStatus.IN_DOUBT]
            assert doubtful
            for entry in doubtful:
                # The user looks at the vendor (here: its ops log) and settles the operation.
                in_doubt_seen.add(entry.op_id)
                resolve_op(store, entry.op_id, ops_log(stock)[entry.op_id] > 0, holder="t@h")
    else:
        pytest.fail("apply never completed")
    assert stock_of(stock) == expected
    counts = ops_log(stock)
    by_id = {op.id: op for op in plan.operations}
    for op_id, op in by_id.items():
        if op.kind.value == "release":
            assert counts[op_id] == 0
        elif op.write_mode == "absolute":
            assert counts[op_id] >= 1  # re-sending an absolute write is harmless
        else:
            assert counts[op_id] == 1, f"{op_id} reached the vendor {counts[op_id]} times"
    if verifiable:
        assert not in_doubt_seen
    assert all(by_id[i].write_mode == "delta" for i in in_doubt_seen)
    with SQLiteStateStore(state) as store:
        assert store.plan_record("p2").status.value == "applied"
        assert store.current_lock() is None
        base = {(l, i): r.quantity for (_, l, i), r in store.load_base().positions.items()}
    released = {(op.location, op.item) for op in plan.operations if op.kind.value == "release"}
    assert base == {k: v for k, v in expected.items() if k not in released}


def test_second_process_fails_at_once_naming_the_holder(tmp_path: Path) -> None:
    state, stock, plan_file, _, _ = _prepare(tmp_path)
    first = _start(state, stock, plan_file, "--delay", "0.2", "--holder", "alice@ci-runner")
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with SQLiteStateStore(state) as store:
                if store.current_lock() is not None:
                    break
            time.sleep(0.02)
        started = time.monotonic()
        second = _start(state, stock, plan_file, "--holder", "bob@laptop")
        out, err = second.communicate(timeout=30)
        assert second.returncode == 5, (out, err)
        assert "alice@ci-runner" in err and f"pid {first.pid}" in err
        assert time.monotonic() - started < 10
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    assert os.path.exists(state)
