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

Answers (docs/connectors/runfree.md). Run Free documents one answer only, the error
``{"error": "Missing required field: sku"}``, with no HTTP status and no success body
(support.runfreeproject.com/en/articles/9790373). So the body decides, not the status:

- a body with ``error``, whatever its status (200 included), fails the operation with that message;
- 2xx ``{"success": true}`` (ASSUMED: the shape of Run Free's Relay API) or an empty 2xx is applied;
  ``{"success": false, ...}`` is failed;
- any other 2xx body is an unknown success shape: in doubt, with the body verbatim. The write is
  absolute, so once the user has looked, re-sending it is harmless.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import httpx

from reconciler.connectors._answers import error_message, parse_json
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
            # width is sent as configured, "" included: whether Run Free takes an empty width is
            # unknown (its Relay API's apparel examples use one; the sandbox offers both answers)
            if ids.get("sku") and ids.get("size") and isinstance(ids.get("width"), str):
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
            said = error_message(text, ("error",))
            return OpResult(op.id, Outcome.FAILED, text,
                            f"Run Free refused it (HTTP {exc.status}): {said}" if said else text or exc.message)
        return judge(op.id, response.status_code, self.http.scrub(response.text))


def judge(op_id: str, status: int, text: str) -> OpResult:
    """The outcome a 2xx answer's body says (see the module doc): the status alone proves nothing."""
    said = error_message(text, ("error",))
    if said is not None:
        return OpResult(op_id, Outcome.FAILED, text, f"Run Free answered HTTP {status} with an error: {said}")
    if not text.strip():
        return OpResult(op_id, Outcome.APPLIED, f"HTTP {status}, no body (taken as success: ASSUMED, undocumented)")
    data = parse_json(text)
    if isinstance(data, dict) and data.get("success") is True:
        return OpResult(op_id, Outcome.APPLIED, text)
    if isinstance(data, dict) and data.get("success") is False:
        return OpResult(op_id, Outcome.FAILED, text, f"Run Free answered HTTP {status} with success false: {text}")
    return OpResult(op_id, Outcome.IN_DOUBT, text, (
        f"Run Free answered HTTP {status} with a body of no known shape, so whether the quantity was set is "
        f"unknown: {text!r}. Check the store's stock in Run Free, then settle it with `reconciler resolve` "
        "(the write is absolute: sending it again is harmless)."))


CONNECTOR = RunFreeConnector
