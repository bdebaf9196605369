"""The Run Free Project Inventory Update API (seed 004, VENDORS.md section 5).

Write-only: Run Free documents no way to read store inventory, so ``read_stock`` raises
NotSupported and the planner plans against B (what this tool last applied) and says so.

- reset N:  ``POST /api/product/inventory {"upc" | "sku"+"size"+"width", "store", "quantity": N}``,
            one item per request (no batch form is documented).
- adjust d: written as a reset to B + d by the planner (the API takes absolute quantities and has
            no read to add to); an ADJUST that still arrives here is written as its ``expected``.
- move, delete, settings: not expressible (delete is a plan-time error).

Item ids are ``{"upc": ...}`` or ``{"sku", "size", "width"}``; the location id is the store code.
Every write is absolute, so the applier re-sends it after a crash.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import httpx

from reconciler.auth import bearer_auth
from reconciler.connectors._http import RetryPolicy, VendorHTTP
from reconciler.connectors.base import Connector, OpResult, Outcome, TargetContext
from reconciler.errors import NotSupported, VendorRejected
from reconciler.model import Capabilities, OpKind, Operation, Record

PATH = "/api/product/inventory"
LOOKUP = ("sku", "size", "width")


class RunFreeConnector(Connector):
    kind = "runfree"
    capabilities = Capabilities(
        readable=False,
        absolute=True,
        delta=False,
        native_move=False,
        delete=False,
        settings=frozenset(),
        verifiable_deltas=False,
        max_batch=1,
    )

    def __init__(
        self, ctx: TargetContext, *, transport: httpx.BaseTransport | None = None, retry: RetryPolicy | None = None
    ) -> None:
        super().__init__(ctx, transport=transport)
        self.http = VendorHTTP(ctx, transport, auth=bearer_auth(ctx), retry=retry or RetryPolicy())

    def close(self) -> None:
        self.http.close()

    def read_stock(self) -> dict[tuple[str, str], Record]:
        raise NotSupported(
            f"target {self.ctx.name!r} (runfree) cannot be read: Run Free documents no inventory read API",
            hint="Plans for this target are made against the last applied state (B).",
        )

    def product_fields(self, op: Operation) -> dict[str, str]:
        ids = self.ctx.item_ids.get(op.item)
        if isinstance(ids, Mapping):
            if ids.get("upc"):
                return {"upc": str(ids["upc"])}
            if all(ids.get(k) for k in LOOKUP):
                return {k: str(ids[k]) for k in LOOKUP}
        raise NotSupported(
            f"operation {op.id}: item {op.item!r} needs {{upc}} or {{sku, size, width}} in target {self.ctx.name!r}",
            hint="Give the item its Run Free ids in stock/catalog.yaml.",
        )

    def store(self, op: Operation) -> str:
        code = self.ctx.location_ids.get(op.location)
        if not code:
            raise NotSupported(
                f"operation {op.id}: location {op.location!r} has no store code in target {self.ctx.name!r}",
                hint="Map the location to its Run Free store code in reconciler.yaml.",
            )
        return str(code)

    def execute(self, batch: Sequence[Operation]) -> list[OpResult]:
        return [self._write(op) for op in batch]

    def _write(self, op: Operation) -> OpResult:
        if op.kind not in (OpKind.RESET, OpKind.ADJUST):
            raise NotSupported(
                f"operation {op.id}: Run Free cannot express a {op.kind.value} "
                "(its only write sets a store's quantity of one item)"
            )
        quantity = op.legs[0].expected
        if quantity is None or quantity < 0:
            return OpResult(op.id, Outcome.FAILED, error=f"operation {op.id}: no non-negative quantity to write ({quantity!r})")
        body = {**self.product_fields(op), "store": self.store(op), "quantity": quantity}
        try:
            response = self.http.request("POST", PATH, json=body, idempotent=True)  # absolute: safe to resend
        except VendorRejected as exc:
            text = exc.body or ""
            return OpResult(op.id, Outcome.FAILED, text, text or exc.message)
        return OpResult(op.id, Outcome.APPLIED, response.text)


CONNECTOR = RunFreeConnector
