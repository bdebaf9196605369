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
    # target -> (cursor, newest live record) after its read: what a plan memo starts from
    marks: dict[str, tuple[int, Newest | None]] = field(default_factory=dict)

    def read(self, conn: XSeriesConnector) -> dict[tuple[str, str], Record]:
        from reconciler.state import open_state_store

        store = open_state_store(self.url)
        try:
            snapshot, note = read_snapshot(conn, store, refresh=self.refresh, marks=self.marks)
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


def read_snapshot(conn: XSeriesConnector, store: Any, *, refresh: bool,
                  marks: dict[str, tuple[int, Newest | None]] | None = None) -> tuple[Snapshot, str]:
    """The merged snapshot of ``conn``'s target and the plan note saying how it was read;
    ``marks`` gets the target's cursor and newest live record after the read."""
    marks = {} if marks is None else marks
    name = conn.ctx.name
    source = f"{conn.ctx.base_url.rstrip('/')} {conn.options.version}"
    lineage = store.lineage()
    kept = store.live_snapshot(name)
    why = _why_full(conn, store, kept, lineage, source, refresh)
    if why is None:
        snapshot = _decode(kept.records)
        newest = _newest(snapshot)
        try:
            backwards = _backwards(conn, newest, kept.cursor)
            changed, cursor, top = _merge(snapshot, conn.inventory_pages(_path(conn), after=kept.cursor), kept.cursor)
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
                marks[name] = (cursor, _still_newest(snapshot, newest, top))
                store.save_live_snapshot(name, lineage=lineage, source=source, cursor=cursor, records=_encode(snapshot),
                                         full_at=kept.full_at)
                return snapshot, (f"{name}: live stock read incrementally: {changed} record(s) changed since version "
                                  f"{kept.cursor} (last read {kept.read_at}; read in full {kept.full_at})")
    snapshot = {}
    # Pages fetched and decoded on a thread while this one merges (as the full read does).
    pages = prefetched(lambda stop: conn.inventory_pages(_path(conn), stop), depth=PREFETCH_PAGES,
                       name=f"xseries-prefetch-{name}")
    with closing(pages):
        _, cursor, top = _merge(snapshot, pages, 0)
    marks[name] = (cursor, top)
    read_at = store.save_live_snapshot(name, lineage=lineage, source=source, cursor=cursor,
                                       records=_encode(snapshot), full_at=None)
    return snapshot, f"{name}: live stock read in full at {read_at} ({why}); next plans read changes after version {cursor}"


def _still_newest(snapshot: Snapshot, kept: Newest | None, merged: Newest | None) -> Newest | None:
    """The newest live record after a merge: the newer of the kept one (if the merge left it as
    it was) and the newest merged."""
    if kept is not None and snapshot.get(kept[1], {}).get(kept[2], [None])[0] != kept[0]:
        kept = None  # changed or deleted since: the merged records say what is newest now
        if merged is None:
            return None
    return max((n for n in (kept, merged) if n is not None), default=None)


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


Newest = tuple[int, str, str]
"""(version, outlet_id, product_id) of the newest live record: what the cursor check looks up."""


def _merge(snapshot: Snapshot, pages: Iterable[list[dict[str, Any]]], cursor: int) -> tuple[int, int, Newest | None]:
    """Merge feed pages into ``snapshot``: the higher version wins (pages need not be ordered), a
    deleted record removes its position. Returns (records seen, the highest version, the newest
    live record merged, if it is still live)."""
    from reconciler.connectors.xseries import _quantity

    seen, tombstones, top, top_key = 0, {}, 0, None
    for page in pages:
        for rec in page:
            seen += 1
            version = int(rec["version"])
            if version > cursor:
                cursor = version
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
                if version > top:
                    top, top_key = version, (outlet, product)
    if top_key is None or snapshot.get(top_key[0], {}).get(top_key[1], [None])[0] != top:
        return seen, cursor, None  # nothing live merged, or a later deletion took the newest
    return seen, cursor, (top, *top_key)


def _newest(snapshot: Snapshot) -> Newest | None:
    held = [(rec[0], outlet, product) for outlet, products in snapshot.items() for product, rec in products.items()]
    return max(held) if held else None


def _backwards(conn: XSeriesConnector, newest: Newest | None, cursor: int) -> bool:
    """True when the vendor's versions are below ``cursor`` or its records are not the
    snapshot's (a reset sandbox, another store behind the URL): the snapshot's newest record is
    looked up (one small read of its product) and must be there at its version or higher."""
    if newest is None:
        return False
    version, outlet, product = newest
    if version < cursor:
        return False  # the newest change was a deletion: nothing live to look up; trust the feed
    if conn.options.version >= "2026-04":
        pages = conn.inventory_pages(_path(conn), product_id=product)
    else:
        pages = conn.inventory_pages(f"{_path(conn)}/{product}")
    found = [int(r["version"]) for page in pages for r in page if r.get("outlet_id") == outlet]
    return not found or max(found) < version


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


@dataclass
class Changes:
    """The records changed after a memo's cursor, mapped to managed positions."""

    records: int  # feed records read
    cursor: int
    newest: Newest | None
    # (location, item) -> its live record now; None: the vendor no longer holds it (A = 0)
    positions: dict[tuple[str, str], Record | None]


def why_not_incremental(conn: XSeriesConnector, store: Any, refresh: bool) -> str | None:
    """Why the kept snapshot (and so any memo made with it) cannot be trusted; None if it can."""
    source = f"{conn.ctx.base_url.rstrip('/')} {conn.options.version}"
    return _why_full(conn, store, store.live_snapshot(conn.ctx.name), store.lineage(), source, refresh)


def read_changes(conn: XSeriesConnector, cursor: int, newest: Newest | None) -> Changes | None:
    """The feed after ``cursor``, as positions; None when the cursor cannot be trusted (it went
    backwards, or the vendor refuses it): the caller reads in full then."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}  # the highest version of each record wins
    seen, top = 0, cursor
    try:
        if _backwards(conn, newest, cursor):
            return None
        for page in conn.inventory_pages(_path(conn), after=cursor):
            for rec in page:
                seen += 1
                version, key = int(rec["version"]), (str(rec.get("outlet_id")), str(rec.get("product_id")))
                top = max(top, version)
                held = latest.get(key)
                if held is None or int(held["version"]) < version:
                    latest[key] = rec
    except VendorRejected as exc:
        if exc.status is None or not 400 <= exc.status < 500:
            raise
        return None
    conn.seen_version = max(conn.seen_version, top)
    if newest is not None and (newest[1], newest[2]) in latest:
        newest = None  # the newest record changed: the changed ones say what is newest now
    live = [(int(r["version"]), *key) for key, r in latest.items() if not r.get("deleted_at")]
    newest = max([n for n in (newest, max(live, default=None)) if n is not None], default=None)
    return Changes(seen, top, newest, _changed_positions(conn, latest))


def _changed_positions(conn: XSeriesConnector, latest: Mapping[tuple[str, str], Mapping[str, Any]]
                       ) -> dict[tuple[str, str], Record | None]:
    from reconciler.connectors.xseries import _RecordMaker

    skus = {vid: name for name, vid in conn.ctx.item_ids.items() if isinstance(vid, str)}
    locations: dict[str, list[str]] = {}
    for location, outlet in conn.ctx.location_ids.items():
        locations.setdefault(outlet, []).append(location)
    make, out = _RecordMaker(), {}
    for (outlet, product), rec in latest.items():
        item = skus.get(product)
        if item is None:
            continue
        for location in locations.get(outlet, ()):
            out[location, item] = None if rec.get("deleted_at") else make(rec)
    return out
