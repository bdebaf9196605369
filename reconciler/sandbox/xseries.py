"""Lightspeed Retail X-Series (formerly Vend) simulator.

Serves the parts of API 2.0/2.1 that stock reconciliation touches: outlets and products (catalog),
the version-cursor inventory read, the direct update ``PUT /api/2.1/products/{id}`` (seed 000,
with its null-becomes-"" quirk), consignments (stock orders, transfers, returns) with their stock
effects, and the 5-minute request budget with an HTTP-date ``Retry-After``.
Coverage and assumptions: docs/sandboxes/xseries.md.
"""

from __future__ import annotations

import hmac
import json
import os
import sqlite3
import time
import uuid
from typing import Any, Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from reconciler.errors import ConfigError, Problem
from reconciler.sandbox._core import Simulator
from reconciler.sandbox._oauth import with_oauth
from reconciler.sandbox._xseries_common import (
    EMPTY_PAGE,
    INVENTORY_COLUMNS,
    SCHEMA,
    Cursor,
    RateBudget,
    add_family_column,
    XsError,
    collection,
    http_date,
    inventory_page_sql,
    iso,
    json_body,
    next_version,
    number,
    page_parts,
    upgrade_inventory,
)
from reconciler.sandbox._xseries_adjustments import ADJUSTMENTS_SCHEMA, AdjustmentAPI
from reconciler.sandbox._xseries_consignments import ConsignmentAPI, switch_value
from reconciler.sandbox._xseries_dated import DatedAPI
from reconciler.sandbox import _xseries_products as catalogue

Handler = Callable[[Request], Awaitable[Response]]

DEFAULT_RATE_BUDGET = 350  # 300 x 1 register + 50, per 300 s window
RATE_BUDGET_ENV = "RECONCILER_XSERIES_RATE_BUDGET"
_KEEP = object()  # an omitted reorder key: keep the stored value
_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
MMAP_BYTES = 1 << 30


class XSeriesSimulator(Simulator):
    """The X-Series sandbox. ``rate_budget`` requests per ``rate_window_s`` (0 disables it)."""

    kind = "xseries"
    default_token = "xseries-sandbox-token"
    schema = SCHEMA + ADJUSTMENTS_SCHEMA + catalogue.CODES_SCHEMA

    @property
    def app(self) -> Any:
        return with_oauth(self, super().app)  # the vendor's token endpoints (sandbox/_oauth.py)

    def __init__(
        self,
        *,
        state: str | os.PathLike[str] | None = None,
        token: str | None = None,
        fixtures: Mapping[str, Any] | None = None,
        seed: int = 0,
        rate_budget: int | str | None = None,
        rate_window_s: float | str = 300.0,
        clock: Callable[[], float] | None = None,
        oldest_version: str = "2026-01",
        open_line_received: str = "drop",
        partial_status_put: str = "reject",
        scopes: str | None = None,
        stocktake_sales: str = "variance",
        stocktake_delay_s: float | str = 0.3,
    ) -> None:
        # Set before the base class loads fixtures, which needs the clock.
        if clock is not None and not callable(clock):
            raise ConfigError([Problem("the xseries sandbox option clock must be a function", "options")])
        self.clock = clock or time.time
        if rate_budget is None:
            rate_budget = os.environ.get(RATE_BUDGET_ENV, DEFAULT_RATE_BUDGET)
        # `sandbox serve -o rate_budget=N` passes strings.
        budget = _option_number(rate_budget, "rate_budget", int)
        self.budget = RateBudget(int(budget), _option_number(rate_window_s, "rate_window_s", float), self.clock)
        self.consignments = ConsignmentAPI(self, switch_value("open_line_received", open_line_received),
                                           switch_value("partial_status_put", partial_status_put),
                                           {"sales": stocktake_sales, "delay_s": stocktake_delay_s})
        # The token's OAuth scopes (space or comma separated); None: every scope.
        self.scopes = None if scopes is None else frozenset(scopes.replace(",", " ").split())
        self.adjustments = AdjustmentAPI(self)
        try:
            self.dated = DatedAPI(self, oldest_version)
        except ValueError as exc:
            raise ConfigError([Problem(f"the xseries sandbox option {exc}", "options")]) from exc
        super().__init__(state=state, token=token, fixtures=None, seed=seed)
        # A state file written by older code gets the stored inventory texts before anything else.
        with self.db.transaction() as conn:
            upgrade_inventory(conn)
            add_family_column(conn)
        # Pages are read through the OS's file cache instead of being copied into SQLite's own
        # (2 MB) cache: a full read of a million records touches ~600 MB (docs/performance.md).
        self.db.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        if fixtures:
            self.load_fixtures(fixtures)

    # --- plumbing ---------------------------------------------------------------------------

    def version_step(self, conn: sqlite3.Connection) -> int:
        """Next global version: steps of 1..5 so clients cannot assume consecutive numbers."""
        return next_version(conn, self.rng.randint(1, 5))

    def now(self) -> str:
        return iso(self.clock())

    def _endpoint(self, handler: Handler) -> Handler:
        async def run(request: Request) -> Response:
            try:
                response = await handler(request)
            except XsError as exc:
                response = JSONResponse({"error": exc.message}, status_code=exc.status)
            response.headers.update(self.budget.headers())
            return response

        return run

    def _routes_for(self, path: str, handler: Handler, methods: list[str]) -> list[BaseRoute]:
        endpoint = self._endpoint(handler)
        return [Route(path, endpoint, methods=methods), Route(path + "/", endpoint, methods=methods)]

    def routes(self) -> list[BaseRoute]:
        table: list[tuple[str, Handler, list[str]]] = [
            ("/api/2.0/outlets", self._list_outlets, ["GET"]),
            ("/api/2.0/outlets/{outlet_id}", self._get_outlet, ["GET"]),
            ("/api/2.0/products", self._list_products, ["GET"]),
            ("/api/2.0/products/{product_id}", self._get_product, ["GET"]),
            ("/api/2.0/products/{product_id}", self._delete_product, ["DELETE"]),
            ("/api/2.0/products/{product_id}/inventory", self.product_inventory, ["GET"]),
            ("/api/2.0/inventory", self._list_inventory, ["GET"]),
            ("/api/2.1/products/{product_id}", self._put_product, ["PUT"]),
            *self.consignments.route_table(),
            *self.adjustments.route_table(),
            *self.dated.route_table(),
        ]
        routes: list[BaseRoute] = [Route("/_sandbox/rate", self._rate_control, methods=["GET", "PUT", "POST"])]
        for path, handler, methods in table:
            routes.extend(self._routes_for(path, handler, methods))
        routes.append(Route("/{path:path}", self._endpoint(self._not_found), methods=_ALL_METHODS))
        return routes

    async def _not_found(self, request: Request) -> Response:
        raise XsError(404, f"Not Found: {request.method} {request.url.path} is not an X-Series endpoint")

    async def _rate_control(self, request: Request) -> Response:
        """TEST-ONLY: read or change the request budget (``limit``, ``window_s``, ``reset``)."""
        if request.method != "GET":
            try:
                self.budget.configure(json.loads(await request.body() or b"{}"))
            except (ValueError, TypeError) as exc:
                return JSONResponse({"error": f"bad rate control body: {exc}"}, status_code=400)
        return JSONResponse(self.budget.snapshot())

    # --- auth, 429, 5xx ---------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self.token.encode()):
            return JSONResponse({"error": "Access token is not valid"}, status_code=401)
        if not self.budget.take():
            return self._too_many(self.budget.resets_at)
        return None

    def _too_many(self, until: float) -> Response:
        when = http_date(until)
        limits = {"limit": self.budget.limit, "remaining": 0, "window_s": self.budget.window_s, "reset": when}
        return JSONResponse(
            {"error": "Too Many Requests", "limits": limits, "retry-after": when},
            status_code=429,
            headers={"Retry-After": when, "X-RateLimit-Limit": str(self.budget.limit), "X-RateLimit-Remaining": "0"},
        )

    def rate_limited_response(self, request: Request) -> Response:
        return self._too_many(self.clock() + self.faults.retry_after_s)

    def server_error_response(self, request: Request) -> Response:
        return JSONResponse({"error": "Internal Server Error"}, status_code=500)

    # --- fixtures, inspection, sales ----------------------------------------------------------

    def load_fixtures(self, fixtures: Mapping[str, Any]) -> None:
        """Seed records that do not exist yet, so restarting with the same fixtures keeps state."""
        problems = _fixture_problems(fixtures)
        if problems:
            raise ConfigError(problems)
        stamp = self.now()
        with self.db.transaction() as conn:
            for i, loc in enumerate(fixtures.get("locations") or []):
                outlet_id = _fixture_id(loc.get("id"), f"locations[{i}].id")
                conn.execute(
                    "INSERT OR IGNORE INTO xs_outlets (id, name, version) VALUES (?, ?, ?)",
                    (outlet_id, str(loc.get("name") or outlet_id), self.version_step(conn)),
                )
            for i, item in enumerate(fixtures.get("items") or []):
                product_id = _fixture_id(item.get("id"), f"items[{i}].id")
                conn.execute(
                    "INSERT OR IGNORE INTO xs_products (id, sku, name, track_inventory, created_at, updated_at,"
                    " version, variant_parent_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (product_id, item.get("sku"), str(item.get("name") or product_id),
                     int(bool(item.get("track_inventory", True))), stamp, stamp, self.version_step(conn),
                     item.get("variant_parent_id")),
                )
                catalogue.load_codes(conn, product_id, item)
            self.adjustments.load_custom_reasons(conn, list(fixtures.get("custom_reasons") or []))
            for i, entry in enumerate(fixtures.get("stock") or []):
                self._load_stock_fixture(conn, i, entry)

    def _load_stock_fixture(self, conn: sqlite3.Connection, i: int, entry: Mapping[str, Any]) -> None:
        outlet_id = _fixture_id(entry.get("location"), f"stock[{i}].location")
        product_id = _fixture_id(entry.get("item"), f"stock[{i}].item")
        problems = []
        if not conn.execute("SELECT 1 FROM xs_outlets WHERE id = ?", (outlet_id,)).fetchone():
            problems.append(Problem(f"stock[{i}].location {outlet_id!r} is not a known outlet", "fixtures",
                                    hint="Add it to locations."))
        if not conn.execute("SELECT 1 FROM xs_products WHERE id = ?", (product_id,)).fetchone():
            problems.append(Problem(f"stock[{i}].item {product_id!r} is not a known product", "fixtures",
                                    hint="Add it to items."))
        if problems:
            raise ConfigError(problems)
        conn.execute(
            "INSERT OR IGNORE INTO xs_inventory (id, product_id, outlet_id, current_amount, reorder_point,"
            " reorder_amount, average_cost, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (str(uuid.uuid4()), product_id, outlet_id, float(entry.get("quantity", 0)),
             json.dumps(entry.get("reorder_point")), json.dumps(entry.get("reorder_amount")),
             float(entry.get("average_cost", 0)), self.version_step(conn)),
        )

    def inspect_stock(self) -> list[dict[str, Any]]:
        rows = self.db.query(
            "SELECT * FROM xs_inventory WHERE deleted_at IS NULL ORDER BY outlet_id, product_id"
        )
        return [
            {
                "location": r["outlet_id"],
                "item": r["product_id"],
                "quantity": number(r["current_amount"]),
                "reorder_point": json.loads(r["reorder_point"]),
                "reorder_amount": json.loads(r["reorder_amount"]),
            }
            for r in rows
        ]

    def sell_one(self) -> dict[str, Any] | None:
        with self.db.transaction() as conn:
            rows = conn.execute(
                "SELECT i.id, i.product_id, i.outlet_id, i.current_amount FROM xs_inventory i"
                " JOIN xs_products p ON p.id = i.product_id"
                " WHERE i.current_amount >= 1 AND i.deleted_at IS NULL AND p.track_inventory = 1"
                " ORDER BY i.id"
            ).fetchall()
            if not rows:
                return None
            row = self.rng.choice(rows)
            conn.execute(
                "UPDATE xs_inventory SET current_amount = current_amount - 1, version = ? WHERE id = ?",
                (self.version_step(conn), row["id"]),
            )
        return {"location": row["outlet_id"], "item": row["product_id"], "quantity": number(row["current_amount"] - 1)}

    def adjust_stock(self, conn: sqlite3.Connection, product_id: str, outlet_id: str, delta: float) -> None:
        """A movement's stock effect (consignments); creates the record on first stock."""
        tracked = conn.execute("SELECT track_inventory FROM xs_products WHERE id = ?", (product_id,)).fetchone()
        if not tracked or not tracked[0] or delta == 0:
            return
        version = self.version_step(conn)
        changed = conn.execute(
            "UPDATE xs_inventory SET current_amount = current_amount + ?, version = ?"
            " WHERE product_id = ? AND outlet_id = ?",
            (delta, version, product_id, outlet_id),
        ).rowcount
        if not changed:
            conn.execute(
                "INSERT INTO xs_inventory (id, product_id, outlet_id, current_amount, version) VALUES (?, ?, ?, ?, ?)",
                (str(uuid.uuid4()), product_id, outlet_id, delta, version),
            )

    # --- catalog ------------------------------------------------------------------------------

    def require_scope(self, scope: str) -> None:
        """403 when the token lacks ``scope`` (x-series-api.lightspeedhq.com/docs/scopes; the
        answer's body is ASSUMED: the docs do not show it)."""
        if self.scopes is not None and scope not in self.scopes:
            raise XsError(403, f"Forbidden: this token lacks the {scope} scope")

    def product_row(self, product_id: str) -> sqlite3.Row | None:
        rows = self.db.query("SELECT * FROM xs_products WHERE id = ? AND deleted_at IS NULL", (product_id,))
        return rows[0] if rows else None

    def outlet_exists(self, outlet_id: Any) -> bool:
        return bool(
            isinstance(outlet_id, str)
            and self.db.query("SELECT 1 FROM xs_outlets WHERE id = ? AND deleted_at IS NULL", (outlet_id,))
        )

    async def _list_outlets(self, request: Request) -> Response:
        cursor = Cursor.from_request(request)
        where, params = cursor.where()
        rows = self.db.query(
            f"SELECT * FROM xs_outlets WHERE {where} AND deleted_at IS NULL ORDER BY version LIMIT ?",
            [*params, cursor.page_size],
        )
        return JSONResponse(collection([_outlet_body(r) for r in rows]))

    async def _get_outlet(self, request: Request) -> Response:
        rows = self.db.query("SELECT * FROM xs_outlets WHERE id = ?", (request.path_params["outlet_id"],))
        if not rows:
            raise XsError(404, f"Outlet {request.path_params['outlet_id']} not found")
        return JSONResponse({"data": _outlet_body(rows[0])})

    async def _list_products(self, request: Request) -> Response:
        sku = request.query_params.get("sku")
        if sku is not None:  # the spec: every other parameter is ignored when sku is given
            ids = catalogue.product_ids_by_code(self.db, sku)
            rows = [row for pid in ids if (row := self.product_row(pid)) is not None]
            return JSONResponse(collection(catalogue.with_catalogue_fields(self.db, [product_body(r) for r in rows])))
        cursor = Cursor.from_request(request)
        where, params = cursor.where()
        if request.query_params.get("deleted", "").lower() not in ("true", "1"):
            where += " AND deleted_at IS NULL"
        rows = self.db.query(
            f"SELECT * FROM xs_products WHERE {where} ORDER BY version LIMIT ?",
            [*params, cursor.page_size],
        )
        return JSONResponse(collection(catalogue.with_catalogue_fields(self.db, [product_body(r) for r in rows])))

    async def _get_product(self, request: Request) -> Response:
        row = self._require_product(request.path_params["product_id"])
        return JSONResponse({"data": catalogue.with_catalogue_fields(self.db, [product_body(row)])[0]})

    async def _delete_product(self, request: Request) -> Response:
        self.require_scope("products:write")
        product_id = request.path_params["product_id"]
        self._require_product(product_id)
        with self.db.transaction() as conn:
            conn.execute("UPDATE xs_products SET deleted_at = ?, updated_at = ?, version = ? WHERE id = ?",
                         (self.now(), self.now(), self.version_step(conn), product_id))
        return Response(status_code=204)

    def _require_product(self, product_id: str) -> sqlite3.Row:
        row = self.product_row(product_id)
        if row is None:
            raise XsError(404, f"Product {product_id} not found")
        return row

    # --- inventory read ----------------------------------------------------------------------

    def inventory_page(self, request: Request, product_id: str | None) -> Response:
        cursor = Cursor.from_request(request)
        where, params = cursor.where()
        if product_id is not None:
            where, params = where + " AND product_id = ?", [*params, product_id]
        count, needs_py, records, low, high = self.db.query(inventory_page_sql(where), [*params, cursor.page_size])[0]
        if not count:
            return Response(EMPTY_PAGE, media_type="application/json")
        if not needs_py:
            return PartsResponse(page_parts(records, low, high), media_type="application/json")
        return self._inventory_page_py(where, [*params, cursor.page_size])

    def _inventory_page_py(self, where: str, params: list[Any]) -> Response:
        """The page built in Python, for pages SQLite cannot write exactly (see inventory_page_sql)."""
        rows = self.db.query(f"SELECT {INVENTORY_COLUMNS} FROM xs_inventory WHERE {where} ORDER BY version LIMIT ?",
                             params)
        return JSONResponse(collection([inventory_body(r) for r in rows]))

    async def _list_inventory(self, request: Request) -> Response:
        return self.inventory_page(request, None)

    async def product_inventory(self, request: Request) -> Response:
        product_id = request.path_params["product_id"]
        self._require_product(product_id)
        return self.inventory_page(request, product_id)

    # --- direct update (seed 000) ---------------------------------------------------------------

    async def _put_product(self, request: Request) -> Response:
        body = await json_body(request)
        if not isinstance(body, dict):
            raise XsError(400, "Request body must be a JSON object with a details.inventory array")
        product_id = request.path_params["product_id"]
        product = self._require_product(product_id)
        changes = self._parse_inventory(body.get("details"))
        track = _parse_track_inventory(body.get("common"))
        if changes and not (product["track_inventory"] if track is None else track):
            raise XsError(422, f"Product {product_id} does not track inventory; set common.track_inventory first")
        with self.db.transaction() as conn:
            for change in changes:
                self._write_inventory(conn, product_id, change)
            if track is not None:
                self._set_tracking(conn, product_id, track)
        row = self._require_product(product_id)
        inventory = self.db.query(
            "SELECT * FROM xs_inventory WHERE product_id = ? AND deleted_at IS NULL ORDER BY outlet_id", (product_id,)
        )
        return JSONResponse({"data": {**product_body(row), "inventory": [inventory_body(r) for r in inventory]}})

    def _parse_inventory(self, details: Any) -> list[dict[str, Any]]:
        """Validate every inventory element before anything is written."""
        if details is None:
            return []
        if not isinstance(details, dict):
            raise XsError(422, "details must be an object")
        items = details.get("inventory")
        if items is None:
            return []
        if not isinstance(items, list):
            raise XsError(422, "details.inventory must be an array")
        changes, seen = [], set()
        for i, item in enumerate(items):
            change = self._parse_inventory_item(i, item)
            if change["outlet_id"] in seen:
                raise XsError(422, f"details.inventory[{i}]: outlet_id {change['outlet_id']} appears twice")
            seen.add(change["outlet_id"])
            changes.append(change)
        return changes

    def _parse_inventory_item(self, i: int, item: Any) -> dict[str, Any]:
        where = f"details.inventory[{i}]"
        if not isinstance(item, dict):
            raise XsError(422, f"{where} must be an object")
        outlet_id = item.get("outlet_id")
        if not isinstance(outlet_id, str) or not outlet_id:
            raise XsError(422, f"{where}.outlet_id is required (a string)")
        if not self.outlet_exists(outlet_id):
            raise XsError(422, f"{where}.outlet_id {outlet_id} is not an outlet of this store")
        amount = item.get("current_amount")
        if not _is_number(amount):
            raise XsError(422, f"{where}.current_amount is required (a number), got {amount!r}")
        amounts = dict(item)
        if "restock_level" in amounts and "reorder_amount" not in amounts:
            amounts["reorder_amount"] = amounts["restock_level"]  # the seed's older name
        return {
            "outlet_id": outlet_id,
            "current_amount": float(amount),
            "reorder_point": _reorder_value(amounts, "reorder_point", where),
            "reorder_amount": _reorder_value(amounts, "reorder_amount", where),
        }

    def _write_inventory(self, conn: sqlite3.Connection, product_id: str, change: Mapping[str, Any]) -> None:
        version = self.version_step(conn)
        key = (product_id, change["outlet_id"])
        existing = conn.execute("SELECT id FROM xs_inventory WHERE product_id = ? AND outlet_id = ?", key).fetchone()
        if existing is None:
            conn.execute(
                "INSERT INTO xs_inventory (id, product_id, outlet_id, current_amount, version) VALUES (?, ?, ?, ?, ?)",
                (str(uuid.uuid4()), *key, 0.0, version),
            )
        sets, params = ["current_amount = ?", "version = ?"], [change["current_amount"], version]
        for name in ("reorder_point", "reorder_amount"):
            if change[name] is not _KEEP:
                sets.append(f"{name} = ?")
                params.append(json.dumps(change[name]))
        where = "WHERE product_id = ? AND outlet_id = ?"
        conn.execute(f"UPDATE xs_inventory SET {', '.join(sets)} {where}", [*params, *key])

    def _set_tracking(self, conn: sqlite3.Connection, product_id: str, track: bool) -> None:
        """``common`` updates the whole product family ("for variants, this will update the
        fields to all variants in the family", 2026-07 spec ProductUpdate21Request): tracking
        changes for every variant at every outlet. Stopping retires the inventory records
        (visible as deleted_at)."""
        stamp = self.now()
        family = self.family_of(conn, product_id)
        marks = ",".join("?" * len(family))
        for member in family:
            conn.execute(
                "UPDATE xs_products SET track_inventory = ?, updated_at = ?, version = ? WHERE id = ?",
                (int(track), stamp, self.version_step(conn), member),
            )
        records = conn.execute(f"SELECT id FROM xs_inventory WHERE product_id IN ({marks})", family).fetchall()
        for (record_id,) in records:
            conn.execute(
                "UPDATE xs_inventory SET deleted_at = ?, version = ? WHERE id = ?",
                (None if track else stamp, self.version_step(conn), record_id),
            )


    @staticmethod
    def family_of(conn: sqlite3.Connection, product_id: str) -> list[str]:
        """Every product of ``product_id``'s family: its parent and all the parent's variants."""
        row = conn.execute("SELECT variant_parent_id FROM xs_products WHERE id = ?", (product_id,)).fetchone()
        root = (row[0] if row else None) or product_id
        members = conn.execute("SELECT id FROM xs_products WHERE id = ? OR variant_parent_id = ?", (root, root))
        return sorted({product_id, *(m[0] for m in members)})


class PartsResponse(Response):
    """A response whose body is sent as consecutive pieces (one Content-Length for all of them),
    so a large body is never joined into one more buffer."""

    def __init__(self, parts: tuple[bytes, ...], media_type: str) -> None:
        self.parts = parts
        super().__init__(None, media_type=media_type)
        self.headers["content-length"] = str(sum(map(len, parts)))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        last = len(self.parts) - 1
        for i, part in enumerate(self.parts):
            await send({"type": "http.response.body", "body": part, "more_body": i < last})


def _fixture_id(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise ConfigError([Problem(f"{where}: expected an X-Series id (a string), got {value!r}", "fixtures")])
    return str(value)


def _fixture_problems(fixtures: Mapping[str, Any]) -> list[Problem]:
    """Every malformed id or number in the fixtures, reported together before anything is stored."""
    problems: list[Problem] = []
    checks = [("locations", "id"), ("items", "id"), ("stock", "location"), ("stock", "item")]
    for section, key in checks:
        for i, entry in enumerate(fixtures.get(section) or []):
            value = entry.get(key) if isinstance(entry, Mapping) else None
            if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
                problems.append(Problem(f"{section}[{i}].{key}: expected an X-Series id (a string), got {value!r}",
                                        "fixtures", hint="Product and outlet ids are strings (UUIDs)."))
    for i, entry in enumerate(fixtures.get("stock") or []):
        for name in ("quantity", "reorder_point", "reorder_amount", "average_cost"):
            value = entry.get(name) if isinstance(entry, Mapping) else None
            if value is not None and not _is_number(value):
                problems.append(Problem(f"stock[{i}].{name}: expected a number, got {value!r}", "fixtures"))
    return problems


def _option_number(value: Any, name: str, kind: type[int] | type[float]) -> float:
    try:
        number_value = kind(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError([Problem(f"the xseries sandbox option {name} must be a number, got {value!r}", "options",
                                   hint="e.g. -o rate_budget=350 -o rate_window_s=300")]) from exc
    if number_value < 0:
        raise ConfigError([Problem(f"the xseries sandbox option {name} must be 0 or more, got {value!r}", "options")])
    return number_value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _reorder_value(item: Mapping[str, Any], name: str, where: str) -> Any:
    """Seed 000's quirk: omitted keeps, null becomes "", -1 clears (null), a number sets."""
    if name not in item:
        return _KEEP
    value = item[name]
    if value is None:
        return ""
    if not _is_number(value):
        raise XsError(422, f"{where}.{name} must be a number (-1 clears it), got {value!r}")
    if value == -1:
        return None
    if value < 0:
        raise XsError(422, f"{where}.{name} must be 0 or more, or -1 to clear it; got {value}")
    return number(float(value))


def _parse_track_inventory(common: Any) -> bool | None:
    if common is None:
        return None
    if not isinstance(common, dict):
        raise XsError(422, "common must be an object")
    track = common.get("track_inventory")
    if track is not None and not isinstance(track, bool):
        raise XsError(422, f"common.track_inventory must be true or false, got {track!r}")
    return track


def inventory_body(row: sqlite3.Row) -> dict[str, Any]:
    amount = number(row["current_amount"])
    return {
        "id": row["id"],
        "product_id": row["product_id"],
        "outlet_id": row["outlet_id"],
        "inventory_level": amount,
        "current_amount": amount,
        "reorder_point": json.loads(row["reorder_point"]),
        "reorder_amount": json.loads(row["reorder_amount"]),
        "average_cost": number(row["average_cost"]),
        "version": row["version"],
        "deleted_at": row["deleted_at"],
    }


def _outlet_body(row: sqlite3.Row) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "version": row["version"], "deleted_at": row["deleted_at"]}


def product_body(row: sqlite3.Row) -> dict[str, Any]:
    tracked = bool(row["track_inventory"])
    parent = row["variant_parent_id"] if "variant_parent_id" in row.keys() else None
    return {
        "id": row["id"],
        "name": row["name"],
        "variant_name": row["name"],
        "sku": row["sku"],
        "active": True,
        "is_active": True,
        "has_inventory": tracked,
        "track_inventory": tracked,
        "is_composite": False,
        "variant_parent_id": parent,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "deleted_at": row["deleted_at"],
        "version": row["version"],
    }


SIMULATOR = XSeriesSimulator
