"""``reconciler init --from KIND``: a complete stock repository from a live account.

Reads the account's locations and catalogue (``Connector.locations()`` / ``catalogue()``),
writes reconciler.yaml, stock/catalog.yaml, one desired file per location holding today's live
stock, .gitignore and the GitHub workflows, and records those positions as applied (B = live)
under the state lock, so the first ``plan`` shows no changes. A new repository is written as
plain text in one pass (a million positions in seconds); ``discover`` edits existing files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from reconciler.config import load_project
from reconciler.config._stock import CATALOG_FILE
from reconciler.config.schema import CONFIG_FILE
from reconciler.connectors.base import Secret, TargetContext, connector_class
from reconciler.discover._match import Row, Status, match_items, match_locations, unkeyed
from reconciler.errors import ConfigError, CredentialsError, Problem
from reconciler.importer import ImportResult, _atomic_write, _entry, hold_import_lock, record_applied
from reconciler.model import Record
from reconciler.workflow import Transports, open_connectors

# The shipped workflows and state script (docs/gitops.md), found next to the package in a
# checkout or an sdist; a wheel does not carry them (see docs/onboarding.md).
SHIPPED = Path(__file__).resolve().parents[2] / ".github"
CI_FILES = ("workflows/reconciler-plan.yml", "workflows/reconciler-apply.yml", "workflows/reconciler-drift.yml",
            "scripts/reconciler-state.sh")
GITIGNORE = """\
# the local state and saved plans never go in git (CI keeps the state on the reconciler-state branch)
.reconciler/
plans/*
!plans/.gitkeep
"""
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-/]*$")
_RESERVED = {"y", "n", "yes", "no", "true", "false", "on", "off", "null", "nan", "inf"}
Progress = Callable[[str, int], None]  # (what is done now, units of work it took)


@dataclass
class InitResult:
    root: Path
    target: str
    locations: list[Row]
    items: list[Row]
    vendor_items: int
    unkeyed: int
    files: list[str] = field(default_factory=list)
    imported: ImportResult | None = None
    seconds: float = 0.0

    def summary(self) -> str:
        added = [r for r in self.items if r.status is Status.ADDED]
        skipped = [r for r in self.items if r.status is Status.AMBIGUOUS]
        lines = [f"Created the stock repository {self.root} from {self.target} in {self.seconds:.1f} s:",
                 f"  {len(self.locations)} location(s): " + ", ".join(f"{r.key} ({r.note})" for r in self.locations),
                 f"  {len(added):,} catalogue item(s) of {self.vendor_items:,} listed"]
        if skipped:
            lines.append(f"  {len(skipped):,} SKU(s) shared by several vendor items were left out (never guessed): "
                         + ", ".join(r.key for r in skipped[:10]) + (" ..." if len(skipped) > 10 else ""))
        if self.unkeyed:
            lines.append(f"  {self.unkeyed:,} vendor item(s) have no SKU and were left out; map them by hand.")
        lines += [f"  wrote {path}" for path in self.files]
        if self.imported is not None:
            positions = sum(self.imported.files.values())
            lines.append(f"  {positions:,} position(s) of live stock in {len(self.imported.files)} file(s)")
            if self.imported.run_plan_id:
                lines.append(f"Adopted {self.imported.recorded:,} position(s) as applied (B = live stock) in the state "
                             f"(run of {self.imported.run_plan_id}): the first `reconciler plan` shows no changes.")
        lines.append("Next: docs/onboarding.md (git init, push, `bash .github/scripts/reconciler-state.sh seed`, secrets).")
        return "\n".join(lines)


def _credential(var: str, env: Mapping[str, str]) -> Secret:
    value = env.get(var)
    if not value:
        raise CredentialsError([Problem(f"the token must be in the environment variable {var}, which is not set",
                                        hint=f"export {var}=... (the vendor's personal token or API key; docs/auth.md), "
                                             "or name another variable with --credentials-env.")])
    return Secret(value)


def parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; values read as YAML scalars (``10000`` is a number, ``v2`` a string)."""
    import yaml

    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError([Problem(f"--option {pair!r} is not KEY=VALUE", hint="e.g. --option page_size=10000")])
        options[key.strip()] = yaml.safe_load(value) if value.strip() else ""
    return options


def default_env_name(name: str) -> str:
    return "RECONCILER_" + re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_") + "_TOKEN"


def init_from(
    directory: str | Path, kind: str, url: str, *, name: str | None = None, credentials_env: str | None = None,
    record_state: bool = True, state: str | None = None, progress: bool | Progress = False,
    options: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None,
    transports: Transports | None = None,
) -> InitResult:
    started = time.monotonic()
    root = Path(directory)
    if (root / CONFIG_FILE).exists():
        raise ConfigError([Problem(f"{root / CONFIG_FILE} exists already: init makes a new repository", str(root / CONFIG_FILE),
                                   hint="In an existing repository use `reconciler discover TARGET --add --write`, "
                                        "then `reconciler import --target TARGET`.")])
    cls = connector_class(kind)
    name = name or f"{kind}-main"
    var = credentials_env or default_env_name(name)
    environ = os.environ if env is None else env
    with _Bar(progress) as bar:
        ctx = TargetContext(name, kind, url.rstrip("/"), _credential(var, environ), {}, {}, options=dict(options or {}))
        with ExitStack() as stack:
            conn = cls(ctx, transport=(transports or {}).get(name))
            stack.callback(conn.close)
            vendor_locations = conn.locations()
            bar.step(f"listed {len(vendor_locations)} location(s)")
            items = conn.catalogue()
            bar.step(f"listed {len(items):,} catalogue item(s)")
        loc_rows = match_locations({}, vendor_locations, add=True)
        item_rows = [r for r in match_items({}, items, add=True) if r.status in (Status.ADDED, Status.AMBIGUOUS)]
        result = InitResult(root, name, loc_rows, item_rows, len(items), unkeyed(items))
        before = set(root.rglob("*")) if root.exists() else None
        root.mkdir(parents=True, exist_ok=True)
        try:
            result.files += _write_scaffold(root, kind, url, name, var, loc_rows, item_rows, options or {})
            bar.step("wrote reconciler.yaml and the catalogue")
            result.imported = _import(root, name, state, record_state, env, transports, bar)
        except BaseException:
            _undo(root, before)  # nothing half-made: a second try starts from the same folder
            raise
    result.seconds = time.monotonic() - started
    return result


def _undo(root: Path, before: set[Path] | None) -> None:
    """Remove what init made: the folder if it was new, else every path it added."""
    if before is None:
        shutil.rmtree(root, ignore_errors=True)
        return
    for path in sorted(set(root.rglob("*")) - before, key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _write_scaffold(root: Path, kind: str, url: str, name: str, var: str, loc_rows: list[Row],
                    item_rows: list[Row], options: Mapping[str, Any]) -> list[str]:
    locations = "".join(f"  {_key(r.key)}: {{description: {json.dumps(r.note)}}}\n" for r in loc_rows)
    mapped = "".join(f"      {_key(r.key)}: {json.dumps(r.found)}\n" for r in loc_rows)
    locations = locations or "  {}\n"
    config = (f"# Stock repository of {name}, created by `reconciler init --from {kind}` on {date.today()}.\n"
              "# The format is documented in docs/configuration.md.\n"
              "version: 1\nstate: .reconciler/state.db          # SQLite state (B); $RECONCILER_STATE overrides it\n\n"
              "defaults:\n  strategy: merge                    # sales made since the last apply survive\n\n"
              f"locations:\n{locations}\n"
              f"targets:\n  {name}:\n    kind: {kind}\n    url: {url}\n    credentials_env: {var}\n"
              + (f"    options: {json.dumps(dict(options))}\n" if options else "") +
              f"    locations:                       # canonical name -> the vendor's location id\n{mapped}")
    files = {CONFIG_FILE: config, CATALOG_FILE: _catalog(name, kind, item_rows), ".gitignore": GITIGNORE,
             "plans/.gitkeep": ""}
    for rel, text in files.items():
        _atomic_write(root / rel, text)
    copied = [rel for rel in CI_FILES if (SHIPPED / rel).exists()]
    readable = connector_class(kind).reads_with(options)
    for rel in copied:
        (root / ".github" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(SHIPPED / rel, root / ".github" / rel)
        if rel.startswith("workflows/"):
            path = root / ".github" / rel
            path.write_text(workflow_secrets(path.read_text(encoding="utf-8"), var, readable), encoding="utf-8")
    return [*files, *(f".github/{rel}" for rel in copied)]


_SECRET_LINE = re.compile(r"^(?P<indent>[ ]+)RECONCILER_[A-Z0-9_]+: \$\{\{ secrets\.RECONCILER_[A-Z0-9_]+? \}\}\n", re.M)


def workflow_secrets(text: str, var: str, readable: bool) -> str:
    """The shipped workflow's credential lines (the example's five targets) replaced by this
    target's: the write secret in the apply job, ``<var>_READONLY`` in plan and drift (only
    for a readable target; docs/gitops.md section 2)."""
    lines = list(_SECRET_LINE.finditer(text))
    if not lines:
        return text
    first = lines[0]
    readonly = "_READONLY }}" in first.group(0)
    mine = "" if readonly and not readable else (
        f"{first['indent']}{var}: ${{{{ secrets.{var}{'_READONLY' if readonly else ''} }}}}\n")
    return text[:first.start()] + mine + _SECRET_LINE.sub("", text[first.end():])


def _catalog(name: str, kind: str, rows: list[Row]) -> str:
    out = [f"# Canonical SKUs and their ids in {name} ({kind}), from `reconciler init --from`.\n",
           "# Map another target with `reconciler discover TARGET --write` (docs/onboarding.md).\n", "items:\n"]
    for row in rows:
        if row.status is not Status.ADDED:
            continue
        found = row.found
        value = ("{" + ", ".join(f"{k}: {json.dumps(str(v))}" for k, v in found.items()) + "}"
                 if isinstance(found, Mapping) else json.dumps(str(found)))
        out.append(f"  {_key(row.key)}:\n")
        if row.note:
            out.append(f"    name: {json.dumps(row.note)}\n")
        out.append(f"    ids: {{{name}: {value}}}\n")
    if len(out) == 3:
        out[-1] = "items: {}\n"
    return "".join(out)


def _key(text: str) -> str:
    """A mapping key as YAML: plain when it reads back as the same string, else quoted."""
    return text if _PLAIN.match(text) and text.lower() not in _RESERVED else json.dumps(text)


def _import(root: Path, target: str, state: str | None, record_state: bool, env: Mapping[str, str] | None,
            transports: Transports | None, bar: "_Bar") -> ImportResult:
    """Today's live stock into one new file per location, and B, under the target's lock."""
    project = load_project(root)
    result = ImportResult(target)
    with ExitStack() as stack:
        held = hold_import_lock(project, target, state, stack) if record_state else None
        conn = open_connectors(project, [target], env=env, transports=transports, stack=stack)[target]
        live = conn.read_stock()
        bar.step(f"read {len(live):,} live position(s)")
        per_location: dict[str, list[tuple[str, Record]]] = {loc: [] for loc in project.target(target).locations}
        for (loc, sku), record in live.items():
            if record.quantity < 0:
                result.skipped.append(f"{loc}/{sku}: live stock {record.quantity} is negative (oversold); not imported")
            elif loc in per_location:
                per_location[loc].append((sku, record))
        adopted: dict[tuple[str, str], Record] = {}
        for loc, records in per_location.items():
            records.sort()
            rel = f"stock/{loc}.yaml"
            _atomic_write(root / rel, _location_text(target, loc, records))
            result.files[rel] = len(records)
            adopted.update(((loc, sku), rec) for sku, rec in records)
        bar.step(f"wrote {len(per_location)} location file(s)")
        if held is not None and adopted:
            record_applied(held, target, adopted, result)
            bar.step(f"recorded {len(adopted):,} position(s) as applied")
    return result


def _location_text(target: str, loc: str, records: list[tuple[str, Record]]) -> str:
    lines = [f"# Desired stock at {loc}: today's live stock in {target}, from `reconciler init --from`.\n",
             f"location: {_key(loc)}\nstock:\n  {target}:\n" if records else f"location: {_key(loc)}\nstock: {{}}\n"]
    for sku, record in records:
        entry = _entry(record, None)
        text = str(entry) if isinstance(entry, int) else "{" + ", ".join(f"{k}: {json.dumps(v)}" for k, v in entry.items()) + "}"
        lines.append(f"    {_key(sku)}: {text}\n")
    return "".join(lines)


class _Bar:
    """A progress bar on stderr (rich) over init's stages; silent unless asked."""

    STAGES = 6

    def __init__(self, progress: bool | Progress) -> None:
        self.callback = progress if callable(progress) else None
        self.rich: Any = None
        if progress is True:
            from rich.console import Console
            from rich.progress import BarColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn

            self.rich = RichProgress(TextColumn("init --from"), BarColumn(), TextColumn("{task.description}"),
                                     TimeElapsedColumn(), console=Console(stderr=True))
        self.task: Any = None

    def __enter__(self) -> "_Bar":
        if self.rich is not None:
            self.rich.start()
            self.task = self.rich.add_task("reading the account", total=self.STAGES)
        return self

    def step(self, what: str) -> None:
        if self.rich is not None:
            self.rich.update(self.task, advance=1, description=what)
        if self.callback is not None:
            self.callback(what, 1)

    def __exit__(self, *exc: object) -> None:
        if self.rich is not None:
            self.rich.stop()
