"""Matching a vendor's catalogue and locations to the repository's canonical SKUs and locations.

Pure: no I/O. ``reconciler discover`` and ``init --from`` feed it the records a connector listed
(:class:`~reconciler.connectors.base.CatalogueItem`, :class:`~reconciler.connectors.base.VendorLocation`)
and what catalog.yaml / reconciler.yaml hold now, and get one row per SKU or location saying what
was found. A key two vendor items share is *ambiguous* and never guessed; an id catalog.yaml
already holds is never replaced (a different match is reported, for the merchant to decide).
"""

from __future__ import annotations

import enum
import json
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from reconciler.connectors.base import CatalogueItem, VendorLocation

ItemId = Any  # a string, or a mapping of id fields (Zettle: product and variant)
MATCH_KEYS = ("sku", "barcode")


class Status(str, enum.Enum):
    MATCHED = "matched"  # a new id, found once: written by --write
    ADDED = "added"  # --add: a vendor SKU the catalogue does not have yet
    ALREADY = "already mapped"  # catalog.yaml holds the id the vendor lists for it
    DIFFERENT = "mapped differently"  # catalog.yaml holds another id than the one found: not changed
    STALE = "stale"  # catalog.yaml holds an id the vendor no longer lists (deleted?): not changed
    AMBIGUOUS = "ambiguous"  # two or more vendor items share the key: never guessed
    UNMATCHED = "unmatched"  # the vendor lists nothing under the key


WRITTEN = frozenset({Status.MATCHED, Status.ADDED})


@dataclass(frozen=True)
class Row:
    key: str  # the canonical SKU or location (for ADDED: the name it gets)
    status: Status
    found: ItemId | None = None  # the vendor id found (MATCHED, ADDED, ALREADY, DIFFERENT)
    current: ItemId | None = None  # the id the repository holds now
    note: str = ""


def id_key(value: ItemId) -> str:
    """A comparable form of an id: equal ids, equal keys, whatever the mapping's order."""
    return json.dumps(value, sort_keys=True) if isinstance(value, Mapping) else json.dumps(str(value))


def show_id(value: ItemId) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
    return str(value)


def _keys(item: CatalogueItem, by: str) -> list[str]:
    raw = [item.sku] if by == "sku" else list(item.barcodes)
    return sorted({k.strip() for k in raw if k and k.strip()})


def _index(items: Sequence[CatalogueItem], by: str) -> dict[str, list[CatalogueItem]]:
    index: dict[str, dict[str, CatalogueItem]] = defaultdict(dict)
    for item in items:
        for key in _keys(item, by):
            index[key][id_key(item.id)] = item  # the same item listed twice is one item
    return {key: list(found.values()) for key, found in index.items()}


def match_items(
    catalog: Mapping[str, ItemId | None], items: Sequence[CatalogueItem], *, by: str = "sku", add: bool = False,
) -> list[Row]:
    """One row per canonical SKU of ``catalog`` (SKU -> the id it holds for this target, or
    None), matched on the vendor's ``by`` key; with ``add``, one more row per vendor SKU the
    catalogue lacks. Rows are in catalogue order, then added ones by SKU."""
    if by not in MATCH_KEYS:
        raise ValueError(f"match key must be one of {MATCH_KEYS}, not {by!r}")
    index = _index(items, by)
    listed = {id_key(item.id): item for item in items}
    rows = [_match_one(sku, current, index.get(sku.strip(), []), listed, by) for sku, current in catalog.items()]
    rows = _claimed_elsewhere(rows, catalog)
    if add:
        rows += _added(catalog, items, rows)
    return rows


def _match_one(sku: str, current: ItemId | None, hits: list[CatalogueItem], listed: Mapping[str, CatalogueItem],
               by: str) -> Row:
    held = listed.get(id_key(current)) if current is not None else None
    if current is not None and any(id_key(h.id) == id_key(current) for h in hits):
        return Row(sku, Status.ALREADY, current, current)
    if len(hits) > 1:
        ids = ", ".join(show_id(h.id) for h in hits)
        return Row(sku, Status.AMBIGUOUS, None, current, f"{len(hits)} vendor items have {by} {sku!r}: {ids}")
    if hits:
        found = hits[0].id
        if current is None:
            return Row(sku, Status.MATCHED, found)
        was = f"now {by} {_key_of(held, by)!r}" if held else "no longer listed by the vendor (deleted?)"
        return Row(sku, Status.DIFFERENT, found, current,
                   f"catalog.yaml holds {show_id(current)} ({was}); the vendor's {by} {sku!r} is on {show_id(found)}")
    if current is None:
        return Row(sku, Status.UNMATCHED, note=f"no vendor item has {by} {sku!r}")
    if held is not None:  # the mapped item is still there under another key: renamed in the vendor
        return Row(sku, Status.ALREADY, current, current, f"the vendor's {by} is now {_key_of(held, by)!r} (renamed?)")
    return Row(sku, Status.STALE, None, current,
               f"catalog.yaml holds {show_id(current)}, which the vendor no longer lists (deleted?)")


def _claimed_elsewhere(rows: list[Row], catalog: Mapping[str, ItemId | None]) -> list[Row]:
    """A match whose vendor item another canonical SKU already holds (a SKU renamed in the
    vendor to one the catalogue also lists) is not written: two SKUs on one item is a guess."""
    holders = {id_key(v): sku for sku, v in catalog.items() if v is not None}
    out = []
    for row in rows:
        other = holders.get(id_key(row.found)) if row.status is Status.MATCHED else None
        out.append(row if other is None else Row(row.key, Status.AMBIGUOUS, None, row.current,
                                                 f"the vendor item {show_id(row.found)} is already mapped to {other!r}"))
    return out


def _key_of(item: CatalogueItem, by: str) -> str:
    return (item.sku or "") if by == "sku" else ", ".join(item.barcodes)


def _added(catalog: Mapping[str, ItemId | None], items: Sequence[CatalogueItem], rows: list[Row]) -> list[Row]:
    """Vendor items not yet claimed, keyed on their own SKU (whatever ``by`` was)."""
    claimed = {id_key(r.found) for r in rows if r.found is not None}
    claimed |= {id_key(v) for v in catalog.values() if v is not None}
    by_sku = _index(items, "sku")  # all of them: a SKU shared with a mapped item is still shared
    out = []
    for sku in sorted(by_sku):
        hits = by_sku[sku]
        if sku in catalog or all(id_key(h.id) in claimed for h in hits):
            continue  # the catalogue's row already says why it was not matched, or the item is mapped
        if len(hits) > 1:
            out.append(Row(sku, Status.AMBIGUOUS, None, None,
                           f"not added: {len(hits)} vendor items have sku {sku!r}: " + ", ".join(show_id(h.id) for h in hits)))
        else:
            out.append(Row(sku, Status.ADDED, hits[0].id, None, hits[0].name))
    return out


def unkeyed(items: Sequence[CatalogueItem], by: str = "sku") -> int:
    """How many vendor items carry no ``by`` key at all (they can never be matched)."""
    return sum(1 for item in items if not _keys(item, by))


def slug(name: str) -> str:
    """A canonical location name from a vendor's display name: ``Oslo Flagship`` -> ``oslo-flagship``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "location"


def match_locations(
    configured: Mapping[str, str | None], vendor: Sequence[VendorLocation], *, add: bool = False,
    descriptions: Mapping[str, str | None] | None = None,
) -> list[Row]:
    """One row per canonical location of the target (name -> the vendor id it holds, or None),
    matched by name (the canonical name or its description against the vendor's name, compared
    as slugs); with ``add``, one row per vendor location left over, named after its slug."""
    listed = {loc.id: loc for loc in vendor}
    by_name: dict[str, list[VendorLocation]] = defaultdict(list)
    for loc in vendor:
        by_name[slug(loc.name)].append(loc)
    rows = []
    for name, current in configured.items():
        if current:
            status = Status.ALREADY if current in listed else Status.STALE
            note = "" if current in listed else f"the vendor lists no location {current!r}"
            rows.append(Row(name, status, current if current in listed else None, current, note))
            continue
        names = {slug(name), *( [slug(d)] if (d := (descriptions or {}).get(name)) else [])}
        hits = {loc.id: loc for n in names for loc in by_name.get(n, [])}
        if len(hits) == 1:
            rows.append(Row(name, Status.MATCHED, next(iter(hits))))
        elif hits:
            rows.append(Row(name, Status.AMBIGUOUS, None, None, "vendor locations " + ", ".join(
                f"{h.id} ({h.name})" for h in hits.values()) + " share its name"))
        else:
            rows.append(Row(name, Status.UNMATCHED, note="no vendor location has this name; vendor locations: "
                            + ", ".join(f"{loc.name} ({loc.id})" for loc in vendor)))
    if add:
        rows += _added_locations(configured, vendor, rows)
    return rows


def _added_locations(configured: Mapping[str, str | None], vendor: Sequence[VendorLocation],
                     rows: list[Row]) -> list[Row]:
    claimed = {r.found for r in rows if r.found} | {v for v in configured.values() if v}
    taken = set(configured)
    out = []
    for loc in vendor:
        if loc.id in claimed:
            continue
        name, n = slug(loc.name), 2
        while name in taken:
            name, n = f"{slug(loc.name)}-{n}", n + 1
        taken.add(name)
        out.append(Row(name, Status.ADDED, loc.id, None, loc.name))
    return out


def counts(rows: Iterable[Row]) -> dict[Status, int]:
    out = {status: 0 for status in Status}
    for row in rows:
        out[row.status] += 1
    return out
