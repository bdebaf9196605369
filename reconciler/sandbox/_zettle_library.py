"""The Zettle product library, as ``reconciler discover`` reads it.

``GET /organizations/{org}/library?limit=&offset=`` (products host, scope ``READ:PRODUCT``):
"the entire product library can be fetched through the library endpoint" (documented: the
product-library concept page); ``limit`` at most 500 and paging through a ``Link: <...>;
rel="next"`` header that clients must follow as given (the products swagger as mirrored,
research/auth_and_discovery.md B3: a public copy, not the vendor's page). The body's outline
``{fromEventLogUuid, untilEventLogUuid, products: [...], deletedProducts: [...]}`` is ASSUMED
from that copy. Variants carry ``uuid, name, sku, barcode`` (documented: product-library.adoc;
SwagPayPal ``Variant.php``); ``sku`` and ``barcode`` are optional, free text and not unique (the
vendor's own example gives two variants the same SKU), so fixtures may repeat or omit them.
The sandbox serves the library on the same host as the inventory (one base URL per target).
"""

from __future__ import annotations

import uuid
from typing import Any, Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from reconciler.sandbox._zettle_requests import ZettleApiError

LIBRARY_SCHEMA = """
CREATE TABLE IF NOT EXISTS library_codes (variant_uuid TEXT PRIMARY KEY, sku TEXT, barcode TEXT);
"""
MAX_LIMIT = 500
DEFAULT_LIMIT = 500


def load_codes(db: Any, fixtures: Mapping[str, Any]) -> None:
    """Fixture items' ``sku`` and ``barcode`` (both optional), keyed by the variant UUID."""
    for item in fixtures.get("items") or []:
        ids = item.get("id")
        if not isinstance(ids, Mapping) or "variant" not in ids or not ("sku" in item or "barcode" in item):
            continue
        db.execute("INSERT OR REPLACE INTO library_codes (variant_uuid, sku, barcode) VALUES (?, ?, ?)",
                   (str(ids["variant"]).lower(), item.get("sku"), item.get("barcode")))


def _int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ZettleApiError(400, f"{name} must be a whole number, got {raw!r}") from exc
    if value < 0:
        raise ZettleApiError(400, f"{name} must not be negative, got {value}")
    return value


def library_page(db: Any, request: Request, organization: str) -> Response:
    """One page of products (with all their variants), ``limit`` products from ``offset``."""
    limit = _int(request, "limit", DEFAULT_LIMIT)
    if limit > MAX_LIMIT or limit == 0:
        raise ZettleApiError(400, f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    offset = _int(request, "offset", 0)
    products = db.query("SELECT uuid, name FROM products ORDER BY uuid LIMIT ? OFFSET ?", (limit + 1, offset))
    more, products = len(products) > limit, products[:limit]
    variants: dict[str, list[dict[str, Any]]] = {p["uuid"]: [] for p in products}
    if products:
        marks = ",".join("?" * len(products))
        for v in db.query(
            "SELECT v.uuid, v.product_uuid, v.name, c.sku, c.barcode FROM variants v LEFT JOIN library_codes c"
            f" ON c.variant_uuid = v.uuid WHERE v.product_uuid IN ({marks}) ORDER BY v.uuid",
            [p["uuid"] for p in products],
        ):
            variants[v["product_uuid"]].append({"uuid": v["uuid"], "name": v["name"] or "", "sku": v["sku"],
                                                "barcode": v["barcode"], "options": []})
    body = {
        "fromEventLogUuid": None,
        "untilEventLogUuid": str(uuid.uuid1()),
        "products": [{"uuid": p["uuid"], "name": p["name"] or "", "variants": variants[p["uuid"]]} for p in products],
        "deletedProducts": [],
    }
    headers = {}
    if more:
        nxt = request.url.include_query_params(limit=limit, offset=offset + limit)
        headers["Link"] = f'<{nxt}>; rel="next"'
    return JSONResponse(body, headers=headers)
