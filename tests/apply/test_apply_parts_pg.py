"""`reconciler apply PLAN --target T` as a CI matrix runs it: one real process per target, all
at once, against one PostgreSQL state. Targets are file-backed memory connectors."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from contextlib import closing
import subprocess
import sys
import time
from pathlib import Path

from reconciler.state import open_state_store

TARGETS = ("t1", "t2", "t3")
ITEMS = [f"SKU-{i}" for i in range(6)]


def _repo(root: Path, delays: dict[str, float]) -> Path:
    (root / "stock").mkdir(parents=True)
    (root / "plans").mkdir()
    targets = "".join(
        f"  {t}:\n    kind: memory\n    locations: {{oslo: oslo, bergen: bergen}}\n"
        f"    options: {{path: {json.dumps(str(root / f'{t}.sqlite'))}, max_batch: 2, delay_s: {delays.get(t, 0.0)}}}\n"
        for t in TARGETS
    )
    (root / "reconciler.yaml").write_text(
        "version: 1\nlocations:\n  oslo: {}\n  bergen: {}\ntargets:\n" + targets, encoding="utf-8"
    )
    catalog = "items:\n" + "".join(f"  {i}:\n    ids: {{{', '.join(f'{t}: {i}' for t in TARGETS)}}}\n" for i in ITEMS)
    (root / "stock" / "catalog.yaml").write_text(catalog, encoding="utf-8")
    for n, loc in enumerate(("oslo", "bergen")):
        body = "".join(f"  {t}:\n" + "".join(f"    {i}: {n + k + 1}\n" for k, i in enumerate(ITEMS)) for t in TARGETS)
        (root / "stock" / f"{loc}.yaml").write_text(f"location: {loc}\nstock:\n{body}", encoding="utf-8")
    return root


def _cli(repo: Path, state: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "RECONCILER_STATE": state}
    return subprocess.Popen([sys.executable, "-m", "reconciler", "-C", str(repo), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _plan(repo: Path, state: str) -> Path:
    proc = _cli(repo, state, "plan", "--out", str(repo / "plans" / "p.json"))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, (out, err)
    return repo / "plans" / "p.json"


def _ops_log(path: Path) -> list[tuple[str, float]]:
    with closing(sqlite3.connect(path)) as conn:
        return [(r[0], float(r[1])) for r in conn.execute("SELECT op_id, applied_at FROM ops ORDER BY seq")]


def _stock(path: Path) -> dict[tuple[str, str], int]:
    with closing(sqlite3.connect(path)) as conn:
        return {(r[0], r[1]): int(r[2]) for r in conn.execute("SELECT location, item, quantity FROM stock")}


def _wait_for_lock(state: str, holder_target: str) -> None:
    deadline = time.monotonic() + 30
    with open_state_store(state) as store:
        while not any(holder_target in lock.targets for lock in store.locks()):
            assert time.monotonic() < deadline, "the first apply never took its lock"
            time.sleep(0.05)


def test_parallel_parts_apply_once_each_and_complete_the_plan(tmp_path: Path, pg_schema_url: str) -> None:
    repo = _repo(tmp_path / "repo", {t: 0.3 for t in TARGETS})
    plan_file = _plan(repo, pg_schema_url)
    plan = json.loads(plan_file.read_text())
    procs = {t: _cli(repo, pg_schema_url, "apply", str(repo / "plans" / "p.json"), "--target", t, "--no-progress") for t in TARGETS}
    results = {t: p.communicate(timeout=120) for t, p in procs.items()}
    for t, (out, err) in results.items():
        assert procs[t].returncode == 0, (t, out, err)
        assert "Parts of the plan:" in out
    op_ids = {t: sorted(op["id"] for op in plan["operations"] if op["target"] == t) for t in TARGETS}
    spans = []
    for t in TARGETS:
        log = _ops_log(repo / f"{t}.sqlite")
        assert sorted(op for op, _ in log) == op_ids[t]  # every operation reached its vendor exactly once
        assert _stock(repo / f"{t}.sqlite") == {(loc, i): n + k + 1 for n, loc in enumerate(("oslo", "bergen"))
                                                 for k, i in enumerate(ITEMS)}
        spans.append((log[0][1], log[-1][1]))
    assert max(s for s, _ in spans) < min(e for _, e in spans), "the applies did not run at the same time"
    with open_state_store(pg_schema_url) as store:
        assert store.plan_record(plan["plan_id"]).status.value == "applied"
        assert {p.target: (p.status.value, p.applied) for p in store.plan_parts(plan["plan_id"])} == {
            t: ("applied", len(op_ids[t])) for t in TARGETS}
        journal = store.journal(plan["plan_id"])
        assert sorted(journal) == sorted(i for ids in op_ids.values() for i in ids)
        assert all(e.status.value == "applied" for e in journal.values())
        assert sorted(r.targets for r in store.runs()) == [(t,) for t in TARGETS]
        assert len(store.load_base().positions) == len(TARGETS) * 2 * len(ITEMS)
        assert store.locks() == []


def test_same_target_excludes_and_a_killed_holder_leaves_no_lock(tmp_path: Path, pg_schema_url: str) -> None:
    repo = _repo(tmp_path / "repo", {"t1": 5.0})  # t1 is slow enough to be caught holding its lock
    plan_file = str(_plan(repo, pg_schema_url))
    slow = _cli(repo, pg_schema_url, "apply", plan_file, "--target", "t1", "--no-progress")
    try:
        _wait_for_lock(pg_schema_url, "t1")
        second = _cli(repo, pg_schema_url, "apply", plan_file, "--target", "t1", "--no-progress")
        other = _cli(repo, pg_schema_url, "apply", plan_file, "--target", "t2", "--no-progress")
        out, err = second.communicate(timeout=60)
        assert second.returncode == 5, (out, err)
        assert f"pid {slow.pid}" in err and "t1" in err
        out, err = other.communicate(timeout=60)
        assert other.returncode == 0, (out, err)  # another target runs while t1 is held
    finally:
        slow.send_signal(signal.SIGKILL)  # a CI runner that vanished mid-apply
        slow.communicate()
    with open_state_store(pg_schema_url) as store:
        deadline = time.monotonic() + 10
        while store.locks():
            assert time.monotonic() < deadline, "the killed apply's lock is stuck"
            time.sleep(0.05)
        plan_id = json.loads(Path(plan_file).read_text())["plan_id"]
        parts = {p.target: p.status.value for p in store.plan_parts(plan_id)}
        assert parts == {"t1": "applying", "t2": "applied", "t3": "pending"}  # t1: interrupted
    resumed = _cli(repo, pg_schema_url, "apply", plan_file, "--target", "t1", "--no-progress")
    try:
        _wait_for_lock(pg_schema_url, "t1")  # the next runner takes the lock at once: nothing is stuck
        with open_state_store(pg_schema_url) as store:
            assert [lock.pid for lock in store.locks()] == [resumed.pid]
    finally:
        resumed.send_signal(signal.SIGKILL)
        resumed.communicate()
