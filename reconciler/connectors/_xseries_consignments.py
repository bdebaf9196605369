"""X-Series consignments: receipts, returns and transfers, and how they are found again after a crash.

The documented sequences (x-series-api.lightspeedhq.com/reference/createconsignment,
createconsignmentproduct, updateconsignmentbyid; changelog 2024-03-consignment-api-2-0-updates):

- SUPPLIER (receipt, +d): create OPEN, add a line with ``count`` = d, PUT SENT, PUT the line's
  ``received`` = d (a single-line ``received`` auto-dispatches a SENT order: DISPATCHED), PUT
  RECEIVED: d units arrive at ``outlet_id``. (``received`` on an OPEN order's single line is
  most likely dropped, so it is never sent there.)
- RETURN (-d): create OPEN, add a line with ``count`` = d, PUT SENT: d units leave ``outlet_id``.
- OUTLET (move q): create OPEN with ``source_outlet_id``, line ``count`` = q, PUT SENT (q leave
  the source), PUT the line's ``received`` = q, PUT RECEIVED (q arrive at ``outlet_id``).

Every status PUT sends ``name, outlet_id, type, status`` (plus ``source_outlet_id`` /
``supplier_id`` when set): the spec's ConsignmentRequest requires the first three, and a partial
body is untested against the vendor for these types. Each answer is checked against the
documented shape (``{"data": {...}}`` with the id, line or status asked for); an answer that is
not is in doubt, with its body verbatim.

Each consignment's ``reference`` is the operation id. None of these POSTs is idempotent, so they
are sent with ``idempotent=False``: after a dropped connection the http layer does not resend,
and :meth:`ConsignmentWriter.verify` settles the operation by looking the reference up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

from reconciler.connectors.base import OpResult, Outcome, Verification
from reconciler.errors import VendorError, VendorRejected, VendorUnavailable
from reconciler.model import Operation

if TYPE_CHECKING:
    import httpx

    from reconciler.connectors._http import VendorHTTP

BASE = "/api/2.0/consignments"
# The status at which each type's stock effect is complete.
EFFECTIVE = {"SUPPLIER": "RECEIVED", "RETURN": "SENT", "OUTLET": "RECEIVED"}


class ConsignmentWriter:
    def __init__(self, http: VendorHTTP, page_size: int) -> None:
        self.http = http
        self.page_size = page_size

    # --- writing ------------------------------------------------------------------------------

    def adjust(self, op: Operation, product_id: str, outlet_id: str, supplier_id: str | None = None) -> OpResult:
        change = op.legs[0].change
        if change == 0:
            return OpResult(op.id, Outcome.APPLIED, "nothing to adjust (change 0)")
        if change > 0:
            header = {"type": "SUPPLIER", "outlet_id": outlet_id, **({"supplier_id": supplier_id} if supplier_id else {})}
            return self._run(op, header, product_id, change, ["SENT", "received", "RECEIVED"])
        header = {"type": "RETURN", "outlet_id": outlet_id, **({"supplier_id": supplier_id} if supplier_id else {})}
        return self._run(op, header, product_id, -change, ["SENT"])

    def move(self, op: Operation, product_id: str, source: str, dest: str) -> OpResult:
        header = {"type": "OUTLET", "source_outlet_id": source, "outlet_id": dest}
        return self._run(op, header, product_id, op.legs[1].change, ["SENT", "received", "RECEIVED"])

    def _created_id(self, response: httpx.Response) -> str:
        """The new consignment's id. An answer without one may still have made the consignment:
        in doubt, so the applier looks it up by its reference instead of creating another."""
        created = self._data(response, "holds no data object of the new consignment")
        if not isinstance(created.get("id"), str):
            raise self.http.unreadable(response, "holds no data.id of the new consignment", written=True)
        return created["id"]

    def _data(self, response: httpx.Response, what: str) -> dict[str, Any]:
        answer = self.http.json(response, written=True)
        data = answer.get("data") if isinstance(answer, dict) and "error" not in answer else None
        if not isinstance(data, dict):
            raise self.http.unreadable(response, what, written=True)
        return data

    def _run(self, op: Operation, header: dict[str, Any], product_id: str, units: int, steps: list[str]) -> OpResult:
        """Create, add the line, walk the steps. A 4xx part-way cancels what was made, so a
        failed operation leaves no half-made consignment behind."""
        body = {**header, "status": "OPEN", "name": f"reconciler {op.id}", "reference": op.id}
        consignment_id = self._created_id(self.http.request("POST", BASE, json=body, idempotent=False))
        fields = {k: v for k, v in body.items() if k not in ("status", "reference")}
        last = None
        try:
            line = {"product_id": product_id, "count": units}
            added = self.http.request("POST", f"{BASE}/{consignment_id}/products", json=line, idempotent=False)
            self._expect(self._data(added, "holds no data line").get("product_id") == product_id, added, "the line")
            for step in steps:
                last = self._step(consignment_id, fields, product_id, units, step)
        except VendorRejected:
            self.abandon({"id": consignment_id, **fields, "status": "unknown"})
            raise
        except VendorUnavailable as exc:
            # The consignment exists and may have moved stock already (a SENT transfer): a plain
            # failure would let the next apply create a second one, so the applier must verify.
            raise VendorUnavailable(
                f"{exc.message}; consignment {consignment_id} (reference {op.id}) was left part-way",
                in_doubt=True, status=exc.status, body=exc.body, hint=exc.hint,
            ) from exc
        return OpResult(op.id, Outcome.APPLIED, last.text if last is not None else "")

    def _step(self, cid: str, fields: dict[str, Any], product_id: str, units: int, step: str) -> httpx.Response:
        if step == "received":
            response = self.http.request("PUT", f"{BASE}/{cid}/products/{product_id}",
                                         json={"product_id": product_id, "received": units}, idempotent=True)
            data = self._data(response, "holds no data line")
            self._expect(_amount(data.get("received")) == units, response, f"received {units} on the line")
            return response
        response = self.http.request("PUT", f"{BASE}/{cid}", json={**fields, "status": step}, idempotent=False)
        data = self._data(response, "holds no data consignment")
        self._expect(data.get("status") == step, response, f"status {step}")
        return response

    def _expect(self, ok: bool, response: httpx.Response, what: str) -> None:
        if not ok:
            raise self.http.unreadable(response, f"does not show {what}", written=True)

    def abandon(self, consignment: dict[str, Any]) -> None:
        """Cancel a consignment that has not finished; one with no lines cannot change status,
        so it is deleted instead. Best effort: the caller reports the original problem."""
        cid = consignment["id"]
        keep = {k: consignment[k] for k in ("name", "outlet_id", "type", "source_outlet_id", "supplier_id")
                if consignment.get(k)}
        try:
            self.http.request("PUT", f"{BASE}/{cid}", json={**keep, "status": "CANCELLED"}, idempotent=True)
            return
        except (VendorRejected, VendorUnavailable):
            pass
        try:
            self.http.request("DELETE", f"{BASE}/{cid}", idempotent=True)
        except (VendorRejected, VendorUnavailable):
            pass

    # --- verification -------------------------------------------------------------------------

    def find(self, reference: str) -> Iterator[dict[str, Any]]:
        """Consignments whose reference is ``reference``.

        The ``reference`` filter is an ASSUMPTION (the spec lists type/status/outlet_id only);
        the results are filtered here as well, so a vendor that ignores the filter still works
        (it then pages through every consignment).
        """
        after = 0
        while True:
            params = {"reference": reference, "after": after, "page_size": self.page_size}
            response = self.http.request("GET", BASE, params=params, idempotent=True)
            body = self.http.json(response)
            if not isinstance(body, dict):
                raise self.http.unreadable(response, "is not a page of consignments")
            data = body.get("data") or []
            if not data:
                return
            yield from (c for c in data if c.get("reference") == reference and not c.get("deleted_at"))
            after = int((body.get("version") or {}).get("max") or max(int(c["version"]) for c in data))

    def verify(self, op: Operation) -> Verification:
        """APPLIED if a consignment with this reference reached its effective status; a half-made
        one is cancelled first (a SENT transfer's units go back to the sender) so the re-send
        cannot double; NOT_APPLIED if none took effect; UNKNOWN if the vendor cannot be asked."""
        try:
            found = list(self.find(op.id))
            applied = [c for c in found if c.get("status") == EFFECTIVE.get(str(c.get("type")))]
            if applied:
                return Verification.APPLIED
            for consignment in found:
                if consignment.get("status") != "CANCELLED":
                    self.abandon(consignment)
            # Make sure nothing half-made survived the cancellation.
            if any(c.get("status") not in ("CANCELLED",) for c in self.find(op.id)):
                return Verification.UNKNOWN
        except VendorError:
            return Verification.UNKNOWN
        return Verification.NOT_APPLIED


def _amount(value: Any) -> float | None:
    """Counts come back as decimal strings ("60.00000")."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
