"""X-Series stock adjustments (dated API 2026-01 and later) and the current user.

``POST /api/{version}/stock_adjustments`` takes ``{"stock_adjustments": [{product_id, outlet_id,
quantity: "+N"|"-N", reason[, custom_inventory_adjustment_reason_id]}]}``, 1 to 1000 a call, and
answers 201 ``{"data": [StockAdjustment...]}``; ``GET`` lists them by version
(x-series-api.lightspeedhq.com/changelog/2026-05-adjustment-apis-2026-01; the reason enum from
the 2026-07 spec copied at api-evangelist/lightspeed, research/xseries_counts.md Q2).

Documented rules enforced (each refused with 422 and the vendor-style ``{"error"}``): the item
count, a signed numeric **string** quantity, a reason from the enum whose sign matches the
quantity, CUSTOM only with an existing custom reason of the same sign, known product and outlet.
ASSUMED (no public text): a call with one bad item writes nothing (it is validated whole), and an
untracked product is refused; ``quantity`` "0" is refused (neither sign's reasons fit it).
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from reconciler.sandbox._xseries_common import Cursor, XsError, collection, json_body

if TYPE_CHECKING:
    from reconciler.sandbox.xseries import XSeriesSimulator

Handler = Callable[[Request], Awaitable[Response]]

ADJUSTMENTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS xs_stock_adjustments (
    id TEXT PRIMARY KEY, product_id TEXT NOT NULL, outlet_id TEXT NOT NULL, quantity TEXT NOT NULL,
    reason TEXT NOT NULL, custom_reason_id TEXT, user_id TEXT NOT NULL, created_at TEXT NOT NULL,
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS xs_custom_reasons (id TEXT PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL);
"""
POSITIVE = frozenset({"STOCK_FOUND", "SAMPLE_FOR_SALE"})
NEGATIVE = frozenset({"DAMAGE", "EXPIRY", "INTERNAL_USE", "THEFT", "DONATION"})
MAX_ITEMS = 1000
MAX_PAGE = 1000  # research Q3: /stock_adjustments pages hold at most 1000
FIRST_VERSION = "2026-01"  # the adjustment APIs exist from this dated version on
_QUANTITY = re.compile(r"^[+-]?\d+(\.\d+)?$")
_DATED = re.compile(r"^\d{4}-\d{2}$")
SANDBOX_USER = {"id": "0a6f6e36-8b54-11ea-f3d6-000000000001", "username": "reconciler-sandbox",
                "display_name": "Sandbox API user", "account_type": "admin"}


def dated_at_least(version: str, first: str) -> bool:
    return bool(_DATED.match(version)) and version >= first


class AdjustmentAPI:
    """Handlers for ``/api/{version}/stock_adjustments`` and ``/api/2.0/user``."""

    def __init__(self, sim: XSeriesSimulator) -> None:
        self.sim = sim

    def route_table(self) -> list[tuple[str, Handler, list[str]]]:
        return [
            ("/api/{api_version}/stock_adjustments", self._create, ["POST"]),
            ("/api/{api_version}/stock_adjustments", self._list, ["GET"]),
            ("/api/2.0/user", self._user, ["GET"]),
        ]

    def load_custom_reasons(self, conn: sqlite3.Connection, reasons: list[Mapping[str, Any]]) -> None:
        for reason in reasons:
            conn.execute("INSERT OR IGNORE INTO xs_custom_reasons (id, name, type) VALUES (?, ?, ?)",
                         (str(reason["id"]), str(reason.get("name") or reason["id"]), str(reason["type"]).upper()))

    async def _user(self, request: Request) -> Response:
        return JSONResponse({"data": SANDBOX_USER})

    def _check_version(self, request: Request) -> None:
        self.sim.require_scope("inventory:write")  # the GET too (research Q4: XS-REF)
        version = request.path_params["api_version"]
        if not dated_at_least(version, FIRST_VERSION):
            raise XsError(404, f"Not Found: stock adjustments exist from API {FIRST_VERSION} on, not in {version}")

    async def _create(self, request: Request) -> Response:
        self._check_version(request)
        body = await json_body(request)
        items = body.get("stock_adjustments") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise XsError(422, "The body must be {\"stock_adjustments\": [...]}")
        if not 1 <= len(items) <= MAX_ITEMS:
            raise XsError(422, f"stock_adjustments must hold 1 to {MAX_ITEMS} items, got {len(items)}")
        checked = [self._check_item(i, item) for i, item in enumerate(items)]
        stamp, user = self.sim.now(), SANDBOX_USER["id"]
        created = []
        with self.sim.db.transaction() as conn:
            for item in checked:
                created.append(self.record(conn, item, user, stamp))
        return JSONResponse({"data": created}, status_code=201)

    def record(self, conn: sqlite3.Connection, item: Mapping[str, Any], user: str, stamp: str) -> dict[str, Any]:
        """Store one adjustment and move the stock (also used by tests for another user's)."""
        self.sim.adjust_stock(conn, item["product_id"], item["outlet_id"], float(item["quantity"]))
        row = {"id": str(uuid.uuid4()), "product_id": item["product_id"], "outlet_id": item["outlet_id"],
               "quantity": item["quantity"], "reason": item["reason"],
               "custom_reason_id": item.get("custom_inventory_adjustment_reason_id"), "user_id": user,
               "created_at": stamp, "version": self.sim.version_step(conn)}
        conn.execute(
            "INSERT INTO xs_stock_adjustments (id, product_id, outlet_id, quantity, reason, custom_reason_id,"
            " user_id, created_at, version) VALUES (:id, :product_id, :outlet_id, :quantity, :reason,"
            " :custom_reason_id, :user_id, :created_at, :version)", row)
        return _body(row)

    def _check_item(self, i: int, item: Any) -> dict[str, Any]:
        where = f"stock_adjustments[{i}]"
        if not isinstance(item, dict):
            raise XsError(422, f"{where} must be an object")
        product = self.sim.product_row(item.get("product_id")) if isinstance(item.get("product_id"), str) else None
        if product is None:
            raise XsError(422, f"{where}.product_id {item.get('product_id')!r} is not a product of this store")
        if not product["track_inventory"]:
            raise XsError(422, f"{where}: product {product['id']} does not track inventory")
        if not self.sim.outlet_exists(item.get("outlet_id")):
            raise XsError(422, f"{where}.outlet_id {item.get('outlet_id')!r} is not an outlet of this store")
        quantity = item.get("quantity")
        if not isinstance(quantity, str) or not _QUANTITY.match(quantity) or float(quantity) == 0:
            raise XsError(422, f"{where}.quantity must be a non-zero signed numeric string like \"+3\" or \"-3\", "
                               f"got {quantity!r}")
        self._check_reason(where, item, float(quantity) > 0)
        return item

    def _check_reason(self, where: str, item: Mapping[str, Any], positive: bool) -> None:
        reason = item.get("reason")
        if reason == "CUSTOM":
            custom = item.get("custom_inventory_adjustment_reason_id")
            rows = self.sim.db.query("SELECT type FROM xs_custom_reasons WHERE id = ?", (custom,)) if custom else []
            if not rows:
                raise XsError(422, f"{where}: reason CUSTOM needs an existing custom_inventory_adjustment_reason_id, "
                                   f"got {custom!r}")
            if (rows[0]["type"] == "POSITIVE") != positive:
                raise XsError(422, f"{where}: custom reason {custom} is {rows[0]['type']} but the quantity is "
                                   f"{'positive' if positive else 'negative'}")
            return
        allowed = POSITIVE if positive else NEGATIVE
        if reason not in allowed:
            sign = "positive" if positive else "negative"
            raise XsError(422, f"{where}.reason {reason!r} is not valid for a {sign} quantity "
                               f"(allowed: {', '.join(sorted(allowed))}, or CUSTOM)")

    async def _list(self, request: Request) -> Response:
        self._check_version(request)
        cursor = Cursor.from_request(request)
        where, params = cursor.where()
        rows = self.sim.db.query(
            f"SELECT * FROM xs_stock_adjustments WHERE {where} ORDER BY version LIMIT ?",
            [*params, min(cursor.page_size, MAX_PAGE)],
        )
        return JSONResponse(collection([_body(r) for r in rows]))


def _body(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "product_id": row["product_id"], "outlet_id": row["outlet_id"],
            "quantity": row["quantity"], "reason": row["reason"],
            "custom_inventory_adjustment_reason_id": row["custom_reason_id"], "user_id": row["user_id"],
            "created_at": row["created_at"], "version": row["version"]}
