"""Lightspeed Retail X-Series (formerly Vend): dated-version reads and stock adjustments, API 2.0
consignments, 2.1 product writes.

How each operation compiles (docs/connectors/xseries.md has the full story):

- read: ``GET /api/{inventory_api_version}/inventory`` with the version cursor (``after`` = the
  previous page's ``version.max``) before 2026-04; from 2026-04 ``POST /api/{version}/inventory``
  (ascending, deleted rows included, cursor = the page's highest version). Stops on an empty page.
- reset: ``PUT /api/2.1/products/{id}`` with ``details.inventory[]`` holding ``current_amount``
  (absolute). One request per product, holding every outlet of that product in the batch.
- adjust d: ``POST /api/{version}/stock_adjustments``, up to 1000 a call, with a reason per sign
  (options ``adjust_reasons``); ``adjust_via: consignments`` (or the reason ``receipt`` /
  ``return``) uses a SUPPLIER order (+d) or a RETURN order (-d) instead (_xseries_consignments).
- move q: an OUTLET consignment ``source_outlet_id`` -> ``outlet_id``.
- delete: ``PUT /api/2.1/products/{id}`` with ``common.track_inventory = false``. ``common`` is
  family-wide, so this stops tracking every variant of the family at every outlet; the plan
  refuses it unless the whole family goes (_xseries_plan.family_problems).
- settings: reorder_point / reorder_amount through the same PUT; ``current_amount`` is required
  there, so the live amount is re-read just before and written back unchanged.

Every consignment carries the operation id as its ``reference``, and every adjustment call reads
the listing's version cursor before it is sent, so after a lost answer
:meth:`XSeriesConnector.verify` finds it. Nulls are never sent: the vendor turns a null reorder
value into an empty string (seed 000), so a setting is either sent with its value or omitted.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from contextlib import closing
from typing import Any, Callable, Collection, Generator, Iterator, Mapping, Sequence, TypeVar

import httpx
import orjson

from reconciler.auth import bearer_auth
from reconciler.auth._scopes import SCOPES
from reconciler.connectors._http import RequestCancelled, RetryPolicy, VendorHTTP
from reconciler.connectors import _xseries_plan as planning
from reconciler.connectors._xseries_adjustments import (
    MAX_PER_CALL, RECEIPT, RETURN, AdjustmentWriter, Planned, Reason, reason_from_text,
)
from reconciler.connectors._xseries_consignments import ConsignmentWriter
from reconciler.connectors import _xseries_counts as counting
from reconciler.connectors.base import CatalogueItem, Connector, Estimate, VendorLocation, OpResult, Outcome, TargetContext, Verification
from reconciler.errors import ConfigError, NotSupported, Problem, VendorError, VendorRejected
from reconciler.model import NO_SETTINGS, Capabilities, OpKind, Operation, Record, Settings, gc_paused, new_record

DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 10_000  # govend: every 2.0 endpoint except sales caps pages at 10,000
# Outlets of one product per PUT. Undocumented; one product rarely has more outlets than this.
MAX_OUTLETS_PER_PUT = 100
REORDER_KEYS = ("reorder_point", "reorder_amount")
# The request budget is per 5-minute window and a 429's Retry-After (an HTTP date) may point to
# the end of that window, so a wait of up to a full window must be honoured, not capped at 30 s.
RETRY = RetryPolicy(max_attempts=6, max_wait=305.0)
POST_INVENTORY_FROM = "2026-04"  # 2026-04 release notes: /inventory becomes a POST with a body
INVENTORY = "/api/2026-01/inventory"  # the read's path at the default inventory_api_version
# Pages fetched ahead of the one being mapped during a full read (see read_stock). Two keep the
# vendor busy while a slow page is mapped; each page is up to 10,000 decoded records (~10 MB).
PREFETCH_PAGES = 2

T = TypeVar("T")


class XSeriesConnector(Connector):
    kind = "xseries"
    capabilities = Capabilities(
        readable=True,
        absolute=True,
        delta=True,
        native_move=True,
        delete=True,
        settings=frozenset(REORDER_KEYS),
        verifiable_deltas=True,
        max_batch=MAX_OUTLETS_PER_PUT,
    )

    def __init__(
        self, ctx: TargetContext, *, transport: httpx.BaseTransport | None = None, retry: RetryPolicy | None = None
    ) -> None:
        super().__init__(ctx, transport=transport)
        self.page_size = _page_size(ctx)
        self.options = planning.parse_options(ctx)
        self.http = VendorHTTP(ctx, transport, auth=bearer_auth(ctx), retry=retry or RETRY)
        self.consignments = ConsignmentWriter(self.http, self.page_size)
        self.adjustments = AdjustmentWriter(self.http, self.options.version)
        self.seen_version = 0  # the highest version the reads saw: below every later write's
        self.listing_refused: VendorRejected | None = None  # the plan-time cursor read was refused
        self.op_reasons: dict[str, Reason] = {}  # per stock file reasons: op id -> reason (see mark)
        self.op_files: dict[str, str] = {}
        self.count_options = counting.count_options(ctx.name, ctx.options)  # stock counts (docs/counts.md)
        self.snapshots: Any = None  # _xseries_incremental.IncrementalReads when planning with a state

    def close(self) -> None:
        self.http.close()

    def catalogue(self) -> list[CatalogueItem]:
        from reconciler.connectors import _xseries_catalogue

        return _xseries_catalogue.catalogue(self.http)

    def locations(self) -> list[VendorLocation]:
        from reconciler.connectors import _xseries_catalogue

        return _xseries_catalogue.outlets(self.http)

    @property
    def oauth_scopes(self) -> dict[str, tuple[str, ...]]:
        """The OAuth scopes each kind of work needs (reconciler.auth._scopes): adjustments go
        through stock_adjustments (``inventory:write``, D: /docs/scopes) unless the target says
        ``adjust_via: consignments`` (SUPPLIER/RETURN orders: ``consignments:write:stock_order``)."""
        adjust = ("consignments:write:stock_order",) if self.options.adjust_via == "consignments" else ("inventory:write",)
        return {**SCOPES["xseries"], "adjust": adjust}

    # --- ids ----------------------------------------------------------------------------------

    def product_id(self, op: Operation) -> str:
        value = self.ctx.item_ids.get(op.item)
        if not isinstance(value, str) or not value:
            raise NotSupported(
                f"operation {op.id}: item {op.item!r} has no X-Series product id in target {self.ctx.name!r}",
                hint="Add the product id under the item in stock/catalog.yaml.",
            )
        return value

    def outlet_id(self, op: Operation, location: str) -> str:
        value = self.ctx.location_ids.get(location)
        if not value:
            raise NotSupported(
                f"operation {op.id}: location {location!r} has no outlet id in target {self.ctx.name!r}",
                hint="Map the location to its outlet_id in reconciler.yaml.",
            )
        return value

    # --- read ---------------------------------------------------------------------------------

    def inventory_pages(
        self, path: str, cancel: threading.Event | None = None, product_id: str | None = None, after: int = 0
    ) -> Generator[list[dict[str, Any]], None, None]:
        """Every page (its records) of an inventory collection changed after version ``after``,
        following the version cursor. ``cancel``: see VendorHTTP.request (for a read on a prefetch thread)."""
        if self.options.version >= POST_INVENTORY_FROM:
            yield from self._posted_pages(cancel, product_id, after)
            return
        while True:
            try:
                response = self.http.request(
                    "GET", path, params={"after": after, "page_size": self.page_size}, idempotent=True, cancel=cancel
                )
            except VendorRejected as exc:
                raise _version_hint(exc, self.options.version) from exc
            body = self._page_body(response)
            data = body.get("data") or []
            if not data:
                return
            yield data
            # Versions are global and not consecutive: the cursor is the page's max, never +1.
            after = int((body.get("version") or {}).get("max") or max(int(r["version"]) for r in data))
            self.seen_version = max(self.seen_version, after)

    def _posted_pages(
        self, cancel: threading.Event | None, product_id: str | None, after: int = 0
    ) -> Generator[list[dict[str, Any]], None, None]:
        """2026-04+: ``POST /inventory`` answers a flat array, newest first and without deleted
        rows unless asked: ascending with deleted rows keeps the cursor and the deletions."""
        path = f"/api/{self.options.version}/inventory"
        while True:
            body: dict[str, Any] = {"after": after, "size": min(self.page_size, 5000), "sort_direction": "asc",
                                    "include_deleted": True}
            if product_id:
                body["product_id"] = product_id
            response = self.http.request("POST", path, json=body, idempotent=True, cancel=cancel)
            data = self.http.json(response)
            if not isinstance(data, list):
                raise self.http.unreadable(response, "is not the 2026-04 inventory array")
            if not data:
                return
            yield data
            after = max(int(r["version"]) for r in data)
            self.seen_version = max(self.seen_version, after)

    def inventory_records(self, path: str) -> Iterator[dict[str, Any]]:
        """Every record of a 2.0 inventory collection, page after page on this thread."""
        for page in self.inventory_pages(path):
            yield from page

    def read_stock(self) -> dict[tuple[str, str], Record]:
        # The version cursor makes every page newer than the pages before it, so the last record
        # seen for a position is its newest and no version need be compared per record. A vendor
        # that pages otherwise (a page out of version order) gets a second, careful read.
        if self.snapshots is not None:
            return self.snapshots.read(self)  # type: ignore[no-any-return]
        fast = self._read_positions(trust_order=True)
        return fast if fast is not None else self._read_positions(trust_order=False)  # type: ignore[return-value]

    def _read_positions(self, *, trust_order: bool) -> dict[tuple[str, str], Record] | None:
        """Live stock by (location, item); None when ``trust_order`` and a page was out of order."""
        outlets = {vid: name for name, vid in self.ctx.location_ids.items()}
        products = {vid: name for name, vid in self.ctx.item_ids.items() if isinstance(vid, str)}
        # Record, or None when deleted, per position. Each vendor record is turned into a Record
        # as its page is read: keeping the decoded JSON objects until the end held ~1 KB a
        # position (a gigabyte for a chain of a million positions).
        latest: dict[tuple[str, str], Record | None] = {}
        versions: dict[tuple[str, str], int] = {}  # careful read only
        make, high = _RecordMaker(), None
        # The next page's cursor is only known once this page is decoded, so pages are fetched
        # one after another; but mapping a page needs nothing from the vendor. A thread fetches
        # and decodes up to PREFETCH_PAGES ahead while this one maps: the vendor's time (and the
        # network's) overlaps ours instead of adding to it. Only that thread uses self.http
        # during the read. Small reads (live_amounts) stay on the caller's thread.
        pages = prefetched(
            lambda stop: self.inventory_pages(f"/api/{self.options.version}/inventory", stop), depth=PREFETCH_PAGES, name=f"xseries-prefetch-{self.ctx.name}"
        )
        with gc_paused(), closing(pages):
            for page in pages:
                if not trust_order:
                    _map_carefully(page, outlets, products, make, latest, versions)
                    continue
                high = _newer_page(page, high)
                if high is None:
                    return None
                for rec in page:
                    location, item = outlets.get(rec.get("outlet_id")), products.get(rec.get("product_id"))
                    if location is not None and item is not None:  # else not managed here
                        latest[location, item] = None if rec.get("deleted_at") else make(rec)
        return {key: record for key, record in latest.items() if record is not None}

    def _page_body(self, response: httpx.Response) -> dict[str, Any]:
        """A page's JSON object. orjson decodes the bytes directly (~2x faster than httpx's
        ``json()``: no str copy, key caching). What orjson refuses (NaN, a BOM, another
        charset) goes to ``json()`` as before, so pages decode as they always did; only a body
        neither accepts is an error. Known difference: an integer beyond 64 bits comes back
        as the nearest float (far above MAX_QUANTITY either way)."""
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = self.http.json(response)
        if not isinstance(body, dict):
            raise self.http.unreadable(response, f"is JSON but not an object (a {type(body).__name__})")
        return body

    def live_amounts(self, product_id: str) -> dict[str, int]:
        """outlet_id -> current amount of one product, read just before a write that needs it."""
        version = self.options.version
        if version >= POST_INVENTORY_FROM:
            records: Iterator[dict[str, Any]] = (r for page in self._posted_pages(None, product_id) for r in page)
        else:
            records = self.inventory_records(f"/api/{version}/inventory/{product_id}")
        return {rec["outlet_id"]: _quantity(rec) for rec in records if not rec.get("deleted_at")}

    # --- batching -----------------------------------------------------------------------------

    def native(self, op: Operation) -> bool:
        """Whether an adjustment goes through stock_adjustments (not a consignment)."""
        return op.kind is OpKind.ADJUST and op.legs[0].change != 0 and self.options.adjust_via == "stock_adjustments" \
            and self.reason(op).name not in (RECEIPT, RETURN) and not counting.by_stocktake(self, op)

    def reason(self, op: Operation) -> Reason:
        return self.op_reasons.get(op.id) or counting.count_reason(self, op) \
            or self.options.reasons.for_change(op.location, op.legs[0].change)

    def scope_word(self, op: Operation) -> str:
        """The scopes table's word for ``op``: "count" for a count sent as a STOCKTAKE."""
        return "count" if counting.by_stocktake(self, op) else str(op.kind)

    def unit_costs(self, location: str) -> dict[str, float]:
        return counting.unit_costs(self, location)

    def batches(self, ops: Sequence[Operation]) -> list[list[Operation]]:
        counted = [op for op in ops if counting.by_stocktake(self, op)]  # count_via: stocktake
        if counted:
            rest = [op for op in ops if not counting.by_stocktake(self, op)]
            return self._batches(rest) + counting.stocktake_batches(counted)
        return self._batches(ops)

    def _batches(self, ops: Sequence[Operation]) -> list[list[Operation]]:
        """Resets of one product share a PUT; stock adjustments share a call (up to 1000);
        everything else goes alone.

        An operation joins an earlier group only while no other operation on its product came
        in between, so absolute writes never jump over a delta on the same item (nor deltas
        over a reset).
        """
        out: list[list[Operation]] = []
        open_groups: dict[str, list[Operation]] = {}
        calls: list[Operation] | None = None
        since: set[str] = set()  # items of operations placed after the open adjustment call
        for op in ops:
            if self.native(op):
                if calls is None or len(calls) >= MAX_PER_CALL or op.item in since:
                    calls, since = [], set()
                    out.append(calls)
                calls.append(op)
                open_groups.pop(op.item, None)
                continue
            since.add(op.item)
            group = open_groups.get(op.item)
            if op.kind is not OpKind.RESET:
                open_groups.pop(op.item, None)
                out.append([op])
            elif group is not None and len(group) < MAX_OUTLETS_PER_PUT and op.location not in {
                g.location for g in group
            }:
                group.append(op)
            else:
                open_groups[op.item] = [op]
                out.append(open_groups[op.item])
        return out

    # --- execute ------------------------------------------------------------------------------

    def execute(self, batch: Sequence[Operation]) -> list[OpResult]:
        if not batch:
            return []
        if all(op.kind is OpKind.RESET for op in batch):
            return self._put_inventory(batch)
        if all(counting.by_stocktake(self, op) for op in batch):
            try:
                return counting.send_stocktake(self, list(batch))
            except VendorRejected as exc:
                return [rejected(op, exc) for op in batch]
        if all(self.native(op) for op in batch):
            try:
                planned = [self.planned(op) for op in batch]
            except NotSupported as exc:
                return [OpResult(op.id, Outcome.FAILED, error=str(exc)) for op in batch]
            return self.adjustments.send(planned)
        results = []
        for op in batch:
            results.extend(self._put_inventory([op]) if op.kind is OpKind.RESET else [self._execute_one(op)])
        return results

    def _execute_one(self, op: Operation) -> OpResult:
        try:
            if op.kind is OpKind.ADJUST:
                return self.consignments.adjust(op, self.product_id(op), self.outlet_id(op, op.location),
                                                self.options.supplier_id)
            if op.kind is OpKind.MOVE:
                source, dest = (self.outlet_id(op, leg.location) for leg in op.legs)
                return self.consignments.move(op, self.product_id(op), source, dest)
            if op.kind is OpKind.DELETE:
                return self._stop_tracking(op)
            if op.kind is OpKind.SETTINGS:
                return self._write_settings(op)
        except VendorRejected as exc:
            return rejected(op, exc)
        raise NotSupported(f"operation {op.id}: X-Series cannot execute a {op.kind.value} operation")

    def planned(self, op: Operation) -> Planned:
        return Planned(op, self.product_id(op), self.outlet_id(op, op.location), self.reason(op))

    def _put_inventory(self, batch: Sequence[Operation]) -> list[OpResult]:
        product_id = self.product_id(batch[0])
        lines = []
        for op in batch:
            line: dict[str, Any] = {"outlet_id": self.outlet_id(op, op.location), "current_amount": op.legs[0].expected}
            line.update(reorder_fields(op.settings_after))
            lines.append(line)
        try:
            response = self.http.request(
                "PUT", f"/api/2.1/products/{product_id}", json={"details": {"inventory": lines}}, idempotent=True
            )
        except VendorRejected as exc:
            if len(batch) > 1:
                # The vendor refuses the whole PUT for one bad outlet; send each alone so one bad
                # position does not fail its neighbours (a refused PUT wrote nothing).
                return [result for op in batch for result in self._put_inventory([op])]
            return [rejected(op, exc) for op in batch]
        problem = planning.product_answer_problem(response, product_id)
        if problem:
            return [OpResult(op.id, Outcome.FAILED, response.text, error=problem) for op in batch]
        after = _amounts_in(response)
        return [
            OpResult(op.id, Outcome.APPLIED, response.text, actual_after=_after_for(op, after, self.ctx))
            for op in batch
        ]

    def _stop_tracking(self, op: Operation) -> OpResult:
        product_id = self.product_id(op)
        response = self.http.request(
            "PUT", f"/api/2.1/products/{product_id}", json={"common": {"track_inventory": False}}, idempotent=True
        )
        problem = planning.product_answer_problem(response, product_id)
        return OpResult(op.id, Outcome.FAILED if problem else Outcome.APPLIED, response.text, error=problem)

    def _write_settings(self, op: Operation) -> OpResult:
        """Reorder settings; ``current_amount`` is required by the vendor, so the live amount is
        re-read and written back (a sale landing between the two requests would be lost; the
        window is one round trip)."""
        fields = reorder_fields(op.settings_after)
        if not fields:
            return OpResult(op.id, Outcome.APPLIED, "no X-Series settings to write")
        product_id, outlet_id = self.product_id(op), self.outlet_id(op, op.location)
        live = self.live_amounts(product_id)
        if outlet_id not in live:
            return OpResult(
                op.id,
                Outcome.FAILED,
                error=f"product {product_id} has no inventory record at outlet {outlet_id}; "
                "set a quantity for the position before its reorder settings",
            )
        line = {"outlet_id": outlet_id, "current_amount": live[outlet_id], **fields}
        response = self.http.request(
            "PUT", f"/api/2.1/products/{product_id}", json={"details": {"inventory": [line]}}, idempotent=True
        )
        problem = planning.product_answer_problem(response, product_id)
        if problem:
            return OpResult(op.id, Outcome.FAILED, response.text, error=problem)
        return OpResult(op.id, Outcome.APPLIED, response.text, actual_after=_after_for(op, _amounts_in(response), self.ctx))

    # --- verify -------------------------------------------------------------------------------

    def verify(self, op: Operation) -> Verification:
        if counting.by_stocktake(self, op):
            return counting.verify_stocktake(self, op)
        if self.native(op):
            return self.adjustments.verify(op, self.planned(op))
        if op.kind in (OpKind.ADJUST, OpKind.MOVE):
            return self.consignments.verify(op)
        if op.kind is OpKind.RESET:
            live = self.live_amounts(self.product_id(op))
            applied = live.get(self.outlet_id(op, op.location)) == op.legs[0].expected
            return Verification.APPLIED if applied else Verification.NOT_APPLIED
        return Verification.UNKNOWN


    # --- planning ----------------------------------------------------------------------------------

    def mark(self, ops: Sequence[Operation], sources: Mapping[str, str]) -> str | None:
        """The adjustment listing's cursor at plan time: versions are global and only grow
        (x-series-api.lightspeedhq.com/docs/pagination), so every adjustment this plan's apply
        makes lists after it, and every earlier one at or before it, whatever happens to the
        process that sends. The read's highest version bounds it from below, so only the few
        adjustments listed after that are read (an adjustment may be numbered after the stock
        record it moved). None when the listing cannot be read (verification then searches it
        all, or says in doubt)."""
        if self.options.adjust_via != "stock_adjustments":
            return None
        # Per stock file reasons are decided here, from the files the plan's positions come from.
        self.op_reasons = {
            op.id: reason for op in ops if op.kind is OpKind.ADJUST and op.legs[0].change and op.id in sources
            and (reason := self.options.reasons.for_change(op.location, op.legs[0].change, sources[op.id]))
            != self.options.reasons.for_change(op.location, op.legs[0].change)
        }
        self.op_files = {op_id: sources[op_id] for op_id in self.op_reasons}
        native = any(self.native(op) for op in ops)
        if not native and not self.op_reasons:
            return None  # nothing will be sent as a stock adjustment, no reason chosen by file
        cursor = None
        try:
            cursor = self.adjustments.cursor_from(self.seen_version) if native else None
        except VendorRejected as exc:
            self.listing_refused = exc
        except VendorError:
            pass
        # The reasons go with it: the apply records the reasons the plan showed, even if
        # reconciler.yaml changed in between.
        return orjson.dumps({"adjustments_after": cursor, "reasons": self.options.reasons.raw(),
                             "operations": {i: r.text() for i, r in self.op_reasons.items()}}).decode()

    def resume_from(self, mark: str | None) -> None:
        try:
            saved = orjson.loads(mark) if mark else None
        except orjson.JSONDecodeError:
            saved = None
        if not isinstance(saved, dict):
            return
        if isinstance(saved.get("adjustments_after"), int):
            self.adjustments.floor = saved["adjustments_after"]
        if isinstance(saved.get("reasons"), dict):
            reasons = planning.reason_policy(self.ctx.name, saved["reasons"])
            self.options = dataclasses.replace(self.options, reasons=reasons)
        chosen = saved.get("operations")
        if isinstance(chosen, dict):  # op id -> the reason the plan showed for it
            self.op_reasons = {op_id: reason for op_id, text in chosen.items()
                               if (reason := reason_from_text(text)) is not None}

    def estimate(self, ops: Sequence[Operation]) -> Estimate:
        return planning.estimate(self, ops)

    def plan_problems(self, ops: Sequence[Operation], kept: Collection[tuple[str, str]]) -> list[Problem]:
        problems = planning.family_problems(self, ops, kept)
        if self.listing_refused is not None and any(self.native(op) for op in ops):
            refused = self.listing_refused
            problems.append(Problem(
                f"target {self.ctx.name!r}: the plan adjusts stock through stock_adjustments, but X-Series refused "
                f"to list them (HTTP {refused.status}: {refused.body or refused.message}); the token needs the "
                "inventory:write scope",
                hint="Give the token inventory:write, or set options.adjust_via: consignments for this target."))
        return problems


def _version_hint(exc: VendorRejected, version: str) -> VendorRejected:
    """A 405 on a dated GET /inventory: the version reached its end of life and is served by a
    newer one, where /inventory is a POST (docs/versioning-strategy, 2026-04 release notes)."""
    if exc.status != 405:
        return exc
    return VendorRejected(exc.message, status=exc.status, body=exc.body, hint=(
        f"X-Series serves an end-of-life dated version by the oldest supported one; API {version} may have "
        f"reached its end of life. Set options.inventory_api_version to {POST_INVENTORY_FROM} or later."))


def reorder_fields(settings: Settings | None) -> dict[str, int]:
    """Only the reorder values that are set: a null would blank the vendor's field (seed 000)."""
    if settings is None:
        return {}
    return {key: getattr(settings, key) for key in REORDER_KEYS if getattr(settings, key) is not None}


def rejected(op: Operation, exc: VendorRejected) -> OpResult:
    """A 4xx for one operation: the vendor's words, verbatim."""
    body = exc.body or ""
    return OpResult(op.id, Outcome.FAILED, response=body, error=body or exc.message)


def _page_size(ctx: TargetContext) -> int:
    raw = ctx.options.get("page_size", DEFAULT_PAGE_SIZE)
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_PAGE_SIZE:
        raise ConfigError(
            [Problem(f"target {ctx.name!r}: page_size must be an integer from 1 to {MAX_PAGE_SIZE}, got {raw!r}")]
        )
    return raw


def _quantity(rec: Mapping[str, Any]) -> int:
    """The level as the vendor holds it; negative levels (stock owed to fulfilments before
    2026-04) are read as they are. 2026-04 names it ``current_inventory_level``."""
    value = rec.get("current_amount")
    if value is None:
        value = rec.get("current_inventory_level")
    if value is None:
        value = rec.get("inventory_level")
    return int(round(float(value or 0)))


def _setting(value: Any) -> int | None:
    # The vendor may hold "" (a null that was written) or null: both mean "not set".
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value)


def _newer_page(page: list[dict[str, Any]], high: int | None) -> int | None:
    """The page's highest version when its records are in version order and all newer than
    ``high`` (the pages before); None otherwise. Integers only: anything else is not trusted."""
    versions = [rec.get("version") for rec in page]
    try:
        ordered = versions == sorted(versions) and (high is None or versions[0] > high)
    except TypeError:  # None, text, a mix
        return None
    if not ordered or versions[0].__class__ is not int or versions[-1].__class__ is not int:
        return None
    return versions[-1]  # type: ignore[return-value]


def _map_carefully(
    page: list[dict[str, Any]], outlets: Mapping[Any, str], products: Mapping[Any, str], make: _RecordMaker,
    latest: dict[tuple[str, str], Record | None], versions: dict[tuple[str, str], int],
) -> None:
    """Map a page of records in any order: a position keeps its highest version's record."""
    for rec in page:
        location, item = outlets.get(rec.get("outlet_id")), products.get(rec.get("product_id"))
        if location is None or item is None:
            continue  # not managed by this repository
        version, key = int(rec.get("version") or 0), (location, item)
        if key not in versions or versions[key] <= version:
            versions[key] = version
            latest[key] = None if rec.get("deleted_at") else make(rec)


def _record(rec: Mapping[str, Any]) -> Record:
    point, amount = _setting(rec.get("reorder_point")), _setting(rec.get("reorder_amount"))
    # Most records set neither: share the one empty Settings (a read holds up to a million).
    settings = NO_SETTINGS if point is None and amount is None else Settings(reorder_point=point, reorder_amount=amount)
    return Record(_quantity(rec), settings)


class _RecordMaker:
    """``_record`` for a whole read. Records are immutable, and almost all of them are a plain
    quantity without reorder settings, so those are shared per quantity: a million positions
    hold a few hundred distinct Records instead of a million."""

    __slots__ = ("plain",)

    def __init__(self) -> None:
        self.plain: dict[int, Record] = {}

    def __call__(self, rec: Mapping[str, Any]) -> Record:
        point, amount = rec.get("reorder_point"), rec.get("reorder_amount")
        if (point is None or point == "") and (amount is None or amount == ""):
            value = rec.get("current_amount")
            quantity = value if value.__class__ is int else _quantity(rec)
            record = self.plain.get(quantity)
            if record is None:
                record = self.plain[quantity] = new_record(quantity, NO_SETTINGS)
            return record
        return _record(rec)


_ITEM, _END, _ERROR = range(3)


def prefetched(
    produce: Callable[[threading.Event], Generator[T, None, None]], *, depth: int, name: str
) -> Generator[T, None, None]:
    """``produce(stop)``'s items, produced on a thread up to ``depth`` items ahead of the caller.

    An exception raised by ``produce`` is raised here: the same object (type, message, the
    thread's traceback). Closing this generator (``contextlib.closing`` around the caller's
    loop, so an exception there closes it too) sets ``stop``, empties the queue so a blocked
    put returns, and joins the thread; ``produce`` ends its waits when ``stop`` is set (see
    VendorHTTP.request's ``cancel``), so the join lasts at most one request already sent.
    """
    stop = threading.Event()
    items: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=max(1, depth))

    def run() -> None:
        try:
            with closing(produce(stop)) as source:
                for item in source:
                    items.put((_ITEM, item))
                    if stop.is_set():
                        return  # the consumer is gone (it empties the queue after setting stop)
            items.put((_END, None))
        except RequestCancelled:
            return  # the consumer is gone
        except BaseException as exc:  # handed to the consumer, which raises it
            items.put((_ERROR, exc))

    thread = threading.Thread(target=run, name=name, daemon=True)  # daemon: never holds up exit
    thread.start()
    try:
        while True:
            kind, value = items.get()
            if kind == _ITEM:
                yield value
            elif kind == _END:
                return
            else:
                raise value
    finally:
        stop.set()
        while True:  # after stop, the thread puts at most once more before it ends
            try:
                items.get_nowait()
            except queue.Empty:
                break
        thread.join()


def _amounts_in(response: httpx.Response) -> dict[str, int]:
    """outlet_id -> amount from a 2.1 product PUT response (empty when the body says nothing)."""
    try:
        data = response.json().get("data") or {}
    except (ValueError, AttributeError):
        return {}
    return {r["outlet_id"]: _quantity(r) for r in data.get("inventory") or [] if isinstance(r, dict) and "outlet_id" in r}


def _after_for(op: Operation, amounts: Mapping[str, int], ctx: TargetContext) -> dict[str, int]:
    out = {}
    for leg in op.legs:
        vid = ctx.location_ids.get(leg.location)
        if vid in amounts:
            out[leg.location] = amounts[vid]
    return out


CONNECTOR = XSeriesConnector
