"""Lightspeed supplier inventory feed (seed 001, VENDORS.md section 2).

One stock location (the supplier's warehouse). Documented: ``PUT /inventory`` with
``{"products": [{"id": "<item uuid>", "quantity": N}, ...]}``, N the new available quantity
(absolute), Bearer auth (retail-support.lightspeedhq.com/hc/en-us/articles/1260803874789).
Nothing else is: the article links "the GET request detailed here" for item ids, but that page
was never captured and no public client calls it (research/auth_and_discovery.md A1).

So by default the target is WRITE-ONLY, as Ka-ching is: the planner plans against B (what this
tool last applied) and every change is a reset (``PUT /inventory``), batched up to MAX_BATCH
items (an ASSUMPTION: no limit is documented). No delete and no settings: where the two catalog
flags are written is not documented either (most likely the catalog upload).

``options: {read_api: assumed}`` turns on the old, UNVERIFIED read path
(:class:`AssumedReadConnector`): ``GET /products?page=&per_page=`` to read, read-modify-write
adjustments through ``GET /products/{id}``, and the flags through ``PUT /products/{id}``. These
paths exist in our sandbox only; docs/connectors/lightspeed-supplier.md says how to check them.

Answers to ``PUT /inventory`` (no success body is documented) are read, not trusted:
- an empty 2xx body is success (ASSUMED plausible);
- ``{"products": [{"id", "quantity"}, ...]}`` (the sandbox's ASSUMED echo) is success for every
  item it echoes with the quantity sent, in doubt for an item it leaves out or echoes otherwise;
- a body with ``error`` / ``errors`` fails the batch with that message, whatever the status;
- any other body is in doubt, verbatim. The write is absolute: once the user has looked,
  sending it again is harmless, and the applier re-sends it after a crash.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import httpx

from reconciler.connectors._answers import error_message, parse_json
from reconciler.auth import bearer_auth
from reconciler.connectors._http import RetryPolicy, VendorHTTP
from reconciler.connectors.base import CatalogueItem, Connector, OpResult, Outcome, TargetContext
from reconciler.errors import ConfigError, NotSupported, Problem, VendorRejected
from reconciler.model import Capabilities, OpKind, Operation, Record, Settings

MAX_BATCH = 1000  # ASSUMPTION: undocumented; matches the simulator
PER_PAGE = 250  # ASSUMPTION: the simulator's maximum page size for GET /products
FLAGS = {"tracking": "isInventoryTrackingEnabled", "backordering": "isBackorderingEnabled"}
QUANTITY_KINDS = (OpKind.RESET, OpKind.ADJUST)
READ_API_OPTION = "read_api"
READ_API_VALUES = ("none", "assumed")


def read_api(ctx: TargetContext) -> str:
    """The target's ``read_api`` option: "none" (the default, write-only) or "assumed"."""
    value = ctx.options.get(READ_API_OPTION, "none")
    if value not in READ_API_VALUES:
        raise ConfigError([Problem(
            f"target {ctx.name!r} (lightspeed-supplier): options.read_api must be one of "
            f"{', '.join(READ_API_VALUES)}, not {value!r}", "reconciler.yaml",
            hint="Leave it out (write-only, the documented API) or write `read_api: assumed` to use the "
                 "unverified read path (docs/connectors/lightspeed-supplier.md).")])
    return str(value)


class LightspeedSupplierConnector(Connector):
    """The documented feed: write-only, resets only."""

    kind = "lightspeed-supplier"
    capabilities = Capabilities(
        readable=False,
        absolute=True,
        delta=False,
        native_move=False,
        delete=False,
        settings=frozenset(),
        verifiable_deltas=False,
        max_batch=MAX_BATCH,
    )

    @classmethod
    def reads_with(cls, options: Mapping[str, Any]) -> bool:
        return options.get(READ_API_OPTION) == "assumed"

    def __new__(cls, ctx: TargetContext, **kwargs: Any) -> LightspeedSupplierConnector:
        # The workflow reads capabilities from the connector's class (type(conn).capabilities),
        # so the option picks the class: `read_api: assumed` gets the one that can read.
        if cls is LightspeedSupplierConnector and read_api(ctx) == "assumed":
            cls = AssumedReadConnector
        return super().__new__(cls)

    def __init__(
        self, ctx: TargetContext, *, transport: httpx.BaseTransport | None = None, retry: RetryPolicy | None = None
    ) -> None:
        super().__init__(ctx, transport=transport)
        read_api(ctx)
        if len(ctx.location_ids) != 1:
            raise ConfigError([Problem(
                f"target {ctx.name!r} (lightspeed-supplier) has one stock location, but "
                f"{len(ctx.location_ids)} locations are mapped to it", "reconciler.yaml",
                hint="Map exactly one location to this target.",
            )])
        self.location = next(iter(ctx.location_ids))
        self.tolerance = int(ctx.options.get("drift_tolerance", 0))
        self.http = VendorHTTP(ctx, transport, auth=bearer_auth(ctx), retry=retry or RetryPolicy())

    def close(self) -> None:
        self.http.close()

    def item_id(self, op: Operation) -> str:
        value = self.ctx.item_ids.get(op.item)
        if not isinstance(value, str) or not value:
            raise NotSupported(
                f"operation {op.id}: item {op.item!r} has no supplier item id in target {self.ctx.name!r}",
                hint="Add the item uuid under the item in stock/catalog.yaml.",
            )
        return value

    def read_stock(self) -> dict[tuple[str, str], Record]:
        raise NotSupported(
            f"target {self.ctx.name!r} (lightspeed-supplier) cannot be read: the feed's read endpoint is not "
            "documented publicly",
            hint="Plans for this target are made against the last applied state (B). `options: {read_api: assumed}` "
                 "uses an unverified read path (docs/connectors/lightspeed-supplier.md).",
        )

    # --- batching -----------------------------------------------------------------------------

    def batches(self, ops: Sequence[Operation]) -> list[list[Operation]]:
        """Absolute quantity writes share PUTs (one item at most once per PUT); anything else
        (flag writes, read-modify-write adjustments of the assumed read path) goes alone.

        LIMITATION (vendor): the feed has no delta and no conditional write, so an adjustment is
        GET live, PUT live + d, and a sale landing between the two is overwritten. Sending each
        such write alone, straight after its own GET, keeps that window to one round trip
        instead of a whole batch of reads (docs/connectors/lightspeed-supplier.md).
        """
        out: list[list[Operation]] = []
        group: list[Operation] | None = None
        for op in ops:
            if op.kind not in QUANTITY_KINDS or self._reads_before_writing(op):
                out.append([op])
                continue
            if group is None or len(group) >= MAX_BATCH or op.item in {g.item for g in group}:
                group = []
                out.append(group)
            group.append(op)
        return out

    # --- execute ------------------------------------------------------------------------------

    def execute(self, batch: Sequence[Operation]) -> list[OpResult]:
        if batch and all(op.kind in QUANTITY_KINDS for op in batch):
            return self._put_quantities(batch)
        results: list[OpResult] = []
        for op in batch:
            results.extend(self._put_quantities([op]) if op.kind in QUANTITY_KINDS else [self._other(op)])
        return results

    def _other(self, op: Operation) -> OpResult:
        raise NotSupported(
            f"operation {op.id}: the Lightspeed supplier feed cannot execute {op.kind.value} here: its only "
            "documented write sets available quantities (PUT /inventory)")

    @staticmethod
    def _reads_before_writing(op: Operation) -> bool:
        return op.kind is not OpKind.RESET and op.write_mode != "absolute"

    def _target_quantity(self, op: Operation) -> tuple[int, str]:
        """The quantity to write and a note for the result."""
        leg = op.legs[0]
        if op.kind is OpKind.RESET or op.write_mode == "absolute":
            assert leg.expected is not None
            return leg.expected, ""
        raise NotSupported(f"operation {op.id}: a write-only supplier feed takes absolute quantities only "
                           f"(write mode {op.write_mode!r}); plan again")

    def _put_quantities(self, batch: Sequence[Operation]) -> list[OpResult]:
        lines: dict[str, int] = {}
        notes: dict[str, str] = {}
        failed: dict[str, OpResult] = {}
        for op in batch:
            quantity, notes[op.id] = self._target_quantity(op)
            if quantity < 0:
                failed[op.id] = OpResult(op.id, Outcome.FAILED, error=(
                    f"{notes[op.id]}: the result would be negative and the feed takes no negative quantity; "
                    "nothing was written for this item. Re-plan to see the current stock."))
                continue
            lines[self.item_id(op)] = quantity
        if not lines:
            return [failed[op.id] for op in batch]
        body = {"products": [{"id": item, "quantity": qty} for item, qty in lines.items()]}
        try:
            response = self.http.request("PUT", "/inventory", json=body, idempotent=True)
        except VendorRejected as exc:
            text = exc.body or ""
            said = error_message(text)
            error = f"the feed refused the PUT (HTTP {exc.status}): {said}" if said else text or exc.message
            return [failed.get(op.id) or OpResult(op.id, Outcome.FAILED, text, error) for op in batch]
        text = self.http.scrub(response.text)
        results = []
        for op in batch:
            if op.id in failed:
                results.append(failed[op.id])
                continue
            item = self.item_id(op)
            result = judge_put(op.id, item, lines[item], response.status_code, text, self.location)
            if notes[op.id] and result.outcome is Outcome.APPLIED:
                result = OpResult(op.id, result.outcome, f"{notes[op.id]}\n{result.response}", result.error,
                                  result.actual_after)
            results.append(result)
        return results


class AssumedReadConnector(LightspeedSupplierConnector):
    """``read_api: assumed``: the read, read-modify-write and flag paths that only our sandbox
    is known to serve (UNVERIFIED against Lightspeed; see the module doc)."""

    capabilities = Capabilities(
        readable=True,
        absolute=True,
        delta=False,
        native_move=False,
        delete=True,
        settings=frozenset(FLAGS),
        verifiable_deltas=False,
        max_batch=MAX_BATCH,
    )

    def read_stock(self) -> dict[tuple[str, str], Record]:
        items = {vid: name for name, vid in self.ctx.item_ids.items() if isinstance(vid, str)}
        out: dict[tuple[str, str], Record] = {}
        page = 1
        while True:
            response = self.http.get("/products", params={"page": page, "per_page": PER_PAGE})
            body = self.http.json(response)
            # An answer of another shape must not read as "no stock": the plan would adopt it.
            products = body.get("products") if isinstance(body, dict) else None
            if not isinstance(products, list) or not all(isinstance(p, dict) for p in products):
                raise self.http.unreadable(response, "is not a page of products ({'products': [...]})")
            for product in products:
                name = items.get(product.get("id"))
                if name is not None:
                    out[(self.location, name)] = _record(product)
            if not products or page >= int(body.get("pages") or page):
                return out
            page += 1

    def catalogue(self) -> list[CatalogueItem]:
        """The supplier's items keyed by its own SKU, ``vendorSku`` (documented: the catalogue is
        vendorSku-keyed, docs/product-data-definitions; research A1), read through the same
        UNVERIFIED ``GET /products`` as read_stock. Without ``read_api: assumed`` there is no
        read: the ids come from a Backoffice export (``discover --from-csv``)."""
        items: list[CatalogueItem] = []
        page = 1
        while True:
            body = self.http.json(self.http.get("/products", params={"page": page, "per_page": PER_PAGE}))
            products = body.get("products") if isinstance(body, dict) else None
            if not isinstance(products, list):
                raise VendorRejected(f"{self.ctx.name}: GET /products answered with no products list")
            items += [CatalogueItem(str(p["id"]), str(p.get("vendorSku") or "").strip() or None, (), str(p.get("name") or ""))
                      for p in products if isinstance(p, dict) and p.get("id")]
            if not products or page >= int(body.get("pages") or page):
                return items
            page += 1

    def live_quantity(self, item_id: str) -> int:
        response = self.http.get(f"/products/{item_id}")
        body = self.http.json(response)
        try:
            return int(body["quantity"])
        except (TypeError, KeyError, ValueError) as exc:
            raise self.http.unreadable(response, "holds no whole-number quantity") from exc

    def _target_quantity(self, op: Operation) -> tuple[int, str]:
        leg = op.legs[0]
        if op.kind is OpKind.RESET or op.write_mode == "absolute":
            return super()._target_quantity(op)
        live = self.live_quantity(self.item_id(op))
        note = f"re-read live quantity {live}, wrote {live} {leg.change:+d} = {live + leg.change}"
        if leg.actual is not None and abs(live - leg.actual) > self.tolerance:
            note += (f"; NOTE: live stock moved by {live - leg.actual:+d} since the plan "
                     f"(read {leg.actual} then), more than the tolerance of {self.tolerance}")
        return live + leg.change, note

    def _other(self, op: Operation) -> OpResult:
        if op.kind is OpKind.DELETE:
            flags = {FLAGS["tracking"]: [False]}
        elif op.kind is OpKind.SETTINGS:
            flags = flag_fields(op.settings_after)
        else:
            raise NotSupported(f"operation {op.id}: the Lightspeed supplier feed cannot execute {op.kind.value}"
                               " (it has one location and no transfers)")
        if not flags:
            return OpResult(op.id, Outcome.APPLIED, "no supplier-feed settings to write")
        try:
            response = self.http.request("PUT", f"/products/{self.item_id(op)}", json={"inventory": flags},
                                         idempotent=True)
        except VendorRejected as exc:
            text = exc.body or ""
            said = error_message(text)
            return OpResult(op.id, Outcome.FAILED, text, f"HTTP {exc.status}: {said}" if said else text or exc.message)
        return judge_flags(op.id, flags, response.status_code, self.http.scrub(response.text))


def judge_put(op_id: str, item: str, sent: int, status: int, text: str, location: str) -> OpResult:
    """One item's outcome from a 2xx answer to PUT /inventory (see the module doc)."""
    said = error_message(text)
    if said is not None:
        return OpResult(op_id, Outcome.FAILED, text, f"the feed answered HTTP {status} with an error: {said}")
    if not text.strip():
        return OpResult(op_id, Outcome.APPLIED, f"HTTP {status}, no body (taken as success: ASSUMED, undocumented)")
    data = parse_json(text)
    products = data.get("products") if isinstance(data, dict) else None
    if isinstance(products, list):
        echoed = {p.get("id"): p.get("quantity") for p in products if isinstance(p, dict)}
        if item in echoed and echoed[item] == sent and not isinstance(sent, bool):
            return OpResult(op_id, Outcome.APPLIED, text, actual_after={location: sent})
        what = "leaves this item out" if item not in echoed else f"gives it quantity {echoed[item]!r}"
        return OpResult(op_id, Outcome.IN_DOUBT, text, (
            f"the feed's answer {what}, but {sent} was sent for item {item}: whether it was set is unknown. "
            "Check the item in the supplier Backoffice, then settle it with `reconciler resolve` "
            "(the write is absolute: sending it again is harmless)."))
    return OpResult(op_id, Outcome.IN_DOUBT, text, (
        f"the feed answered HTTP {status} with a body of no known shape, so whether the quantity was set is "
        f"unknown: {text!r}. Check the item in the supplier Backoffice, then settle it with `reconciler resolve`."))


def judge_flags(op_id: str, flags: Mapping[str, list[bool]], status: int, text: str) -> OpResult:
    """The outcome of a 2xx answer to the assumed PUT /products/{id}: the product with its flags."""
    said = error_message(text)
    if said is not None:
        return OpResult(op_id, Outcome.FAILED, text, f"the feed answered HTTP {status} with an error: {said}")
    data = parse_json(text)
    inventory = data.get("inventory") if isinstance(data, dict) else None
    if isinstance(inventory, dict) and all(_flag(inventory.get(k)) == v[0] for k, v in flags.items()):
        return OpResult(op_id, Outcome.APPLIED, text)
    return OpResult(op_id, Outcome.IN_DOUBT, text, (
        f"the feed's answer (HTTP {status}) does not show the flags that were sent, so whether they were set is "
        f"unknown: {text!r}. Check the item, then settle it with `reconciler resolve`."))


def flag_fields(settings: Settings | None) -> dict[str, list[bool]]:
    """Only the managed flags, each as a one-element array as seed 001 writes them."""
    if settings is None:
        return {}
    return {FLAGS[name]: [value] for name in FLAGS if (value := getattr(settings, name)) is not None}


def _flag(value: Any) -> bool | None:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value if isinstance(value, bool) else None


def _record(product: Mapping[str, Any]) -> Record:
    inventory = product.get("inventory") or {}
    settings = Settings(tracking=_flag(inventory.get(FLAGS["tracking"])),
                        backordering=_flag(inventory.get(FLAGS["backordering"])))
    return Record(int(product.get("quantity") or 0), settings)


CONNECTOR = LightspeedSupplierConnector
