"""Simulator of the Run Free Inventory Update API (seed 004, VENDORS.md section 5).

Documented (served exactly): ``POST /api/product/inventory`` with ``Authorization: Bearer <token>``,
one item per request, identified by ``upc`` or by ``sku`` + ``size`` + ``width``; ``store`` and
``quantity`` (absolute, units in stock now) are required. A missing field gets
``{"error": "Missing required field: <name>"}`` (the seed shows ``sku``: a body without ``upc``
falls back to the sku+size+width lookup and names the first of those that is missing).

Run Free documents no HTTP status for its errors and no success body, so both are switches
(see docs/sandboxes/runfree.md), and the connector is tested against every setting:

- ``error_status`` "200" (the default, the strict reading: the error comes back with 200, so a
  client that trusts the status records a failure as applied) or "4xx" (ASSUMED codes: 400 for a
  missing or bad field, 401 for a bad or missing token, 404 for an unknown product or store).
  Every error body is ``{"error": ...}`` either way.
- ``success_body`` "relay" (the default: 200 ``{"success": true}``, the shape of Run Free's Relay
  API), "empty" (200 with no body) or "unknown" (200 ``{"status": "queued"}``, a shape no client
  can recognise).
- ``empty_width`` "refuse" (the default: the article lists ``width`` among the required lookup
  fields, so ``"width": ""`` is "Missing required field: width") or "accept" (an empty width
  finds a product without one, as Run Free's Relay API examples write apparel).

There is no read API: stock is visible only through the TEST-ONLY ``GET /_sandbox/stock``, whose
records name the item as ``{"upc": ...}``.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from reconciler.errors import ConfigError, Problem
from reconciler.sandbox._core import REFUSED_SCOPE_KEY, Simulator, VendorAnswer

SCHEMA = """
CREATE TABLE IF NOT EXISTS stores (code TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS products (
    upc TEXT PRIMARY KEY, sku TEXT NOT NULL, size TEXT NOT NULL, width TEXT NOT NULL, name TEXT NOT NULL,
    UNIQUE (sku, size, width)
);
CREATE TABLE IF NOT EXISTS stock (
    store TEXT NOT NULL, upc TEXT NOT NULL, quantity INTEGER NOT NULL, PRIMARY KEY (store, upc)
);
CREATE TABLE IF NOT EXISTS sales (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, store TEXT NOT NULL, upc TEXT NOT NULL, quantity_after INTEGER NOT NULL
);
"""

LOOKUP_FIELDS = ("sku", "size", "width")


class RunFreeError(VendorAnswer):
    """Run Free's error answer, ``{"error": message}``."""


ERROR_STATUSES = ("200", "4xx")
SUCCESS_BODIES = ("relay", "empty", "unknown")
EMPTY_WIDTHS = ("refuse", "accept")


class RunFreeSimulator(Simulator):
    kind = "runfree"
    default_token = "runfree-sandbox-token"
    schema = SCHEMA

    def __init__(self, *, error_status: str | int = "200", success_body: str = "relay", empty_width: str = "refuse",
                 **kwargs: Any) -> None:
        # str(): `-o error_status=200` arrives as a number
        self.error_status, self.success_body, self.empty_width = str(error_status), str(success_body), str(empty_width)
        for name, value, allowed in (("error_status", self.error_status, ERROR_STATUSES),
                                     ("success_body", self.success_body, SUCCESS_BODIES),
                                     ("empty_width", self.empty_width, EMPTY_WIDTHS)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
        super().__init__(**kwargs)

    def _error(self, exc: RunFreeError) -> Response:
        status = 200 if self.error_status == "200" else exc.status
        return JSONResponse(exc.body(), status_code=status)

    def _success(self) -> Response:
        if self.success_body == "empty":
            return Response(status_code=200)
        if self.success_body == "unknown":
            return JSONResponse({"status": "queued"})
        return JSONResponse({"success": True})

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/product/inventory", self._update, methods=["POST"]),
            Route("/api/product/inventory/", self._update, methods=["POST"]),
        ]

    def authenticate(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip() == self.token:
            return None
        return self._error(RunFreeError(401, "Invalid or missing Bearer token"))

    def rate_limited_response(self, request: Request) -> Response:
        return JSONResponse({"error": "Too Many Requests"}, status_code=429,
                            headers={"Retry-After": str(self.faults.retry_after_s)})

    def server_error_response(self, request: Request) -> Response:
        return JSONResponse({"error": "Internal Server Error"}, status_code=500)

    async def _update(self, request: Request) -> Response:
        try:
            body = _parse_body(await request.body())
            store, quantity = _required(body)
            upc = self._lookup(body)
            if not self.db.query("SELECT 1 FROM stores WHERE code = ?", (store,)):
                raise RunFreeError(404, f"Store not found: {store}")
        except RunFreeError as exc:
            request.scope[REFUSED_SCOPE_KEY] = True
            return self._error(exc)
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO stock (store, upc, quantity) VALUES (?, ?, ?) "
                "ON CONFLICT(store, upc) DO UPDATE SET quantity = excluded.quantity",
                (store, upc, quantity),
            )
        return self._success()

    def _lookup(self, body: Mapping[str, Any]) -> str:
        """The product's UPC, found by ``upc`` or else by sku + size + width."""
        if _present(body.get("upc")):
            upc = _text(body, "upc")
            if not self.db.query("SELECT 1 FROM products WHERE upc = ?", (upc,)):
                raise RunFreeError(404, f"Product not found: upc {upc}")
            return upc
        for name in LOOKUP_FIELDS:
            empty_ok = name == "width" and self.empty_width == "accept" and body.get(name) == ""
            if not (_present(body.get(name)) or empty_ok):
                raise RunFreeError(400, f"Missing required field: {name}")
        key = tuple(_text(body, name) for name in LOOKUP_FIELDS)
        rows = self.db.query("SELECT upc FROM products WHERE sku = ? AND size = ? AND width = ?", key)
        if not rows:
            raise RunFreeError(404, f"Product not found: sku {key[0]}, size {key[1]}, width {key[2]}")
        return str(rows[0]["upc"])

    # --- fixtures, inspection, sales ------------------------------------------------------

    def load_fixtures(self, fixtures: Mapping[str, Any]) -> None:
        """Adds stores and products; stock only for positions without a record yet. Items carry
        all of ``upc``, ``sku``, ``size`` and ``width``; stock records may name an item either way."""
        with self.db.transaction() as conn:
            for loc in fixtures.get("locations") or []:
                conn.execute("INSERT OR REPLACE INTO stores (code, name) VALUES (?, ?)",
                             (str(loc["id"]), str(loc.get("name") or loc["id"])))
            for index, item in enumerate(fixtures.get("items") or []):
                ids = item.get("id")
                # width may be "" (apparel without one); the others must be there
                if not (isinstance(ids, Mapping) and all(_present(ids.get(k)) for k in ("upc", "sku", "size"))
                        and isinstance(ids.get("width"), (str, int))):
                    raise _fixture_problem(f"items[{index}].id", ids, "a mapping with upc, sku, size and width")
                conn.execute("INSERT OR REPLACE INTO products (upc, sku, size, width, name) VALUES (?, ?, ?, ?, ?)",
                             (*(str(ids[k]) for k in ("upc", *LOOKUP_FIELDS)), str(item.get("name") or ids["sku"])))
            for index, record in enumerate(fixtures.get("stock") or []):
                upc = _fixture_upc(conn, record.get("item"), f"stock[{index}].item")
                conn.execute("INSERT OR IGNORE INTO stock (store, upc, quantity) VALUES (?, ?, ?)",
                             (str(record["location"]), upc, int(record.get("quantity", 0))))

    def inspect_stock(self) -> list[dict[str, Any]]:
        return [
            {"location": row["store"], "item": {"upc": row["upc"]}, "quantity": row["quantity"]}
            for row in self.db.query("SELECT * FROM stock ORDER BY store, upc")
        ]

    def sell_one(self) -> dict[str, Any] | None:
        with self.db.transaction() as conn:
            rows = conn.execute("SELECT * FROM stock WHERE quantity > 0 ORDER BY store, upc").fetchall()
            if not rows:
                return None
            row = self.rng.choice(rows)
            conn.execute("UPDATE stock SET quantity = quantity - 1 WHERE store = ? AND upc = ?", (row["store"], row["upc"]))
            conn.execute("INSERT INTO sales (store, upc, quantity_after) VALUES (?, ?, ?)",
                         (row["store"], row["upc"], row["quantity"] - 1))
        return {"location": row["store"], "item": {"upc": row["upc"]}, "quantity": row["quantity"] - 1}


def _parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise RunFreeError(400, f"Request body is not valid JSON: {exc}") from exc
    if isinstance(body, list):
        raise RunFreeError(400, "One item per request: the body must be a single JSON object, not an array")
    if not isinstance(body, dict):
        raise RunFreeError(400, "The body must be a JSON object with store, quantity and upc (or sku, size, width)")
    return body


def _required(body: Mapping[str, Any]) -> tuple[str, int]:
    for name in ("store", "quantity"):
        if not _present(body.get(name)):
            raise RunFreeError(400, f"Missing required field: {name}")
    quantity = body["quantity"]
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise RunFreeError(400, "Invalid field: quantity must be an integer")
    if quantity < 0:
        raise RunFreeError(400, "Invalid field: quantity must not be negative")
    return _text(body, "store"), quantity


def _present(value: Any) -> bool:
    return value is not None and value != ""


def _text(body: Mapping[str, Any], name: str) -> str:
    """Codes are strings in the seed ("3", "34"); plain numbers are accepted as their digits."""
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RunFreeError(400, f"Invalid field: {name} must be a string")
    return str(value)


def _fixture_upc(conn: Any, value: Any, where: str) -> str:
    if isinstance(value, Mapping) and _present(value.get("upc")):
        row = conn.execute("SELECT upc FROM products WHERE upc = ?", (str(value["upc"]),)).fetchone()
    elif isinstance(value, Mapping) and _present(value.get("sku")) and _present(value.get("size")) and "width" in value:
        row = conn.execute("SELECT upc FROM products WHERE sku = ? AND size = ? AND width = ?",
                           tuple(str(value[k]) for k in LOOKUP_FIELDS)).fetchone()
    else:
        raise _fixture_problem(where, value, "{upc: ...} or {sku, size, width}")
    if row is None:
        raise _fixture_problem(where, value, "an item listed under items")
    return str(row[0])


def _fixture_problem(where: str, value: Any, expected: str) -> ConfigError:
    return ConfigError([Problem(f"{where}: expected {expected}, got {value!r}", "fixtures")])


SIMULATOR = RunFreeSimulator
