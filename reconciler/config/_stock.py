"""The catalog (stock/catalog.yaml) and the location files (stock/**/*.yaml).

Checked by hand rather than with pydantic: a location file may hold hundreds of thousands of
positions, and the per-position work here is a handful of dict lookups and type checks.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, Iterable, Mapping, Sequence

from reconciler.config._kinds import BOOL_SETTINGS, INT_SETTINGS, ItemId, KindRule, settings_owner
from reconciler.config._yaml import LineDict
from reconciler.config.schema import unknown_hint
from reconciler.errors import Problem
from reconciler.model import (
    MAX_QUANTITY,
    NO_SETTINGS,
    SETTING_NAMES,
    DesiredPosition,
    PositionKey,
    Settings,
    SourceRef,
    Strategy,
    new_sourced_position,
)

CATALOG_FILE = "stock/catalog.yaml"
CATALOG_FIELDS = ("items",)
ITEM_FIELDS = ("name", "protect", "ids")
FILE_FIELDS = ("location", "strategy", "stock")
POSITION_FIELDS = ("quantity", "protect", *SETTING_NAMES)
STRATEGIES = ("merge", "replace")
# difflib is O(n) per lookup; past this many names a suggestion costs more than it helps.
_SUGGEST_LIMIT = 20_000


@dataclass(frozen=True, slots=True)
class CatalogItem:
    """One canonical SKU and its id in each target that holds it."""

    sku: str
    ids: Mapping[str, ItemId]
    name: str | None = None
    protect: bool = False
    line: int = 0
    # targets whose id is written but malformed (reported in the catalog, not again per position)
    broken_ids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class TargetInfo:
    """What stock validation needs to know about a target (from reconciler.yaml)."""

    name: str
    kind: str | None
    rule: KindRule | None
    locations: Mapping[str, str | None]
    strategy: Strategy | None = None


def suggest(name: str, choices: Iterable[str]) -> str:
    """A "Did you mean X? " prefix for a close match, else nothing."""
    pool = list(choices)
    close = difflib.get_close_matches(name, pool, n=1, cutoff=0.6) if len(pool) <= _SUGGEST_LIMIT else []
    return f"Did you mean {close[0]!r}? " if close else ""


def describe(value: Any) -> str:
    """A value as the user wrote it, for 'must be X, not Y' messages."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the text {value!r}"
    if value is None:
        return "nothing"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def describe_id(value: Any) -> str:
    """Like describe, but a mapping says which of its fields is off: "not a mapping" alone
    leaves the user guessing when they wrote a mapping with an unquoted number in it."""
    if not isinstance(value, Mapping):
        return describe(value)
    odd = [f"{key}: {describe(v)}" for key, v in value.items() if not isinstance(v, str)]
    return f"a mapping with {', '.join(odd)}" if odd else "a mapping"


def check_fields(data: LineDict, valid: tuple[str, ...], where: str, rel: str, out: list[Problem]) -> None:
    for key in data:
        if key not in valid:
            out.append(Problem(f"unknown field {key!r} in {where}", rel, data.line_of(key), unknown_hint(key, list(valid))))


# --- catalog ---------------------------------------------------------------------------------


def parse_catalog(data: Any, targets: Mapping[str, TargetInfo] | None,
                  rel: str = CATALOG_FILE) -> tuple[dict[str, CatalogItem], list[Problem]]:
    """SKU -> CatalogItem, with ids normalised per target kind. ``targets`` is None when
    reconciler.yaml could not be read: ids are then not checked (every target would look unknown)."""
    problems: list[Problem] = []
    if not isinstance(data, LineDict):
        return {}, [Problem("the catalog must be a mapping with an items: section", rel, getattr(data, "line", 1),
                            "Write `items:` followed by one entry per SKU; see docs/configuration.md.")]
    check_fields(data, CATALOG_FIELDS, "the catalog", rel, problems)
    items = data.get("items")
    if not isinstance(items, LineDict):
        line = data.line_of("items") if "items" in data else data.line
        return {}, problems + [Problem("the catalog's items: must be a mapping of SKU -> ids", rel, line,
                                       "Write one entry per SKU under items:, e.g. `TSHIRT-RED-M: {ids: {xs-main: \"<id>\"}}`.")]
    catalog: dict[str, CatalogItem] = {}
    for sku, entry in items.items():
        item = _catalog_item(sku, entry, items.line_of(sku), targets, rel, problems)
        if item is not None:
            catalog[sku] = item
    return catalog, problems


def _catalog_item(sku: str, entry: Any, line: int, targets: Mapping[str, TargetInfo] | None, rel: str,
                  problems: list[Problem]) -> CatalogItem | None:
    if entry is None:
        entry = LineDict(line)
    if not isinstance(entry, LineDict):
        problems.append(Problem(f"catalog entry {sku!r} must be a mapping (name, protect, ids), not {describe(entry)}",
                                rel, line, "Write e.g. `ids: {xs-main: \"<product id>\"}` under the SKU."))
        return None
    check_fields(entry, ITEM_FIELDS, f"catalog entry {sku!r}", rel, problems)
    name, protect = entry.get("name"), entry.get("protect", False)
    if name is not None and not isinstance(name, str):
        problems.append(Problem(f"name of {sku!r} must be text, not {describe(name)}", rel, entry.line_of("name"),
                                "Quote the name."))
        name = None
    if not isinstance(protect, bool):
        problems.append(Problem(f"protect of {sku!r} must be true or false, not {describe(protect)}", rel,
                                entry.line_of("protect"), "Write protect: true or protect: false."))
        protect = False
    ids = _item_ids(sku, entry.get("ids"), entry, targets, rel, problems)
    raw_ids = entry.get("ids")
    broken = frozenset(raw_ids) - set(ids) if isinstance(raw_ids, Mapping) else frozenset()
    return CatalogItem(sku, ids, name, protect, line, broken)


def _item_ids(sku: str, raw: Any, entry: LineDict, targets: Mapping[str, TargetInfo] | None, rel: str,
              problems: list[Problem]) -> dict[str, ItemId]:
    if raw is None or targets is None:
        return {}
    if not isinstance(raw, LineDict):
        problems.append(Problem(f"ids of {sku!r} must be a mapping of target -> id, not {describe(raw)}", rel,
                                entry.line_of("ids"), "Write e.g. `ids: {xs-main: \"<product id>\"}`."))
        return {}
    ids: dict[str, ItemId] = {}
    for target, value in raw.items():
        line = raw.line_of(target)
        info = targets.get(target)
        if info is None:
            problems.append(Problem(f"unknown target {target!r} in the ids of {sku!r}", rel, line,
                                    suggest(target, targets) + "Targets are defined under targets: in reconciler.yaml."))
            continue
        if info.rule is None:
            continue  # the kind itself is invalid; reconciler.yaml's problem says so
        normalised, shape = info.rule.id_check(value)
        if normalised is None:
            problems.append(Problem(f"the id of {sku!r} in target {target!r} must be {shape} ({info.kind} ids), not {describe_id(value)}",
                                    rel, line, "Fix the id; see 'Item ids by kind' in docs/configuration.md."))
            continue
        ids[target] = normalised
    return ids


# Built by the model's fast constructors (every field positionally): see reconciler.model.
_new_position = new_sourced_position
_INT_ONLY = frozenset({int})  # the types of a section's values when all are plain counts (bool is its own type)


@dataclass(slots=True)
class _Section:
    """A checked location-file section whose positions are not built yet (as columns)."""

    target: str
    location: str
    items: list[str]  # the catalog's SKU strings
    values: list[int]
    strategy: Strategy
    protected: frozenset[str]  # the target's SKUs flagged protect: true
    rel: str
    lines: Sequence[int]


# --- location files ----------------------------------------------------------------------------


@dataclass
class StockCollector:
    """Accumulates positions from every location file, detecting cross-file duplicates."""

    targets: Mapping[str, TargetInfo]
    locations: Mapping[str, Any]
    catalog: Mapping[str, CatalogItem]
    default_strategy: Strategy
    config_file: str = "reconciler.yaml"
    declared: dict[tuple[str, str], str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    # SKUs whose catalog entry failed to parse: reported there, not again per position
    broken_skus: frozenset[str] = frozenset()
    # False when reconciler.yaml or the catalog could not be read at all: then every target,
    # location or SKU would look unknown, and saying so for each position is only noise.
    targets_known: bool = True
    catalog_known: bool = True
    _known: dict[str, dict[str, tuple[str, bool]]] = field(default_factory=dict, repr=False)
    _skus: dict[str, tuple[dict[str, str], frozenset[str]]] = field(default_factory=dict, repr=False)
    # Positions built so far, and the sections checked but not built yet (see _positions).
    _built: dict[PositionKey, DesiredPosition] = field(default_factory=dict, init=False, repr=False)
    _pending: list[_Section] = field(default_factory=list, init=False, repr=False)
    _pending_count: int = field(default=0, init=False, repr=False)

    @property
    def positions(self) -> dict[PositionKey, DesiredPosition]:
        """Every position collected so far, in file order (builds the sections still pending)."""
        if self._pending:
            self._build_pending()
        return self._built

    @property
    def position_count(self) -> int:
        """How many positions were collected, without building any."""
        return len(self._built) + self._pending_count

    def add_file(self, data: Any, rel: str) -> None:
        if not isinstance(data, LineDict):
            self._problem(rel, getattr(data, "line", 1), f"a location file must be a mapping (location, strategy, stock), not {describe(data)}",
                          "Start the file with `location: <name>` and `stock:`; see docs/configuration.md.")
            return
        check_fields(data, FILE_FIELDS, "a location file", rel, self.problems)
        location = self._location(data, rel)
        strategy = self._file_strategy(data, rel)
        stock = data.get("stock")
        if "stock" not in data:
            self._problem(rel, data.line, "missing 'stock:' section",
                          "Add `stock:` with one section per target, e.g. `stock: {xs-main: {SKU: 12}}`.")
            return
        if not isinstance(stock, LineDict):
            self._problem(rel, data.line_of("stock"), f"'stock:' must be a mapping of target -> items, not {describe(stock)}",
                          "Write one section per target under stock:, e.g. `xs-main: {SKU: 12}`.")
            return
        if location is None:
            return
        for target, section in stock.items():
            self._section(target, section, stock.line_of(target), location, strategy, rel)

    def _location(self, data: LineDict, rel: str) -> str | None:
        location = data.get("location")
        if "location" not in data:
            self._problem(rel, data.line, "missing 'location:' (which location this file describes)",
                          "Add e.g. `location: oslo` at the top of the file.")
            return None
        if not isinstance(location, str):
            self._problem(rel, data.line_of("location"), f"location must be a location name, not {describe(location)}",
                          "Write e.g. `location: oslo`.")
            return None
        if location not in self.locations:
            if not self.targets_known:
                return None
            self._problem(rel, data.line_of("location"), f"unknown location {location!r}",
                          suggest(location, self.locations) + "Locations are defined under locations: in reconciler.yaml.")
            return None
        return location

    def _file_strategy(self, data: LineDict, rel: str) -> Strategy | None:
        strategy = data.get("strategy")
        if strategy is None or strategy in STRATEGIES:
            return strategy
        self._problem(rel, data.line_of("strategy"), f"strategy must be 'merge' or 'replace', not {describe(strategy)}",
                      "Write strategy: merge or strategy: replace, or remove the line to use the target's strategy.")
        return None

    def _section(self, target: str, section: Any, line: int, location: str, strategy: Strategy | None, rel: str) -> None:
        info = self.targets.get(target)
        if info is None:
            if not self.targets_known:
                return
            self._problem(rel, line, f"unknown target {target!r}",
                          suggest(target, self.targets) + "Targets are defined under targets: in reconciler.yaml.")
            return
        if location not in info.locations:
            self._problem(rel, line, f"target {target!r} has no vendor id for location {location!r}",
                          f"Map it under targets.{target}.locations in {self.config_file}, or remove the {target} section from this file.")
            return
        # No position of (target, location) exists before the first section that declares it.
        fresh = (target, location) not in self.declared
        self.declared.setdefault((target, location), rel)
        if section is None:
            return
        if not isinstance(section, LineDict):
            self._problem(rel, line, f"the {target} section must be a mapping of SKU -> quantity, not {describe(section)}",
                          "Write one line per SKU, e.g. `TSHIRT-RED-M: 12`.")
            return
        resolved: Strategy = strategy or info.strategy or self.default_strategy
        self._positions(info, section, location, resolved, rel, fresh)

    def _positions(self, info: TargetInfo, section: LineDict, location: str, strategy: Strategy, rel: str,
                   fresh: bool) -> None:
        # The hot path of validate (a million positions for a large chain). The common section
        # (first to declare its target and location, every SKU with an id in the target, every
        # quantity a plain count in range) is checked as a whole by a few C passes and kept as
        # columns; its DesiredPosition objects are built only when someone asks for them
        # (`positions`: plan does, validate does not). Anything else goes position by position
        # through _position, which says what is wrong.
        if not section:
            return
        if fresh:
            skus, protected = self._catalog_skus(info.name)
            values = list(section.values())
            if section.keys() <= skus.keys() and set(map(type, values)) == _INT_ONLY \
                    and min(values) >= 0 and max(values) <= MAX_QUANTITY:
                # The catalog's own SKU strings, not the location file's copies: one string per
                # SKU for the whole chain instead of one per position.
                items = list(map(skus.__getitem__, section))
                self._pending.append(_Section(info.name, location, items, values, strategy, protected, rel,
                                              section.line_numbers()))
                self._pending_count += len(items)
                return
        self._positions_one_by_one(info, section, location, strategy, rel, fresh)

    def _build_pending(self) -> None:
        """Build the positions of the pending sections, in the order they were read."""
        pending, self._pending, self._pending_count = self._pending, [], 0
        update, make = self._built.update, _new_position
        for sec in pending:
            target, location, items = repeat(sec.target), repeat(sec.location), sec.items
            protect = map(sec.protected.__contains__, items) if sec.protected else repeat(False)
            made = map(make, target, location, items, sec.values, repeat(NO_SETTINGS), repeat(sec.strategy),
                       protect, repeat(sec.rel), sec.lines)
            update(zip(zip(target, location, items), made))

    def _positions_one_by_one(self, info: TargetInfo, section: LineDict, location: str, strategy: Strategy, rel: str,
                              fresh: bool) -> None:
        # The common position is still decided with a few lookups; the rest goes through
        # _position. Positions of earlier sections are built first: a SKU declared twice is
        # looked up among them, and the positions keep the order they were read in.
        target, positions = info.name, self.positions
        known = self._known_items(target)
        make = _new_position
        # section.lines(): a file of the common shape has its keys on consecutive lines, so the
        # line is counted rather than looked up per position.
        for (sku, value), line in zip(section.items(), section.lines()):
            hit = known.get(sku)
            if hit is None or value.__class__ is not int or not 0 <= value <= MAX_QUANTITY:
                self._position(info, sku, value, line, location, strategy, rel)
                continue
            item, protect = hit
            key = (target, location, item)
            if not fresh and key in positions:
                self._position(info, sku, value, line, location, strategy, rel)
                continue
            positions[key] = make(target, location, item, value, NO_SETTINGS, strategy, protect, rel, line)

    def _catalog_skus(self, target: str) -> tuple[dict[str, str], frozenset[str]]:
        """(SKU -> the catalog's SKU string, the protected SKUs) for the SKUs with an id in
        ``target`` (built once per target)."""
        found = self._skus.get(target)
        if found is None:
            known = self._known_items(target)
            found = self._skus[target] = ({sku: hit[0] for sku, hit in known.items()},
                                          frozenset(hit[0] for hit in known.values() if hit[1]))
        return found

    def _known_items(self, target: str) -> dict[str, tuple[str, bool]]:
        """SKU -> (the catalog's SKU string, protect flag), for the SKUs that have an id in
        ``target`` (built once per target)."""
        known = self._known.get(target)
        if known is None:
            known = self._known[target] = {
                sku: (sku, item.protect) for sku, item in self.catalog.items() if target in item.ids
            }
        return known

    def _position(self, info: TargetInfo, sku: str, value: Any, line: int, location: str, strategy: Strategy,
                  rel: str) -> None:
        """One position, every check, every problem."""
        target, positions = info.name, self._built
        item = self.catalog.get(sku)
        if item is None or target not in item.ids:
            if not self._item_problem(info, sku, item, line, rel):
                return
        protected = item.protect if item is not None else False
        if value.__class__ is int:
            quantity, settings, protect = value, NO_SETTINGS, protected
        else:
            parsed = self._mapping_form(info, sku, value, line, rel, protected)
            if parsed is None:
                return
            quantity, settings, protect = parsed
        if not self._quantity_ok(target, sku, quantity, line, rel):
            return
        key = (target, location, sku)
        previous = positions.get(key)
        if previous is not None:
            self._problem(rel, line, f"position {target}/{location}/{sku} is declared twice: here and at {previous.source}",
                          "Keep one of the two declarations and delete the other.")
            return
        positions[key] = DesiredPosition(target, location, sku, quantity, settings, strategy, protect, SourceRef(rel, line))

    def _item_problem(self, info: TargetInfo, sku: str, item: CatalogItem | None, line: int, rel: str) -> bool:
        """Report an unknown SKU or a missing id; True when the position is still worth checking
        (its catalog could not be read, so its quantity can be checked but not its ids)."""
        if item is None:
            if not self.catalog_known:
                return True
            if sku not in self.broken_skus:
                self._problem(rel, line, f"unknown SKU {sku!r}", suggest(sku, self.catalog)
                              + f"Add it under items: in {CATALOG_FILE} first.")
        elif info.rule is not None and info.name not in item.broken_ids:
            self._problem(rel, line, f"SKU {sku!r} has no id for target {info.name!r}",
                          f"Add `{info.name}: <id>` under ids: of {sku} in {CATALOG_FILE} (line {item.line}).")
        return False

    def _mapping_form(self, info: TargetInfo, sku: str, value: Any, line: int, rel: str,
                      default_protect: bool) -> tuple[int, Settings, bool] | None:
        if not isinstance(value, LineDict):
            self._problem(rel, line, f"quantity of {sku!r} in target {info.name!r} must be a whole number, not {describe(value)}",
                          _quantity_hint(value))
            return None
        before = len(self.problems)
        check_fields(value, POSITION_FIELDS, f"the entry for {sku!r}", rel, self.problems)
        if "quantity" not in value:
            self._problem(rel, line, f"the entry for {sku!r} has no quantity", "Add `quantity: <n>` to it.")
        protect = value.get("protect", default_protect)
        if not isinstance(protect, bool):
            self._problem(rel, value.line_of("protect"), f"protect of {sku!r} must be true or false, not {describe(protect)}",
                          "Write protect: true or protect: false.")
        settings = self._settings(info, sku, value, rel)
        quantity = value.get("quantity")
        if len(self.problems) > before:
            return None
        if quantity.__class__ is not int:
            self._problem(rel, value.line_of("quantity"), f"quantity of {sku!r} in target {info.name!r} must be a whole number, not {describe(quantity)}",
                          _quantity_hint(quantity))
            return None
        return quantity, settings, protect

    def _settings(self, info: TargetInfo, sku: str, value: LineDict, rel: str) -> Settings:
        found: dict[str, int | bool] = {}
        for name in SETTING_NAMES:
            if name not in value:
                continue
            setting, line = value[name], value.line_of(name)
            if info.rule is not None and name not in info.rule.settings:
                self._problem(rel, line, f"setting {name!r} is not supported by target {info.name!r} (kind {info.kind})",
                              f"Remove it: only {settings_owner(name)} targets hold {name}.")
            elif name in INT_SETTINGS and (setting.__class__ is not int or setting < 0):
                self._problem(rel, line, f"{name} of {sku!r} must be a whole number of 0 or more, not {describe(setting)}",
                              "Write a plain integer such as 5.")
            elif name in BOOL_SETTINGS and not isinstance(setting, bool):
                self._problem(rel, line, f"{name} of {sku!r} must be true or false, not {describe(setting)}",
                              f"Write {name}: true or {name}: false.")
            else:
                found[name] = setting
        return Settings(**found) if found else NO_SETTINGS

    def _quantity_ok(self, target: str, sku: str, quantity: int, line: int, rel: str) -> bool:
        if quantity < 0:
            self._problem(rel, line, f"quantity of {sku!r} in target {target!r} is negative ({quantity})",
                          "Desired stock cannot be below 0: write 0 or more.")
            return False
        if quantity > MAX_QUANTITY:
            self._problem(rel, line, f"quantity of {sku!r} in target {target!r} is {quantity}, above the maximum of {MAX_QUANTITY}",
                          "This is almost certainly a typo (a barcode pasted as a quantity?): fix it.")
            return False
        return True

    def _problem(self, rel: str, line: int | None, message: str, hint: str) -> None:
        self.problems.append(Problem(message, rel, line, hint))


def _quantity_hint(value: Any) -> str:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return "Remove the quotes: write a plain integer such as 12."
    return "Write a plain integer such as 12 (no quotes, no decimals, not true/false)."
