"""Incremental X-Series reads: the live snapshot and its version cursor kept in the state.

Every change to an inventory record bumps its global ``version``, deleted records come through
the feed, and ``after=<the highest version seen>`` returns only what changed since
(documented: X-Series pagination guide, https://x-series-api.lightspeedhq.com/docs/pagination;
a public client does it: StockUp syncs ``after=version.max`` and deletes records with
``deleted_at``; ../shared/research/xseries_counts.md Q5). From 2026-04 the feed is a POST that
must be asked for ``sort_direction: asc`` and ``include_deleted`` (2026-04 release notes).

So a plan keeps every inventory record it read (all outlets and products, so a location or SKU
added to reconciler.yaml later is already there) with its cursor, and the next plan reads only
the records changed since and merges them: a higher version wins, a deleted record removes the
position. The snapshot is read in full instead when any of these says it may be wrong:

- none kept yet, or ``reconciler plan --refresh``;
- it was read in full longer ago than ``options.incremental_max_age`` hours (default 6);
- it belongs to another state lineage, another base URL or another inventory API version;
- a journal row of the target was left in doubt (pending, in doubt, resolved as not applied)
  since the snapshot was read: a write of unknown outcome;
- the cursor went backwards: the record with the snapshot's highest version is not at the
  vendor at that version or higher (a reset sandbox, another store behind the same URL);
- the vendor refuses the cursor (any 4xx on the incremental read).

Writes of an apply bump the versions of what they wrote, so the read after an apply picks
them up without invalidating (tests/connectors/test_xseries_incremental.py shows it).
``options.incremental: false`` turns all this off (every plan reads in full).
"""

from __future__ import annotations

import zlib
from contextlib import closing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import orjson

from reconciler.errors import ConfigError, Problem, VendorRejected
from reconciler.connectors.xseries import PREFETCH_PAGES, prefetched
from reconciler.model import Record

if TYPE_CHECKING:
    from reconciler.connectors.xseries import XSeriesConnector

DEFAULT_MAX_AGE_H = 6.0
# outlet_id -> product_id -> [version, quantity, reorder_point, reorder_amount]: by outlet, so
# mapping skips an unmanaged outlet at once and no key is split per record.
Snapshot = dict[str, dict[str, list[Any]]]


@dataclass
class IncrementalReads:
    """Opens the state on the reading thread (a SQLite connection belongs to its thread)."""

    url: Any
    refresh: bool = False
    notes: dict[str, str] = field(default_factory=dict)

    def read(self, conn: XSeriesConnector) -> dict[tuple[str, str], Record]:
        from reconciler.state import open_state_store

        store = open_state_store(self.url)
        try:
            snapshot, note = read_snapshot(conn, store, refresh=self.refresh)
        finally:
            store.close()
        self.notes[conn.ctx.name] = note
        return positions(conn, snapshot)


def attach(connectors: Mapping[str, Any], url: Any, *, refresh: bool) -> IncrementalReads:
    """Give every X-Series connector that allows it the snapshot reads; the plan notes come back
    in the returned object's ``notes`` once the connectors have read."""
    from reconciler.connectors.xseries import XSeriesConnector

    reads = IncrementalReads(url, refresh)
    for conn in connectors.values():
        if isinstance(conn, XSeriesConnector) and max_age_h(conn.ctx.name, conn.ctx.options) is not None:
            conn.snapshots = reads
    return reads


def max_age_h(target: str, options: Mapping[str, Any]) -> float | None:
    """``options.incremental_max_age`` in hours; None when ``options.incremental`` is false."""
    if options.get("incremental", True) is False:
        return None
    value = options.get("incremental_max_age", DEFAULT_MAX_AGE_H)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError([Problem(f"target {target!r}: options.incremental_max_age must be a number of hours above 0, "
                                   f"got {value!r}", hint="Or set options.incremental: false to read in full every plan.")])
    return float(value)


def read_snapshot(conn: XSeriesConnector, store: Any, *, refresh: bool) -> tuple[Snapshot, str]:
    """The merged snapshot of ``conn``'s target and the plan note saying how it was read."""
    name = conn.ctx.name
    source = f"{conn.ctx.base_url.rstrip('/')} {conn.options.version}"
    lineage = store.lineage()
    kept = store.live_snapshot(name)
    why = _why_full(conn, store, kept, lineage, source, refresh)
    if why is None:
        snapshot = _decode(kept.records)
        try:
            backwards = _backwards(conn, snapshot, kept.cursor)
            changed, cursor = _merge(snapshot, conn.inventory_pages(_path(conn), after=kept.cursor), kept.cursor)
        except VendorRejected as exc:
            if exc.status is None or not 400 <= exc.status < 500:
                raise
            why = f"the vendor refused cursor {kept.cursor} ({exc.status})"
        else:
            if backwards:
                why = f"the cursor went backwards (the vendor holds nothing at version {kept.cursor} any more)"
            else:
                # the read's highest version bounds the adjustment listing's cursor (XSeriesConnector.mark),
                # as a full read's would, even when no page came back
                conn.seen_version = max(conn.seen_version, cursor)
                store.save_live_snapshot(name, lineage=lineage, source=source, cursor=cursor, records=_encode(snapshot),
                                         full_at=kept.full_at)
                return snapshot, (f"{name}: live stock read incrementally: {changed} record(s) changed since version "
                                  f"{kept.cursor} (last read {kept.read_at}; read in full {kept.full_at})")
    snapshot = {}
    # Pages fetched and decoded on a thread while this one merges (as the full read does).
    pages = prefetched(lambda stop: conn.inventory_pages(_path(conn), stop), depth=PREFETCH_PAGES,
                       name=f"xseries-prefetch-{name}")
    with closing(pages):
        _, cursor = _merge(snapshot, pages, 0)
    read_at = store.save_live_snapshot(name, lineage=lineage, source=source, cursor=cursor,
                                       records=_encode(snapshot), full_at=None)
    return snapshot, f"{name}: live stock read in full at {read_at} ({why}); next plans read changes after version {cursor}"


def _why_full(conn: XSeriesConnector, store: Any, kept: Any, lineage: str, source: str, refresh: bool) -> str | None:
    if refresh:
        return "--refresh"
    if kept is None:
        return "no snapshot kept yet"
    if kept.lineage != lineage:
        return "the snapshot belongs to another state lineage"
    if kept.source != source:
        return "the snapshot was read from another endpoint or API version"
    limit = max_age_h(conn.ctx.name, conn.ctx.options) or DEFAULT_MAX_AGE_H
    if kept.age_s > limit * 3600:
        return f"the snapshot was read in full {kept.age_s / 3600:.1f} h ago, over incremental_max_age {limit:g} h"
    doubtful = store.doubtful_since(conn.ctx.name, kept.read_at)
    if doubtful:
        return f"{doubtful} write(s) left in doubt since the snapshot was read"
    return None


def _path(conn: XSeriesConnector) -> str:
    return f"/api/{conn.options.version}/inventory"


def _merge(snapshot: Snapshot, pages: Iterable[list[dict[str, Any]]], cursor: int) -> tuple[int, int]:
    """Merge feed pages into ``snapshot``: the higher version wins (pages need not be ordered), a
    deleted record removes its position. Returns (records seen, the highest version)."""
    from reconciler.connectors.xseries import _quantity

    seen, tombstones = 0, {}
    for page in pages:
        for rec in page:
            seen += 1
            version = int(rec["version"])
            cursor = max(cursor, version)
            outlet, product = str(rec.get("outlet_id")), str(rec.get("product_id"))
            products = snapshot.get(outlet)
            if products is None:
                products = snapshot[outlet] = {}
            held = products.get(product) or tombstones.get((outlet, product))
            if held is not None and held[0] > version:
                continue
            if rec.get("deleted_at"):
                products.pop(product, None)
                tombstones[outlet, product] = [version]
            else:
                tombstones.pop((outlet, product), None)
                amount = rec.get("current_amount")
                products[product] = [version, amount if amount.__class__ is int else _quantity(rec),
                                     rec.get("reorder_point"), rec.get("reorder_amount")]
    return seen, cursor


def _backwards(conn: XSeriesConnector, snapshot: Snapshot, cursor: int) -> bool:
    """True when the vendor's versions are below ``cursor`` or its records are not the
    snapshot's (a reset sandbox, another store behind the URL): the snapshot's newest record is
    looked up (one small read of its product) and must be there at its version or higher."""
    held = [(rec[0], outlet, product) for outlet, products in snapshot.items() for product, rec in products.items()]
    if not held:
        return False
    newest, outlet, product = max(held)
    if newest < cursor:
        return False  # the newest change was a deletion: nothing live to look up; trust the feed
    if conn.options.version >= "2026-04":
        pages = conn.inventory_pages(_path(conn), product_id=product)
    else:
        pages = conn.inventory_pages(f"{_path(conn)}/{product}")
    found = [int(r["version"]) for page in pages for r in page if r.get("outlet_id") == outlet]
    return not found or max(found) < newest


def positions(conn: XSeriesConnector, snapshot: Snapshot) -> dict[tuple[str, str], Record]:
    """The managed positions of a snapshot, mapped as a full read maps them."""
    from reconciler.connectors.xseries import _RecordMaker

    skus = {vid: name for name, vid in conn.ctx.item_ids.items() if isinstance(vid, str)}
    make, out = _RecordMaker(), {}
    plain = make.plain  # shared Records of a plain quantity, as a full read shares them
    for location, outlet in conn.ctx.location_ids.items():
        for product, (_, quantity, point, amount) in snapshot.get(outlet, {}).items():
            item = skus.get(product)
            if item is None:
                continue
            if point is None and amount is None and quantity.__class__ is int:
                record = plain.get(quantity)
                out[location, item] = record if record is not None else make({"current_amount": quantity})
            else:
                out[location, item] = make({"current_amount": quantity, "reorder_point": point, "reorder_amount": amount})
    return out


def _encode(snapshot: Snapshot) -> bytes:
    return zlib.compress(orjson.dumps(snapshot), 1)


def _decode(blob: bytes) -> Snapshot:
    return orjson.loads(zlib.decompress(blob))  # type: ignore[no-any-return]
