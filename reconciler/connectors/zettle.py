"""Zettle (iZettle / PayPal) Inventory API v1/v2 connector (VENDORS.md section 3, seed 002).

Zettle holds one STORE balance per variant and cannot set it: every change is a movement between
system locations. Stock goes up SUPPLIER->STORE and down STORE->BIN (as SwagPayPal does), so:

- adjust d: one movement of |d|;
- reset N: re-read the live balance just before writing and move |N - live|, so the result is N
  even if stock was sold since the plan (a move past the tolerance is reported in the response);
- delete: stop tracking the PRODUCT (Zettle tracks per product: every variant stops);
- settings: the custom low-stock level.

Stock writes go through the bulk endpoint (one request per batch, which can also start tracking
a product a reset adopts). Each request carries an ``externalUuid`` derived from the first
operation id of its batch; Zettle neither dedupes nor looks writes up by it, so an adjustment left
in flight is in doubt after a crash. No batch maximum is documented: we assume 100 per request.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import httpx

from reconciler.auth import bearer_auth
from reconciler.connectors._http import VendorHTTP
from reconciler.connectors.base import Connector, OpResult, Outcome, TargetContext, Verification
from reconciler.errors import ConfigError, NotSupported, Problem, VendorRejected
from reconciler.model import Capabilities, OpKind, Operation, Record, Settings

ORG = "/organizations/self"
# Namespace of the externalUuid values: fixed, so the same operation always gets the same uuid.
EXTERNAL_NAMESPACE = uuid.UUID("0f5c8e52-7a0e-5d1b-9a41-5d3f3b2f6c10")
BATCH_SIZE = 100  # undocumented by Zettle: our assumption (docs/connectors/zettle.md)
STOCK_KINDS = frozenset({OpKind.RESET, OpKind.ADJUST, OpKind.DELETE})


def external_uuid(op_id: str) -> str:
    """The externalUuid a request starting with operation ``op_id`` carries."""
    return str(uuid.uuid5(EXTERNAL_NAMESPACE, op_id))


@dataclass
class _Live:
    """The STORE as read just before a write: balances by variant, and tracked products."""

    balances: dict[str, int] = field(default_factory=dict)
    tracked: set[str] = field(default_factory=set)
    started: set[str] = field(default_factory=set)  # tracking started by this batch


@dataclass
class _Step:
    """What one operation contributes to the bulk request."""

    op: Operation
    product: str
    variant: str
    change: int = 0  # signed STORE change
    note: str = ""
    error: str | None = None


class ZettleConnector(Connector):
    kind = "zettle"
    capabilities = Capabilities(
        readable=True,
        absolute=False,
        delta=True,
        native_move=False,
        delete=True,
        settings=frozenset({"low_stock_level"}),
        verifiable_deltas=False,
        max_batch=BATCH_SIZE,
    )

    def __init__(self, ctx: TargetContext, *, transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(ctx, transport=transport)
        self.tolerance = _tolerance(ctx)
        self.http = VendorHTTP(ctx, transport, auth=bearer_auth(ctx, self._auth))
        self._system: dict[str, str] | None = None

    # --- plumbing ----------------------------------------------------------------------------

    def _auth(self, request: httpx.Request) -> None:
        app_id = self.ctx.options.get("application_id")
        if app_id:
            request.headers["X-iZettle-Application-Id"] = str(app_id)

    def close(self) -> None:
        self.http.close()

    def _store(self) -> str:
        if len(self.ctx.location_ids) != 1:
            raise ConfigError([Problem(
                f"target {self.ctx.name!r} (zettle) maps {len(self.ctx.location_ids)} locations",
                hint="A Zettle organisation has one STORE: map exactly one canonical location to its UUID.",
            )])
        return str(next(iter(self.ctx.location_ids.values())))

    def _location_name(self) -> str:
        return next(iter(self.ctx.location_ids))

    def system_locations(self) -> dict[str, str]:
        """type -> uuid of STORE, SUPPLIER, BIN, SOLD (read once per connector)."""
        if self._system is None:
            found = _json(self.http.request("GET", f"{ORG}/locations", idempotent=True))
            if not isinstance(found, list):
                raise VendorRejected(f"{self.ctx.name}: GET {ORG}/locations answered with no location list", body=str(found))
            self._system = {str(loc.get("type")): str(loc.get("uuid")) for loc in found if isinstance(loc, dict)}
            missing = {"SUPPLIER", "BIN"} - set(self._system)
            if missing:
                raise VendorRejected(
                    f"{self.ctx.name}: Zettle lists no {', '.join(sorted(missing))} location.",
                    hint="Zettle creates them when tracking is first enabled; enable tracking of one product in Zettle.",
                )
        return self._system

    def _ids(self, item: str) -> tuple[str, str]:
        raw = self.ctx.item_ids.get(item)
        if not isinstance(raw, Mapping) or "product" not in raw or "variant" not in raw:
            raise ConfigError([Problem(
                f"item {item!r} has no Zettle product and variant UUIDs in target {self.ctx.name!r}",
                "stock/catalog.yaml",
                hint=f'Write its id as {{product: "<uuid>", variant: "<uuid>"}} under ids: {self.ctx.name}.',
            )])
        return str(raw["product"]).lower(), str(raw["variant"]).lower()

    def _item_index(self) -> dict[str, str]:
        """variant uuid -> canonical SKU, for mapped items."""
        index: dict[str, str] = {}
        for sku, raw in self.ctx.item_ids.items():
            if isinstance(raw, Mapping) and "variant" in raw:
                index[str(raw["variant"]).lower()] = sku
        return index

    # --- read ----------------------------------------------------------------------------------

    def _read_live(self) -> _Live:
        store = self._store()
        body = _json(self.http.request("GET", f"{ORG}/inventory/locations/{store}", idempotent=True))
        if not isinstance(body, dict):
            raise VendorRejected(f"{self.ctx.name}: the STORE balance read answered with no object", body=str(body))
        live = _Live(tracked={str(p).lower() for p in body.get("trackedProducts") or []})
        # Balances are strings in Zettle's read examples and numbers in its write answers.
        live.balances.update(_balances(body.get("variants"), self.ctx.name))
        return live

    def _read_low_stock(self) -> dict[str, int]:
        store = self._store()
        body = _json(self.http.request("GET", f"/custom-low-stock/v2/locations/{store}", idempotent=True))
        levels: dict[str, int] = {}
        products = body.get("customLowStockLevelsForProducts") if isinstance(body, dict) else None
        for product in products if isinstance(products, list) else []:
            for entry in product.get("customLowStockLevelForVariants") or [] if isinstance(product, dict) else []:
                level = entry.get("customLowStockLevel") if isinstance(entry, dict) else None
                if level is not None and entry.get("variantUuid"):
                    levels[str(entry["variantUuid"]).lower()] = _int(level, self.ctx.name)
        return levels

    def read_stock(self) -> dict[tuple[str, str], Record]:
        """Every mapped variant of a tracked product. Zettle lists only non-zero balances, so a
        tracked variant it does not list holds 0; untracked products are not stocked at all."""
        live = self._read_live()
        levels = self._read_low_stock()
        location = self._location_name()
        out: dict[tuple[str, str], Record] = {}
        for sku in self.ctx.item_ids:
            try:
                product, variant = self._ids(sku)
            except ConfigError:
                continue  # not a Zettle id: the config validator reports it
            if product not in live.tracked:
                continue
            level = levels.get(variant)
            settings = Settings(low_stock_level=level) if level is not None else Settings()
            out[(location, sku)] = Record(live.balances.get(variant, 0), settings)
        return out

    # --- write ---------------------------------------------------------------------------------

    def batches(self, ops: Sequence[Operation]) -> list[list[Operation]]:
        """Settings and stock changes go to different endpoints: never in one batch, so a failed
        request is only ever recorded against the operations it carried."""
        out: list[list[Operation]] = []
        stock = [o for o in ops if o.kind in STOCK_KINDS]
        settings = [o for o in ops if o.kind is OpKind.SETTINGS]
        other = [o for o in ops if o.kind not in STOCK_KINDS and o.kind is not OpKind.SETTINGS]
        for group in (stock, settings, other):
            out += [group[i : i + BATCH_SIZE] for i in range(0, len(group), BATCH_SIZE)]
        return out

    def execute(self, batch: Sequence[Operation]) -> list[OpResult]:
        if not batch:
            return []
        if all(op.kind is OpKind.SETTINGS for op in batch):
            return self._execute_settings(batch)
        unsupported = [op for op in batch if op.kind not in STOCK_KINDS]
        if unsupported:
            raise NotSupported(
                f"{self.ctx.name}: a Zettle batch mixes {unsupported[0].kind} with stock changes.",
                hint="Group operations with ZettleConnector.batches().",
            )
        return self._execute_stock(batch)

    def _steps(self, batch: Sequence[Operation], live: _Live) -> list[_Step]:
        running = dict(live.balances)
        tolerance = self.tolerance
        steps: list[_Step] = []
        for op in batch:
            product, variant = self._ids(op.item)
            step = _Step(op, product, variant)
            now = running.get(variant, 0)
            if op.kind is OpKind.RESET:
                target = op.legs[0].expected
                assert target is not None  # a reset always has its quantity
                step.change = target - now
                planned = op.legs[0].actual
                if planned is not None and abs(now - planned) > tolerance:
                    step.note = (
                        f"live stock moved by {now - planned:+d} since the plan (plan saw {planned}, read {now} "
                        f"just before writing); reset to {target} anyway"
                    )
            elif op.kind is OpKind.ADJUST:
                step.change = op.legs[0].change
            running[variant] = now + step.change
            steps.append(step)
        self._check_deletes(steps)
        return steps

    @staticmethod
    def _check_deletes(steps: list[_Step]) -> None:
        """Stop tracking is per product: refuse it when the same request writes another variant."""
        writes = {s.product: s.op.item for s in steps if s.op.kind is not OpKind.DELETE}
        for step in steps:
            if step.op.kind is OpKind.DELETE and step.product in writes:
                step.error = (
                    f"cannot stop tracking {step.op.item}: Zettle tracks whole products, and product "
                    f"{step.product} also holds {writes[step.product]}, which this apply writes; "
                    "keep the position in the stock file or delete every variant of the product"
                )

    def _bulk_body(self, steps: list[_Step], live: _Live, ext: str) -> dict[str, Any]:
        system = self.system_locations()
        store, supplier, bin_ = self._store(), system["SUPPLIER"], system["BIN"]
        products: dict[str, dict[str, Any]] = {}
        for step in steps:
            if step.error:
                continue
            entry = products.setdefault(
                step.product, {"productUuid": step.product, "trackingStatusChange": "NO_CHANGE", "variantChanges": []}
            )
            if step.op.kind is OpKind.DELETE:
                if step.product in live.tracked:
                    entry["trackingStatusChange"] = "STOP_TRACKING"
                continue
            if step.change:
                source, dest = (supplier, store) if step.change > 0 else (store, bin_)
                entry["variantChanges"].append(
                    {"variantUuid": step.variant, "fromLocationUuid": source, "toLocationUuid": dest,
                     "change": abs(step.change)}
                )
        changes = [p for p in products.values() if p["variantChanges"] or p["trackingStatusChange"] != "NO_CHANGE"]
        return {"returnBalanceForLocationUuid": store, "externalUuid": ext, "productChanges": changes}

    def _start_tracking(self, batch: Sequence[Operation], live: _Live) -> None:
        """Start tracking the untracked products this batch writes, and read what they hold:
        Zettle keeps balances while a product is untracked and brings them back when tracking
        starts again, so a reset must count from those, not from 0."""
        products = {self._ids(op.item)[0] for op in batch if op.kind is not OpKind.DELETE}
        for product in sorted(products - live.tracked):
            # Idempotent: starting to track a tracked product changes nothing.
            self.http.request("POST", f"{ORG}/inventory", json={"productUuid": product}, idempotent=True)
            path = f"{ORG}/inventory/locations/{self._store()}/products/{product}"
            body = _json(self.http.request("GET", path, idempotent=True)) or {}
            live.balances.update(_balances(body.get("variants"), self.ctx.name))
            live.tracked.add(product)
            live.started.add(product)

    def _execute_stock(self, batch: Sequence[Operation]) -> list[OpResult]:
        live = self._read_live()
        self._start_tracking(batch, live)
        steps = self._steps(batch, live)
        ext = external_uuid(batch[0].id)
        body = self._bulk_body(steps, live, ext)
        carried = ", ".join(s.op.id for s in steps if not s.error)
        tag = f"externalUuid {ext} (request carried operations {carried})"
        balances: dict[str, int] = {}
        text = "nothing to send: already as planned"
        if body["productChanges"]:
            # Not idempotent: Zettle does not dedupe externalUuid, so a blind retry could move twice.
            response = self.http.request("POST", f"{ORG}/v2/inventory/bulk", json=body, idempotent=False)
            text = response.text
            answer = _json(response)
            balances = _balances(answer.get("variants") if isinstance(answer, dict) else None, self.ctx.name)
        location = self._location_name()
        results = []
        for step in steps:
            if step.error:
                results.append(OpResult(step.op.id, Outcome.FAILED, response="", error=step.error))
                continue
            note = f"note: {step.note}\n" if step.note else ""
            if step.product in live.started:
                note += f"note: started tracking Zettle product {step.product} (it was untracked)\n"
            after = {location: balances[step.variant]} if step.variant in balances else {}
            results.append(OpResult(step.op.id, Outcome.APPLIED, response=f"{note}{tag}\n{text}", actual_after=after))
        return results

    def _execute_settings(self, batch: Sequence[Operation]) -> list[OpResult]:
        requests: list[dict[str, Any]] = []
        for op in batch:
            product, variant = self._ids(op.item)
            level = op.settings_after.low_stock_level if op.settings_after else None
            if level is not None:  # never send a null: only managed settings are written
                requests.append({"productUuid": product, "variantUuid": variant, "lowStockLevel": level})
        text = "nothing to send: no low_stock_level managed"
        if requests:
            path = f"/custom-low-stock/locations/{self._store()}"
            response = self.http.request("POST", path, json={"requests": requests}, idempotent=True)
            text = response.text or f"HTTP {response.status_code}"
        return [OpResult(op.id, Outcome.APPLIED, response=text) for op in batch]

    # --- after a crash ----------------------------------------------------------------------

    def verify(self, op: Operation) -> Verification:
        """Adjustments: UNKNOWN (Zettle neither dedupes nor finds writes by externalUuid).
        Resets, deletes and settings are absolute: the live state tells whether they landed
        (a sale right after a reset can make it look not applied: re-sending it is harmless)."""
        product, variant = self._ids(op.item)
        if op.kind is OpKind.DELETE:
            return Verification.NOT_APPLIED if product in self._read_live().tracked else Verification.APPLIED
        if op.kind is OpKind.RESET:
            live = self._read_live()
            held = live.balances.get(variant, 0) if product in live.tracked else None
            return Verification.APPLIED if held == op.legs[0].expected else Verification.NOT_APPLIED
        if op.kind is OpKind.SETTINGS and op.settings_after is not None:
            wanted = op.settings_after.low_stock_level
            if wanted is None:
                return Verification.APPLIED  # nothing was to be written
            return Verification.APPLIED if self._read_low_stock().get(variant) == wanted else Verification.NOT_APPLIED
        return Verification.UNKNOWN


def _json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError as exc:
        raise VendorRejected(
            f"Zettle answered {response.request.method} {response.request.url.path} with a body that is not JSON",
            status=response.status_code, body=response.text,
        ) from exc


def _balances(entries: Any, target: str) -> dict[str, int]:
    """variant uuid -> balance from a Zettle ``variants`` list (entries without a variant are skipped)."""
    out: dict[str, int] = {}
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("variantUuid"):
            out[str(entry["variantUuid"]).lower()] = _int(entry.get("balance"), target)
    return out


def _tolerance(ctx: TargetContext) -> int:
    value = ctx.options.get("reset_tolerance", 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError([Problem(
            f"target {ctx.name!r}: options.reset_tolerance must be a whole number of 0 or more, not {value!r}",
            "reconciler.yaml", hint="It is how many units live stock may move between plan and apply unreported.",
        )])
    return value


def _int(value: Any, target: str) -> int:
    """A balance as Zettle sends it: a number, or a string holding one."""
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise VendorRejected(f"{target}: Zettle sent the balance {value!r}, which is not a number", body=json.dumps(value)) from exc
    return int(number)


CONNECTOR = ZettleConnector
