"""Zettle Inventory API v1/v2 (``api_version: v2``): deprecated by Zettle ("available until 31
May, 2023", inventory-api-migration-guide), still called by Shopware's SwagPayPal in 2024
(``src/Pos/Api/PosRequestUri.php``: ``organizations/self/locations/``,
``organizations/self/inventory/locations/%s/``, ``organizations/self/v2/inventory/bulk/``).

Documented (iZettle/api-documentation, seed 002): the reads list only non-zero balances, as strings;
the bulk answer is ``{locationUuid, variants: [{productUuid, variantUuid, balance}]}`` for the
location named in ``returnBalanceForLocationUuid``.
"""

from __future__ import annotations

from typing import Any

from reconciler.connectors._http import VendorHTTP
from reconciler.connectors._zettle_api import (
    Answer,
    Live,
    Move,
    WriteAnswer,
    as_int,
    balances_of,
    error_carrying,
    json_body,
    loose_json,
    pick_store,
)
from reconciler.connectors.base import TargetContext
from reconciler.errors import VendorRejected, VendorUnavailable

ORG = "/organizations/self"


class V2Api:
    version = "v2"

    def __init__(self, ctx: TargetContext, http: VendorHTTP) -> None:
        self.ctx, self.http = ctx, http
        self._system: dict[str, str] | None = None

    def system(self) -> dict[str, str]:
        if self._system is None:
            found = json_body(self.http.request("GET", f"{ORG}/locations", idempotent=True))
            if not isinstance(found, list):
                raise VendorRejected(f"{self.ctx.name}: GET {ORG}/locations answered with no location list", body=str(found))
            listed = [(str(r.get("uuid")).lower(), str(r.get("type")), bool(r.get("default")))
                      for r in found if isinstance(r, dict)]
            system = {t: u for u, t, _ in listed if t in ("SUPPLIER", "BIN")}
            missing = {"SUPPLIER", "BIN"} - set(system)
            if missing:
                raise VendorRejected(
                    f"{self.ctx.name}: Zettle lists no {', '.join(sorted(missing))} location.",
                    hint="Zettle creates them when tracking is first enabled; enable tracking of one product in Zettle.",
                )
            system["STORE"] = pick_store(self.ctx, listed, f"GET {ORG}/locations")
            self._system = system
        return self._system

    def read_live(self) -> Live:
        store = self.system()["STORE"]
        body = json_body(self.http.request("GET", f"{ORG}/inventory/locations/{store}", idempotent=True))
        if not isinstance(body, dict):
            raise VendorRejected(f"{self.ctx.name}: the STORE balance read answered with no object", body=str(body))
        live = Live(tracked={str(p).lower() for p in body.get("trackedProducts") or []})
        live.balances.update(balances_of(body.get("variants"), self.ctx.name))
        return live

    def read_low_stock(self) -> dict[str, int]:
        store = self.system()["STORE"]
        body = json_body(self.http.request("GET", f"/custom-low-stock/v2/locations/{store}", idempotent=True))
        levels: dict[str, int] = {}
        products = body.get("customLowStockLevelsForProducts") if isinstance(body, dict) else None
        for product in products if isinstance(products, list) else []:
            for entry in product.get("customLowStockLevelForVariants") or [] if isinstance(product, dict) else []:
                level = entry.get("customLowStockLevel") if isinstance(entry, dict) else None
                if level is not None and entry.get("variantUuid"):
                    levels[str(entry["variantUuid"]).lower()] = as_int(level, self.ctx.name)
        return levels

    def start_tracking(self, products: list[str], live: Live) -> None:
        store = self.system()["STORE"]
        for product in products:
            # Idempotent: starting to track a tracked product changes nothing.
            started = loose_json(self.http.request("POST", f"{ORG}/inventory", json={"productUuid": product},
                                                   idempotent=True))
            if not isinstance(started, dict) or error_carrying(started):
                # documented answer: {locationUuid, variants}; nothing has moved yet
                raise VendorRejected(f"{self.ctx.name}: starting to track product {product} was answered without "
                                     "the documented {locationUuid, variants} body", body=str(started))
            path = f"{ORG}/inventory/locations/{store}/products/{product}"
            body = json_body(self.http.request("GET", path, idempotent=True)) or {}
            live.balances.update(balances_of(body.get("variants"), self.ctx.name))
            live.tracked.add(product)
            live.started.add(product)

    def stop_tracking(self, products: list[str]) -> WriteAnswer:
        return self.send([], products, "")

    def send(self, moves: list[Move], stop: list[str], ext: str) -> WriteAnswer:
        """One bulk request: the movements and STOP_TRACKING of the products in ``stop``."""
        system = self.system()
        products: dict[str, dict[str, Any]] = {}
        for move in moves:
            entry = products.setdefault(move.product, {"productUuid": move.product, "trackingStatusChange": "NO_CHANGE",
                                                       "variantChanges": []})
            source, dest = (system["SUPPLIER"], system["STORE"]) if move.up else (system["STORE"], system["BIN"])
            entry["variantChanges"].append({"variantUuid": move.variant, "fromLocationUuid": source,
                                            "toLocationUuid": dest, "change": move.count})
        for product in stop:
            products[product] = {"productUuid": product, "trackingStatusChange": "STOP_TRACKING", "variantChanges": []}
        body = {"returnBalanceForLocationUuid": system["STORE"], "productChanges": list(products.values())}
        if ext:
            body["externalUuid"] = ext
        try:
            # Not idempotent: Zettle does not dedupe externalUuid, so a blind retry could move twice.
            response = self.http.request("POST", f"{ORG}/v2/inventory/bulk", json=body, idempotent=False)
        except VendorUnavailable as exc:
            if not exc.in_doubt:
                raise
            return WriteAnswer(Answer.AMBIGUOUS, exc.body or "", reason=str(exc))
        answer = loose_json(response)
        if isinstance(answer, dict) and isinstance(answer.get("variants"), list) and not error_carrying(answer):
            return WriteAnswer(Answer.CONFIRMED, response.text, balances_of(answer["variants"], self.ctx.name))
        return WriteAnswer(Answer.AMBIGUOUS, response.text or f"HTTP {response.status_code}",
                           reason=f"the bulk request was answered HTTP {response.status_code} without the documented "
                                  "{locationUuid, variants} body")
