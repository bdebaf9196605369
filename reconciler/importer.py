"""``reconciler import``: adopt a target's live stock as desired state.

Reads the live stock of one READABLE target through its connector, maps it back to canonical
SKUs through the catalog ids, and writes it into the location files (``stock/<location>.yaml``
in the repository format of docs/configuration.md), merging into existing files: other targets'
sections are kept, and in this target's section every imported SKU gets the live quantity.

Like ``terraform import``, it also records the imported positions as applied (B) in the state,
as one audited run, so that the next ``plan`` shows no changes: D = B = A. Without that every
imported position would plan as an "adopt" reset, however equal its numbers.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import yaml

from reconciler.config import Project, load_project, stock_files
from reconciler.errors import ConfigError, NotSupported, Problem, StalePlanError, StateError
from reconciler.model import SETTING_NAMES, Leg, OpKind, Operation, Plan, Record
from reconciler.workflow import Transports, open_connectors, open_store, who

IMPORT_LOCK_TTL_S = 300.0
IMPORT_BEGIN_ATTEMPTS = 3  # see _begin_import
OUTCOME_CHUNK = 50_000  # positions recorded as applied per state transaction


@dataclass
class ImportResult:
    """What an import wrote, for the CLI to render."""

    target: str
    files: dict[str, int] = field(default_factory=dict)  # relative path -> positions written
    zeroed: list[str] = field(default_factory=list)  # "<location>/<sku>": in the file, not held live
    new: int = 0  # positions the files did not hold before (e.g. SKUs mapped by `discover` since)
    skipped: list[str] = field(default_factory=list)  # warnings: positions not imported and why
    recorded: int = 0  # positions recorded as applied in the state
    run_plan_id: str | None = None

    def summary(self) -> str:
        lines = [f"Imported live stock of {self.target}:"]
        lines += [f"  {path}: {count} position(s)" for path, count in sorted(self.files.items())]
        if self.zeroed:
            lines.append(f"  {len(self.zeroed)} SKU(s) already in the files are not stocked live; written as 0: "
                         + ", ".join(self.zeroed))
        if self.new:
            lines.append(f"  {self.new} position(s) are new to the files (SKUs not managed here before).")
        lines += [f"  warning: {text}" for text in self.skipped]
        if self.run_plan_id:
            lines.append(f"Recorded {self.recorded} position(s) as applied in the state (run of {self.run_plan_id}): "
                         "adopted, B = live stock.")
        lines.append("Review the files, commit them, then `reconciler plan` should show no changes.")
        return "\n".join(lines)


def import_target(
    root: str | Path,
    target: str,
    *,
    location: str | None = None,
    out_dir: str = "stock",
    env: Mapping[str, str] | None = None,
    transports: Transports | None = None,
    record_state: bool = True,
    state: str | None = None,
    local_state: bool = False,
) -> ImportResult:
    """Read ``target``'s live stock and write it as desired state (and B). See the module doc.

    ``state``: the state given on the command line. ``local_state``: record into the local
    default state even in a repository whose CI keeps the state elsewhere (see
    :func:`ci_state_elsewhere`)."""
    project = load_project(root)
    if record_state and not local_state:
        _refuse_local_state_of_a_ci_repository(project, state, env)
    out = _out_dir(project, out_dir)
    locations = _locations(project, target, location)
    result = ImportResult(target)
    with ExitStack() as stack:
        # The lock is taken before anything is read or written: an apply of this target cannot
        # change its stock (or B) between the read and the record, and a second import waits.
        held = hold_import_lock(project, target, state, stack) if record_state else None
        conn = open_connectors(project, [target], env=env, transports=transports, stack=stack)[target]
        if not type(conn).capabilities.readable:
            raise NotSupported(
                f"target {target!r} ({project.target(target).kind}) has no API to read stock, so it cannot be imported.",
                hint="Write its stock files by hand (docs/configuration.md); only readable targets can be imported.",
            )
        live = conn.read_stock()
        per_location: dict[str, dict[str, Record]] = {loc: {} for loc in locations}
        for (loc, sku), record in sorted(live.items()):
            if loc not in per_location:
                continue
            if record.quantity < 0:
                result.skipped.append(f"{loc}/{sku}: live stock {record.quantity} is negative (oversold); not imported, "
                                      "write a desired quantity by hand")
                continue
            per_location[loc][sku] = record
        adopted: dict[tuple[str, str], Record] = {}
        for loc, records in per_location.items():
            adopted.update(((loc, sku), rec) for sku, rec in _write_location(project, out, target, loc, records, result).items())
        if held is not None and adopted:
            record_applied(held, target, adopted, result)
    return result


def hold_import_lock(project: Project, target: str, state: str | None, stack: ExitStack) -> tuple[Any, Any]:
    """Open the state and take ``target``'s lock until ``stack`` closes; (store, lock)."""
    store = open_store(project, state=state)
    stack.callback(store.close)
    # Only the imported target: applies of other targets may run meanwhile (as applies of
    # disjoint targets do); an apply or resolve touching this target excludes the import.
    lock = store.acquire_lock(who(), IMPORT_LOCK_TTL_S, [target])
    stack.callback(store.release_lock, lock.id)
    return store, lock


CI_FILES = (".github/workflows/*.yml", ".github/workflows/*.yaml", ".gitlab-ci.yml")
CI_STATE_MARKER = "reconciler-state.sh"  # the state script of docs/gitops.md: the state lives on its branch


def ci_state_elsewhere(project: Project) -> str | None:
    """The CI file that keeps this repository's state on its own branch, if any (relative path)."""
    for pattern in CI_FILES:
        for path in sorted(project.root.glob(pattern)):
            try:
                if CI_STATE_MARKER in path.read_text(encoding="utf-8", errors="replace"):
                    return path.relative_to(project.root).as_posix()
            except OSError:
                continue
    return None


def _refuse_local_state_of_a_ci_repository(project: Project, state: str | None, env: Mapping[str, str] | None) -> None:
    """Recording B into a local state that CI never reads makes CI's next plan adopt the same
    positions again; refuse unless the state was named (``--state``, $RECONCILER_STATE, a
    postgresql:// ``state:``) or ``--local-state`` says the local one is meant."""
    from reconciler.workflow import state_url

    if state or (os.environ if env is None else env).get("RECONCILER_STATE"):
        return
    url = state_url(project, env=env)
    if url.kind != "sqlite":
        return
    ci_file = ci_state_elsewhere(project)
    if ci_file is None:
        return
    raise StateError(
        f"refusing to record the import in the local state {url.redacted()}: this repository's CI keeps its state "
        f"elsewhere ({ci_file} runs {CI_STATE_MARKER}, which keeps it on the reconciler-state branch), so CI would "
        "never see it and its next plan would adopt these positions again; nothing was read or written",
        hint="Pass --no-state to write only the YAML (open a pull request; its plan adopts the positions), "
        "or --state S to record into a state you name, or --local-state if the local state is meant. "
        "See docs/gitops.md, 'Importing live stock'.",
    )


def _out_dir(project: Project, out_dir: str) -> Path:
    path = Path(out_dir)
    path = path if path.is_absolute() else project.root / path
    stock = (project.root / "stock").resolve()
    resolved = path.resolve()
    if resolved != stock and stock not in resolved.parents:
        raise ConfigError([Problem(
            f"--out-dir {out_dir!r} is outside the stock/ folder of the repository.",
            hint="plan only reads stock/**/*.yaml; import into stock/ or a folder below it.",
        )])
    return resolved


def _locations(project: Project, target: str, location: str | None) -> list[str]:
    mapped = [loc for loc, vid in project.target(target).locations.items() if vid]
    if location is None:
        return mapped
    if location not in mapped:
        raise ConfigError([Problem(
            f"target {target!r} has no vendor id for location {location!r}", "reconciler.yaml",
            hint=f"Locations of {target}: {', '.join(mapped) or 'none'}.",
        )])
    return [location]


def _entry(record: Record, existing: Any) -> Any:
    """A position as YAML: a bare quantity, or a mapping when it carries settings or already was
    one. Settings become the live ones (so that D = B = A); other fields (protect) are kept."""
    settings = record.settings.as_dict()
    if isinstance(existing, dict):
        kept = {k: v for k, v in existing.items() if k not in SETTING_NAMES and k != "quantity"}
        if kept or settings:
            return {"quantity": record.quantity, **settings, **kept}
    return {"quantity": record.quantity, **settings} if settings else record.quantity


def _write_location(project: Project, out: Path, target: str, loc: str, records: dict[str, Record],
                    result: ImportResult) -> dict[str, Record]:
    """Merge ``records`` into the file of ``loc``; returns every position now in the section."""
    path, data, header = _location_file(project, out, target, loc)
    stock = data.setdefault("stock", {})
    if not isinstance(stock, dict):
        raise ConfigError([Problem("'stock:' is not a mapping", _rel(project, path),
                                   hint="Fix the file (validate with `reconciler validate`) and import again.")])
    section = stock.get(target) if isinstance(stock.get(target), dict) else {}
    written: dict[str, Record] = {}
    new_section: dict[str, Any] = {}
    for sku, existing in section.items():
        # A SKU the file already manages but the vendor does not stock: live stock is 0.
        record = records.get(sku, Record(0))
        if sku not in records:
            result.zeroed.append(f"{loc}/{sku}")
        new_section[sku] = _entry(record, existing)
        written[sku] = record
    for sku, record in records.items():
        if sku not in new_section:
            new_section[sku] = _entry(record, None)
            written[sku] = record
            result.new += 1
    stock[target] = new_section
    _atomic_write(path, header + yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True))
    result.files[_rel(project, path)] = len(new_section)
    return written


def _location_file(project: Project, out: Path, target: str, loc: str) -> tuple[Path, dict[str, Any], str]:
    """The file that declares ``loc`` (preferring one with a ``target`` section), its data and its
    leading comment block; a new ``<out>/<loc>.yaml`` when none does."""
    declaring: list[tuple[Path, dict[str, Any], str]] = []
    for rel in stock_files(project.root):
        path = project.root / rel
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
        if isinstance(data, dict) and data.get("location") == loc:
            declaring.append((path, data, _leading_comments(text)))
    with_target = [d for d in declaring if isinstance(d[1].get("stock"), dict) and target in d[1]["stock"]]
    if len(with_target) > 1:
        names = ", ".join(_rel(project, d[0]) for d in with_target)
        raise ConfigError([Problem(
            f"location {loc!r} of target {target!r} is split over several files ({names})",
            hint="Import needs one file per target and location: merge the sections, or import another location.",
        )])
    if with_target:
        return with_target[0]
    if declaring:
        return declaring[0]
    path = out / f"{loc}.yaml"
    header = f"# Desired stock at {loc} (docs/configuration.md). Imported from {target} by `reconciler import`.\n"
    return path, {"location": loc, "stock": {}}, header


def _leading_comments(text: str) -> str:
    kept = []
    for line in text.splitlines(keepends=True):
        if not line.startswith("#"):
            break
        kept.append(line)
    return "".join(kept)


def _rel(project: Project, path: Path) -> str:
    try:
        return path.resolve().relative_to(project.root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ConfigError([Problem(f"cannot write {path}: {exc.strerror}", str(path))]) from exc


def record_applied(held: tuple[Any, Any], target: str, adopted: dict[tuple[str, str], Record], result: ImportResult) -> None:
    """Record the imported positions as B, as one run of an "import" plan (journaled and
    audited), under the lock of :func:`hold_import_lock`."""
    from reconciler.state.base import BaseUpdate

    store, _lock = held
    plan, ticket = _begin_import(store, target, adopted)
    rows = []
    for op in plan.operations:
        record = adopted[(op.location, op.item)]
        update = BaseUpdate((target, op.location, op.item), record.quantity, record.settings)
        rows.append((op, f'{{"import": true, "quantity": {record.quantity}}}', update))
    # In chunks, each one transaction, written in bulk (record_adopted): one transaction per
    # position took ~5 minutes for a chain of a million (init --from, docs/performance.md).
    for start in range(0, len(rows), OUTCOME_CHUNK):
        store.record_adopted(plan.plan_id, ticket.run_id, rows[start:start + OUTCOME_CHUNK],
                             "imported: live stock adopted as applied")
    store.finish_run(ticket.run_id, "imported", {"applied": len(rows)})
    result.recorded = len(adopted)
    result.run_plan_id = plan.plan_id


def _begin_import(store: Any, target: str, adopted: dict[tuple[str, str], Record]) -> tuple[Plan, Any]:
    """Build the import plan on the current serial and begin its run. With only ``target``
    locked, an apply of another target may move the serial between reading it and beginning;
    the import touches nothing of theirs, so it is rebuilt on the new serial and begun again."""
    attempt = 1
    while True:
        plan = _import_plan(target, adopted, store.lineage(), store.serial())
        try:
            ticket = store.begin_apply(plan, op_count=len(plan.operations), who=who(),
                                       parts={target: len(plan.operations)}, targets=[target])
            return plan, ticket
        except StalePlanError:
            if attempt >= IMPORT_BEGIN_ATTEMPTS:
                raise
            attempt += 1


def _import_plan(target: str, adopted: dict[tuple[str, str], Record], lineage: str, serial: int) -> Plan:
    ops = []
    for (loc, sku), record in sorted(adopted.items()):
        q = record.quantity
        op_id = hashlib.sha256(f"import|{target}|{loc}|{sku}|{q}|{lineage}|{serial}".encode()).hexdigest()[:16]
        leg = Leg(loc, q, None, q, 0, q)
        ops.append(Operation(op_id, OpKind.RESET, target, sku, (leg,), f"import: live stock {q} adopted as desired and applied",
                             settings_after=record.settings, write_mode="absolute"))
    digest = hashlib.sha256("".join(op.id for op in ops).encode()).hexdigest()[:12]
    return Plan(
        format_version=1, plan_id=f"import-{digest}", created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        git_commit=None, git_dirty=False, desired_digest="", desired_files={}, lineage=lineage, serial=serial,
        strategy_note="import", operations=ops,
    )
