"""X-Series dated-version inventory reads and the product search, as the vendor documents them.

- ``/api/{version}/inventory`` before 2026-04 is a ``GET`` paged by the version cursor, like
  2.0; ``inventory_level`` may be negative (stock owed to fulfilments, 2026-04 release notes).
- From 2026-04 it is a ``POST`` with a body ``{after, before, include_deleted (default false),
  product_id, size (<= 5000), sort_direction (default "desc")}`` answering a flat array; a ``GET``
  there is refused (405). Records carry ``current_inventory_level`` and ``quantity_to_procure``
  (2026-04 release notes; the 2026-07 spec copied at api-evangelist/lightspeed).
- A dated version older than the oldest supported one is served as that one (versioning
  strategy page); ``oldest_version`` (a sandbox option, default 2026-01) moves it, so a test can
  show what a client pinned to 2026-01 meets once 2026-01 reaches end of life.
- ``GET /api/2.0/search?type=products&variant_parent_id=X`` lists a product family (spec).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from reconciler.sandbox._xseries_common import XsError, number

if TYPE_CHECKING:
    from reconciler.sandbox.xseries import XSeriesSimulator

Handler = Callable[[Request], Awaitable[Response]]
POST_INVENTORY_FROM = "2026-04"
MAX_POST_SIZE = 5000
_DATED = re.compile(r"^\d{4}-\d{2}$")
_BODY_KEYS = frozenset({"after", "before", "include_deleted", "product_id", "variants", "size", "sort_direction"})


class DatedAPI:
    def __init__(self, sim: XSeriesSimulator, oldest_version: str = "2026-01") -> None:
        # Switch (assumed; X-Series documents no such answer): the next N inventory reads with a
        # version cursor above 0 are refused as unknown (400), as a vendor that forgot an old
        # version might. 0, the default: every cursor is served. For incremental readers'
        # fallback to a full read (deterministic, like the faults' drop_next_writes).
        self.refuse_next_cursors = 0
        if not _DATED.match(oldest_version):
            raise ValueError(f"oldest_version must look like 2026-01, got {oldest_version!r}")
        self.sim = sim
        self.oldest_version = oldest_version

    def route_table(self) -> list[tuple[str, Handler, list[str]]]:
        return [
            ("/api/{api_version}/inventory", self._get_inventory, ["GET"]),
            ("/api/{api_version}/inventory", self._post_inventory, ["POST"]),
            ("/api/{api_version}/inventory/{product_id}", self._product_inventory, ["GET"]),
            ("/api/2.0/search", self._search, ["GET"]),
        ]

    def served_as(self, request: Request) -> str:
        """The dated version that answers: an end-of-life one is served by the oldest supported."""
        version = request.path_params["api_version"]
        if not _DATED.match(version):
            raise XsError(404, f"Not Found: {request.method} {request.url.path} is not an X-Series endpoint")
        return max(version, self.oldest_version)

    async def _get_inventory(self, request: Request) -> Response:
        version = self.served_as(request)
        if version >= POST_INVENTORY_FROM:
            raise XsError(405, f"Method Not Allowed: from API {POST_INVENTORY_FROM} (serving {version}) "
                               "/inventory is a POST with a JSON body")
        self._known_cursor(request.query_params.get("after"))
        return self.sim.inventory_page(request, None)

    def _known_cursor(self, after: Any) -> None:
        try:
            cursor = int(after or 0)
        except (TypeError, ValueError):
            return  # the cursor's own validation answers it
        if cursor > 0 and self.refuse_next_cursors > 0:
            self.refuse_next_cursors -= 1
            raise XsError(400, f"Unknown version cursor {cursor}: read again from after=0")

    async def _product_inventory(self, request: Request) -> Response:
        self.served_as(request)
        return await self.sim.product_inventory(request)

    async def _post_inventory(self, request: Request) -> Response:
        version = self.served_as(request)
        if version < POST_INVENTORY_FROM:
            raise XsError(405, f"Method Not Allowed: before API {POST_INVENTORY_FROM} /inventory is a GET")
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            raise XsError(400, f"Request body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise XsError(422, "The body must be a JSON object")
        unknown = set(body) - _BODY_KEYS
        if unknown:
            raise XsError(422, f"Unknown field(s) in the inventory request: {', '.join(sorted(unknown))}")
        size = body.get("size", 1000)
        if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_POST_SIZE:
            raise XsError(422, f"size must be an integer from 1 to {MAX_POST_SIZE}, got {size!r}")
        direction = body.get("sort_direction", "desc")
        if direction not in ("asc", "desc"):
            raise XsError(422, f"sort_direction must be asc or desc, got {direction!r}")
        self._known_cursor(body.get("after"))
        where, params = ["1 = 1"], []
        for key, op in (("after", ">"), ("before", "<")):
            if body.get(key) is not None:
                where.append(f"version {op} ?")
                params.append(int(body[key]))
        if body.get("product_id"):
            where.append("product_id = ?")
            params.append(str(body["product_id"]))
        if not body.get("include_deleted", False):
            where.append("deleted_at IS NULL")
        rows = self.sim.db.query(
            f"SELECT * FROM xs_inventory WHERE {' AND '.join(where)} ORDER BY version {direction.upper()} LIMIT ?",
            [*params, size],
        )
        return JSONResponse([_record_2026_04(r) for r in rows])

    async def _search(self, request: Request) -> Response:
        query = request.query_params
        if query.get("type") != "products":
            raise XsError(422, "This sandbox searches type=products only")
        where, params = ["deleted_at IS NULL"], []
        parents = query.getlist("variant_parent_id")
        if parents:
            # The variants of the parents (the spec's wording); the parent itself is not one.
            where.append(f"variant_parent_id IN ({','.join('?' * len(parents))})")
            params += parents
        skus = [s for s in query.getlist("sku")]
        if skus:
            where.append(f"lower(sku) IN ({','.join('?' * len(skus))})")
            params += skus
        size = min(int(query.get("page_size") or 1000), 1000)
        offset = int(query.get("offset") or 0)
        rows = self.sim.db.query(
            f"SELECT * FROM xs_products WHERE {' AND '.join(where)} ORDER BY id LIMIT ? OFFSET ?",
            [*params, size, offset],
        )
        from reconciler.sandbox.xseries import product_body  # the simulator module imports this one

        return JSONResponse({"data": [product_body(r) for r in rows]})


def _record_2026_04(row: Any) -> dict[str, Any]:
    amount = number(row["current_amount"])
    return {
        "id": row["id"], "product_id": row["product_id"], "outlet_id": row["outlet_id"],
        "current_inventory_level": amount, "quantity_to_procure": 0,
        "reorder_point": json.loads(row["reorder_point"]), "reorder_amount": json.loads(row["reorder_amount"]),
        "average_cost": number(row["average_cost"]), "version": row["version"], "deleted_at": row["deleted_at"],
    }
