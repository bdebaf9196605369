"""Lightspeed supplier inventory feed (seed 001, VENDORS.md section 2).

One stock location (the supplier's warehouse); absolute writes only.

- read:     ``GET /products?page=&per_page=`` -- an ASSUMPTION: the vendor links its read endpoint
            but the page was never captured; the simulator serves this shape (page numbers,
            ``pages`` total, each product with ``quantity`` and its two inventory flags).
- reset N:  ``PUT /inventory {"products": [{"id", "quantity": N}, ...]}``, batched up to
            MAX_BATCH items (an ASSUMPTION: no limit is documented; the simulator's is 1000).
- adjust d: the feed takes no deltas, so the planner sends ADJUST "read-modify-write": the live
            quantity is re-read (``GET /products/{id}``) just before the PUT and live + d is
            written, so sales made since the plan survive. A re-read that moved by more than
            the ``drift_tolerance`` option since the plan is reported in the result.
- delete:   ``PUT /products/{id} {"inventory": {"isInventoryTrackingEnabled": [false]}}``.
- settings: tracking / backordering through the same PUT (``isInventoryTrackingEnabled`` /
            ``isBackorderingEnabled``), only the managed flags, as one-element arrays (seed 001).

Absolute writes are idempotent, so the applier re-sends them after a crash. A read-modify-write
adjustment cannot be told apart from a sale afterwards, so it is UNKNOWN (in doubt) when verified.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import httpx

from reconciler.auth import bearer_auth
from reconciler.connectors._http import RetryPolicy, VendorHTTP
from reconciler.connectors.base import Connector, OpResult, Outcome, TargetContext
from reconciler.errors import ConfigError, NotSupported, Problem, VendorRejected
from reconciler.model import Capabilities, OpKind, Operation, Record, Settings

MAX_BATCH = 1000  # ASSUMPTION: undocumented; matches the simulator
PER_PAGE = 250  # ASSUMPTION: the simulator's maximum page size for GET /products
FLAGS = {"tracking": "isInventoryTrackingEnabled", "backordering": "isBackorderingEnabled"}
QUANTITY_KINDS = (OpKind.RESET, OpKind.ADJUST)


class LightspeedSupplierConnector(Connector):
    kind = "lightspeed-supplier"
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

    def __init__(
        self, ctx: TargetContext, *, transport: httpx.BaseTransport | None = None, retry: RetryPolicy | None = None
    ) -> None:
        super().__init__(ctx, transport=transport)
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

    # --- read ---------------------------------------------------------------------------------

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

    def live_quantity(self, item_id: str) -> int:
        response = self.http.get(f"/products/{item_id}")
        body = self.http.json(response)
        try:
            return int(body["quantity"])
        except (TypeError, KeyError, ValueError) as exc:
            raise self.http.unreadable(response, "holds no whole-number quantity") from exc

    # --- batching -----------------------------------------------------------------------------

    def batches(self, ops: Sequence[Operation]) -> list[list[Operation]]:
        """Absolute quantity writes share PUTs (one item at most once per PUT); flag writes and
        read-modify-write adjustments go alone.

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
            results.extend(self._put_quantities([op]) if op.kind in QUANTITY_KINDS else [self._put_flags(op)])
        return results

    @staticmethod
    def _reads_before_writing(op: Operation) -> bool:
        return op.kind is not OpKind.RESET and op.write_mode != "absolute"

    def _target_quantity(self, op: Operation) -> tuple[int, str]:
        """The quantity to write and a note for the result."""
        leg = op.legs[0]
        if op.kind is OpKind.RESET or op.write_mode == "absolute":
            assert leg.expected is not None
            return leg.expected, ""
        live = self.live_quantity(self.item_id(op))
        note = f"re-read live quantity {live}, wrote {live} {leg.change:+d} = {live + leg.change}"
        if leg.actual is not None and abs(live - leg.actual) > self.tolerance:
            note += (f"; NOTE: live stock moved by {live - leg.actual:+d} since the plan "
                     f"(read {leg.actual} then), more than the tolerance of {self.tolerance}")
        return live + leg.change, note

    def _put_quantities(self, batch: Sequence[Operation]) -> list[OpResult]:
        lines: list[dict[str, Any]] = []
        notes: dict[str, str] = {}
        failed: dict[str, OpResult] = {}
        for op in batch:
            quantity, notes[op.id] = self._target_quantity(op)
            if quantity < 0:
                failed[op.id] = OpResult(op.id, Outcome.FAILED, error=(
                    f"{notes[op.id]}: the result would be negative and the feed takes no negative quantity; "
                    "nothing was written for this item. Re-plan to see the current stock."))
                continue
            lines.append({"id": self.item_id(op), "quantity": quantity})
        if not lines:
            return [failed[op.id] for op in batch]
        try:
            response = self.http.request("PUT", "/inventory", json={"products": lines}, idempotent=True)
        except VendorRejected as exc:
            body = exc.body or ""
            return [failed.get(op.id) or OpResult(op.id, Outcome.FAILED, body, body or exc.message) for op in batch]
        after = _quantities(response)
        results = []
        for op in batch:
            if op.id in failed:
                results.append(failed[op.id])
                continue
            text = f"{notes[op.id]}\n{response.text}" if notes[op.id] else response.text
            item = self.item_id(op)
            actual = {self.location: after[item]} if item in after else {}
            results.append(OpResult(op.id, Outcome.APPLIED, text, actual_after=actual))
        return results

    def _put_flags(self, op: Operation) -> OpResult:
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
            body = exc.body or ""
            return OpResult(op.id, Outcome.FAILED, body, body or exc.message)
        return OpResult(op.id, Outcome.APPLIED, response.text)


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


def _quantities(response: httpx.Response) -> dict[str, int]:
    try:
        products = response.json().get("products") or []
    except (ValueError, AttributeError):
        return {}
    return {p["id"]: int(p["quantity"]) for p in products if isinstance(p, dict) and "id" in p and "quantity" in p}


CONNECTOR = LightspeedSupplierConnector
