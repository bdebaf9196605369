"""X-Series stock counts (docs/counts.md): unit costs for the count block, and how a count's
operations are written (options ``count_via`` and ``count_reasons``).

- ``count_via: adjustment`` (default): the variance goes through stock_adjustments like any
  delta, recorded with a count reason (``count_reasons: {increase, decrease}``, default
  STOCK_FOUND / THEFT; a ``CUSTOM:<id>`` reason named "Stock count" is what a merchant usually
  wants). The reasons are the documented enum (AE07 StockAdjustmentReason, see
  ../shared/research/xseries_counts.md); which one a count should carry is our choice [assumed].
- ``count_via: stocktake``: the vendor's own inventory count (STOCKTAKE consignment), see
  _xseries_stocktake.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reconciler.connectors._xseries_adjustments import Reason, reason_policy
from reconciler.errors import ConfigError, Problem
from reconciler.model import Operation
from reconciler.planner._counts import count_of

if TYPE_CHECKING:
    from reconciler.connectors.xseries import XSeriesConnector

COUNT_VIA = ("adjustment", "stocktake")
DEFAULT_COUNT_REASONS = {"increase": "STOCK_FOUND", "decrease": "THEFT"}


@dataclass(frozen=True)
class CountOptions:
    via: str
    increase: Reason
    decrease: Reason


def count_options(target: str, options: Any) -> CountOptions:
    options = options or {}
    via = options.get("count_via", "adjustment")
    if via not in COUNT_VIA:
        raise ConfigError([Problem(f"target {target!r}: options.count_via must be one of {', '.join(COUNT_VIA)}, "
                                   f"got {via!r}")])
    raw = {**DEFAULT_COUNT_REASONS, **dict(options.get("count_reasons") or {})}
    policy = reason_policy(target, raw).default  # the same reason rules as adjust_reasons
    return CountOptions(via, policy["increase"], policy["decrease"])


def count_reason(conn: XSeriesConnector, op: Operation) -> Reason | None:
    """The reason a count's adjustment is recorded with; None for other operations."""
    if count_of(op) is None:
        return None
    opts = conn.count_options
    return opts.increase if op.legs[0].change > 0 else opts.decrease


def by_stocktake(conn: XSeriesConnector, op: Operation) -> bool:
    return conn.count_options.via == "stocktake" and count_of(op) is not None


def unit_costs(conn: XSeriesConnector, location: str) -> dict[str, float]:
    """SKU -> ``average_cost`` at one outlet (the inventory records carry it; XS-OAS)."""
    outlet = conn.ctx.location_ids.get(location)
    products = {vid: name for name, vid in conn.ctx.item_ids.items() if isinstance(vid, str)}
    costs: dict[str, float] = {}
    for page in conn.inventory_pages(f"/api/{conn.options.version}/inventory"):
        for rec in page:
            sku = products.get(rec.get("product_id"))
            if rec.get("outlet_id") != outlet or sku is None or rec.get("deleted_at"):
                continue
            try:
                costs[sku] = float(rec["average_cost"])
            except (KeyError, TypeError, ValueError):
                costs.pop(sku, None)  # no cost given: the block says so
    return costs


# --- count_via: stocktake -------------------------------------------------------------------------
#
# Sequence A of ../shared/research/xseries_counts.md (XS-IC, XS-REF; JTTC for the observed errors):
#   1 POST /api/2.0/consignments {type: STOCKTAKE, status: STOCKTAKE_IN_PROGRESS, outlet_id, name,
#     filters: [{type: product, value: id}] (at most 25)}
#   2 GET  /api/2.0/consignments/{id} until STOCKTAKE_IN_PROGRESS_PROCESSED (a background job fills
#     the lines; no duration is published, so the wait is bounded by options.stocktake_timeout_s)
#   3 PUT  /api/2.0/consignments/{id}/products/{product_id} {received} for every line: a PUT sets
#     the value (a POST would add to it), so it may be repeated
#   4 PUT  /api/2.0/consignments/{id} {name, outlet_id, type, status: STOCKTAKE_COMPLETE}: the commit
# received = live just before step 3 + the count's variance. Whether completion books `received`
# as the new on-hand or applies `received - count` is undocumented; with received read just before
# sending, both land on live + variance unless a sale falls between that read and step 4
# (absolute reading: that sale is overwritten). The sandbox simulates both (stocktake_sales).
# Every operation id of the count is in the consignment's name, so verify() finds it after a crash.

import time  # noqa: E402

from reconciler.connectors.base import OpResult, Outcome, Verification  # noqa: E402
from reconciler.errors import VendorError, VendorRejected, VendorUnavailable  # noqa: E402

BASE = "/api/2.0/consignments"
MAX_FILTERS = 25  # XS-IC: "a maximum of 25 filters" per count
PROCESSED, COMPLETE = "STOCKTAKE_IN_PROGRESS_PROCESSED", "STOCKTAKE_COMPLETE"


class _NotProcessed(VendorUnavailable):
    """The vendor's background job did not fill the count in time (no SLA is published)."""


def stocktake_batches(ops: list[Operation]) -> list[list[Operation]]:
    """Count operations of one outlet and count, up to 25 products a stocktake."""
    groups: dict[tuple[str, str | None], list[list[Operation]]] = {}
    out: list[list[Operation]] = []
    for op in ops:
        chunks = groups.setdefault((op.location, count_of(op)), [])
        if not chunks or len(chunks[-1]) >= MAX_FILTERS or op.item in {o.item for o in chunks[-1]}:
            chunks.append([])
            out.append(chunks[-1])
        chunks[-1].append(op)
    return out


def send_stocktake(conn: XSeriesConnector, batch: list[Operation]) -> list[OpResult]:
    outlet = conn.outlet_id(batch[0], batch[0].location)
    products = {op.id: conn.product_id(op) for op in batch}
    header = {"name": f"reconciler count {count_of(batch[0])}: {' '.join(op.id for op in batch)}",
              "outlet_id": outlet, "type": "STOCKTAKE"}
    body = {**header, "status": "STOCKTAKE_IN_PROGRESS",
            "filters": [{"type": "product", "value": pid} for pid in products.values()]}
    created = conn.http.request("POST", BASE, json=body, idempotent=False)
    cid = conn.consignments._created_id(created)
    try:
        _wait_processed(conn, cid)
        for op in batch:  # live just before sending, plus the variance
            pid = products[op.id]
            received = conn.live_amounts(pid).get(outlet, 0) + op.legs[0].change
            conn.http.request("PUT", f"{BASE}/{cid}/products/{pid}", json={"product_id": pid, "received": received},
                              idempotent=True)
        done = conn.http.request("PUT", f"{BASE}/{cid}", json={**header, "status": COMPLETE}, idempotent=False)
    except (VendorRejected, _NotProcessed):
        conn.consignments.abandon({"id": cid, **header})  # it moved no stock: nothing is left half-made
        raise
    except VendorUnavailable as exc:
        raise VendorUnavailable(f"{exc.message}; stocktake {cid} was left part-way", in_doubt=True,
                                status=exc.status, body=exc.body, hint=exc.hint) from exc
    return [OpResult(op.id, Outcome.APPLIED, done.text) for op in batch]


def _wait_processed(conn: XSeriesConnector, cid: str) -> None:
    deadline = time.monotonic() + float(conn.ctx.options.get("stocktake_timeout_s", 120))
    pause = 0.05
    while True:
        status = conn.consignments._data(conn.http.request("GET", f"{BASE}/{cid}", idempotent=True),
                                         "holds no data consignment").get("status")
        if status == PROCESSED:
            return
        if status != "STOCKTAKE_IN_PROGRESS":
            raise VendorRejected(f"stocktake {cid} is {status!r}, not {PROCESSED}", status=200)
        if time.monotonic() > deadline:
            raise _NotProcessed(f"stocktake {cid} was not processed within options.stocktake_timeout_s "
                                "(still STOCKTAKE_IN_PROGRESS); it was cancelled and nothing changed",
                                hint="Apply again later, or raise options.stocktake_timeout_s.")
        time.sleep(pause)
        pause = min(pause * 2, 2.0)


def _stocktakes_of(conn: XSeriesConnector, op: Operation) -> list[dict[str, Any]]:
    found, after = [], 0
    while True:
        params = {"type": "STOCKTAKE", "after": after, "page_size": conn.page_size}
        body = conn.http.json(conn.http.request("GET", BASE, params=params, idempotent=True))
        data = body.get("data") or [] if isinstance(body, dict) else []
        if not data:
            return found
        found += [c for c in data if c.get("type") == "STOCKTAKE" and op.id in str(c.get("name", "")).split()
                  and not c.get("deleted_at")]
        after = int((body.get("version") or {}).get("max") or max(int(c["version"]) for c in data))


def verify_stocktake(conn: XSeriesConnector, op: Operation) -> Verification:
    """APPLIED if a stocktake naming this operation was completed; one left part-way is
    cancelled (it moved no stock) so a re-send reads live stock afresh; else NOT_APPLIED."""
    try:
        found = _stocktakes_of(conn, op)
        if any(c.get("status") == COMPLETE for c in found):
            return Verification.APPLIED
        for c in found:
            if c.get("status") not in ("CANCELLED", "CLOSED"):
                conn.consignments.abandon(c)
        if any(c.get("status") not in ("CANCELLED", "CLOSED") for c in _stocktakes_of(conn, op)):
            return Verification.UNKNOWN
    except VendorError:
        return Verification.UNKNOWN
    return Verification.NOT_APPLIED
