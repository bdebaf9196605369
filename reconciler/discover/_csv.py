"""A merchant's catalogue export as the catalogue of a write-only target (``discover --from-csv``).

Ka-ching and Run Free ids are the merchant's own (their product import; UPC or sku+size+width),
and the Lightspeed supplier feed's item ids are only seen in its Backoffice: the merchant exports
a CSV and says which column holds what with ``--columns``, e.g. ``sku=SKU,id=Item ID`` or
``sku=sku,product=product_id,variant=variant_id``. ``sku``, ``barcode`` and ``name`` are matched
or shown; every other field is part of the id (one field named ``id``: a plain string id).
"""

from __future__ import annotations

import csv
from pathlib import Path

from reconciler.connectors.base import CatalogueItem
from reconciler.errors import ConfigError, Problem

KNOWN = ("sku", "barcode", "name")


def parse_columns(spec: str) -> dict[str, str]:
    """``field=column,...`` -> field -> column header."""
    out: dict[str, str] = {}
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        field, sep, column = part.partition("=")
        if not sep or not field.strip() or not column.strip():
            raise ConfigError([Problem(f"--columns: {part!r} is not field=column",
                                       hint="Write e.g. --columns sku=SKU,id=ItemID (id fields: id, or product/variant, upc, ...).")])
        out[field.strip()] = column.strip()
    if not any(f not in KNOWN for f in out):
        raise ConfigError([Problem("--columns names no id column",
                                   hint="Add the column holding the vendor's id, e.g. id=ItemID.")])
    if "sku" not in out and "barcode" not in out:
        raise ConfigError([Problem("--columns names neither a sku nor a barcode column to match on",
                                   hint="Add e.g. sku=SKU.")])
    return out


def read_csv(path: str | Path, spec: str) -> list[CatalogueItem]:
    columns = parse_columns(spec)
    where = str(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except OSError as exc:
        raise ConfigError([Problem(f"cannot read the CSV file: {exc.strerror}", where)]) from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError([Problem(f"not a readable UTF-8 CSV file: {exc}", where)]) from exc
    if not rows:
        raise ConfigError([Problem("the CSV file is empty", where, 1, "Export it with its header row.")])
    header = [h.strip() for h in rows[0]]
    missing = [c for c in columns.values() if c not in header]
    if missing:
        raise ConfigError([Problem(f"the header has no column {', '.join(map(repr, missing))}", where, 1,
                                   f"Columns in the file: {', '.join(header)}.")])
    at = {field: header.index(column) for field, column in columns.items()}
    id_fields = [f for f in columns if f not in KNOWN]
    items: list[CatalogueItem] = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        values = {f: (row[i].strip() if i < len(row) else "") for f, i in at.items()}
        ids = {f: values[f] for f in id_fields if values[f]}
        if len(ids) != len(id_fields):
            raise ConfigError([Problem(f"row has no value in {', '.join(columns[f] for f in id_fields if f not in ids)}",
                                       where, line, "Every row needs its id; remove rows of items not sold here.")])
        item_id = ids["id"] if id_fields == ["id"] else ids
        barcodes = (values["barcode"],) if values.get("barcode") else ()
        items.append(CatalogueItem(item_id, values.get("sku") or None, barcodes, values.get("name", "")))
    return items


