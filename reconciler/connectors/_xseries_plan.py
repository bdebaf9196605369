"""X-Series at plan time: target options, the request estimate, the product-family delete check,
and the documented shape of the product PUT answer.

Facts (docs/connectors/xseries.md lists the sources): the budget is 300 x registers + 50
requests per 5 minutes (x-series-api.lightspeedhq.com/docs/rate_limiting); ``common`` in the 2.1
product PUT "will update the fields to all variants in the family" (2026-07 spec,
ProductUpdate21Request), so stopping tracking is per family; the 2.1 PUT answers
``{"data": {...product}}`` (VENDORS.md section 1).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Collection, Sequence

from reconciler.connectors._xseries_adjustments import ReasonPolicy, reason_policy
from reconciler.connectors.base import Estimate, TargetContext
from reconciler.errors import ConfigError, Problem
from reconciler.model import OpKind, Operation

if TYPE_CHECKING:
    import httpx

    from reconciler.connectors.xseries import XSeriesConnector

FIRST_VERSION = "2026-01"  # stock_adjustments and the dated inventory read exist from here on
WINDOW_S = 300.0
ADJUST_VIA = ("stock_adjustments", "consignments")
_DATED = re.compile(r"^\d{4}-\d{2}$")
# Requests per operation on the consignment paths (the documented sequences).
CONSIGNMENT_REQUESTS = {"+": 5, "-": 3, "move": 5}


@dataclass(frozen=True)
class XSeriesOptions:
    version: str
    adjust_via: str
    reasons: ReasonPolicy
    supplier_id: str | None
    registers: int

    @property
    def budget(self) -> int:
        return 300 * self.registers + 50


def parse_options(ctx: TargetContext) -> XSeriesOptions:
    options, where = ctx.options, f"target {ctx.name!r}: options"
    version = str(options.get("inventory_api_version", FIRST_VERSION))
    problems = []
    if not _DATED.match(version) or version < FIRST_VERSION:
        problems.append(Problem(f"{where}.inventory_api_version must be a dated version from {FIRST_VERSION} on "
                                f"(e.g. 2026-01 or 2026-04), got {version!r}"))
    via = options.get("adjust_via", "stock_adjustments")
    if via not in ADJUST_VIA:
        problems.append(Problem(f"{where}.adjust_via must be one of {', '.join(ADJUST_VIA)}, got {via!r}",
                                hint="consignments suits tokens without inventory:write or stores that want "
                                     "adjustments as purchase history."))
    supplier = options.get("supplier_id")
    if supplier is not None and (not isinstance(supplier, str) or not supplier):
        problems.append(Problem(f"{where}.supplier_id must be a quoted supplier id, got {supplier!r}"))
    registers = options.get("registers", 1)
    if isinstance(registers, bool) or not isinstance(registers, int) or registers < 1:
        problems.append(Problem(f"{where}.registers must be a whole number from 1 (it sets the request budget), "
                                f"got {registers!r}"))
    if problems:
        raise ConfigError(problems)
    return XSeriesOptions(version, via, reason_policy(ctx.name, options.get("adjust_reasons")), supplier, registers)


def estimate(conn: XSeriesConnector, ops: Sequence[Operation]) -> Estimate:
    """Requests by the documented sequences; seconds from the vendor's 5-minute budget and the
    target's own ``rate_limit``, whichever is slower."""
    requests, native = 0, False
    for batch in conn.batches([op for op in ops if op.kind is not OpKind.RELEASE and op.kind is not OpKind.DRIFT]):
        first = batch[0]
        if conn.native(first):
            # the cursor is read once; later calls take it from the previous call's answer
            requests, native = requests + (1 if native else 2), True
        elif first.kind is OpKind.ADJUST:
            requests += CONSIGNMENT_REQUESTS["+" if first.legs[0].change > 0 else "-"]
        elif first.kind is OpKind.MOVE:
            requests += CONSIGNMENT_REQUESTS["move"]
        elif first.kind is OpKind.SETTINGS:
            requests += 2  # the live amount is re-read, then written back beside the settings
        else:
            requests += 1
    budget = conn.options.budget
    seconds = (math.ceil(requests / budget) - 1) * WINDOW_S if requests > budget else 0.0
    if conn.ctx.rate_limit:
        seconds = max(seconds, max(0, requests - conn.ctx.rate_burst) / conn.ctx.rate_limit)
    notes = []
    if native:
        locations = sorted({op.location for op in ops if conn.native(op)})
        files = sorted({conn.op_files[op.id] for op in ops if op.id in conn.op_files and conn.native(op)})
        notes.append(conn.options.reasons.describe(conn.ctx.name, locations, files))
    return Estimate(requests, seconds, tuple(notes))


def family_problems(conn: XSeriesConnector, ops: Sequence[Operation], kept: Collection[tuple[str, str]]) -> list[Problem]:
    """A delete stops tracking the product's whole family at every outlet: refused while any
    variant of the family keeps a managed position after the plan."""
    deletes = [op for op in ops if op.kind is OpKind.DELETE]
    if not deletes:
        return []
    items_of = {vid: sku for sku, vid in conn.ctx.item_ids.items() if isinstance(vid, str)}
    kept_by_item: dict[str, list[str]] = {}
    for location, item in kept:
        kept_by_item.setdefault(item, []).append(location)
    problems, families = [], {}
    for op in deletes:
        product_id = conn.product_id(op)
        if product_id not in families:
            families[product_id] = family(conn, product_id)
        staying = [(items_of[m], loc) for m in families[product_id] if m in items_of
                   for loc in sorted(kept_by_item.get(items_of[m], []))]
        if staying:
            shown = ", ".join(f"{item} at {loc}" for item, loc in staying[:5]) + (" ..." if len(staying) > 5 else "")
            problems.append(Problem(
                f"target {conn.ctx.name!r}: cannot delete {op.item} at {op.location}: X-Series stops tracking a whole "
                f"product family at every outlet (common.track_inventory), and {shown} stay managed",
                hint="Delete every variant of the family at every outlet in the same plan, or keep this position "
                     "in its stock file."))
    return problems


def family(conn: XSeriesConnector, product_id: str) -> set[str]:
    """The ids of ``product_id``'s family: the parent and every variant of it."""
    body = conn.http.json(conn.http.request("GET", f"/api/2.0/products/{product_id}", idempotent=True))
    data = body.get("data") if isinstance(body, dict) else None
    root = (data or {}).get("variant_parent_id") or product_id
    members, offset = {product_id, root}, 0
    while True:
        params = {"type": "products", "variant_parent_id": root, "page_size": 1000, "offset": offset}
        page = conn.http.json(conn.http.request("GET", "/api/2.0/search", params=params, idempotent=True))
        found = page.get("data") if isinstance(page, dict) else None
        if not found:
            return members
        members.update(str(p["id"]) for p in found if isinstance(p, dict) and p.get("id"))
        offset += len(found)


def product_answer_problem(response: httpx.Response, product_id: str) -> str | None:
    """None when a 2.1 product PUT's 2xx answer is the documented ``{"data": {product}}``;
    else why it is not (the write is absolute: failing it lets the next apply send it again)."""
    try:
        body = response.json()
    except ValueError:
        return f"the product PUT's answer is not JSON: {response.text[:500]!r}"
    if isinstance(body, dict) and ("error" in body or "errors" in body):
        return f"the product PUT was answered {response.status_code} with an error: {response.text[:500]}"
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict) or data.get("id", product_id) != product_id:
        return f"the product PUT's answer is not the documented {{\"data\": {{product}}}}: {response.text[:500]!r}"
    return None
