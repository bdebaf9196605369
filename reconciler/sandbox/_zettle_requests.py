"""Request validation of the Zettle simulator, with Zettle's error body.

Zettle's error body is ``{"developerMessage", "errorType"?, "violations"?: [{"propertyName",
"developerMessage", "constraintType"}]}``. Shape problems (missing fields, wrong types, negative
counts) are collected into ``violations`` and answered with 400 all at once; unknown ids are
answered with 404 ``ENTITY_NOT_FOUND``. Nothing is written until the whole request has passed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from reconciler.sandbox._zettle_store import LOCATION_TYPES, Location, Move, ZettleStore, normalize_uuid

TRACKING_CHANGES = ("START_TRACKING", "STOP_TRACKING", "NO_CHANGE")


class ZettleApiError(Exception):
    """A vendor-shaped error answer. It never leaves the simulator: handlers turn it into a response."""

    def __init__(
        self, status: int, message: str, error_type: str | None = None, violations: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"developerMessage": message}
        if error_type:
            self.body["errorType"] = error_type
        if violations:
            self.body["violations"] = violations

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status)


def not_found(what: str, value: str) -> ZettleApiError:
    return ZettleApiError(404, f"{what} {value} not found", "ENTITY_NOT_FOUND")


@dataclass
class Violations:
    items: list[dict[str, str]] = field(default_factory=list)

    def add(self, prop: str, message: str, constraint: str) -> None:
        self.items.append({"propertyName": prop, "developerMessage": message, "constraintType": constraint})

    def raise_if_any(self) -> None:
        if self.items:
            raise ZettleApiError(400, f"Request validation failed ({len(self.items)} violation(s))", None, self.items)

    def uuid(self, body: dict[str, Any], key: str, prefix: str, required: bool = True) -> str | None:
        prop = f"{prefix}{key}"
        if body.get(key) is None:
            if required:
                self.add(prop, "must not be null", "NotNull")
            return None
        found = normalize_uuid(body[key])
        if found is None:
            self.add(prop, f"{body[key]!r} is not a valid UUID", "UUID")
        return found

    def change(self, body: dict[str, Any], prefix: str) -> int | None:
        """A positive whole count. Zettle's own guide sends it as a string ("1"), so digits in a
        string are accepted too."""
        prop, value = f"{prefix}change", body.get("change")
        if value is None:
            self.add(prop, "must not be null", "NotNull")
            return None
        count: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            count = value
        elif isinstance(value, float) and value.is_integer():
            count = int(value)
        elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
            count = int(value.strip())
        if count is None:
            self.add(prop, f"{value!r} is not a whole number", "Integer")
        elif count <= 0:
            self.add(prop, f"must be greater than 0 (moves are always positive; got {count})", "Positive")
            count = None
        return count


async def json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        data = json.loads(raw) if raw else None
    except ValueError as exc:
        raise ZettleApiError(400, f"Malformed JSON request body: {exc}") from exc
    if not isinstance(data, dict):
        raise ZettleApiError(400, "The request body must be a JSON object")
    return data


def object_list(v: Violations, body: dict[str, Any], key: str, prefix: str, required: bool) -> list[dict[str, Any]]:
    value = body.get(key)
    if value is None:
        if required:
            v.add(f"{prefix}{key}", "must not be null", "NotNull")
        return []
    if not isinstance(value, list) or not all(isinstance(x, dict) for x in value):
        v.add(f"{prefix}{key}", "must be a list of objects", "Type")
        return []
    return value


@dataclass
class RawMove:
    """A movement that passed the shape checks; ids not yet looked up."""

    product: str
    variant: str
    source: str
    target: str
    change: int
    prop: str


def raw_move(v: Violations, body: dict[str, Any], prefix: str, product: str | None, *,
             source_key: str = "fromLocationUuid", target_key: str = "toLocationUuid",
             same_error: str = "DifferentLocations") -> RawMove | None:
    """One movement of a request body; v2 names its ends fromLocationUuid/toLocationUuid, v3
    from/to (each API's own error code when they are the same)."""
    if product is None:
        product = v.uuid(body, "productUuid", prefix)
    variant = v.uuid(body, "variantUuid", prefix)
    source = v.uuid(body, source_key, prefix)
    target = v.uuid(body, target_key, prefix)
    change = v.change(body, prefix)
    if source and source == target:
        v.add(f"{prefix}{target_key}", f"must differ from {source_key}", same_error)
    if product and variant and source and target and change:
        return RawMove(product, variant, source, target, change, prefix.rstrip("."))
    return None


def location(store: ZettleStore, location_uuid: str) -> Location:
    found = store.location(location_uuid)
    if found is None:
        raise not_found("Location", location_uuid)
    return found


def resolve_moves(store: ZettleStore, raw: list[RawMove], tracked: dict[str, bool]) -> list[Move]:
    """Look every id up (404 on the first unknown one); movements of untracked products are refused
    with 400 ``PRODUCT_NOT_TRACKED``. ``tracked`` is the tracking state this request leads to."""
    moves = []
    for item in raw:
        source, target = location(store, item.source), location(store, item.target)
        if not store.product_exists(item.product):
            raise not_found("Product", item.product)
        if store.variant_owner(item.variant) != item.product:
            raise not_found(f"Variant of product {item.product}:", item.variant)
        if not tracked.get(item.product, store.is_tracked(item.product)):
            raise ZettleApiError(
                400, f"{item.prop}: product {item.product} is not tracked; start tracking it first",
                "PRODUCT_NOT_TRACKED",
            )
        moves.append(Move(item.product, item.variant, source, target, item.change))
    return moves


def parse_put(body: dict[str, Any]) -> tuple[list[RawMove], str | None, str | None]:
    """``PUT /organizations/self/inventory``: (moves, returnBalanceForLocationUuid, externalUuid)."""
    v = Violations()
    changes = object_list(v, body, "changes", "", required=True)
    if "changes" in body and isinstance(body["changes"], list) and not body["changes"]:
        v.add("changes", "must not be empty", "NotEmpty")
    moves = [raw_move(v, change, f"changes[{i}].", None) for i, change in enumerate(changes)]
    report = v.uuid(body, "returnBalanceForLocationUuid", "", required=False)
    external = v.uuid(body, "externalUuid", "", required=False)
    v.raise_if_any()
    return [m for m in moves if m], report, external


@dataclass
class ProductChange:
    product: str
    tracking: str
    moves: list[RawMove]


def parse_bulk(body: dict[str, Any]) -> tuple[list[ProductChange], str | None, str | None]:
    """``POST /organizations/self/v2/inventory/bulk``: (product changes, report location, externalUuid)."""
    v = Violations()
    changes = []
    for i, entry in enumerate(object_list(v, body, "productChanges", "", required=True)):
        prefix = f"productChanges[{i}]."
        product = v.uuid(entry, "productUuid", prefix)
        tracking = entry.get("trackingStatusChange")
        if tracking not in TRACKING_CHANGES:
            v.add(f"{prefix}trackingStatusChange", f"{tracking!r} is not one of {', '.join(TRACKING_CHANGES)}", "Enum")
        variant_changes = object_list(v, entry, "variantChanges", prefix, required=False)
        moves = [
            raw_move(v, change, f"{prefix}variantChanges[{j}].", product or "")
            for j, change in enumerate(variant_changes)
        ]
        if product and tracking in TRACKING_CHANGES:
            changes.append(ProductChange(product, str(tracking), [m for m in moves if m]))
    report = v.uuid(body, "returnBalanceForLocationUuid", "", required=False)
    external = v.uuid(body, "externalUuid", "", required=False)
    v.raise_if_any()
    return changes, report, external


def parse_read_filter(body: dict[str, Any]) -> tuple[str, list[str]]:
    """``POST /organizations/self/inventory/products``: (locationType, productUuids)."""
    v = Violations()
    location_type = body.get("locationType")
    if location_type not in LOCATION_TYPES:
        v.add("locationType", f"{location_type!r} is not one of {', '.join(LOCATION_TYPES)}", "Enum")
    products = body.get("productUuids")
    found: list[str] = []
    if not isinstance(products, list):
        v.add("productUuids", "must be a list of product UUIDs", "NotNull")
    else:
        for i, value in enumerate(products):
            if (uid := normalize_uuid(value)) is None:
                v.add(f"productUuids[{i}]", f"{value!r} is not a valid UUID", "UUID")
            else:
                found.append(uid)
    v.raise_if_any()
    return str(location_type), found


@dataclass
class LowStockEntry:
    product: str
    variant: str
    level: float | None
    alert: bool | None


def parse_low_stock(v: Violations, body: dict[str, Any], prefix: str, with_settings: bool = True) -> LowStockEntry | None:
    """One ``{productUuid, variantUuid, lowStockLevel?, lowStockAlert?}``; a null level with an alert
    is allowed (Zettle: alerts without a custom level)."""
    product = v.uuid(body, "productUuid", prefix)
    variant = v.uuid(body, "variantUuid", prefix)
    level, alert = body.get("lowStockLevel"), body.get("lowStockAlert")
    if with_settings and level is not None and (
        isinstance(level, bool) or not isinstance(level, (int, float)) or level < 0
    ):
        v.add(f"{prefix}lowStockLevel", f"{level!r} is not a number >= 0", "PositiveOrZero")
        return None
    if with_settings and alert is not None and not isinstance(alert, bool):
        v.add(f"{prefix}lowStockAlert", f"{alert!r} is not true or false", "Type")
        return None
    if product and variant:
        return LowStockEntry(product, variant, None if level is None else float(level), alert)
    return None
