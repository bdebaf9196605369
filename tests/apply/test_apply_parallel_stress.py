"""Many targets applied in parallel must journal every outcome exactly once (issue 16, point 1).

Five memory targets shaped like the five vendors (absolute-only writes, verifiable deltas,
unverifiable deltas, native moves, settings), each with small batches and a random latency
before and after every vendor write, apply one plan in parallel threads. After each seed:
every journal row is final, B is what the operations imply for every position, the vendor
holds what they imply, and applying the same plan file again is refused as applied.

The seed count defaults to 200 (``RECONCILER_STRESS_SEEDS`` changes it). The state lives on
/dev/shm where there is one, so the commits (synchronous=FULL) do not dominate the run.
"""

from __future__ import annotations

import os
import random
import tempfile
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from applykit import connector, make_plan, random_ops, reset, settings, stock_of

from reconciler.apply import apply_plan
from reconciler.errors import StalePlanError
from reconciler.model import OpKind, Operation, Settings
from reconciler.state import JournalStatus, SQLiteStateStore

SEEDS = int(os.environ.get("RECONCILER_STRESS_SEEDS", "200"))
LOCATIONS = ("oslo", "bergen", "tromso")

# name -> (memory options, write mode of its adjustments)
PROFILES: dict[str, tuple[dict[str, Any], str]] = {
    "runfree-like": ({"delta": False, "native_move": False, "max_batch": 2}, "absolute"),
    "xseries-like": ({"verifiable": True, "max_batch": 3}, "delta"),
    "kaching-like": ({"max_batch": 1}, "delta"),
    "zettle-like": ({"native_move": True, "max_batch": 2}, "delta"),
    "settings-heavy": ({"max_batch": 3}, "delta"),
}
FINAL = {JournalStatus.APPLIED, JournalStatus.FAILED, JournalStatus.IN_DOUBT}


def _shm_dir() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def _stock(rng: random.Random, items: int) -> dict[tuple[str, str], int]:
    return {(loc, f"SKU-{i:03d}"): rng.randint(0, 30) for loc in LOCATIONS for i in range(items)}


def _plan_for(target: str, mode: str, stock: dict, seed: int) -> tuple[list[Operation], dict, dict]:
    """Operations for one target, the vendor stock they leave, and the B they leave."""
    ops, expected, _ = random_ops(seed, target, stock, count=len(stock))
    ops = [replace(op, id=f"{target}-{op.id}") for op in ops]  # ids are unique within a plan
    if mode == "absolute":  # a write-only vendor without deltas: adjustments are absolute resets to B + d
        ops = [replace(op, write_mode="absolute") if op.kind is OpKind.ADJUST else op for op in ops]
    base = {k: v for k, v in expected.items()}
    for op in ops:
        if op.kind is OpKind.RELEASE:
            base.pop((op.location, op.item), None)
            expected[(op.location, op.item)] = stock[(op.location, op.item)]  # untouched at the vendor
    return ops, expected, base


def _settings_ops(target: str, rng: random.Random) -> tuple[list[Operation], dict]:
    ops, wanted = [], {}
    for i in range(4):
        loc = rng.choice(LOCATIONS)
        after = Settings(reorder_point=rng.randint(1, 9), reorder_amount=rng.randint(1, 20))
        ops.append(settings(target, loc, f"SET-{i:02d}", 0, after, op_id=f"set-{target}-{i:02d}"))
        wanted[(loc, f"SET-{i:02d}")] = after
    return ops, wanted


def _run_seed(seed: int, root: Path) -> None:
    rng = random.Random(seed)
    store = SQLiteStateStore(root / "state.db")
    with ExitStack() as stack:
        stack.callback(store.close)
        adopt_ops, plan_ops, vendor_after, base_after, settings_after = [], [], {}, {}, {}
        for name, (options, mode) in PROFILES.items():
            stock = _stock(rng, items=3)
            adopt_ops += [reset(name, loc, item, None, q, op_id=f"adopt-{name}-{loc}-{item}") for (loc, item), q in sorted(stock.items())]
            ops, expected, base = _plan_for(name, mode, stock, seed)
            if name == "settings-heavy":
                extra, settings_after = _settings_ops(name, rng)
                ops += extra
            plan_ops += ops
            vendor_after[name], base_after[name] = expected, base
        paths = {name: root / f"{name}.sqlite" for name in PROFILES}
        adopt = make_plan(adopt_ops, lineage=store.lineage(), serial=store.serial(), plan_id=f"adopt-{seed}")
        bulk = {n: stack.enter_context(_closing(connector(n, paths[n], max_batch=100))) for n in PROFILES}
        assert apply_plan(adopt, store, bulk, desired_digest=adopt.desired_digest, holder="t@h").ok
        plan = make_plan(_interleaved(plan_ops, rng), lineage=store.lineage(), serial=store.serial(), plan_id=f"mixed-{seed}")
        conns = {
            n: stack.enter_context(_closing(connector(n, paths[n], jitter_ms=4, seed=seed * 31 + i, **PROFILES[n][0])))
            for i, n in enumerate(PROFILES)
        }
        report = apply_plan(plan, store, conns, desired_digest=plan.desired_digest, holder="t@h")
        _check(seed, store, plan, report, paths, vendor_after, base_after, settings_after)
        with pytest.raises(StalePlanError, match="already applied"):
            apply_plan(plan, store, conns, desired_digest=plan.desired_digest, holder="t@h")


def _interleaved(ops: list[Operation], rng: random.Random) -> list[Operation]:
    """The targets' operations mixed at random in the plan, each target's in its own order."""
    queues = {name: [op for op in ops if op.target == name] for name in PROFILES}
    mixed: list[Operation] = []
    while any(queues.values()):
        mixed.append(queues[rng.choice([n for n, q in queues.items() if q])].pop(0))
    return mixed


def _check(seed, store, plan, report, paths, vendor_after, base_after, settings_after) -> None:
    journal = store.journal(plan.plan_id)
    not_final = sorted(op_id for op_id, entry in journal.items() if entry.status not in FINAL)
    assert not not_final, f"seed {seed}: journal rows left {[journal[i].status.value for i in not_final]}: {not_final}"
    assert len(journal) == len(plan.operations), f"seed {seed}: {len(plan.operations) - len(journal)} operations never journalled"
    assert report.ok and report.plan_status == "applied", f"seed {seed}: {report.counts}"
    base = store.load_base().positions
    for name in PROFILES:
        held_b = {(loc, item): rec.quantity for (t, loc, item), rec in base.items() if t == name and not item.startswith("SET-")}
        assert held_b == base_after[name], f"seed {seed}: B of {name} is not what the operations imply"
        assert stock_of(paths[name]) == {k: v for k, v in vendor_after[name].items()} | _settings_rows(paths[name]), (
            f"seed {seed}: the vendor {name} does not hold what the operations imply")
    for (loc, item), wanted in settings_after.items():
        assert base[("settings-heavy", loc, item)].settings == wanted, f"seed {seed}: settings of {loc}/{item} not in B"


def _settings_rows(path: Path) -> dict:
    return {k: v for k, v in stock_of(path).items() if k[1].startswith("SET-")}


class _closing:
    def __init__(self, conn) -> None:
        self.conn = conn

    def __enter__(self):
        return self.conn

    def __exit__(self, *exc) -> None:
        self.conn.close()


@pytest.mark.slow
def test_parallel_targets_journal_every_outcome_exactly_once() -> None:
    failures = []
    for seed in range(SEEDS):
        with tempfile.TemporaryDirectory(dir=_shm_dir()) as tmp:
            try:
                _run_seed(seed, Path(tmp))
            except AssertionError as exc:
                failures.append(f"seed {seed}: {str(exc).splitlines()[0]}")
    assert not failures, f"{len(failures)} of {SEEDS} seeds failed:\n" + "\n".join(failures[:10])
