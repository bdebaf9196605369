"""Zettle Inventory API v3 in the simulator: inventories, paged stock, movements and tracking.

Sources (docs/sandboxes/zettle.md has the full table):
- documented (developer.zettle.com/docs/api/inventory/...): ``GET /v3/inventories`` rows
  ``{inventoryUuid, inventoryType, name, description, defaultInventory}``; ``GET /v3/stock[/{inv}]``
  rows ``{organizationUuid, inventoryUuid, productUuid, variantUuid, balance (a number),
  lowStockLevel, lowStockAlert, updated, checksum}`` paged by a ``Link: <...?cursor=<uuid>&limit=100>;
  rel="next"`` header that the client follows as given until it is absent; ``POST /v3/movements``
  ``{"movements": [{productUuid, variantUuid, change, from, to}]}`` answered ``204 No Content``
  only; enabling and disabling tracking answered 204; 4 requests per second.
- a public client does it (the Zettle POS integration's PHP SDK, ``Inventory::setTracking``): tracking is
  ``POST /v3/products`` with ``[{"productUuid", "tracking": "enable"|"disable"}]``.
- assumed: the page body is a JSON array; ``limit`` is 1..1000; a cursor is only valid as the
  server issued it; movements of an untracked product are refused with ``PRODUCT_NOT_TRACKED``; a
  request is all or nothing; whether zero balances are listed (option ``v3_zero_balances``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import uuid
from typing import Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from reconciler.sandbox._zettle_requests import (
    RawMove,
    raw_move,
    Violations,
    ZettleApiError,
    json_object,
    not_found,
    object_list,
    resolve_moves,
)
from reconciler.sandbox._zettle_store import Location, ZettleStore, normalize_uuid

DEFAULT_PAGE_SIZE = 100  # the limit in the documented Link example
MAX_PAGE_SIZE = 1000  # assumed (a third-party tool description); Zettle documents no maximum
TRACKING_VALUES = ("enable", "disable")
ZERO_BALANCES = ("listed", "omitted")
MOVEMENT_ANSWERS = ("204", "200-body", "200-error")
V3_OPTIONS = {
    "lenient": "true: relax the rules Zettle does not document (cursor check, limit range, untracked moves)",
    "page_size": "at most this many rows per /v3/stock page, whatever the limit asked (a server may send fewer)",
    "v3_zero_balances": "listed (default) | omitted: whether /v3/stock lists tracked variants holding 0 (unknown)",
    "movements_answer": "204 (documented, default) | 200-body | 200-error: fault for clients that trust any 2xx",
    "v3_untracked_moves": "refuse (default) | accept: a movement of an untracked product (unknown)",
    "v1v2": "answer (default) | gone: whether the deprecated v1/v2 paths still answer (unknown since 2023-05-31)",
}
_CURSOR_NAMESPACE = uuid.UUID("5b0c7a39-8f7e-5c2b-a1d4-3e9f0c6b7d21")
V3Handler = Callable[[Any, Request], Awaitable[Response]]


def v3_endpoint(fn: V3Handler) -> V3Handler:
    @functools.wraps(fn)
    async def wrapper(self: Any, request: Request) -> Response:
        try:
            return await fn(self, request)
        except ZettleApiError as exc:
            return exc.response()

    return wrapper


def check_v3_options(options: dict[str, Any]) -> list[str]:
    """Problems with the v3 options (empty when they are fine)."""
    problems = []
    if not isinstance(options.get("lenient", False), bool):
        problems.append(f"lenient {options['lenient']!r} is not true or false")
    size = options.get("page_size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_PAGE_SIZE):
        problems.append(f"page_size {size!r} is not a whole number 1..{MAX_PAGE_SIZE}")
    for name, allowed in (("v3_zero_balances", ZERO_BALANCES), ("movements_answer", MOVEMENT_ANSWERS),
                          ("v3_untracked_moves", ("refuse", "accept")),
                          ("v1v2", ("answer", "gone"))):
        value = options.get(name)
        if value is not None and str(value) not in allowed:
            problems.append(f"{name} {value!r} is not one of {', '.join(allowed)}")
    return problems


def _checksum(row: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(row, sort_keys=True).encode()).hexdigest()[:16]


class ZettleV3:
    """Mixin of ZettleSimulator: the v3 routes. Needs ``store``, ``option`` and ``_cursors``."""

    store: ZettleStore
    option: Callable[[str], Any]
    _cursors: dict[str, tuple[str, int, int]]

    def v3_routes(self) -> list[BaseRoute]:
        return [
            Route("/v3/inventories", self.v3_inventories, methods=["GET"]),
            Route("/v3/inventories/{inv}", self.v3_inventory, methods=["GET"]),
            Route("/v3/stock", self.v3_stock, methods=["GET"]),
            Route("/v3/stock/{inv}", self.v3_stock, methods=["GET"]),
            Route("/v3/movements", self.v3_movements, methods=["POST"]),
            Route("/v3/products", self.v3_tracking, methods=["POST"]),
        ]

    # --- inventories ----------------------------------------------------------------------

    @staticmethod
    def _inventory_json(loc: Location) -> dict[str, Any]:
        return {"inventoryUuid": loc.uuid, "inventoryType": loc.type, "name": loc.name,
                "description": loc.description, "defaultInventory": loc.type == "STORE"}

    def _inventory(self, raw: str) -> Location:
        found = normalize_uuid(raw)
        loc = self.store.location(found) if found else None
        if loc is None:
            raise not_found("Inventory", raw)
        return loc

    @v3_endpoint
    async def v3_inventories(self, request: Request) -> Response:
        return JSONResponse([self._inventory_json(loc) for loc in self.store.locations()])

    @v3_endpoint
    async def v3_inventory(self, request: Request) -> Response:
        return JSONResponse(self._inventory_json(self._inventory(request.path_params["inv"])))

    # --- stock, paged by Link ----------------------------------------------------------------

    def _stock_rows(self, loc: Location | None) -> list[dict[str, Any]]:
        if loc is not None and loc.type != "STORE":
            return []  # BIN, SOLD and SUPPLIER keep no balances in this simulator
        store, org = self.store.store().uuid, self.store.organization_uuid()
        omit_zero = self.option("v3_zero_balances") == "omitted"
        rows = []
        for v in self.store.tracked_variants():
            if omit_zero and v["balance"] == 0:
                continue
            row = {"organizationUuid": org, "inventoryUuid": store, "productUuid": v["product_uuid"],
                   "variantUuid": v["uuid"], "balance": v["balance"],
                   "lowStockLevel": None if v["level"] is None else _plain(v["level"]),
                   "lowStockAlert": bool(v["alert"]), "updated": v["updated_at"]}
            row["checksum"] = _checksum(row)
            rows.append(row)
        return rows

    def _page_limit(self, request: Request) -> tuple[int, int]:
        """(the limit asked, the rows this page holds)."""
        raw = request.query_params.get("limit")
        asked = DEFAULT_PAGE_SIZE if raw is None else None
        if raw is not None and self.option("lenient") and raw.isdigit():
            raw = str(min(max(int(raw), 1), MAX_PAGE_SIZE))  # clamped, as a lenient server might
        if raw is not None:
            if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
                v = Violations()
                v.add("limit", f"{raw!r} is not a whole number 1..{MAX_PAGE_SIZE}", "Range")
                v.raise_if_any()
            asked = int(raw)
        assert asked is not None
        return asked, min(asked, int(self.option("page_size") or MAX_PAGE_SIZE))

    def _page_start(self, request: Request, inventory: str) -> int:
        cursor = request.query_params.get("cursor")
        if cursor is None:
            return 0
        issued = self._cursors.get(cursor)
        if issued is None and self.option("lenient"):
            return 0  # a lenient server starts over: a client inventing cursors would loop
        if issued is None or issued[0] != inventory:
            # Paging is only by the Link header: a cursor the client made up is refused.
            raise ZettleApiError(400, f"cursor {cursor!r} was not issued for this listing; follow the Link header",
                                 "INVALID_CURSOR")
        return issued[1]

    @v3_endpoint
    async def v3_stock(self, request: Request) -> Response:
        inv = request.path_params.get("inv")
        loc = self._inventory(inv) if inv is not None else None
        key = loc.uuid if loc else "*"
        (asked, limit), start = self._page_limit(request), self._page_start(request, key)
        rows = self._stock_rows(loc)
        page = rows[start:start + limit]
        headers = {}
        if start + limit < len(rows):
            nxt = start + limit
            cursor = str(uuid.uuid5(_CURSOR_NAMESPACE, f"{key}:{nxt}:{len(self._cursors)}"))
            self._cursors[cursor] = (key, nxt, limit)
            base = str(request.base_url).rstrip("/")
            path = f"/v3/stock/{loc.uuid}" if loc else "/v3/stock"
            headers["Link"] = f'<{base}{path}?cursor={cursor}&limit={asked}>; rel="next"'
        return JSONResponse(page, headers=headers)

    # --- writes --------------------------------------------------------------------------------

    @v3_endpoint
    async def v3_movements(self, request: Request) -> Response:
        body = await json_object(request)
        v = Violations()
        entries = object_list(v, body, "movements", "", required=True)
        if isinstance(body.get("movements"), list) and not body["movements"]:
            v.add("movements", "must not be empty", "NotEmpty")
        raw = []
        for i, entry in enumerate(entries):
            prefix = f"movements[{i}]."
            # v3 names the inventories `from`/`to`; v1/v2's names are a client on the wrong version.
            for old in ("fromLocationUuid", "toLocationUuid"):
                if old in entry:
                    v.add(f"{prefix}{old}", "unknown property in v3; use from/to", "UnknownProperty")
            raw.append(_v3_move(v, entry, prefix))
        v.raise_if_any()
        valid = [m for m in raw if m]
        # Unknown whether v3 refuses a movement of an untracked product; `accept` moves it anyway.
        accept = self.option("v3_untracked_moves") == "accept" or self.option("lenient")
        lenient = {m.product: True for m in valid} if accept else {}
        moves = resolve_moves(self.store, valid, lenient)
        answer = str(self.option("movements_answer") or "204")
        if answer == "200-error":
            return JSONResponse({"developerMessage": "Movement could not be stored (injected by the sandbox)",
                                 "errorType": "INTERNAL_ERROR"}, status_code=200)
        identifier = normalize_uuid(body.get("identifier"))
        self.store.apply(moves, {}, identifier, "V3")
        if answer == "200-body":
            return JSONResponse({"accepted": len(moves)}, status_code=200)
        return Response(status_code=204)

    @v3_endpoint
    async def v3_tracking(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError as exc:
            raise ZettleApiError(400, f"Malformed JSON request body: {exc}") from exc
        v = Violations()
        if not isinstance(body, list) or not body or not all(isinstance(e, dict) for e in body):
            raise ZettleApiError(400, "The request body must be a non-empty JSON array of {productUuid, tracking}")
        changes: dict[str, bool] = {}
        for i, entry in enumerate(body):
            product = v.uuid(entry, "productUuid", f"[{i}].")
            tracking = entry.get("tracking")
            if tracking not in TRACKING_VALUES:
                v.add(f"[{i}].tracking", f"{tracking!r} is not one of {', '.join(TRACKING_VALUES)}", "Enum")
            elif product:
                changes[product] = tracking == "enable"
        v.raise_if_any()
        for product in changes:
            if not self.store.product_exists(product):
                raise not_found("Product", product)
        self.store.apply([], changes, None, "TRACKING")
        return Response(status_code=204)


def _v3_move(v: Violations, entry: dict[str, Any], prefix: str) -> RawMove | None:
    return raw_move(v, entry, prefix, None, source_key="from", target_key="to", same_error="DifferentInventories")


def _plain(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value
