"""Fixtures for the applier tests: a state database and memory targets in tmp_path."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent))
from pg_server import pg_schema_url, pg_url  # noqa: E402,F401  (fixtures)
from applykit import connector, initial_stock, make_plan, reset

from reconciler.apply import apply_plan
from reconciler.state import SQLiteStateStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStateStore]:
    with SQLiteStateStore(tmp_path / ".reconciler" / "state.db") as s:
        yield s


@pytest.fixture
def stock_path(tmp_path: Path) -> Path:
    return tmp_path / "shop.sqlite"


@pytest.fixture
def adopted(store: SQLiteStateStore, stock_path: Path) -> dict[tuple[str, str], int]:
    """The shop and B both hold ``initial_stock()``, put there by a first (adopt) plan."""
    stock = initial_stock()
    ops = [reset("shop", loc, item, None, qty, op_id=f"adopt-{loc}-{item}") for (loc, item), qty in sorted(stock.items())]
    plan = make_plan(ops, lineage=store.lineage(), serial=store.serial(), plan_id="adopt")
    conn = connector("shop", stock_path, max_batch=50)
    try:
        report = apply_plan(plan, store, {"shop": conn}, desired_digest="digest-1", holder="t@h")
    finally:
        conn.close()
    assert report.ok
    return stock
