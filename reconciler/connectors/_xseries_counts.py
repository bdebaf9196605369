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
