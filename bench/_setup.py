"""Benchmark fixtures: sandboxes seeded in bulk, state seeded as a full apply would leave it.

Seeding goes straight to the SQLite files, once, before any timing: a million positions through
the vendor API (one PUT per product) or through the journal (one transaction per operation)
would take longer than the whole benchmark and measure nothing we want to know here.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from bench import _repo
from reconciler.sandbox._process import SandboxProcess, make_simulator
from reconciler.state import open_state_store

XS_TOKEN = "bench-xseries-token"
KC_APIKEY = "bench-kaching-apikey"


def xseries_sandbox(workdir: Path, spec: _repo.RepoSpec, qty: list[list[int]]) -> SandboxProcess:
    """An X-Series sandbox process whose live stock is ``qty`` (A = D). Its request budget is
    off: the benchmark measures reconciler, not the vendor's 5-minute window."""
    db = workdir / "xseries.db"
    make_simulator("xseries", state=db, token=XS_TOKEN, options={"rate_budget": 0}).close()
    conn = sqlite3.connect(db)
    with conn:
        stamp = "2024-01-01T00:00:00+00:00"
        conn.executemany("INSERT INTO xs_outlets (id, name, version) VALUES (?, ?, ?)",
                         [(_repo.outlet_id(i), _repo.location_name(i), 1 + i) for i in range(spec.locations)])
        conn.executemany(
            "INSERT INTO xs_products (id, sku, name, track_inventory, created_at, updated_at, version)"
            " VALUES (?, ?, ?, 1, ?, ?, ?)",
            [(_repo.product_id(j), _repo.sku_name(j), _repo.sku_name(j), stamp, stamp, 1 + j) for j in range(spec.skus)])
        conn.executemany(
            "INSERT INTO xs_inventory (id, product_id, outlet_id, current_amount, version) VALUES (?, ?, ?, ?, ?)",
            _inventory_rows(spec, qty))
        conn.execute("INSERT OR REPLACE INTO xs_meta (key, value) VALUES ('version', ?)", (2_000_000 + spec.positions * 2,))
    conn.close()
    return SandboxProcess("xseries", state=db, token=XS_TOKEN, options={"rate_budget": "0"}, timeout=60)


def _inventory_rows(spec: _repo.RepoSpec, qty: list[list[int]]):  # type: ignore[no-untyped-def]
    version = 1_000_000
    for i in range(spec.locations):
        outlet = _repo.outlet_id(i)
        for j in range(spec.skus):
            version += 2
            yield (f"inv-{i}-{j}", _repo.product_id(j), outlet, qty[i][j], version)


def change_records(db: Path, spec: _repo.RepoSpec, count: int, round_: int) -> None:
    """``count`` inventory records changed in the X-Series sandbox as sales and receipts do: the
    amount moves and the record gets a new global version above every other (what the vendor's
    feed shows a client reading after its last cursor). Spread over all locations; each round
    changes other records."""
    if count <= 0:
        return
    stride = max(1, spec.positions // count)
    picked = sorted({(k * stride + round_ * 7919) % spec.positions for k in range(count)})
    conn = sqlite3.connect(db, timeout=30)
    with conn:
        top = int(conn.execute("SELECT value FROM xs_meta WHERE key = 'version'").fetchone()[0])
        conn.executemany(
            "UPDATE xs_inventory SET current_amount = current_amount + ?, version = ? WHERE id = ?",
            ((-1 if n % 2 else 5, top + 1 + n, f"inv-{p // spec.skus}-{p % spec.skus}") for n, p in enumerate(picked)))
        conn.execute("UPDATE xs_meta SET value = ? WHERE key = 'version'", (top + 1 + len(picked),))
    conn.close()


def kaching_sandbox(workdir: Path, spec: _repo.RepoSpec, index: int = 0) -> SandboxProcess:
    """A Ka-ching sandbox that knows the benchmark's locations and products (``index``: which
    of several, each with its own state file)."""
    fixtures = {
        "locations": [{"id": _repo.location_name(i)} for i in range(spec.locations)],
        "items": [{"id": {"product": _repo.item_id(spec, j)}} for j in range(spec.skus)],
    }
    path = workdir / "kaching-fixtures.json"
    path.write_text(json.dumps(fixtures), encoding="utf-8")
    options = {"account": _repo.KC_ACCOUNT, "integration": _repo.KC_INTEGRATION}
    state = workdir / ("kaching.db" if index == 0 else f"kaching-{index}.db")
    return SandboxProcess("kaching", state=state, fixtures_path=path, token=KC_APIKEY,
                          options=options, timeout=60)


def seed_base(state_path: Path, spec: _repo.RepoSpec, qty: list[list[int]]) -> None:
    """B = D for every position, as applying the first (adopting) plan would leave it."""
    open_state_store(state_path).close()  # creates the schema, lineage and serial
    conn = sqlite3.connect(state_path)
    with conn:
        conn.execute("DELETE FROM base WHERE target = ?", (spec.target,))
        conn.executemany(
            "INSERT INTO base (target, location, item, quantity, settings) VALUES (?, ?, ?, ?, '{}')",
            ((spec.target, _repo.location_name(i), _repo.sku_name(j), qty[i][j])
             for i in range(spec.locations) for j in range(spec.skus)))
        conn.execute("UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'serial'")
    conn.close()


def env() -> dict[str, str]:
    """The credentials the generated reconciler.yaml names."""
    return {_repo.XS_TOKEN_ENV: XS_TOKEN, _repo.KC_APIKEY_ENV: KC_APIKEY}
