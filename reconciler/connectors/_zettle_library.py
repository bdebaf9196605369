"""Zettle product library for ``reconciler discover`` / ``init --from`` (research/auth_and_discovery.md B3).

``GET /organizations/self/library?limit=500`` pages through a ``Link: <...>; rel="next"`` header,
followed as given (a public mirror of the products swagger; the vendor's concept page says the
whole library comes from this endpoint). Products hold ``variants[] {uuid, sku, barcode}``
(documented: product-library.adoc; SwagPayPal ``Variant.php``); ``sku`` and ``barcode`` are
optional and not unique (documented example), so the matcher reports duplicates and misses.
An item's id is ``{product, variant}``, lower-cased as the config loader does.
"""

from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import urlsplit

from reconciler.connectors._http import VendorHTTP
from reconciler.connectors._zettle_api import loose_json
from reconciler.connectors.base import CatalogueItem, VendorLocation
from reconciler.errors import VendorRejected

LIMIT = 500  # the documented maximum (mirrored swagger)
LIBRARY_PATH = "/organizations/self/library"
# The library is served by the products host, the stock by the inventory host (documented:
# product-library.adoc; inventory-api overview). A target whose url is Zettle's inventory host
# reads the library from the products host; ``options.products_url`` names another one (a
# proxy); otherwise the library is asked of the target's own url (the sandbox serves both).
PRODUCTS_URL = "https://products.izettle.com"
INVENTORY_HOST = "inventory.izettle.com"
MAX_PAGES = 10_000
STORE_ALIAS = "STORE"


def library_url(base_url: str, options: Mapping[str, Any]) -> str:
    configured = options.get("products_url")
    if configured:
        return str(configured).rstrip("/") + LIBRARY_PATH
    if urlsplit(base_url).hostname == INVENTORY_HOST:
        return PRODUCTS_URL + LIBRARY_PATH
    return LIBRARY_PATH


def catalogue(http: VendorHTTP, target: str, url: str = LIBRARY_PATH) -> list[CatalogueItem]:
    next_url: str | None = url
    params: dict[str, Any] | None = {"limit": LIMIT}
    items: list[CatalogueItem] = []
    for _ in range(MAX_PAGES):
        if next_url is None:
            return items
        response = http.request("GET", next_url, idempotent=True, params=params)
        body = loose_json(response)
        if not isinstance(body, dict) or not isinstance(body.get("products"), list):
            raise VendorRejected(f"{target}: GET {next_url} answered with no products list",
                                 status=response.status_code, body=response.text[:500])
        for product in body["products"]:
            items += _items(product)
        next_url, params = _next(response, target), None
    raise VendorRejected(f"{target}: the product library kept sending a next page after {MAX_PAGES} pages")


def _items(product: Any) -> list[CatalogueItem]:
    if not isinstance(product, dict) or not product.get("uuid"):
        return []
    out = []
    for variant in product.get("variants") or []:
        if not isinstance(variant, dict) or not variant.get("uuid"):
            continue
        name = " ".join(n for n in (str(product.get("name") or ""), str(variant.get("name") or "")) if n)
        barcode = str(variant.get("barcode") or "").strip()
        out.append(CatalogueItem({"product": str(product["uuid"]).lower(), "variant": str(variant["uuid"]).lower()},
                                 str(variant.get("sku") or "").strip() or None, (barcode,) if barcode else (), name))
    return out


def _next(response: Any, target: str) -> str | None:
    link = response.links.get("next", {}).get("url")
    if not link:
        return None
    here, there = urlsplit(str(response.request.url)), urlsplit(link)
    if there.netloc and (there.scheme, there.netloc) != (here.scheme, here.netloc):
        # The token must never go to another host, whatever a header says.
        raise VendorRejected(f"{target}: the library's next page points at another host ({there.netloc})")
    return link


def locations() -> list[VendorLocation]:
    """A Zettle organisation holds its stock in one STORE inventory (documented: /v3/inventories,
    fetch-inventories); reconciler.yaml names it ``STORE`` and the connector finds its UUID."""
    return [VendorLocation(STORE_ALIAS, "Store")]
