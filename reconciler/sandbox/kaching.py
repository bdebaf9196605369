"""Simulator of the Ka-ching stock import (seed 003, VENDORS.md section 4).

Documented (served exactly):

- ``POST /imports/stock`` with ``{"<stock_location_id>": {"<product_id>": <n>,
  "<product_id>": {"<variant_id>": <n>}}}``; ``?adjustment=true`` makes the values deltas.
- ``DELETE /imports/stock`` with the same body: the values must be there but are ignored; the
  products stop being stock-tracked at that location.
- Success: 200 ``{"status": "OK", "message": "Import of N stock value(s) initiated"}``, N = values parsed.
- Auth only by the query parameters ``account``, ``integration`` and ``apikey``.
- Products not yet stocked at a location are accepted; an unknown stock location is rejected.
- Ids are keys of Ka-ching's (Firebase) database, which cannot hold ``. / # $ * [ ]``
  (developers.ka-ching.dk/expenses-import-integration, the same database): a body with such a
  key is refused whole (how Ka-ching answers it is ASSUMED: 400, like any bad body).
- QUIRK: processing is asynchronous. The response only says the import was *initiated*; a
  background worker applies each value shortly after (``delay`` seconds, default 0.05; 0 applies
  it before answering) and writes one stock event (``external_reset`` / ``external_adjustment``)
  to the success log, or an entry to the failure log.

ASSUMPTIONS (see docs/sandboxes/kaching.md): error bodies ``{"status": "ERROR", "message": ...}``
with 400 for a bad body or an unknown location, 401 for a missing query parameter and 403 for a
wrong one; 429/503 for the fault switches.

There is no read API: stock is visible only through the TEST-ONLY ``GET /_sandbox/stock`` and the
TEST-ONLY ``GET /_sandbox/kaching/events`` (the queue's success and failure logs).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from reconciler.errors import ConfigError, Problem
from reconciler.sandbox._core import CONTROL_PREFIX, Simulator, VendorAnswer

DEFAULT_ACCOUNT = "sandbox-account"
DEFAULT_INTEGRATION = "sandbox-stock-queue"
DEFAULT_DELAY_S = 0.05

SCHEMA = """
CREATE TABLE IF NOT EXISTS locations (id TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS products (
    product TEXT NOT NULL, variant TEXT NOT NULL DEFAULT '', name TEXT NOT NULL,
    PRIMARY KEY (product, variant)
);
CREATE TABLE IF NOT EXISTS stock (
    location TEXT NOT NULL, product TEXT NOT NULL, variant TEXT NOT NULL DEFAULT '',
    quantity INTEGER NOT NULL, PRIMARY KEY (location, product, variant)
);
-- the import queue: persisted, so values accepted before a restart are still applied after it
CREATE TABLE IF NOT EXISTS queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, action TEXT NOT NULL, location TEXT NOT NULL,
    product TEXT NOT NULL, variant TEXT NOT NULL, value INTEGER NOT NULL, due REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, log TEXT NOT NULL, type TEXT NOT NULL,
    location TEXT NOT NULL, product TEXT NOT NULL, variant TEXT NOT NULL, value INTEGER,
    quantity INTEGER, message TEXT NOT NULL
);
"""

# The stock event each queued action becomes. "stock_removed" (DELETE) and "sale" are our names:
# Ka-ching documents only the two import event types.
EVENT_TYPES = {"reset": "external_reset", "adjustment": "external_adjustment", "delete": "stock_removed"}

Value = tuple[str, str, str, int]  # location, product, variant ('' for none), value
FORBIDDEN_KEY_CHARS = ".#$[]/*"


class KachingError(VendorAnswer):
    def body(self) -> dict[str, Any]:
        return {"status": "ERROR", "message": self.message}


class KachingSimulator(Simulator):
    kind = "kaching"
    default_token = "kaching-sandbox-apikey"
    schema = SCHEMA

    def __init__(
        self,
        *,
        account: str = DEFAULT_ACCOUNT,
        integration: str = DEFAULT_INTEGRATION,
        delay: float | str = DEFAULT_DELAY_S,
        **kwargs: Any,
    ) -> None:
        # str(): `-o account=123` arrives as a number, but query parameters are always text
        self.account = str(account)
        self.integration = str(integration)
        self.delay = float(delay)
        self._wake = threading.Event()
        self._stop = threading.Event()
        super().__init__(**kwargs)
        self._worker = threading.Thread(target=self._work, daemon=True, name="kaching-import-queue")
        self._worker.start()

    # --- vendor paths ---------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/imports/stock", self._import, methods=["POST", "DELETE"]),
            Route("/imports/stock/", self._import, methods=["POST", "DELETE"]),
            Route(CONTROL_PREFIX + "kaching/events", self._events, methods=["GET"]),
        ]

    def authenticate(self, request: Request) -> Response | None:
        params = request.query_params
        expected = {"account": self.account, "integration": self.integration, "apikey": self.token}
        missing = [name for name in expected if not params.get(name)]
        if missing:
            return KachingError(401, f"Missing query parameter(s): {', '.join(missing)}").response()
        if any(params[name] != value for name, value in expected.items()):
            return KachingError(403, "Access denied: account, integration or apikey is not valid").response()
        return None

    def rate_limited_response(self, request: Request) -> Response:
        return JSONResponse({"status": "ERROR", "message": "Too many requests"}, status_code=429,
                            headers={"Retry-After": str(self.faults.retry_after_s)})

    def server_error_response(self, request: Request) -> Response:
        return JSONResponse({"status": "ERROR", "message": "Internal error"}, status_code=503)

    async def _import(self, request: Request) -> Response:
        try:
            values = _parse_import(await request.body())
            self._check_locations({location for location, *_ in values})
        except KachingError as exc:
            return exc.response()
        if request.method == "DELETE":
            action = "delete"
        else:
            action = "adjustment" if request.query_params.get("adjustment", "").lower() == "true" else "reset"
        self._enqueue(action, values)
        return JSONResponse({"status": "OK", "message": f"Import of {len(values)} stock value(s) initiated"})

    async def _events(self, request: Request) -> Response:
        return JSONResponse({"test_only": True, "events": self.events()})

    def _check_locations(self, locations: set[str]) -> None:
        known = {row["id"] for row in self.db.query("SELECT id FROM locations")}
        unknown = sorted(locations - known)
        if unknown:
            raise KachingError(400, f"Unknown stock location: {', '.join(unknown)}")

    # --- the asynchronous import queue ----------------------------------------------------

    def _enqueue(self, action: str, values: list[Value]) -> None:
        due = time.time() + self.delay
        with self.db.transaction() as conn:
            conn.executemany(
                "INSERT INTO queue (action, location, product, variant, value, due) VALUES (?, ?, ?, ?, ?, ?)",
                [(action, *value, due) for value in values],
            )
        if self.delay <= 0:
            self.process_queue()  # delay 0: synchronous, for tests that do not exercise the quirk
        else:
            self._wake.set()

    def _work(self) -> None:
        while not self._stop.is_set():
            wait = self.process_queue()
            self._wake.wait(timeout=wait)
            self._wake.clear()

    def process_queue(self) -> float:
        """Apply every queued value that is due; seconds until the next one (or an idle poll)."""
        if self._stop.is_set():
            return 1.0
        now = time.time()
        first = self.db.query("SELECT MIN(due) AS due FROM queue")[0]["due"]
        if first is None or first > now:  # idle: no write transaction just to find nothing
            return 1.0 if first is None else max(0.001, first - now)
        with self.db.transaction() as conn:
            for row in conn.execute("SELECT * FROM queue WHERE due <= ? ORDER BY seq", (now,)).fetchall():
                self._apply(conn, row)
                conn.execute("DELETE FROM queue WHERE seq = ?", (row["seq"],))
            nxt = conn.execute("SELECT MIN(due) FROM queue").fetchone()[0]
        return 1.0 if nxt is None else max(0.001, nxt - now)

    def _apply(self, conn: Any, row: Any) -> None:
        key = (row["location"], row["product"], row["variant"])
        current = conn.execute(
            "SELECT quantity FROM stock WHERE location = ? AND product = ? AND variant = ?", key
        ).fetchone()
        action, value = row["action"], row["value"]
        if action == "delete":
            if current is None:
                self._log(conn, "failure", "stock_removed", key, value, None, "Product has no stock record at this location")
                return
            conn.execute("DELETE FROM stock WHERE location = ? AND product = ? AND variant = ?", key)
            self._log(conn, "success", "stock_removed", key, value, None, "Stock tracking removed")
            return
        quantity = value if action == "reset" or current is None else current["quantity"] + value
        conn.execute(
            "INSERT INTO stock (location, product, variant, quantity) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(location, product, variant) DO UPDATE SET quantity = excluded.quantity",
            (*key, quantity),
        )
        self._log(conn, "success", EVENT_TYPES[action], key, value, quantity, "Stock imported")

    @staticmethod
    def _log(conn: Any, log: str, type_: str, key: tuple[str, str, str], value: int | None,
             quantity: int | None, message: str) -> None:
        conn.execute(
            "INSERT INTO events (time, log, type, location, product, variant, value, quantity, message) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (time.time(), log, type_, *key, value, quantity, message),
        )

    def events(self) -> list[dict[str, Any]]:
        """TEST-ONLY: the success and failure logs, oldest first."""
        return [
            {"seq": row["seq"], "time": row["time"], "log": row["log"], "type": row["type"],
             "location": row["location"], "item": _item(row["product"], row["variant"]),
             "value": row["value"], "quantity": row["quantity"], "message": row["message"]}
            for row in self.db.query("SELECT * FROM events ORDER BY seq")
        ]

    def pending(self) -> int:
        """How many accepted values the worker has not applied yet."""
        return self.db.query("SELECT COUNT(*) AS n FROM queue")[0]["n"]

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._worker.join(timeout=5)
        super().close()

    # --- fixtures, inspection, sales ------------------------------------------------------

    def load_fixtures(self, fixtures: Mapping[str, Any]) -> None:
        """Adds locations and products; stock only for positions without a record yet."""
        with self.db.transaction() as conn:
            for loc in fixtures.get("locations") or []:
                conn.execute("INSERT OR REPLACE INTO locations (id, name) VALUES (?, ?)",
                             (str(loc["id"]), str(loc.get("name") or loc["id"])))
            for index, item in enumerate(fixtures.get("items") or []):
                product, variant = _fixture_id(item.get("id"), f"items[{index}].id")
                conn.execute("INSERT OR REPLACE INTO products (product, variant, name) VALUES (?, ?, ?)",
                             (product, variant, str(item.get("name") or product)))
            for index, record in enumerate(fixtures.get("stock") or []):
                product, variant = _fixture_id(record.get("item"), f"stock[{index}].item")
                conn.execute("INSERT OR IGNORE INTO stock (location, product, variant, quantity) VALUES (?, ?, ?, ?)",
                             (str(record["location"]), product, variant, int(record.get("quantity", 0))))

    def inspect_stock(self) -> list[dict[str, Any]]:
        return [
            {"location": row["location"], "item": _item(row["product"], row["variant"]), "quantity": row["quantity"]}
            for row in self.db.query("SELECT * FROM stock ORDER BY location, product, variant")
        ]

    def sell_one(self) -> dict[str, Any] | None:
        with self.db.transaction() as conn:
            rows = conn.execute("SELECT * FROM stock WHERE quantity > 0 ORDER BY location, product, variant").fetchall()
            if not rows:
                return None
            row = self.rng.choice(rows)
            key = (row["location"], row["product"], row["variant"])
            conn.execute("UPDATE stock SET quantity = quantity - 1 WHERE location = ? AND product = ? AND variant = ?", key)
            self._log(conn, "success", "sale", key, -1, row["quantity"] - 1, "Sold one unit")
        return {"location": row["location"], "item": _item(row["product"], row["variant"]), "quantity": row["quantity"] - 1}


def _parse_import(raw: bytes) -> list[Value]:
    """Every value in the body, validated before anything is queued."""
    try:
        body = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise KachingError(400, f"Request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise KachingError(400, "Body must be an object of stock locations: {\"<stock_location_id>\": {\"<product_id>\": <n>}}")
    values: list[Value] = []
    bad = _bad_keys(body)
    if bad:
        raise KachingError(400, f"Invalid key(s) {', '.join(bad)}: ids cannot contain . / # $ * [ ]")
    for location, products in body.items():
        if not isinstance(products, dict):
            raise KachingError(400, f"Stock location {location}: value must be an object of products")
        for product, entry in products.items():
            variants = entry if isinstance(entry, dict) else {"": entry}
            for variant, value in variants.items():
                if isinstance(value, bool) or not isinstance(value, int):
                    where = f"product {product}" + (f" variant {variant}" if variant else "")
                    raise KachingError(400, f"Stock location {location}, {where}: the stock value must be an integer")
                values.append((location, product, variant, value))
    return values


def _bad_keys(body: Mapping[str, Any]) -> list[str]:
    """Every location, product and variant key of the body that Ka-ching cannot store."""
    keys = set(body)
    for products in body.values():
        if isinstance(products, dict):
            keys.update(products)
            keys.update(v for entry in products.values() if isinstance(entry, dict) for v in entry)
    return sorted(k for k in keys if any(c in FORBIDDEN_KEY_CHARS for c in k))


def _item(product: str, variant: str) -> dict[str, str]:
    return {"product": product, "variant": variant} if variant else {"product": product}


def _fixture_id(value: Any, where: str) -> tuple[str, str]:
    if isinstance(value, str) and value:
        return value, ""
    if isinstance(value, Mapping) and isinstance(value.get("product"), str) and value["product"]:
        return value["product"], str(value.get("variant") or "")
    raise ConfigError([Problem(f"{where}: a Ka-ching item id must be a product id or "
                               f"{{product: <id>, variant: <id>}}, not {value!r}", "fixtures")])


SIMULATOR = KachingSimulator
