"""The X-Series simulator's inventory page from each record's stored JSON text (``record_json``):
it stays right after every kind of write, and an older state file is upgraded on open."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from starlette.responses import JSONResponse

sys.path.insert(0, str(Path(__file__).parent.parent))
from json_typed import typed  # noqa: E402
from reconciler.sandbox._xseries_common import INVENTORY_COLUMNS, collection, upgrade_inventory
from reconciler.sandbox.xseries import XSeriesSimulator, inventory_body

OUT_A, OUT_B = "out-a", "out-é"
P1, P2, P3 = "p-1", 'p-"2\\', "p-3"
FIXTURES = {
    "locations": [{"id": OUT_A, "name": "A"}, {"id": OUT_B, "name": "B"}],
    "items": [{"id": P1, "sku": "S1", "name": "One"}, {"id": P2, "sku": "S2", "name": "Two"},
              {"id": P3, "sku": "S3", "name": "Three"}],
    "stock": [
        {"location": OUT_A, "item": P1, "quantity": 8, "reorder_point": 5, "reorder_amount": 20},
        {"location": OUT_B, "item": P1, "quantity": 19, "average_cost": 2.5},
        {"location": OUT_A, "item": P2, "quantity": 4},
    ],
}

# The table as the simulator made it before record_json (round 4), to write "old" state files.
OLD_INVENTORY_TABLE = """
CREATE TABLE xs_inventory (
    id TEXT PRIMARY KEY, product_id TEXT NOT NULL, outlet_id TEXT NOT NULL,
    current_amount REAL NOT NULL, reorder_point TEXT NOT NULL DEFAULT 'null',
    reorder_amount TEXT NOT NULL DEFAULT 'null', average_cost REAL NOT NULL DEFAULT 0,
    version INTEGER NOT NULL, deleted_at TEXT, UNIQUE (product_id, outlet_id)
);
CREATE INDEX xs_inventory_version ON xs_inventory (version);
"""


@pytest.fixture
def sim() -> Iterator[XSeriesSimulator]:
    simulator = XSeriesSimulator(fixtures=FIXTURES, rate_budget=0)
    yield simulator
    simulator.close()


@pytest.fixture
def http(sim: XSeriesSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(transport=sim.wsgi_transport(), base_url="http://shop.retail.lightspeed.app",
                      headers={"Authorization": f"Bearer {sim.token}"}) as client:
        yield client


def python_page(sim: XSeriesSimulator) -> bytes:
    """The page as built in Python: a dict per row, encoded by JSONResponse."""
    rows = sim.db.query(f"SELECT {INVENTORY_COLUMNS} FROM xs_inventory ORDER BY version")
    return JSONResponse(collection([inventory_body(r) for r in rows])).body


def assert_stored_texts_right(sim: XSeriesSimulator, http: httpx.Client) -> list[dict[str, Any]]:
    """Every record's stored text is its Python rendering (version included), and the served
    page is the Python-built page byte for byte. Returns the page's records."""
    rows = sim.db.query(f"SELECT {INVENTORY_COLUMNS}, record_json, record_py FROM xs_inventory")
    for row in rows:
        assert row["record_py"] == 0
        stored = json.loads(row["record_json"])
        assert typed(stored) == typed(inventory_body(row))
        assert stored["version"] == row["version"]
    response = http.get("/api/2.0/inventory", params={"page_size": 100})
    assert response.status_code == 200
    assert response.content == python_page(sim)
    assert response.headers["content-length"] == str(len(response.content))
    assert response.headers["content-type"] == "application/json"
    return response.json()["data"]


def record(records: list[dict[str, Any]], product: str, outlet: str) -> dict[str, Any]:
    return next(r for r in records if r["product_id"] == product and r["outlet_id"] == outlet)


def test_fixtures_store_each_records_text(sim: XSeriesSimulator, http: httpx.Client) -> None:
    records = assert_stored_texts_right(sim, http)
    assert len(records) == 3
    assert record(records, P1, OUT_B)["average_cost"] == 2.5


def test_direct_update_new_and_existing_records(sim: XSeriesSimulator, http: httpx.Client) -> None:
    before = record(assert_stored_texts_right(sim, http), P1, OUT_A)
    body = {"details": {"inventory": [{"outlet_id": OUT_A, "current_amount": 11.5},
                                      {"outlet_id": OUT_B, "current_amount": 3, "reorder_point": 2}]}}
    assert http.put(f"/api/2.1/products/{P2}", json=body).status_code == 200  # OUT_B: a new record
    assert http.put(f"/api/2.1/products/{P1}", json={"details": {"inventory": [
        {"outlet_id": OUT_A, "current_amount": 9}]}}).status_code == 200
    records = assert_stored_texts_right(sim, http)
    assert record(records, P2, OUT_A)["current_amount"] == 11.5
    assert record(records, P2, OUT_B)["reorder_point"] == 2
    after = record(records, P1, OUT_A)
    assert after["current_amount"] == 9 and after["version"] > before["version"]
    assert (after["reorder_point"], after["reorder_amount"]) == (5, 20)  # omitted: kept


def test_reorder_null_becomes_empty_string_and_minus_one_clears(sim: XSeriesSimulator, http: httpx.Client) -> None:
    line = {"outlet_id": OUT_A, "current_amount": 8, "reorder_point": None, "reorder_amount": -1}
    assert http.put(f"/api/2.1/products/{P1}", json={"details": {"inventory": [line]}}).status_code == 200
    rec = record(assert_stored_texts_right(sim, http), P1, OUT_A)
    assert rec["reorder_point"] == "" and rec["reorder_amount"] is None
    line = {"outlet_id": OUT_A, "current_amount": 8, "restock_level": 7.25}
    assert http.put(f"/api/2.1/products/{P1}", json={"details": {"inventory": [line]}}).status_code == 200
    rec = record(assert_stored_texts_right(sim, http), P1, OUT_A)
    assert rec["reorder_point"] == "" and rec["reorder_amount"] == 7.25


def _consignment(http: httpx.Client, **fields: Any) -> str:
    response = http.post("/api/2.0/consignments", json={"data": {"name": "c", **fields}})
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def _status(http: httpx.Client, cid: str, status: str) -> None:
    current = http.get(f"/api/2.0/consignments/{cid}").json()["data"]
    keep = {k: current[k] for k in ("name", "outlet_id", "type", "source_outlet_id") if current.get(k)}
    response = http.put(f"/api/2.0/consignments/{cid}", json={"data": {**keep, "status": status}})
    assert response.status_code == 200, response.text


def test_consignments_received_and_sent(sim: XSeriesSimulator, http: httpx.Client) -> None:
    supplier = _consignment(http, outlet_id=OUT_A, type="SUPPLIER")
    http.post(f"/api/2.0/consignments/{supplier}/products", json={"product_id": P1, "count": 10})
    _status(http, supplier, "SENT")
    http.put(f"/api/2.0/consignments/{supplier}/products/{P1}", json={"received": 7})  # auto-DISPATCHED
    _status(http, supplier, "RECEIVED")
    # a transfer creates the receiving record on its first stock (P2 has none at OUT_B)
    transfer = _consignment(http, outlet_id=OUT_B, source_outlet_id=OUT_A, type="OUTLET")
    http.post(f"/api/2.0/consignments/{transfer}/products", json={"product_id": P2, "count": 3})
    _status(http, transfer, "SENT")
    _status(http, transfer, "RECEIVED")
    records = assert_stored_texts_right(sim, http)
    assert record(records, P1, OUT_A)["current_amount"] == 15
    assert record(records, P2, OUT_A)["current_amount"] == 1
    assert record(records, P2, OUT_B)["current_amount"] == 3


def test_sales(sim: XSeriesSimulator, http: httpx.Client) -> None:
    before = sum(r["current_amount"] for r in assert_stored_texts_right(sim, http))
    sold = [sim.sell_one() for _ in range(5)]
    assert all(sold)
    assert sum(r["current_amount"] for r in assert_stored_texts_right(sim, http)) == before - 5


def test_retire_restore_and_delete(sim: XSeriesSimulator, http: httpx.Client) -> None:
    assert http.put(f"/api/2.1/products/{P1}", json={"common": {"track_inventory": False}}).status_code == 200
    records = assert_stored_texts_right(sim, http)
    assert record(records, P1, OUT_A)["deleted_at"] and record(records, P1, OUT_B)["deleted_at"]
    assert http.put(f"/api/2.1/products/{P1}", json={"common": {"track_inventory": True}}).status_code == 200
    records = assert_stored_texts_right(sim, http)
    assert record(records, P1, OUT_A)["deleted_at"] is None
    sim.db.execute("DELETE FROM xs_inventory WHERE product_id = ?", (P1,))
    assert {r["product_id"] for r in assert_stored_texts_right(sim, http)} == {P2}


def test_raw_writes_recompute_the_text(sim: XSeriesSimulator, http: httpx.Client) -> None:
    """Writers outside the handlers (the benchmark's bulk seeding, tests) need nothing special."""
    sim.db.execute("UPDATE xs_inventory SET current_amount = -2, reorder_point = '\"\"', version = version + 100"
                   " WHERE product_id = ?", (P2,))
    sim.db.execute("INSERT INTO xs_inventory (id, product_id, outlet_id, current_amount, version)"
                   " VALUES ('inv-x', ?, ?, 0.25, 5)", (P3, OUT_B))
    records = assert_stored_texts_right(sim, http)
    assert record(records, P2, OUT_A)["reorder_point"] == "" and records[0]["id"] == "inv-x"


def test_product_inventory_paths_use_the_stored_text(sim: XSeriesSimulator, http: httpx.Client) -> None:
    page = http.get(f"/api/2.0/products/{P1}/inventory")
    rows = sim.db.query(f"SELECT {INVENTORY_COLUMNS} FROM xs_inventory WHERE product_id = ? ORDER BY version", (P1,))
    assert page.content == JSONResponse(collection([inventory_body(r) for r in rows])).body
    assert http.get("/api/2026-01/inventory/p-1").content == page.content


# --- old state files ------------------------------------------------------------------------------


def _old_state_file(path: Path) -> None:
    """A state file as the round-4 simulator left it: no record_json, quirky values included."""
    XSeriesSimulator(state=path, fixtures=FIXTURES, rate_budget=0).close()
    conn = sqlite3.connect(path)
    rows = conn.execute(f"SELECT {INVENTORY_COLUMNS} FROM xs_inventory").fetchall()
    conn.executescript("DROP TABLE xs_inventory;" + OLD_INVENTORY_TABLE)
    conn.executemany(f"INSERT INTO xs_inventory ({INVENTORY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.execute(f"INSERT INTO xs_inventory ({INVENTORY_COLUMNS}) VALUES"
                 " ('inv-q', ?, ?, 1.5, '\"\"', 'null', 0, 9999999, '2024-01-01T00:00:00+00:00')", (P3, OUT_B))
    conn.commit()
    conn.close()


def test_an_old_state_file_is_upgraded_on_open(tmp_path: Path) -> None:
    path = tmp_path / "xs.sqlite"
    _old_state_file(path)
    before = sqlite3.connect(path)
    old_rows = before.execute(f"SELECT {INVENTORY_COLUMNS} FROM xs_inventory ORDER BY id").fetchall()
    before.close()
    assert len(old_rows) == 4
    # fixtures on the same file (as `serve --fixtures` restarts do) load after the upgrade
    sim = XSeriesSimulator(state=path, fixtures=FIXTURES, rate_budget=0)
    with httpx.Client(transport=sim.wsgi_transport(), base_url="http://x",
                      headers={"Authorization": f"Bearer {sim.token}"}) as client:
        records = assert_stored_texts_right(sim, client)
        assert len(records) == 4 and record(records, P3, OUT_B)["reorder_point"] == ""
        assert [tuple(r) for r in sim.db.query(f"SELECT {INVENTORY_COLUMNS} FROM xs_inventory ORDER BY id")] \
            == old_rows
        indexes = {r[0] for r in sim.db.query("SELECT name FROM sqlite_master WHERE tbl_name = 'xs_inventory'"
                                              " AND type = 'index'")}
        assert "xs_inventory_version" in indexes
        assert not sim.db.query("SELECT 1 FROM sqlite_master WHERE name LIKE '%before_upgrade%'")
        # and it keeps working for writes
        assert client.put(f"/api/2.1/products/{P3}", json={"details": {"inventory": [
            {"outlet_id": OUT_B, "current_amount": 2}]}}).status_code == 200
        assert record(assert_stored_texts_right(sim, client), P3, OUT_B)["current_amount"] == 2
    sim.close()
    # an upgraded (or new) file is left alone on the next open
    conn = sqlite3.connect(path, isolation_level=None)
    assert upgrade_inventory(conn) is False
    conn.close()
    XSeriesSimulator(state=path, rate_budget=0).close()


def test_a_table_with_other_stored_expressions_is_rebuilt(tmp_path: Path) -> None:
    """The expressions are part of the schema: a file made by code that wrote the text otherwise
    (an older or newer layout) gets this code's texts."""
    path = tmp_path / "xs.sqlite"
    XSeriesSimulator(state=path, fixtures=FIXTURES, rate_budget=0).close()
    conn = sqlite3.connect(path, isolation_level=None)
    sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'xs_inventory'").fetchone()[0]
    conn.execute("PRAGMA writable_schema = ON")  # stands in for a layout written by other code
    conn.execute("UPDATE sqlite_master SET sql = ? WHERE name = 'xs_inventory'",
                 (sql.replace("'{\"id\":'", "'{\"ID\":'"),))
    conn.execute("PRAGMA writable_schema = OFF")
    conn.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("UPDATE xs_inventory SET current_amount = current_amount")  # texts in the other layout
    other = conn.execute("SELECT count(*) FROM xs_inventory WHERE substr(record_json, 1, 5) = '{\"ID\"'").fetchone()
    assert other[0] == 3
    conn.close()
    sim = XSeriesSimulator(state=path, rate_budget=0)
    assert not sim.db.query("SELECT 1 FROM xs_inventory WHERE substr(record_json, 1, 5) = '{\"ID\"'")
    with httpx.Client(transport=sim.wsgi_transport(), base_url="http://x",
                      headers={"Authorization": f"Bearer {sim.token}"}) as client:
        assert len(assert_stored_texts_right(sim, client)) == 3
    sim.close()
