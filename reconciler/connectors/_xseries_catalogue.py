"""X-Series catalogue and outlets for ``reconciler discover`` / ``init --from``.

- ``GET /api/2.0/products?after=&page_size=`` pages by the global ``version``: start at
  ``after=0``, continue with ``after=version.max``, stop on an empty ``data`` (documented:
  XS-PG, x-series-api.lightspeedhq.com/docs/pagination; research/xseries_counts.md Q3).
  Deleted products are left out unless ``deleted=true`` (documented parameter).
- Each product carries ``sku`` and ``product_codes[] {type, code}`` (documented: the 2.0 spec's
  ``Product``/``ProductCode``); a barcode is any code of type EAN/ISBN/ITF/JAN/UPC; the SKU itself
  appears as a CUSTOM code ("added automatically", documented), so CUSTOM codes are not barcodes.
- Variants are products of their own with ``variant_parent_id`` (documented), each with its own
  id, SKU and inventory: every listed product is one item (family parents included, ASSUMED).
- ``GET /api/2.0/outlets`` pages the same way (documented, XS-OAS; scope ``outlets:read``).
"""

from __future__ import annotations

from typing import Any, Iterator

import orjson

from reconciler.connectors._http import VendorHTTP
from reconciler.connectors.base import CatalogueItem, VendorLocation

BARCODE_TYPES = frozenset({"EAN", "ISBN", "ITF", "JAN", "UPC"})
PAGE_SIZE = 1000  # the 2.0 maximum is not documented (research Q3); the sandbox caps at 10,000


def pages(http: VendorHTTP, path: str, page_size: int = PAGE_SIZE) -> Iterator[list[dict[str, Any]]]:
    """Every page of a 2.0 collection, following the version cursor (never ``max + 1``)."""
    after = 0
    while True:
        response = http.request("GET", path, params={"after": after, "page_size": page_size}, idempotent=True)
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = http.json(response)
        if not isinstance(body, dict):
            raise http.unreadable(response, "is not a 2.0 collection object")
        data = [r for r in body.get("data") or [] if isinstance(r, dict)]
        if not data:
            return
        yield data
        after = int((body.get("version") or {}).get("max") or max(int(r.get("version") or 0) for r in data))


def catalogue(http: VendorHTTP, page_size: int = PAGE_SIZE) -> list[CatalogueItem]:
    items = []
    for page in pages(http, "/api/2.0/products", page_size):
        for product in page:
            if product.get("deleted_at") or not product.get("id"):
                continue
            codes = [c for c in product.get("product_codes") or [] if isinstance(c, dict)]
            barcodes = tuple(str(c["code"]) for c in codes if c.get("type") in BARCODE_TYPES and c.get("code"))
            name = str(product.get("variant_name") or product.get("name") or "")
            items.append(CatalogueItem(str(product["id"]), product.get("sku") or None, barcodes, name))
    return items


def outlets(http: VendorHTTP) -> list[VendorLocation]:
    return [VendorLocation(str(o["id"]), str(o.get("name") or o["id"]))
            for page in pages(http, "/api/2.0/outlets") for o in page if o.get("id") and not o.get("deleted_at")]
