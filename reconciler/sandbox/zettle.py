"""Simulator of the Zettle (iZettle/PayPal) Inventory API v1/v2 (host https://inventory.izettle.com).

Coverage, assumptions and how to start it: docs/sandboxes/zettle.md. Vendor facts: VENDORS.md §3
and seed 002. Every path is served with and without a trailing slash (SwagPayPal sends one).
Balances are strings in read responses and numbers in write responses, as in Zettle's examples.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from reconciler.errors import ConfigError, Problem
from reconciler.sandbox._core import Simulator
from reconciler.sandbox._oauth import with_oauth
from reconciler.sandbox._zettle_requests import (
    LowStockEntry,
    Violations,
    ZettleApiError,
    json_object,
    location,
    not_found,
    object_list,
    parse_bulk,
    parse_low_stock,
    parse_put,
    parse_read_filter,
    resolve_moves,
)
from reconciler.sandbox._zettle_v3 import V3_OPTIONS, ZettleV3, check_v3_options
from reconciler.sandbox import _zettle_library as library
from reconciler.sandbox._zettle_library import LIBRARY_SCHEMA
from reconciler.sandbox._zettle_store import SCHEMA, Location, Move, ZettleStore, normalize_uuid

ORG = "/organizations/{org}"
KNOWN_OPTIONS = {
    "organization_uuid": "the organization UUID accepted in place of 'self' in /organizations/self/...",
    "dedupe_external_uuid": "replay the first answer for a repeated externalUuid (NOT known Zettle behaviour)",
    "retry_after": "send a Retry-After header (faults.retry_after_s) with the simulated 429",
    "store_alias": "set by fixtures whose STORE id is the word STORE: inspect_stock reports the STORE so",
    **V3_OPTIONS,
}
Handler = Callable[["ZettleSimulator", Request], Awaitable[Response]]


def _endpoint(fn: Handler) -> Handler:
    """Check the organization in the path and turn vendor errors into Zettle's error body."""

    @functools.wraps(fn)
    async def wrapper(self: ZettleSimulator, request: Request) -> Response:
        try:
            self._check_v1v2_gone(request)
            self._check_organization(request.path_params.get("org"))
            return await fn(self, request)
        except ZettleApiError as exc:
            return exc.response()

    return wrapper


def _both(path: str, endpoint: Callable[[Request], Awaitable[Response]], method: str) -> list[BaseRoute]:
    """Zettle clients send paths with and without a trailing slash; serve both, never redirect."""
    return [Route(path, endpoint, methods=[method]), Route(path + "/", endpoint, methods=[method])]


def _variant(loc: Location, entry: Mapping[str, Any], as_string: bool) -> dict[str, Any]:
    balance = entry["balance"]
    return {
        "locationUuid": loc.uuid,
        "locationType": loc.type,
        "productUuid": entry["productUuid"],
        "variantUuid": entry["variantUuid"],
        "balance": str(balance) if as_string else balance,
    }


def _plain_number(value: float | None) -> float | int | None:
    return int(value) if value is not None and float(value).is_integer() else value


class ZettleSimulator(ZettleV3, Simulator):
    kind = "zettle"
    default_token = "zettle-sandbox-token"
    schema = SCHEMA + LIBRARY_SCHEMA

    @property
    def app(self) -> Any:
        return with_oauth(self, super().app)  # the vendor's token endpoints (sandbox/_oauth.py)

    def __init__(self, *, options: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        """``options`` (also accepted as ``fixtures["options"]``, persisted in the state): see KNOWN_OPTIONS."""
        self._check_options(options or {})
        self._cursors: dict[str, tuple[str, int, int]] = {}  # issued /v3/stock cursors (lost on restart)
        super().__init__(**kwargs)
        self.store.ensure_locations()
        if options:
            self.store.update_options(options)

    @property
    def store(self) -> ZettleStore:
        return ZettleStore(self.db)

    @staticmethod
    def _check_options(options: Mapping[str, Any]) -> None:
        unknown = sorted(set(options) - set(KNOWN_OPTIONS))
        if unknown:
            raise ConfigError([Problem(
                f"unknown zettle sandbox option(s): {', '.join(unknown)}", file="zettle options",
                hint=f"Known options: {', '.join(sorted(KNOWN_OPTIONS))}.",
            )])
        problems = check_v3_options(dict(options))
        if problems:
            raise ConfigError([Problem(p, file="zettle options") for p in problems])
        org = options.get("organization_uuid")
        if org is not None and normalize_uuid(org) is None:
            raise ConfigError([Problem(f"organization_uuid {org!r} is not a UUID", file="zettle options")])

    def option(self, name: str) -> Any:
        return self.store.options().get(name)

    # --- Simulator interface ----------------------------------------------------------------

    def load_fixtures(self, fixtures: Mapping[str, Any]) -> None:
        options = dict(fixtures.get("options") or {})
        self._check_options(options)
        if options:
            self.store.update_options(options)
        self.store.load_fixtures(fixtures)
        library.load_codes(self.db, fixtures)

    def authenticate(self, request: Request) -> Response | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.token.encode()):
            return None
        return JSONResponse(
            {"developerMessage": "The access token is missing, invalid or has expired", "errorType": "ACCESS_TOKEN_EXPIRED"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer error="invalid_request", error_description="ACCESS_TOKEN_EXPIRED"'},
        )

    def rate_limited_response(self, request: Request) -> Response:
        # No source documents a Retry-After from Zettle, so it is only sent when asked for.
        headers = {"Retry-After": str(self.faults.retry_after_s)} if self.option("retry_after") else None
        return JSONResponse(
            {"developerMessage": "Too many requests", "errorType": "TOO_MANY_REQUESTS"}, status_code=429, headers=headers
        )

    def server_error_response(self, request: Request) -> Response:
        return JSONResponse({"developerMessage": "Service unavailable (injected by the sandbox)"}, status_code=503)

    def inspect_stock(self) -> list[dict[str, Any]]:
        store = self.option("store_alias") or self.store.store().uuid
        records = []
        for row in self.store.all_variants():
            record: dict[str, Any] = {
                "location": store,
                "item": {"product": row["product_uuid"], "variant": row["uuid"]},
                "quantity": row["balance"],
                "tracked": bool(row["tracked"]),
            }
            if row["level"] is not None:
                record["low_stock_level"] = _plain_number(row["level"])
            if row["alert"] is not None:
                record["low_stock_alert"] = bool(row["alert"])
            records.append(record)
        return records

    def sell_one(self) -> dict[str, Any] | None:
        """A till sale: 1 unit of a random tracked variant with STORE balance > 0 moves STORE -> SOLD."""
        candidates = self.store.sellable()
        if not candidates:
            return None
        product, variant = self.rng.choice(candidates)
        store, sold = self.store.store(), self.store.location_of_type("SOLD")
        self.store.apply([Move(product, variant, store, sold, 1)], {}, None, "SALE")
        return {
            "location": store.uuid,
            "item": {"product": product, "variant": variant},
            "quantity": 1,
            "balance_after": self.store.balance(variant),
        }

    def movements(self) -> list[dict[str, Any]]:
        """TEST-ONLY: the movement ledger, oldest first, with each movement's externalUuid."""
        return self.store.movements()

    # --- routes ---------------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        low = "/custom-low-stock"
        table: list[tuple[str, Callable[[Request], Awaitable[Response]], str]] = [
            (f"{ORG}/locations", self.list_locations, "GET"),
            (f"{ORG}/library", self.product_library, "GET"),
            (f"{ORG}/inventory/locations", self.balances_by_type, "GET"),
            (f"{ORG}/inventory/locations/{{loc}}", self.balances_at, "GET"),
            (f"{ORG}/inventory/locations/{{loc}}/products/{{product}}", self.product_balances, "GET"),
            (f"{ORG}/inventory/products", self.read_filter, "POST"),
            ("/inventory", self.store_balances_since, "GET"),
            (f"{ORG}/inventory", self.update_balances, "PUT"),
            (f"{ORG}/inventory", self.start_tracking, "POST"),
            (f"{ORG}/inventory/products/{{product}}", self.stop_tracking, "DELETE"),
            (f"{ORG}/v2/inventory/bulk", self.bulk, "POST"),
            (f"{low}/locations/{{loc}}", self.set_low_stock_one, "PUT"),
            (f"{low}/locations/{{loc}}", self.set_low_stock_many, "POST"),
            (f"{low}/locations/{{loc}}/delete", self.delete_low_stock_many, "POST"),
            (f"{low}/locations/{{loc}}/products/{{product}}/variants/{{variant}}", self.delete_low_stock_one, "DELETE"),
        ]
        for prefix in (low, f"{low}/v2"):
            table.append((f"{prefix}/locations/{{loc}}", self.get_low_stock, "GET"))
            table.append((f"{prefix}/locations/{{loc}}/products/{{product}}", self.get_low_stock, "GET"))
        routes = [route for path, endpoint, method in table for route in _both(path, endpoint, method)]
        return routes + self.v3_routes() + [Route("/_sandbox/movements", self._movements_endpoint, methods=["GET"])]

    async def _movements_endpoint(self, request: Request) -> Response:
        return JSONResponse({"test_only": True, "movements": self.movements()})

    def _check_v1v2_gone(self, request: Request) -> None:
        path = request.url.path
        if path.rstrip("/").endswith("/library"):
            return  # the product library is not an inventory endpoint: not retired with v1/v2
        if self.option("v1v2") == "gone" and (path.startswith("/organizations/") or path.rstrip("/") == "/inventory"):
            # One plausible fate of the deprecated paths (Zettle: available "until 31 May, 2023").
            raise ZettleApiError(404, "The v1/v2 inventory endpoints are retired; use the v3 API (/v3/...)",
                                 "ENTITY_NOT_FOUND")

    def _check_organization(self, org: str | None) -> None:
        if org is None or org == "self":
            return
        if normalize_uuid(org) != self.store.organization_uuid():
            raise ZettleApiError(403, f"No access to organization {org}")

    def _location_param(self, request: Request) -> Location:
        loc = normalize_uuid(request.path_params["loc"])
        if loc is None:
            raise not_found("Location", request.path_params["loc"])
        return location(self.store, loc)

    def _product_param(self, request: Request) -> str:
        product = normalize_uuid(request.path_params["product"])
        if product is None or not self.store.product_exists(product):
            raise not_found("Product", request.path_params["product"])
        return product

    # --- reads (balances as strings) --------------------------------------------------------

    def _balances_body(self, loc: Location, products: list[str] | None = None, since: str | None = None) -> dict[str, Any]:
        tracked = self.store.tracked_products()
        if products is not None:
            tracked = [p for p in tracked if p in set(products)]
        # SOLD, BIN and SUPPLIER are virtual: Zettle tracks no balances there, so none are listed.
        entries = self.store.store_balances(products, since) if loc.type == "STORE" else []
        return {
            "locationUuid": loc.uuid,
            "trackedProducts": tracked,
            "variants": [_variant(loc, e, as_string=True) for e in entries],
            "latest": 0,
        }

    @_endpoint
    async def product_library(self, request: Request) -> Response:
        return library.library_page(self.db, request, self.store.organization_uuid())

    @_endpoint
    async def list_locations(self, request: Request) -> Response:
        return JSONResponse([loc.as_json() for loc in self.store.locations()])

    @_endpoint
    async def balances_by_type(self, request: Request) -> Response:
        wanted = request.query_params.get("type", "STORE").upper()
        found = next((loc for loc in self.store.locations() if loc.type == wanted), None)
        if found is None:
            v = Violations()
            v.add("type", f"{wanted!r} is not one of STORE, SOLD, BIN, SUPPLIER", "Enum")
            v.raise_if_any()
        return JSONResponse(self._balances_body(found))  # type: ignore[arg-type]

    @_endpoint
    async def balances_at(self, request: Request) -> Response:
        return JSONResponse(self._balances_body(self._location_param(request)))

    @_endpoint
    async def product_balances(self, request: Request) -> Response:
        loc, product = self._location_param(request), self._product_param(request)
        body = self._balances_body(loc, [product])
        return JSONResponse({"locationUuid": loc.uuid, "variants": body["variants"]})

    @_endpoint
    async def read_filter(self, request: Request) -> Response:
        location_type, products = parse_read_filter(await json_object(request))
        return JSONResponse(self._balances_body(self.store.location_of_type(location_type), products))

    @_endpoint
    async def store_balances_since(self, request: Request) -> Response:
        since = request.query_params.get("since")
        stamp = None
        if since:
            try:
                parsed = datetime.fromisoformat(since)
            except ValueError:
                v = Violations()
                v.add("since", f"{since!r} is not an ISO-8601 timestamp", "Timestamp")
                v.raise_if_any()
            aware = parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
            stamp = aware.astimezone(timezone.utc).isoformat(timespec="microseconds")
        return JSONResponse(self._balances_body(self.store.store(), None, stamp))

    # --- writes (balances as numbers) -------------------------------------------------------

    def _replay(self, external_uuid: str | None) -> dict[str, Any] | None:
        if external_uuid and self.option("dedupe_external_uuid"):
            return self.store.remembered_response(external_uuid)
        return None

    def _remember(self, external_uuid: str | None, body: Mapping[str, Any]) -> None:
        if external_uuid and self.option("dedupe_external_uuid"):
            self.store.remember_response(external_uuid, body)

    def _report(self, loc: Location, moves: list[Move], full: bool) -> list[dict[str, Any]]:
        """Balances at ``loc`` of each moved variant, once each, in request order."""
        seen: dict[str, Move] = {}
        for move in moves:
            seen.setdefault(move.variant, move)
        report = []
        for variant, move in seen.items():
            balance = self.store.balance(variant) if loc.type == "STORE" else 0
            entry = {"productUuid": move.product, "variantUuid": variant, "balance": balance}
            report.append(_variant(loc, entry, as_string=False) if full else entry)
        return report

    @_endpoint
    async def update_balances(self, request: Request) -> Response:
        raw, report_uuid, external = parse_put(await json_object(request))
        if (replay := self._replay(external)) is not None:
            return JSONResponse(replay)
        report = location(self.store, report_uuid) if report_uuid else self.store.store()
        moves = resolve_moves(self.store, raw, {})
        self.store.apply(moves, {}, external, "PUT")
        body = {"locationUuid": report.uuid, "variants": self._report(report, moves, full=True)}
        self._remember(external, body)
        return JSONResponse(body)

    @_endpoint
    async def bulk(self, request: Request) -> Response:
        changes, report_uuid, external = parse_bulk(await json_object(request))
        if (replay := self._replay(external)) is not None:
            return JSONResponse(replay)
        report = location(self.store, report_uuid) if report_uuid else None
        tracking: dict[str, bool] = {}
        moves: list[Move] = []
        for change in changes:
            if not self.store.product_exists(change.product):
                raise not_found("Product", change.product)
            tracked = tracking.get(change.product, self.store.is_tracked(change.product))
            tracked = tracked or change.tracking == "START_TRACKING"
            # STOP_TRACKING applies after this product's movements, which need it still tracked.
            moves += resolve_moves(self.store, change.moves, {change.product: tracked})
            tracking[change.product] = tracked and change.tracking != "STOP_TRACKING"
        self.store.apply(moves, tracking, external, "BULK")
        # Without returnBalanceForLocationUuid there is nothing to report (SwagPayPal expects null/empty).
        body = {
            "locationUuid": report.uuid if report else None,
            "variants": self._report(report, moves, full=False) if report else [],
        }
        self._remember(external, body)
        return JSONResponse(body)

    @_endpoint
    async def start_tracking(self, request: Request) -> Response:
        v = Violations()
        product = v.uuid(await json_object(request), "productUuid", "")
        v.raise_if_any()
        if not self.store.product_exists(str(product)):
            raise not_found("Product", str(product))
        self.store.apply([], {str(product): True}, None, "TRACKING")
        store = self.store.store()
        # Balances kept from an earlier tracking period come back here (Zettle: "Lists existing balances").
        entries = self.store.store_balances([str(product)])
        return JSONResponse({"locationUuid": store.uuid, "variants": [_variant(store, e, False) for e in entries]})

    @_endpoint
    async def stop_tracking(self, request: Request) -> Response:
        product = self._product_param(request)
        self.store.apply([], {product: False}, None, "TRACKING")
        return Response(status_code=204)

    # --- low stock ----------------------------------------------------------------------------

    def _low_stock_location(self, request: Request) -> Location:
        loc = self._location_param(request)
        if loc.type != "STORE":
            raise ZettleApiError(400, f"Low stock levels apply to the STORE location only, not {loc.type} {loc.uuid}")
        return loc

    def _check_entries(self, entries: list[LowStockEntry | None]) -> list[LowStockEntry]:
        found = [e for e in entries if e]
        for entry in found:
            if not self.store.product_exists(entry.product):
                raise not_found("Product", entry.product)
            if self.store.variant_owner(entry.variant) != entry.product:
                raise not_found(f"Variant of product {entry.product}:", entry.variant)
        return found

    @_endpoint
    async def set_low_stock_one(self, request: Request) -> Response:
        self._low_stock_location(request)
        v = Violations()
        entry = parse_low_stock(v, await json_object(request), "")
        v.raise_if_any()
        entries = self._check_entries([entry])
        self.store.set_low_stock([(e.product, e.variant, e.level, e.alert) for e in entries])
        return Response(status_code=204)

    @_endpoint
    async def set_low_stock_many(self, request: Request) -> Response:
        self._low_stock_location(request)
        v = Violations()
        items = object_list(v, await json_object(request), "requests", "", required=True)
        parsed = [parse_low_stock(v, item, f"requests[{i}].") for i, item in enumerate(items)]
        v.raise_if_any()
        entries = self._check_entries(parsed)
        self.store.set_low_stock([(e.product, e.variant, e.level, e.alert) for e in entries])
        return Response(status_code=204)

    @_endpoint
    async def delete_low_stock_one(self, request: Request) -> Response:
        self._low_stock_location(request)
        product = self._product_param(request)
        variant = normalize_uuid(request.path_params["variant"])
        entries = self._check_entries([LowStockEntry(product, str(variant), None, None)])
        self.store.delete_low_stock([e.variant for e in entries])
        return Response(status_code=202)  # Zettle documents "202 - No Content"

    @_endpoint
    async def delete_low_stock_many(self, request: Request) -> Response:
        self._low_stock_location(request)
        v = Violations()
        items = object_list(v, await json_object(request), "requests", "", required=True)
        parsed = [parse_low_stock(v, item, f"requests[{i}].", with_settings=False) for i, item in enumerate(items)]
        v.raise_if_any()
        self.store.delete_low_stock([e.variant for e in self._check_entries(parsed)])
        return Response(status_code=202)

    @_endpoint
    async def get_low_stock(self, request: Request) -> Response:
        loc = self._low_stock_location(request)
        with_alert = "/v2/" in request.url.path
        product = self._product_param(request) if "product" in request.path_params else None
        grouped: dict[str, list[dict[str, Any]]] = {}
        for row in self.store.low_stock(product):
            entry: dict[str, Any] = {"variantUuid": row["variant_uuid"], "customLowStockLevel": row["level"]}
            if with_alert:
                entry["lowStockAlert"] = bool(row["alert"])
            grouped.setdefault(row["product_uuid"], []).append(entry)
        if product is not None:
            body: dict[str, Any] = {"productUuid": product, "customLowStockLevelForVariants": grouped.get(product, [])}
        else:
            body = {
                "organizationUuid": self.store.organization_uuid(),
                "locationUuid": loc.uuid,
                "customLowStockLevelsForProducts": [
                    {"productUuid": p, "customLowStockLevelForVariants": variants} for p, variants in grouped.items()
                ],
            }
        return _etag_response(request, body)


def _etag_response(request: Request, body: Mapping[str, Any]) -> Response:
    """The body's hash is its ETag; a matching If-None-Match gets 304 without a body."""
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    tag = f'"{digest[:32]}"'
    sent = request.headers.get("if-none-match")
    if sent and (sent.strip() == "*" or tag in {t.strip().removeprefix("W/") for t in sent.split(",")}):
        return Response(status_code=304, headers={"ETag": tag})
    return JSONResponse(body, headers={"ETag": tag})


SIMULATOR = ZettleSimulator
