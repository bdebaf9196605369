"""Reading a stock repository: every file, every check, every problem at once."""

from __future__ import annotations

import gc
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from reconciler.auth._config import auth_problems
from reconciler.config._kinds import KINDS
from reconciler.config._stock import CATALOG_FILE, CatalogItem, StockCollector, TargetInfo, parse_catalog, suggest
from reconciler.config._yaml import LineDict, parse, read_text
from reconciler.config.schema import CONFIG_FILE, RepoConfig, TargetConfig, parse_config
from reconciler.errors import Problem
from reconciler.model import DesiredState, gc_paused

STOCK_DIR = "stock"
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


@dataclass
class Loaded:
    """Everything read from a repository, valid or not (``problems`` says which)."""

    root: Path
    config: RepoConfig | None = None
    config_data: LineDict | None = None
    catalog: dict[str, CatalogItem] = field(default_factory=dict)
    stock_files: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    position_count: int = 0  # how many positions the location files declare (valid ones)
    _desired: DesiredState | None = field(default=None, repr=False)
    _build: Callable[[], DesiredState] | None = field(default=None, repr=False)

    @property
    def desired(self) -> DesiredState:
        """D. Its positions are built on first use: validate checks every one of them but never
        needs the objects (a million at 1M positions, ~0.6 s), plan does."""
        if self._desired is None:
            build, self._build = self._build, None
            self._desired = build() if build is not None else DesiredState(positions={})
        return self._desired

    @desired.setter
    def desired(self, value: DesiredState) -> None:
        self._desired, self._build = value, None


# From this many bytes of location files on (~200k positions), load freezes what it built.
FREEZE_FROM_BYTES = 4_000_000


def load(root: str | Path, *, stock: bool = True) -> Loaded:
    """Read and check the repository at ``root``; never raises for bad input. ``stock=False``:
    the location files are only hashed, not parsed (D is then empty but its digests are D's;
    reconciler/_plan_memo.py plans from a memo when they equal the last full plan's)."""
    path = Path(root)
    files = stock_files(path) if path.is_dir() else []
    if not stock:
        return _load(path, files, stock=False)
    big = _total_bytes(path, files) >= FREEZE_FROM_BYTES
    if big:
        gc.collect()  # garbage cycles made before load are freed now, not frozen with it
    with gc_paused():
        out = _load(path, files, big)
        if big:
            # Load allocates ~3 objects the collector tracks per position (position, source,
            # key), all acyclic and alive as long as the run. With the collector paused they pile
            # up in the young generation, and the first collection after load would walk them
            # all (~0.4 s per million positions) to find no garbage, and full collections later
            # again. gc.freeze() moves them to the permanent generation in O(1); reference
            # counting still frees them. Trade-off: a garbage cycle made during load (under the
            # pause; bad input's exceptions, say) is never collected; a process loads big
            # repositories a few times at most.
            gc.freeze()
    return out


def _total_bytes(root: Path, files: list[str]) -> int:
    total = 0
    for rel in files:
        try:
            total += (root / rel).stat().st_size
        except OSError:
            continue  # _read reports it
    return total


def _load(root: Path, files: list[str], big: bool = False, stock: bool = True) -> Loaded:
    out = Loaded(root)
    if not out.root.is_dir():
        out.problems.append(Problem(f"the stock repository folder {str(root)!r} does not exist", None, None,
                                    "Run reconciler inside the repository or pass -C <folder>."))
        return out
    digests: dict[str, str] = {}
    data = _read(out.root, CONFIG_FILE, digests, out.problems)
    if isinstance(data, LineDict):
        out.config_data = data
    if data is not None:
        out.config, problems = parse_config(data)
        out.problems += problems
    targets = target_infos(out.config, out.config_data)
    if out.config is not None:
        out.problems += check_targets(out.config, out.config_data)
    catalog_data = _read(out.root, CATALOG_FILE, digests, out.problems)
    broken: frozenset[str] = frozenset()
    if catalog_data is not None:
        before = len(out.problems)
        out.catalog, problems = parse_catalog(catalog_data, targets if out.config_data is not None else None)
        out.problems += problems
        # A catalog that is not a mapping at all (a bare word, a list) has no items to mark broken.
        if len(out.problems) > before and isinstance(catalog_data, Mapping) and isinstance(catalog_data.get("items"), Mapping):
            broken = frozenset(catalog_data["items"]) - set(out.catalog)
    collector = StockCollector(targets, _locations(out.config, out.config_data), out.catalog,
                               out.config.defaults.strategy if out.config else "merge", broken_skus=broken,
                               targets_known=out.config_data is not None,
                               catalog_known=isinstance(catalog_data, LineDict) and isinstance(catalog_data.get("items"), LineDict))
    for rel in files:
        out.stock_files.append(rel)
        if not stock:
            try:
                digests[rel] = hashlib.sha256((out.root / rel).read_bytes()).hexdigest()
            except OSError:
                digests[rel] = ""  # unreadable: not the digest of any full load
            continue
        data = _read(out.root, rel, digests, out.problems)
        if data is not None:
            collector.add_file(data, rel)
    out.problems += collector.problems
    out.position_count = collector.position_count
    out._build = _desired_builder(collector, digests, big)
    return out


def _desired_builder(collector: StockCollector, digests: dict[str, str], big: bool) -> Callable[[], DesiredState]:
    file_digests, digest = dict(sorted(digests.items())), combined_digest(digests)

    def build() -> DesiredState:
        with gc_paused():
            positions = collector.positions
            if big:
                gc.freeze()  # as load() does, for the objects built now (see there)
        return DesiredState(positions, collector.declared, file_digests, digest)

    return build


def stock_files(root: Path) -> list[str]:
    """Location files: stock/**/*.yaml|yml except the catalog, hidden paths and counts/ folders, sorted."""
    folder = root / STOCK_DIR
    if not folder.is_dir():
        return []
    found = []
    for path in folder.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if rel == CATALOG_FILE or path.suffix not in (".yaml", ".yml"):
            continue
        if any(part.startswith(".") for part in path.relative_to(folder).parts) or path.is_dir():
            continue
        if "counts" in path.relative_to(folder).parts[:-1]:
            continue  # stock count records (docs/counts.md), not location files
        found.append(rel)
    return sorted(found)


def combined_digest(digests: Mapping[str, str]) -> str:
    """sha256 over the sorted "path NUL digest LF" lines of every file."""
    h = hashlib.sha256()
    for rel, digest in sorted(digests.items()):
        h.update(f"{rel}\0{digest}\n".encode())
    return h.hexdigest()


def _read(root: Path, rel: str, digests: dict[str, str], problems: list[Problem]) -> Any:
    path = root / rel
    if not path.exists() and not path.is_symlink():
        what = "the repository's configuration" if rel == CONFIG_FILE else "the catalog of SKUs"
        problems.append(Problem(f"{rel} not found ({what})", rel, None,
                                f"Create {rel} (see docs/configuration.md), or pass -C with the repository folder."))
        return None
    data, text, read_problems = read_text(path, rel)
    if data is not None:
        digests[rel] = hashlib.sha256(data).hexdigest()
    if text is None:
        problems += read_problems
        return None
    value, parse_problems = parse(text, rel)
    problems += parse_problems
    return value


def _locations(config: RepoConfig | None, data: LineDict | None) -> Mapping[str, Any]:
    if config is not None:
        return config.locations
    raw = data.get("locations") if data is not None else None
    return raw if isinstance(raw, Mapping) else {}


def target_infos(config: RepoConfig | None, data: LineDict | None) -> dict[str, TargetInfo]:
    """Targets for stock validation; from the raw YAML when reconciler.yaml itself is invalid,
    so that stock problems are still reported in the same run."""
    if config is not None:
        return {name: TargetInfo(name, t.kind, KINDS[t.kind], t.locations, t.strategy) for name, t in config.targets.items()}
    raw = data.get("targets") if data is not None else None
    infos: dict[str, TargetInfo] = {}
    for name, target in (raw.items() if isinstance(raw, Mapping) else ()):
        target = target if isinstance(target, Mapping) else {}
        kind = target.get("kind")
        rule = KINDS.get(kind) if isinstance(kind, str) else None
        locations = target.get("locations")
        strategy = target.get("strategy") if target.get("strategy") in ("merge", "replace") else None
        infos[name] = TargetInfo(name, kind if rule else None, rule, locations if isinstance(locations, Mapping) else {}, strategy)
    return infos


def check_targets(config: RepoConfig, data: LineDict | None) -> list[Problem]:
    """Checks across fields of reconciler.yaml that the schema alone cannot express."""
    problems: list[Problem] = []
    raw_targets = data.get("targets") if data is not None else None
    for name, target in config.targets.items():
        raw = raw_targets.get(name) if isinstance(raw_targets, LineDict) else None
        line_of = raw.line_of if isinstance(raw, LineDict) else (lambda key: None)
        problems += _check_locations(name, target, config, raw)
        problems += _check_endpoint(name, target, line_of)
        problems += auth_problems(name, target.kind, target.auth, line_of("auth"))  # reconciler/auth
        for option in KINDS[target.kind].required_options:
            if not isinstance(target.options.get(option), str) or not target.options[option].strip():
                problems.append(Problem(f"target {name!r} ({target.kind}) needs options.{option}", CONFIG_FILE,
                                        line_of("options") or line_of("kind"),
                                        f"Add `options: {{{', '.join(o + ': <' + o + '>' for o in KINDS[target.kind].required_options)}}}` to the target."))
        if KINDS[target.kind].target_check is not None:
            problems += KINDS[target.kind].target_check(name, target, raw)
    return problems


def _check_locations(name: str, target: TargetConfig, config: RepoConfig, raw: Any) -> list[Problem]:
    problems = []
    raw_locations = raw.get("locations") if isinstance(raw, LineDict) else None
    where = raw_locations.line_of if isinstance(raw_locations, LineDict) else (lambda key: None)
    for location, vendor_id in target.locations.items():
        if location not in config.locations:
            problems.append(Problem(f"target {name!r} maps unknown location {location!r}", CONFIG_FILE, where(location),
                                    suggest(location, config.locations) + "Declare it under locations: at the top level first."))
        elif vendor_id is None or not vendor_id.strip():
            problems.append(Problem(f"target {name!r} has no vendor id for location {location!r}", CONFIG_FILE, where(location),
                                    f"Write the {target.kind} location id after `{location}:` (quoted)."))
    if KINDS[target.kind].single_location and len(target.locations) > 1:
        line = raw.line_of("locations") if isinstance(raw, LineDict) else None
        problems.append(Problem(f"target {name!r} ({target.kind}) has one stock location, but {len(target.locations)} are mapped",
                                CONFIG_FILE, line, "Map exactly one canonical location to it; use another target for another account."))
    return problems


def _check_endpoint(name: str, target: TargetConfig, line_of: Any) -> list[Problem]:
    if not KINDS[target.kind].needs_endpoint:
        return []
    problems = []
    if target.url is None:
        problems.append(Problem(f"target {name!r} has no url", CONFIG_FILE, line_of("kind"),
                                "Add `url: https://...` with the vendor's base URL."))
    else:
        parts = urlsplit(target.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(Problem(f"url of target {name!r} is not an http(s) address", CONFIG_FILE, line_of("url"),
                                    "Write the vendor's base URL, e.g. https://example.retail.lightspeed.app."))
        elif parts.scheme == "http" and parts.hostname not in _LOOPBACK:
            problems.append(Problem(f"url of target {name!r} uses plain http to a non-loopback host", CONFIG_FILE, line_of("url"),
                                    "Use https:// (plain http is only allowed for 127.0.0.1/localhost sandboxes)."))
    problems += _check_credentials_env(name, target.credentials_env, line_of)
    return problems


def _check_credentials_env(name: str, var: str | None, line_of: Any) -> list[Problem]:
    # The value is never echoed: if it is a token, printing it would leak it into CI logs.
    hint = f"Write the NAME of an environment variable that holds the token, e.g. RECONCILER_{name.upper().replace('-', '_')}_TOKEN."
    if var is None:
        return [Problem(f"target {name!r} has no credentials_env", CONFIG_FILE, line_of("kind"), hint)]
    if _ENV_NAME.fullmatch(var) and not (len(var) >= 20 and "_" not in var):
        return []
    if looks_like_token(var):
        return [Problem(f"credentials_env of target {name!r} looks like a literal token, not the name of an environment variable",
                        CONFIG_FILE, line_of("credentials_env"), hint + " Never commit tokens; revoke this one if it is real.")]
    return [Problem(f"credentials_env of target {name!r} is not an environment variable name (capitals, digits and _ only)",
                    CONFIG_FILE, line_of("credentials_env"), hint)]


def looks_like_token(value: str) -> bool:
    """Long, or mixing lower case with digits, or holding characters no variable name has."""
    if len(value) >= 20:
        return True
    has_digit = any(c.isdigit() for c in value)
    return (has_digit and any(c.islower() for c in value)) or bool(re.search(r"[^A-Za-z0-9_]", value))
