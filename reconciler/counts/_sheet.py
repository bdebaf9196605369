"""Count sheets: written at ``count start`` (YAML for people, CSV for handheld scanners) and read
back at ``count finish``, filled in or as a scanner export of ``barcode-or-SKU,quantity`` lines."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from reconciler.errors import CountError

UNCOUNTED = ("leave", "zero")


@dataclass
class FilledSheet:
    counted: dict[str, int]  # SKU -> counted quantity
    listed: list[str] = field(default_factory=list)  # SKUs the sheet lists
    uncounted: str = "leave"
    count_id: str | None = None


def write_sheets(folder: Path, count_id: str, location: str, items: list[tuple[str, str]]) -> tuple[Path, Path]:
    """``ID.yaml`` and ``ID.csv`` in ``folder``: every item to count, quantity empty."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"# Count sheet for {location}. Fill in `counted` for each item you counted and leave the",
             "# others empty; then run: reconciler count finish " + count_id + " --sheet THIS_FILE",
             "# uncounted: leave keeps the stock of items left empty; uncounted: zero sets them to 0.",
             f"count: {count_id}", f"location: {location}", "uncounted: leave", "items:"]
    for sku, name in items:
        lines.append(f"  - sku: {yaml.safe_dump(sku, default_style=None).strip().splitlines()[0]}")
        if name:
            lines.append(f"    name: {yaml.safe_dump(name).strip().splitlines()[0]}")
        lines.append("    counted:")
    ypath, cpath = folder / f"{count_id}.yaml", folder / f"{count_id}.csv"
    ypath.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["sku", "name", "counted"])
    writer.writerows([sku, name, ""] for sku, name in items)
    cpath.write_text(out.getvalue(), encoding="utf-8")
    return ypath, cpath


def _quantity(value: Any, where: str) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        raise CountError(f"{where}: counted quantity {value!r} is not a whole number",
                         hint="Write the number of units counted, or leave it empty if not counted.") from None
    if number < 0:
        raise CountError(f"{where}: counted quantity {number} is negative", hint="A shelf holds 0 or more units.")
    return number


def read_sheet(path: Path, codes: Mapping[str, str]) -> FilledSheet:
    """A filled sheet (YAML or CSV) or a scanner export; ``codes`` maps SKUs and barcodes
    (lower-cased) to SKUs."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CountError(f"cannot read the sheet {path}: {exc.strerror}") from exc
    if path.suffix in (".yaml", ".yml"):
        return _read_yaml(path, text, codes)
    return _read_csv(path, text, codes)


def _sku(code: str, codes: Mapping[str, str], where: str) -> str:
    sku = codes.get(code.strip().lower())
    if sku is None:
        raise CountError(f"{where}: {code!r} is neither a SKU nor a barcode in stock/catalog.yaml",
                         hint="Fix the line, or add the item to the catalogue, and finish the count again.")
    return sku


def _read_yaml(path: Path, text: str, codes: Mapping[str, str]) -> FilledSheet:
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise CountError(f"{path}: not valid YAML: {exc}") from exc
    uncounted = str(doc.get("uncounted", "leave"))
    if uncounted not in UNCOUNTED:
        raise CountError(f"{path}: uncounted: {uncounted!r}", hint="Write `uncounted: leave` or `uncounted: zero`.")
    sheet = FilledSheet({}, uncounted=uncounted, count_id=doc.get("count"))
    for n, entry in enumerate(doc.get("items") or [], 1):
        where = f"{path}: item {n}"
        if not isinstance(entry, dict) or "sku" not in entry:
            raise CountError(f"{where}: each item needs `sku:` and `counted:`")
        sku = _sku(str(entry["sku"]), codes, where)
        sheet.listed.append(sku)
        qty = _quantity(entry.get("counted"), f"{where} ({sku})")
        if qty is not None:
            sheet.counted[sku] = qty
    return sheet


def _read_csv(path: Path, text: str, codes: Mapping[str, str]) -> FilledSheet:
    dialect = "excel-tab" if "\t" in text and "," not in text else "excel"
    rows = list(csv.reader(io.StringIO(text.replace(";", ",") if dialect == "excel" else text), dialect))
    sheet = FilledSheet({})
    header = [c.strip().lower() for c in rows[0]] if rows else []
    if "sku" in header and "counted" in header:  # our sheet, filled in
        si, ci = header.index("sku"), header.index("counted")
        for n, row in enumerate(rows[1:], 2):
            if not any(c.strip() for c in row):
                continue
            sku = _sku(row[si], codes, f"{path}:{n}")
            sheet.listed.append(sku)
            qty = _quantity(row[ci] if ci < len(row) else "", f"{path}:{n} ({sku})")
            if qty is not None:
                sheet.counted[sku] = qty
        return sheet
    # A scanner export: one line per scan (`code`) or per item (`code,quantity`); repeats add up.
    for n, row in enumerate(rows, 1):
        cells = [c.strip() for c in row if c.strip()]
        if not cells or (n == 1 and _is_header(cells, codes)):
            continue
        sku = _sku(cells[0], codes, f"{path}:{n}")
        qty = _quantity(cells[1], f"{path}:{n} ({sku})") if len(cells) > 1 else 1
        sheet.counted[sku] = sheet.counted.get(sku, 0) + (qty or 0)
        sheet.listed.append(sku)
    return sheet


def _is_header(cells: list[str], codes: Mapping[str, str]) -> bool:
    return cells[0].lower() not in codes and len(cells) > 1 and not cells[1].lstrip("-").isdigit()
