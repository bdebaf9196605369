"""Sandbox fixtures: reading a ``--fixtures`` file and building fixtures from lists of vendor ids.

The common shape (docs/sandboxes.md)::

    {"locations": [{"id": "<vendor location id>", "name": "..."}],
     "items": [{"id": <vendor item id: a string or a mapping of id fields>, "name": "..."}],
     "stock": [{"location": "<vendor location id>", "item": <id>, "quantity": 5, **settings}]}
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import yaml

from reconciler.errors import ConfigError, Problem

ItemId = str | Mapping[str, str]
QuantityFn = Callable[[str, ItemId], int]
MAX_INITIAL_QUANTITY = 30
SECTIONS = ("locations", "items", "stock")


def read_fixtures(path: str | Path) -> dict[str, Any]:
    """Load a YAML or JSON fixtures file (JSON is YAML) and check its outline."""
    where = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([Problem(f"cannot read the fixtures file: {exc.strerror}", where)]) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise ConfigError([Problem(f"not valid YAML/JSON: {getattr(exc, 'problem', exc)}", where, line)]) from exc
    problems = outline_problems(data, where)
    if problems:
        raise ConfigError(problems)
    return dict(data)


def outline_problems(data: Any, where: str) -> list[Problem]:
    """The sections must be lists of mappings; what goes inside each is the simulator's business."""
    if not isinstance(data, Mapping):
        return [Problem("fixtures must be a mapping with locations, items and stock lists", where)]
    # "options": kind settings some simulators accept in their fixtures (Zettle)
    problems = [Problem(f"unknown section {key!r}", where, hint=f"Known sections: {', '.join(SECTIONS)}, options.")
                for key in data if key not in (*SECTIONS, "options")]
    if not isinstance(data.get("options") or {}, Mapping):
        problems.append(Problem("options must be a mapping", where))
    for section in SECTIONS:
        entries = data.get(section) or []
        if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
            problems.append(Problem(f"{section} must be a list of mappings", where))
            continue
        required = ("location", "item") if section == "stock" else ("id",)
        for index, entry in enumerate(entries):
            missing = [name for name in required if name not in entry]
            if missing:
                problems.append(Problem(f"{section}[{index}] lacks {', '.join(missing)}", where))
    return problems


def position_quantity(*parts: Any) -> int:
    """A deterministic pseudo-random quantity 0..30 for a position (same parts, same number)."""
    key = json.dumps(parts, sort_keys=True, default=str).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "big") % (MAX_INITIAL_QUANTITY + 1)


def build_fixtures(
    kind: str,
    location_ids: Sequence[str],
    item_ids: Sequence[ItemId],
    quantities: QuantityFn | None = None,
) -> dict[str, Any]:
    """Fixtures for a ``kind`` sandbox holding these vendor ids; with ``quantities``, a stock
    record for every (location, item) with the quantity it returns."""
    shape = _ITEM_SHAPES.get(kind, _generic_item)
    items = [shape(item_id) for item_id in item_ids]
    stock: list[dict[str, Any]] = []
    if quantities is not None:
        for location in location_ids:
            for item_id, item in zip(item_ids, items):
                stock.append({"location": location, "item": _stock_item(kind, item["id"]),
                              "quantity": int(quantities(location, item_id))})
    return {"locations": [{"id": loc, "name": loc} for loc in location_ids], "items": items, "stock": stock}


def _generic_item(item_id: ItemId) -> dict[str, Any]:
    return {"id": item_id if isinstance(item_id, str) else dict(item_id), "name": _label(item_id)}


def _supplier_item(item_id: ItemId) -> dict[str, Any]:
    return {"id": str(item_id), "name": str(item_id), "vendorSku": str(item_id)}


def _kaching_item(item_id: ItemId) -> dict[str, Any]:
    ids = {"product": item_id} if isinstance(item_id, str) else dict(item_id)
    return {"id": ids, "name": _label(ids)}


def _runfree_item(item_id: ItemId) -> dict[str, Any]:
    """Run Free products carry all four of upc, sku, size, width: fill the ones the id lacks,
    deterministically, so the sandbox answers both lookups."""
    ids = {"upc": item_id} if isinstance(item_id, str) else {k: str(v) for k, v in item_id.items()}
    if "upc" not in ids:
        digest = hashlib.sha256(json.dumps(ids, sort_keys=True).encode()).hexdigest()
        ids["upc"] = str(int(digest[:15], 16) % 10**12).zfill(12)
    ids.setdefault("sku", f"SANDBOX-{ids['upc']}")
    ids.setdefault("size", "-")
    ids.setdefault("width", "-")
    return {"id": ids, "name": _label(ids)}


def _stock_item(kind: str, item_id: Any) -> Any:
    return {"upc": item_id["upc"]} if kind == "runfree" else item_id


def _label(item_id: ItemId) -> str:
    return item_id if isinstance(item_id, str) else " ".join(str(v) for v in item_id.values())


_ITEM_SHAPES: dict[str, Callable[[ItemId], dict[str, Any]]] = {
    "lightspeed-supplier": _supplier_item,
    "kaching": _kaching_item,
    "runfree": _runfree_item,
}


def target_fixtures(project: Any, target: str) -> dict[str, Any]:
    """Fixtures for the sandbox of one target of a loaded project (reconciler.config.Project):
    its locations, the catalog ids it holds, and deterministic starting stock 0..30 per position
    (so the first plan against a fresh sandbox has work to show)."""
    config = project.config.targets[target]
    locations = [vendor_id for vendor_id in config.locations.values() if vendor_id]
    items = [entry.ids[target] for _, entry in sorted(project.catalog.items()) if target in entry.ids]
    # Protected positions start at their desired quantity: a shop's gift cards already match, and
    # the example's first plan should show the protect guard only when someone edits them.
    protected: dict[tuple[str, str], int] = {}
    for (t, location, sku), position in project.desired.positions.items():
        if t == target and position.protect and config.locations.get(location):
            protected[(config.locations[location], json.dumps(project.catalog[sku].ids[target], sort_keys=True))] = position.quantity

    def quantity(location: str, item: ItemId) -> int:
        preset = protected.get((location, json.dumps(item, sort_keys=True)))
        return preset if preset is not None else position_quantity(target, location, item)

    fixtures = build_fixtures(config.kind, locations, items, quantity)
    # The canonical SKU doubles as the vendor's SKU, so `reconciler discover` finds the items.
    skus = [sku for sku, entry in sorted(project.catalog.items()) if target in entry.ids]
    for item, sku in zip(fixtures["items"], skus):
        item["sku"] = sku
        if config.kind == "lightspeed-supplier":
            item["vendorSku"] = sku
    return fixtures
