"""``reconciler discover``: map canonical SKUs and locations to a target's vendor ids.

Reads the target's catalogue and locations through its connector (``Connector.catalogue()`` /
``locations()``), or the merchant's CSV export for a target without a catalogue read, matches
them (:mod:`reconciler.discover._match`: never guessing between two vendor items) and, with
``write``, writes the new ids into catalog.yaml and reconciler.yaml in place (:mod:`._write`).
The files are checked with the same loader as ``reconciler validate`` before they are kept.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from reconciler.config import load, load_project
from reconciler.config._stock import CATALOG_FILE
from reconciler.config.schema import CONFIG_FILE
from reconciler.connectors.base import CatalogueItem, VendorLocation
from reconciler.discover._csv import read_csv
from reconciler.discover._match import Row, Status, counts, match_items, match_locations, show_id, unkeyed
from reconciler.errors import ConfigError, NotSupported, Problem
from reconciler.workflow import Transports, open_connectors

SHOWN_PER_STATUS = 25  # rows listed per status; the counts are always complete
LISTED = (Status.AMBIGUOUS, Status.DIFFERENT, Status.STALE, Status.UNMATCHED, Status.MATCHED, Status.ADDED)


@dataclass
class DiscoverResult:
    target: str
    by: str
    source: str  # "the X-Series API" or the CSV file
    items: list[Row]
    locations: list[Row] | None  # None: the source lists no locations
    vendor_items: int
    unkeyed: int
    written: list[str] = field(default_factory=list)
    write: bool = False

    def summary(self) -> str:
        lines = [f"Discovered {self.target} from {self.source}: {self.vendor_items:,} vendor item(s), matched on {self.by}."]
        if self.unkeyed:
            lines.append(f"  {self.unkeyed:,} vendor item(s) have no {self.by} and can only be mapped by hand.")
        if self.locations is not None:
            lines += _section("Locations", self.locations)
        lines += _section("Items", self.items)
        if self.write:
            lines.append("Wrote " + ", ".join(self.written) + "; `reconciler validate` passes." if self.written
                         else "Nothing new to write.")
        elif any(r.status in (Status.MATCHED, Status.ADDED) for r in [*self.items, *(self.locations or [])]):
            lines.append("Run again with --write to write the matched ids (comments and layout are kept).")
        if any(r.status in (Status.AMBIGUOUS, Status.DIFFERENT, Status.STALE) for r in [*self.items, *(self.locations or [])]):
            lines.append("Ambiguous, differently mapped and stale entries are never written: fix them by hand in "
                         f"{CATALOG_FILE} / {CONFIG_FILE}, or give the vendor items distinct {self.by}s.")
        return "\n".join(lines)


def _section(title: str, rows: list[Row]) -> list[str]:
    n = counts(rows)
    lines = [f"{title}: " + ", ".join(f"{count:,} {status.value}" for status, count in n.items() if count)
             if rows else f"{title}: none"]
    for status in LISTED:
        chosen = [r for r in rows if r.status is status]
        for row in chosen[:SHOWN_PER_STATUS]:
            detail = row.note or (show_id(row.found) if row.found is not None else "")
            lines.append(f"  {status.value:<18} {row.key:<24} {detail}".rstrip())
        if len(chosen) > SHOWN_PER_STATUS:
            lines.append(f"  {status.value:<18} ... and {len(chosen) - SHOWN_PER_STATUS:,} more")
    return lines


def read_vendor(project: object, target: str, *, env: Mapping[str, str] | None = None,
                transports: Transports | None = None) -> tuple[list[CatalogueItem], list[VendorLocation] | None]:
    """The target's catalogue and (when the vendor lists them) its locations."""
    with ExitStack() as stack:
        conn = open_connectors(project, [target], env=env, transports=transports, stack=stack)[target]  # type: ignore[arg-type]
        try:
            items = conn.catalogue()
        except NotSupported as exc:
            raise NotSupported(
                f"target {target!r} ({conn.kind}) has no API to list its catalogue, so discover needs the "
                "merchant's export", hint="Export the catalogue (ids and SKUs) as CSV and run "
                f"`reconciler discover {target} --from-csv FILE --columns sku=<SKU column>,id=<id column>`.",
            ) from exc
        try:
            locations: list[VendorLocation] | None = conn.locations()
        except NotSupported:
            locations = None
    return items, locations


def discover(
    root: str | Path, target: str, *, by: str = "sku", add: bool = False, write: bool = False,
    from_csv: str | None = None, columns: str | None = None, env: Mapping[str, str] | None = None,
    transports: Transports | None = None,
) -> DiscoverResult:
    project = load_project(root)
    config = project.target(target)
    if from_csv:
        if not columns:
            raise ConfigError([Problem("--from-csv needs --columns", hint="e.g. --columns sku=SKU,id=ItemID")])
        items, vendor_locations, source = read_csv(from_csv, columns), None, from_csv
    else:
        items, vendor_locations = read_vendor(project, target, env=env, transports=transports)
        source = f"the {config.kind} API"
    current = {sku: entry.ids.get(target) for sku, entry in project.catalog.items()}
    rows = match_items(current, items, by=by, add=add)
    loc_rows = None
    if vendor_locations is not None:
        descriptions = {name: loc.description for name, loc in project.config.locations.items()}
        # Every canonical location the target does not map yet is looked for by name.
        configured = {name: config.locations.get(name) for name in project.config.locations}
        loc_rows = match_locations(configured, vendor_locations, add=add, descriptions=descriptions)
    result = DiscoverResult(target, by, source, rows, loc_rows, len(items), unkeyed(items, by), write=write)
    if write:
        result.written = write_files(project.root, target, rows, loc_rows or [])
    return result


def write_files(root: Path, target: str, rows: list[Row], loc_rows: list[Row]) -> list[str]:
    """Write both files, then check them as ``validate`` does; on a problem put the old texts back
    and raise it, so nothing is half-written."""
    from reconciler.discover._write import catalog_text, config_text
    from reconciler.importer import _atomic_write

    texts = {CATALOG_FILE: catalog_text(root, target, rows), CONFIG_FILE: config_text(root, target, loc_rows)}
    changed = {rel: text for rel, text in texts.items() if text is not None}
    old = {rel: (root / rel).read_text(encoding="utf-8") if (root / rel).exists() else None for rel in changed}
    for rel, text in changed.items():
        _atomic_write(root / rel, text)
    problems = load(root).problems
    if problems:
        for rel, text in old.items():
            if text is None:
                (root / rel).unlink(missing_ok=True)
            else:
                _atomic_write(root / rel, text)
        raise ConfigError(problems + [Problem("discover wrote nothing: the files it would write do not validate",
                                              hint="Fix the problems above (they may predate discover) and run again.")])
    return sorted(changed)
