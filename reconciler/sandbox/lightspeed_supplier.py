"""Simulator of the Lightspeed supplier inventory feed (seed 001, VENDORS.md section 2).

Documented (served exactly): ``PUT /inventory`` with Bearer auth and a body
``{"products": [{"id": "<item uuid>", "quantity": <int>}, ...]}``; the quantity is the new absolute
available quantity; many items per call. Each catalog item has two flags,
``isBackorderingEnabled`` and ``isInventoryTrackingEnabled``, both false when not specified.

ASSUMPTIONS (the vendor did not document them; see docs/sandboxes/lightspeed-supplier.md):

- Behind the switch ``read_api`` ("none" by default: the paths answer 404, as nothing shows they
  exist; "assumed" serves them):
  - ``GET /products?page=&per_page=`` lists the catalog with the stock and flags. The real read
    endpoint is linked from the article but was never captured.
  - ``GET /products/{id}`` reads one item, and ``PUT /products/{id}`` with
    ``{"inventory": {"isBackorderingEnabled": [true], ...}}`` sets the flags. The seed writes each
    flag as a one-element array; a plain boolean is accepted too.
- The answer to ``PUT /inventory`` is undocumented; the switch ``put_answer`` offers "echo" (the
  default: 200 ``{"products": [{"id", "quantity"}, ...]}``) and "empty" (204, no body).
- At most 1000 products per ``PUT /inventory`` (no limit is documented).
- Errors are ``{"error": "<text>"}`` with 400 (bad body), 401 (credential), 404 (unknown id).
- The feed has one stock location (the supplier's warehouse).
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from reconciler.errors import ConfigError, Problem
from reconciler.sandbox._core import Simulator, VendorAnswer
from reconciler.sandbox._oauth import with_oauth

MAX_BATCH = 1000  # ASSUMPTION: undocumented; chosen so a connector has a limit to respect
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 250
DEFAULT_LOCATION = "warehouse"

SCHEMA = """
CREATE TABLE IF NOT EXISTS locations (id TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, vendor_sku TEXT NOT NULL,
    quantity INTEGER NOT NULL DEFAULT 0,
    backordering INTEGER NOT NULL DEFAULT 0, tracking INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sales (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, item TEXT NOT NULL, quantity_after INTEGER NOT NULL
);
"""

FLAG_FIELDS = {"isBackorderingEnabled": "backordering", "isInventoryTrackingEnabled": "tracking"}


class BadRequest(VendorAnswer):
    """The feed's error answer, ``{"error": message}``."""


READ_APIS = ("none", "assumed")
PUT_ANSWERS = ("echo", "empty")


class LightspeedSupplierSimulator(Simulator):
    kind = "lightspeed-supplier"
    default_token = "lightspeed-supplier-sandbox-token"
    schema = SCHEMA

    def __init__(self, *, read_api: str = "none", put_answer: str = "echo", **kwargs: Any) -> None:
        if read_api not in READ_APIS:
            raise ValueError(f"read_api must be one of {', '.join(READ_APIS)}, not {read_api!r}")
        if put_answer not in PUT_ANSWERS:
            raise ValueError(f"put_answer must be one of {', '.join(PUT_ANSWERS)}, not {put_answer!r}")
        self.read_api, self.put_answer = read_api, put_answer
        super().__init__(**kwargs)

    @property
    def app(self) -> Any:
        return with_oauth(self, super().app)  # the vendor's token endpoints (sandbox/_oauth.py)

    # --- vendor paths ---------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        documented: list[BaseRoute] = [
            Route("/inventory", self._put_inventory, methods=["PUT"]),
            Route("/inventory/", self._put_inventory, methods=["PUT"]),
        ]
        if self.read_api != "assumed":
            return documented
        return documented + [
            Route("/products", self._list_products, methods=["GET"]),
            Route("/products/", self._list_products, methods=["GET"]),
            Route("/products/{id}", self._product, methods=["GET", "PUT"]),
            Route("/products/{id}/", self._product, methods=["GET", "PUT"]),
        ]

    def authenticate(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip() == self.token:
            return None
        what = "missing" if not header else "invalid"
        return JSONResponse({"error": f"Unauthorized: {what} Bearer token"}, status_code=401)

    def rate_limited_response(self, request: Request) -> Response:
        return JSONResponse(
            {"error": "Too Many Requests"}, status_code=429, headers={"Retry-After": str(self.faults.retry_after_s)}
        )

    def server_error_response(self, request: Request) -> Response:
        return JSONResponse({"error": "Service Unavailable"}, status_code=503)

    async def _put_inventory(self, request: Request) -> Response:
        try:
            updates = _parse_inventory(await _json(request))
            self._check_known([item for item, _ in updates])
        except BadRequest as exc:
            return exc.response()
        with self.db.transaction() as conn:
            conn.executemany("UPDATE items SET quantity = ? WHERE id = ?", [(q, i) for i, q in updates])
        if self.put_answer == "empty":
            return Response(status_code=204)
        return JSONResponse({"products": [{"id": item, "quantity": qty} for item, qty in updates]})

    async def _list_products(self, request: Request) -> Response:
        try:
            page = _positive_int(request.query_params.get("page", "1"), "page", None)
            per_page = _positive_int(request.query_params.get("per_page", str(DEFAULT_PER_PAGE)), "per_page", MAX_PER_PAGE)
        except BadRequest as exc:
            return exc.response()
        total = self.db.query("SELECT COUNT(*) AS n FROM items")[0]["n"]
        rows = self.db.query("SELECT * FROM items ORDER BY id LIMIT ? OFFSET ?", (per_page, (page - 1) * per_page))
        return JSONResponse(
            {
                "products": [_product_json(row) for row in rows],
                "page": page,
                "per_page": per_page,
                "total": total,
                "pages": (total + per_page - 1) // per_page,
            }
        )

    async def _product(self, request: Request) -> Response:
        item = request.path_params["id"]
        try:
            self._check_known([item])
            if request.method == "PUT":
                flags = _parse_flags(await _json(request))
                if flags:
                    assignments = ", ".join(f"{column} = ?" for column in flags)
                    with self.db.transaction() as conn:
                        conn.execute(f"UPDATE items SET {assignments} WHERE id = ?", (*map(int, flags.values()), item))
        except BadRequest as exc:
            return exc.response()
        return JSONResponse(_product_json(self.db.query("SELECT * FROM items WHERE id = ?", (item,))[0]))

    def _check_known(self, items: list[str]) -> None:
        known = {row["id"] for row in self.db.query("SELECT id FROM items")}
        unknown = [item for item in items if item not in known]
        if unknown:
            raise BadRequest(404, f"Product not found: {', '.join(unknown[:20])}" + (" ..." if len(unknown) > 20 else ""))

    # --- fixtures, inspection, sales ------------------------------------------------------

    def load_fixtures(self, fixtures: Mapping[str, Any]) -> None:
        """Adds locations and items; stock only for items the state does not hold yet, so a
        restart with the same fixtures keeps what the sandbox recorded since."""
        locations = list(fixtures.get("locations") or [])
        if len(locations) > 1:
            raise ConfigError([Problem("a Lightspeed supplier feed has one stock location; the fixtures list "
                                       f"{len(locations)}", "fixtures", None, "Keep one entry under locations.")])
        with self.db.transaction() as conn:
            for loc in locations:
                conn.execute("INSERT OR REPLACE INTO locations (id, name) VALUES (?, ?)",
                             (str(loc["id"]), str(loc.get("name") or loc["id"])))
            known = {row[0] for row in conn.execute("SELECT id FROM items")}
            for index, item in enumerate(fixtures.get("items") or []):
                item_id = _fixture_id(item.get("id"), f"items[{index}].id")
                conn.execute(
                    "INSERT INTO items (id, name, vendor_sku) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE "
                    "SET name = excluded.name, vendor_sku = excluded.vendor_sku",
                    (item_id, str(item.get("name") or item_id), str(item.get("vendorSku") or item_id)),
                )
            for index, record in enumerate(fixtures.get("stock") or []):
                item_id = _fixture_id(record.get("item"), f"stock[{index}].item")
                if item_id in known:
                    continue
                if not conn.execute("SELECT 1 FROM items WHERE id = ?", (item_id,)).fetchone():
                    raise ConfigError([Problem(f"stock[{index}].item {item_id!r} is not listed under items", "fixtures")])
                conn.execute(
                    "UPDATE items SET quantity = ?, backordering = ?, tracking = ? WHERE id = ?",
                    (int(record.get("quantity", 0)), int(bool(record.get("backordering", False))),
                     int(bool(record.get("tracking", False))), item_id),
                )

    def location_id(self) -> str:
        rows = self.db.query("SELECT id FROM locations LIMIT 1")
        return rows[0]["id"] if rows else DEFAULT_LOCATION

    def inspect_stock(self) -> list[dict[str, Any]]:
        location = self.location_id()
        return [
            {"location": location, "item": row["id"], "quantity": row["quantity"],
             "backordering": bool(row["backordering"]), "tracking": bool(row["tracking"])}
            for row in self.db.query("SELECT * FROM items ORDER BY id")
        ]

    def sell_one(self) -> dict[str, Any] | None:
        with self.db.transaction() as conn:
            rows = conn.execute("SELECT id, quantity FROM items WHERE quantity > 0 ORDER BY id").fetchall()
            if not rows:
                return None
            row = self.rng.choice(rows)
            conn.execute("UPDATE items SET quantity = quantity - 1 WHERE id = ?", (row["id"],))
            conn.execute("INSERT INTO sales (item, quantity_after) VALUES (?, ?)", (row["id"], row["quantity"] - 1))
        return {"location": self.location_id(), "item": row["id"], "quantity": row["quantity"] - 1}


# --- request parsing (pure: validate everything before anything is written) --------------------


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(400, f"Request body is not valid JSON: {exc}") from exc


def _parse_inventory(body: Any) -> list[tuple[str, int]]:
    if not isinstance(body, dict) or not isinstance(body.get("products"), list):
        raise BadRequest(400, 'Body must be an object with a "products" array')
    products = body["products"]
    if len(products) > MAX_BATCH:
        raise BadRequest(400, f"Too many products in one request: {len(products)} (at most {MAX_BATCH})")
    updates: list[tuple[str, int]] = []
    seen: set[str] = set()
    for index, entry in enumerate(products):
        where = f"products[{index}]"
        if not isinstance(entry, dict):
            raise BadRequest(400, f"{where} must be an object with id and quantity")
        item, qty = entry.get("id"), entry.get("quantity")
        if not isinstance(item, str) or not item:
            raise BadRequest(400, f"{where}.id must be a non-empty string")
        if isinstance(qty, bool) or not isinstance(qty, int):
            raise BadRequest(400, f"{where}.quantity must be an integer")
        if qty < 0:
            raise BadRequest(400, f"{where}.quantity must not be negative")
        if item in seen:
            raise BadRequest(400, f"{where}.id {item} appears more than once in the request")
        seen.add(item)
        updates.append((item, qty))
    return updates


def _parse_flags(body: Any) -> dict[str, bool]:
    """``{"inventory": {flag: bool | [bool]}}`` -> {column: bool}; other fields are ignored."""
    if not isinstance(body, dict) or not isinstance(body.get("inventory"), dict):
        raise BadRequest(400, 'Body must be an object with an "inventory" object')
    flags: dict[str, bool] = {}
    for name, value in body["inventory"].items():
        if name not in FLAG_FIELDS:
            raise BadRequest(400, f"Unknown inventory field: {name} (known: {', '.join(FLAG_FIELDS)})")
        # The seed writes flags as one-element arrays ("[true]"); a plain boolean is accepted too.
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if not isinstance(value, bool):
            raise BadRequest(400, f"inventory.{name} must be true or false (or [true] / [false])")
        flags[FLAG_FIELDS[name]] = value
    return flags


def _positive_int(raw: str, name: str, limit: int | None) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise BadRequest(400, f"{name} must be a positive integer")
    if limit is not None and int(raw) > limit:
        raise BadRequest(400, f"{name} must be at most {limit}")
    return int(raw)


def _product_json(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "vendorSku": row["vendor_sku"],
        "quantity": row["quantity"],
        "inventory": {
            "isBackorderingEnabled": bool(row["backordering"]),
            "isInventoryTrackingEnabled": bool(row["tracking"]),
        },
    }


def _fixture_id(value: Any, where: str) -> str:
    if isinstance(value, str) and value:
        return value
    raise ConfigError([Problem(f"{where}: a Lightspeed supplier item id must be a non-empty string, not {value!r}",
                               "fixtures")])


SIMULATOR = LightspeedSupplierSimulator
