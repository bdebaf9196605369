"""``count start`` and ``count finish``, and the counts a plan takes in (:func:`count_plan`)."""

from __future__ import annotations

import secrets
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from reconciler.config import load_project
from reconciler.counts._files import read_records, write_counted, write_record
from reconciler.counts._sheet import read_sheet, write_sheets
from reconciler.counts._store import StoredCount, applied_ops, load_count, mark_finished, save_count
from reconciler.errors import CountError, LockHeld
from reconciler.planner._counts import CountedPosition, CountInput, CountPlan, count_op_id

READ_LOCK_TTL_S = 300.0
# Another count's read of the same target holds its lock for seconds: wait for it. An apply may
# hold it for long; then the count says so and nothing is stored.
READ_LOCK_WAIT_S = 60.0


def utcnow() -> datetime:
    """The clock of counts (a test moves it to simulate hours and days)."""
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class StartedCount:
    count_id: str
    location: str
    started_at: str
    items: list[str]
    snapshots: int
    targets: list[str]
    sheet_yaml: Path
    sheet_csv: Path


@dataclass
class FinishedCount:
    count_id: str
    location: str
    counted: dict[str, int]
    desired_files: list[str]
    record: str


def _targets_at(project: Any, location: str) -> list[str]:
    names = [n for n in project.config.targets if location in project.target(n).locations]
    if location not in project.config.locations:
        raise CountError(f"unknown location {location!r}",
                         hint=f"Locations in reconciler.yaml: {', '.join(project.config.locations)}.")
    return names


def _items(project: Any, location: str, targets: list[str], items: Iterable[str] | None, all_items: bool) -> list[str]:
    if items:
        unknown = [s for s in items if s not in project.catalog]
        if unknown:
            raise CountError(f"not in stock/catalog.yaml: {', '.join(unknown)}", hint="Give catalogue SKUs.")
        return sorted(set(items))
    if not all_items:
        raise CountError("say what to count: --items SKU ... or --all")
    held = {sku for (t, loc, sku) in project.positions if loc == location and t in targets}
    return sorted(held)


def start_count(root: str | Path, location: str, *, items: Iterable[str] | None = None, all_items: bool = False,
                note: str = "", out_dir: str | Path | None = None, env: Mapping[str, str] | None = None,
                transports: Any = None, state: str | None = None,
                progress: Callable[[str], None] | None = None) -> StartedCount:
    """Snapshot the live stock of ``location`` in every readable target, store it, write the sheets."""
    from reconciler.workflow import open_store, reading_connectors, who

    project = load_project(root)
    targets = _targets_at(project, location)
    chosen = _items(project, location, targets, items, all_items)
    started = utcnow()
    count_id = f"{location}-{started.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    snapshots: dict[tuple[str, str], tuple[int, float | None]] = {}
    with ExitStack() as stack:
        connectors, _ = reading_connectors(project, targets, env=env, transports=transports, stack=stack)
        store = stack.enter_context(open_store(project, env=env, state=state))
        for name, conn in connectors.items():
            if not type(conn).capabilities.readable:
                continue
            if progress:
                progress(f"reading live stock of {name} at {location}")
            # The target's lock only for the read: an apply of this target cannot change it
            # half-way, and counts of other locations (or this one) may start at any time.
            lock = _read_lock(store, f"count {count_id} ({who()})", name)
            try:
                live = conn.read_stock()
                costs = conn.unit_costs(location)
            finally:
                store.release_lock(lock.id)
            for sku in chosen:
                rec = live.get((location, sku))
                # Only positions this target manages or holds: a count never starts managing an
                # item a target merely knows from the catalogue.
                if rec is not None or (name, location, sku) in project.positions:
                    snapshots[(name, sku)] = (rec.quantity if rec is not None else 0, costs.get(sku))
        save_count(store, StoredCount(count_id, location, _iso(started), who(), note, chosen, None, snapshots))
    folder = Path(out_dir) if out_dir is not None else Path.cwd()
    names = [(sku, project.catalog[sku].name or "") for sku in chosen]
    ypath, cpath = write_sheets(folder, count_id, location, names)
    return StartedCount(count_id, location, _iso(started), chosen, len(snapshots), sorted(connectors), ypath, cpath)


def _read_lock(store: Any, holder: str, target: str) -> Any:
    deadline = time.monotonic() + READ_LOCK_WAIT_S
    while True:
        try:
            return store.acquire_lock(holder, READ_LOCK_TTL_S, [target])
        except LockHeld as exc:
            if time.monotonic() > deadline:
                raise LockHeld(f"count start: {exc.message}",
                               hint="An apply of this target is running; start the count when it is done.") from exc
            time.sleep(0.2)


def _codes(project: Any) -> dict[str, str]:
    """SKUs and every id in the catalogue (barcodes such as a UPC), lower-cased, -> SKU."""
    codes: dict[str, str] = {}
    for sku, item in project.catalog.items():
        for ident in item.ids.values():
            for value in (ident.values() if isinstance(ident, dict) else [ident]):
                codes.setdefault(str(value).lower(), sku)
    codes.update({sku.lower(): sku for sku in project.catalog})
    return codes


def _stock_file(project: Any, location: str, targets: list[str], target: str) -> str:
    declared = project.declared_locations
    if (target, location) in declared:
        return declared[(target, location)]
    for t in targets:
        if (t, location) in declared:
            return declared[(t, location)]
    return f"stock/{location}.yaml"


def finish_count(root: str | Path, count_id: str, sheet: str | Path, *, env: Mapping[str, str] | None = None,
                 state: str | None = None) -> FinishedCount:
    """Write the counted quantities into the location's stock file(s) and ``counts/ID.yaml``."""
    from reconciler.workflow import open_store

    project = load_project(root)
    with open_store(project, env=env, state=state) as store:
        stored = load_count(store, count_id)
        if stored is None:
            raise CountError(f"no count {count_id!r} in the state", hint="`reconciler count start` prints the id.")
        if stored.finished_at:
            raise CountError(f"count {count_id} was finished at {stored.finished_at}",
                             hint="Start a new count to count again.")
        filled = read_sheet(Path(sheet), _codes(project))
        if filled.count_id and filled.count_id != count_id:
            raise CountError(f"{sheet} is the sheet of count {filled.count_id}, not {count_id}")
        counted = dict(filled.counted)
        if filled.uncounted == "zero":
            for sku in stored.items:
                counted.setdefault(sku, 0)
        if not counted:
            raise CountError(f"{sheet}: no item has a counted quantity", hint="Fill in `counted` for what you counted.")
        record = _write_results(project, stored, counted)
        mark_finished(store, count_id, _iso(utcnow()))
    return FinishedCount(count_id, stored.location, counted, *record)


def _write_results(project: Any, stored: StoredCount, counted: dict[str, int]) -> tuple[list[str], str]:
    location = stored.location
    targets = _targets_at(project, location)
    per_file: dict[str, dict[str, dict[str, int]]] = {}
    positions = []
    for target in targets:
        for sku, qty in sorted(counted.items()):
            held = (target, location, sku) in project.positions or (target, sku) in stored.snapshots
            if not held or target not in project.catalog[sku].ids:
                continue
            per_file.setdefault(_stock_file(project, location, targets, target), {}).setdefault(target, {})[sku] = qty
            snap = stored.snapshots.get((target, sku))
            positions.append({"target": target, "item": sku, "counted": qty,
                              "snapshot": None if snap is None else snap[0]})
    if not positions:
        raise CountError(f"none of the counted items is stocked at {location} in any target")
    for rel, values in per_file.items():
        write_counted(project.root / rel, location, values)
    first = sorted(per_file)[0]
    record_rel = (Path(first).parent / "counts" / f"{stored.count_id}.yaml").as_posix()
    write_record(project.root / record_rel, {
        "count": stored.count_id, "location": location, "counted_at": stored.started_at,
        "counted_by": stored.started_by, "note": stored.note, "finished_at": _iso(utcnow()),
        "positions": positions,
    })
    return sorted(per_file), record_rel


def count_plan(root: Path, store: Any | None, *, max_age_days: float = 7.0, allow_old: bool = False) -> CountPlan | None:
    """The counts recorded in the repository, with their snapshots from the state (the record's
    copy where the state has none) and whether each position's count was already applied."""
    records = read_records(Path(root))
    if not records:
        return None
    counts = []
    for rel, doc in records:
        count_id, location = str(doc["count"]), str(doc["location"])
        stored = load_count(store, count_id) if store is not None else None
        rows = []
        for p in doc["positions"]:
            snap = stored.snapshots.get((p["target"], p["item"])) if stored is not None else None
            # Without a state its journal cannot say whether the count was applied: no snapshot
            # then, so the position is adopted (a reset to the counted quantity), never doubled.
            snapshot = snap[0] if snap is not None else p.get("snapshot") if store is not None else None
            rows.append((p, snapshot, snap[1] if snap is not None else None))
        ids = [count_op_id(count_id, (p["target"], location, p["item"])) for p, _, _ in rows]
        done = applied_ops(store, ids) if store is not None else set()
        counts.append(CountInput(count_id, location, str(doc["counted_at"]), rel, tuple(
            CountedPosition(p["target"], p["item"], int(p["counted"]), snapshot, cost, op_id in done)
            for (p, snapshot, cost), op_id in zip(rows, ids))))
    return CountPlan(tuple(counts), timedelta(days=max_age_days), allow_old)
