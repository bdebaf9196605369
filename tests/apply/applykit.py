"""Plans and memory targets for the apply tests, built directly (no planner involved) so the
tests depend only on the model, the state store, the applier and the memory connector."""

from __future__ import annotations

import random
import sqlite3
from contextlib import closing
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from reconciler.connectors.base import Secret, TargetContext
from reconciler.connectors.memory import MemoryConnector
from reconciler.model import Leg, OpKind, Operation, Plan, Settings

Stock = dict[tuple[str, str], int]


def memory_ctx(name: str, path: Path, **options: Any) -> TargetContext:
    return TargetContext(
        name=name, kind="memory", base_url="http://127.0.0.1", credential=Secret("unused"),
        location_ids={}, item_ids={}, options={"path": str(path), **options},
    )


def connector(name: str, path: Path, **options: Any) -> MemoryConnector:
    return MemoryConnector(memory_ctx(name, path, **options))


def reset(target: str, location: str, item: str, actual: int | None, desired: int, *, base: int | None = None,
          mode: str = "absolute", op_id: str | None = None) -> Operation:
    leg = Leg(location, actual, base, desired, desired - (actual or 0), desired)
    return Operation(op_id or f"reset-{target}-{location}-{item}", OpKind.RESET, target, item, (leg,), "adopt", write_mode=mode)


def adjust(target: str, location: str, item: str, actual: int, base: int, desired: int, *,
           mode: str = "delta", op_id: str | None = None) -> Operation:
    change = desired - base
    leg = Leg(location, actual, base, desired, change, actual + change)
    return Operation(op_id or f"adjust-{target}-{location}-{item}", OpKind.ADJUST, target, item, (leg,), "D != B", write_mode=mode)


def move(target: str, item: str, src: tuple[str, int], dst: tuple[str, int], units: int, *, op_id: str | None = None) -> Operation:
    (s_loc, s_qty), (d_loc, d_qty) = src, dst
    legs = (Leg(s_loc, s_qty, s_qty, s_qty - units, -units, s_qty - units), Leg(d_loc, d_qty, d_qty, d_qty + units, units, d_qty + units))
    return Operation(op_id or f"move-{target}-{item}-{s_loc}-{d_loc}", OpKind.MOVE, target, item, legs, "movement", write_mode="delta")


def delete(target: str, location: str, item: str, actual: int, *, op_id: str | None = None) -> Operation:
    leg = Leg(location, actual, actual, None, -actual, None)
    return Operation(op_id or f"delete-{target}-{location}-{item}", OpKind.DELETE, target, item, (leg,), "pruned", write_mode="absolute")


def release(target: str, location: str, item: str, base: int, *, op_id: str | None = None) -> Operation:
    leg = Leg(location, base, base, None, 0, base)
    return Operation(op_id or f"release-{target}-{location}-{item}", OpKind.RELEASE, target, item, (leg,), "not managed any more")


def settings(target: str, location: str, item: str, qty: int, after: Settings, *, op_id: str | None = None) -> Operation:
    leg = Leg(location, qty, qty, qty, 0, qty)
    return Operation(op_id or f"settings-{target}-{location}-{item}", OpKind.SETTINGS, target, item, (leg,), "settings",
                     settings_before=Settings(), settings_after=after, write_mode="absolute")


def drift(target: str, location: str, item: str) -> Operation:
    leg = Leg(location, 5, 4, 4, 0, 5)
    return Operation(f"drift-{target}-{location}-{item}", OpKind.DRIFT, target, item, (leg,), "A != B")


def make_plan(ops: Iterable[Operation], *, lineage: str, serial: int, plan_id: str = "plan-1",
              desired_digest: str = "digest-1") -> Plan:
    return Plan(
        format_version=1, plan_id=plan_id, created_at="2026-11-23T00:00:00Z", git_commit="abc123", git_dirty=False,
        desired_digest=desired_digest, desired_files={}, lineage=lineage, serial=serial, strategy_note="merge",
        operations=list(ops),
    )


def stock_of(path: Path) -> Stock:
    with closing(sqlite3.connect(path)) as conn:
        return {(r[0], r[1]): int(r[2]) for r in conn.execute("SELECT location, item, quantity FROM stock")}


def ops_log(path: Path) -> Counter[str]:
    if not Path(path).exists():
        return Counter()
    with closing(sqlite3.connect(path)) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "ops" not in tables:
            return Counter()
        return Counter(r[0] for r in conn.execute("SELECT op_id FROM ops"))


LOCATIONS = ("oslo", "bergen", "tromso")


def initial_stock(items: int = 20) -> Stock:
    rng = random.Random(7)
    return {(loc, f"SKU-{i:03d}"): rng.randint(0, 40) for loc in LOCATIONS for i in range(items)}


def random_ops(seed: int, target: str, stock: Stock, count: int = 50) -> tuple[list[Operation], Stock, list[str]]:
    """About ``count`` operations over ``stock`` and the stock they should leave.

    Returns (operations, expected stock, ids of operations that send nothing).
    """
    rng = random.Random(seed)
    expected = dict(stock)
    items = sorted({item for _, item in stock})
    ops: list[Operation] = []
    silent: list[str] = []
    for n, item in enumerate(items):
        src, dst = rng.sample(LOCATIONS, 2)
        units = rng.randint(1, 5)
        s_qty, d_qty = expected[(src, item)] + 10, expected[(dst, item)]
        # first top up the source (absolute) so the movement never goes negative
        ops.append(reset(target, src, item, expected[(src, item)], s_qty, base=expected[(src, item)], op_id=f"op{n:02d}a-reset"))
        ops.append(move(target, item, (src, s_qty), (dst, d_qty), units, op_id=f"op{n:02d}b-move"))
        expected[(src, item)], expected[(dst, item)] = s_qty - units, d_qty + units
        third = next(loc for loc in LOCATIONS if loc not in (src, dst))
        choice = rng.choice(["adjust", "adjust", "delete", "release"])
        key, qty = (third, item), expected[(third, item)]
        if choice == "adjust":
            desired = qty + rng.randint(-qty, 9) if qty else rng.randint(1, 9)
            ops.append(adjust(target, third, item, qty, qty, desired, op_id=f"op{n:02d}c-adjust"))
            expected[key] = desired
        elif choice == "delete":
            ops.append(delete(target, third, item, qty, op_id=f"op{n:02d}c-delete"))
            del expected[key]
        else:
            ops.append(release(target, third, item, qty, op_id=f"op{n:02d}c-release"))
            silent.append(f"op{n:02d}c-release")
    return ops, expected, silent
