"""Writing count results into the stock repository: the location's desired file (comments and
formatting kept, through ruamel.yaml's round trip) and the ``counts/ID.yaml`` record beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from reconciler.errors import CountError


def _round_trip() -> YAML:
    rt = YAML()  # round-trip mode: comments, order, flow style and quotes survive
    rt.preserve_quotes = True
    rt.width = 4096
    return rt


def write_counted(path: Path, location: str, values: Mapping[str, Mapping[str, int]]) -> None:
    """Set ``stock[target][sku]`` to the counted quantity for each target -> {sku: qty}."""
    rt = _round_trip()
    if path.exists():
        with path.open(encoding="utf-8") as fh:
            doc = rt.load(fh)
    else:
        doc = CommentedMap([("location", location), ("stock", CommentedMap())])
    if not isinstance(doc, dict) or doc.get("location") != location:
        raise CountError(f"{path} does not declare `location: {location}`; the counted quantities were not written")
    stock = doc.setdefault("stock", CommentedMap())
    for target, items in values.items():
        held = stock.get(target)
        if held is None:
            held = stock[target] = CommentedMap()
        for sku, qty in items.items():
            entry = held.get(sku)
            if isinstance(entry, dict):
                entry["quantity"] = qty  # settings written beside it stay
            else:
                held[sku] = qty
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        rt.dump(doc, fh)
    tmp.replace(path)


def write_record(path: Path, record: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    head = ("# A stock count's result (docs/counts.md): the positions below were counted, and the planner\n"
            "# applies counted - snapshot on live stock. Commit this file with the stock file it changed.\n")
    path.write_text(head + yaml.safe_dump(dict(record), sort_keys=False), encoding="utf-8")


def read_records(root: Path) -> list[tuple[str, dict[str, Any]]]:
    """Every ``stock/**/counts/*.yaml`` record, as (path relative to root, content)."""
    out = []
    for path in sorted((root / "stock").rglob("counts/*.yaml")):
        rel = path.relative_to(root).as_posix()
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise CountError(f"{rel}: not valid YAML: {exc}") from exc
        if not isinstance(doc, dict) or not {"count", "location", "counted_at", "positions"} <= set(doc):
            raise CountError(f"{rel}: not a count record (needs count, location, counted_at, positions)",
                             hint="These files are written by `reconciler count finish`; restore it from git.")
        out.append((rel, doc))
    return out
