"""Zettle Inventory API v3 (the default): what the connector sends and how each answer is read.

Sources, per request (docs/connectors/zettle.md lists them for merchants):
- ``GET /v3/inventories``: documented (developer.zettle.com .../manage-inventories/fetch-inventories);
  rows ``{inventoryUuid, inventoryType, name, description, defaultInventory}``.
- ``GET /v3/stock/{inventoryUuid}``: documented (.../fetch-inventory-balance and the overview's
  pagination section): rows with a numeric ``balance``, ``lowStockLevel``, ``updated``; paged by a
  ``Link: <...>; rel="next"`` header to call as given until it is absent.
- ``POST /v3/movements`` ``{"movements": [{productUuid, variantUuid, change, from, to}]}``:
  documented, answered ``204 No Content`` with no balances, so every write is re-read.
- ``POST /v3/products`` ``[{"productUuid", "tracking": "enable"|"disable"}]``: the 204 is
  documented (.../enable-disable-tracking); the path and body are what a public client does (the
  Zettle POS integration's PHP SDK, ``Inventory::setTracking``), the vendor page's example was not captured.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from reconciler.connectors._http import VendorHTTP
from reconciler.connectors._zettle_api import (
    Answer,
    Live,
    Move,
    WriteAnswer,
    as_int,
    error_carrying,
    loose_json,
    pick_store,
)
from reconciler.connectors.base import TargetContext
from reconciler.errors import VendorRejected, VendorUnavailable

PAGE_LIMIT = 100  # the documented example's page size
MAX_PAGES = 10_000  # a Link loop would otherwise read forever


class V3Api:
    version = "v3"

    def __init__(self, ctx: TargetContext, http: VendorHTTP) -> None:
        self.ctx, self.http = ctx, http
        self._system: dict[str, str] | None = None

    def system(self) -> dict[str, str]:
        """type -> inventory uuid of STORE (as configured), SUPPLIER and BIN; read once."""
        if self._system is None:
            found = loose_json(self.http.request("GET", "/v3/inventories", idempotent=True))
            if not isinstance(found, list):
                raise VendorRejected(f"{self.ctx.name}: GET /v3/inventories answered with no inventory list",
                                     body=str(found))
            rows = [r for r in found if isinstance(r, dict)]
            listed = [(str(r.get("inventoryUuid")).lower(), str(r.get("inventoryType")), bool(r.get("defaultInventory")))
                      for r in rows]
            system = {t: u for u, t, _ in listed if t in ("SUPPLIER", "BIN")}
            missing = {"SUPPLIER", "BIN"} - set(system)
            if missing:
                raise VendorRejected(
                    f"{self.ctx.name}: GET /v3/inventories lists no {', '.join(sorted(missing))} inventory",
                    hint="Zettle creates them when tracking is first enabled; enable tracking of one product in Zettle.",
                )
            system["STORE"] = pick_store(self.ctx, listed, "GET /v3/inventories")
            self._system = system
        return self._system

    def _rows(self) -> list[dict[str, Any]]:
        """Every row of the STORE's stock listing, following the Link header as given."""
        url: str | None = f"/v3/stock/{self.system()['STORE']}"
        params: dict[str, Any] | None = {"limit": PAGE_LIMIT}
        rows: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            if url is None:
                return rows
            response = self.http.request("GET", url, idempotent=True, params=params)
            page = loose_json(response)
            if not isinstance(page, list):
                raise VendorRejected(f"{self.ctx.name}: GET {url} answered with no list of stock rows",
                                     status=response.status_code, body=response.text)
            rows += [r for r in page if isinstance(r, dict)]
            url, params = self._next(response), None
        raise VendorRejected(f"{self.ctx.name}: /v3/stock kept sending a next page after {MAX_PAGES} pages")

    def _next(self, response: httpx.Response) -> str | None:
        link = response.links.get("next", {}).get("url")
        if not link:
            return None
        here, there = urlsplit(str(response.request.url)), urlsplit(link)
        if there.netloc and (there.scheme, there.netloc) != (here.scheme, here.netloc):
            # The token must never go to another host, whatever a header says.
            raise VendorRejected(f"{self.ctx.name}: /v3/stock's next page points at another host ({there.netloc})",
                                 body=response.headers.get("link", ""))
        return link

    def read_live(self) -> Live:
        """A tracked product is one with a row: v3 lists only tracked products. Whether it lists a
        tracked variant holding 0 is not documented; a missing variant of a listed product is 0."""
        live = Live(levels={})
        for row in self._rows():
            variant = str(row.get("variantUuid") or "").lower()
            if not variant:
                continue
            live.balances[variant] = as_int(row.get("balance"), self.ctx.name)
            live.updated[variant] = str(row.get("updated"))
            live.tracked.add(str(row.get("productUuid")).lower())
            if row.get("lowStockLevel") is not None:
                live.levels[variant] = as_int(row["lowStockLevel"], self.ctx.name)  # type: ignore[index]
        return live

    def read_low_stock(self) -> dict[str, int]:
        return self.read_live().levels or {}

    def _tracking(self, products: list[str], value: str) -> httpx.Response:
        body = [{"productUuid": p, "tracking": value} for p in products]
        # Idempotent: enabling a tracked product (or disabling an untracked one) changes nothing.
        return self.http.request("POST", "/v3/products", json=body, idempotent=True)

    def start_tracking(self, products: list[str], live: Live) -> None:
        """Zettle keeps balances while a product is untracked and brings them back when tracking
        starts again, so the balances are read again afterwards."""
        if not products:
            return
        response = self._tracking(products, "enable")
        if response.status_code != 204:
            raise VendorRejected(
                f"{self.ctx.name}: POST /v3/products (enable tracking) answered HTTP {response.status_code}, "
                "not the documented 204; nothing was moved", status=response.status_code, body=response.text)
        again = self.read_live()
        for product in products:
            live.tracked.add(product)
            live.started.add(product)
        live.balances.update(again.balances)
        live.updated.update(again.updated)

    def stop_tracking(self, products: list[str]) -> WriteAnswer:
        response = self._tracking(products, "disable")
        if response.status_code == 204:
            return WriteAnswer(Answer.CONFIRMED, "HTTP 204 (tracking disabled)")
        return WriteAnswer(Answer.AMBIGUOUS, response.text, reason=f"HTTP {response.status_code}, not 204")

    def send(self, moves: list[Move], stop: list[str], ext: str) -> WriteAnswer:
        """One POST /v3/movements (stop is sent by the connector through stop_tracking)."""
        system = self.system()
        body = {"movements": [
            {"productUuid": m.product, "variantUuid": m.variant, "change": m.count,
             "from": system["SUPPLIER"] if m.up else system["STORE"], "to": system["STORE"] if m.up else system["BIN"]}
            for m in moves
        ]}
        try:
            # Not idempotent: a blind resend would move the units twice.
            response = self.http.request("POST", "/v3/movements", json=body, idempotent=False)
        except VendorUnavailable as exc:
            if not exc.in_doubt:
                raise
            return WriteAnswer(Answer.AMBIGUOUS, exc.body or "", reason=str(exc))
        if response.status_code == 204 and not response.content:
            return WriteAnswer(Answer.CONFIRMED, "HTTP 204 No Content")
        parsed = loose_json(response)
        why = "a 2xx whose body carries an error" if error_carrying(parsed) else "an answer of unknown shape"
        return WriteAnswer(Answer.AMBIGUOUS, response.text or f"HTTP {response.status_code}",
                           reason=f"POST /v3/movements was answered HTTP {response.status_code} with {why}, "
                                  "not the documented 204 No Content")
