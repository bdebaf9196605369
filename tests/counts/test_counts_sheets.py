"""Count sheets and the stock file edit: comments and formatting kept; scanner exports mapped
through the catalogue; bad lines named by file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.counts._files import write_counted
from reconciler.counts._sheet import read_sheet
from reconciler.errors import CountError

CODES = {"sku-1": "SKU-1", "sku-2": "SKU-2", "849632000001": "SKU-1"}


def test_stock_file_keeps_comments_and_formatting(tmp_path: Path) -> None:
    path = tmp_path / "oslo.yaml"
    path.write_text("# Oslo: counted monthly\nlocation: oslo\nstock:\n  shop:\n    SKU-1: 10   # front shelf\n"
                    "    SKU-2: {quantity: 5, reorder_point: 2}\n    SKU-3: 7\n", encoding="utf-8")
    write_counted(path, "oslo", {"shop": {"SKU-1": 8, "SKU-2": 3}})
    assert path.read_text(encoding="utf-8") == (
        "# Oslo: counted monthly\nlocation: oslo\nstock:\n  shop:\n    SKU-1: 8    # front shelf\n"
        "    SKU-2: {quantity: 3, reorder_point: 2}\n    SKU-3: 7\n")


def test_scanner_export_sums_scans_and_maps_barcodes(tmp_path: Path) -> None:
    export = tmp_path / "scan.txt"
    export.write_text("849632000001\n849632000001\nsku-2;4\nSKU-1,3\n", encoding="utf-8")
    assert read_sheet(export, CODES).counted == {"SKU-1": 5, "SKU-2": 4}


def test_unknown_code_names_the_line(tmp_path: Path) -> None:
    export = tmp_path / "scan.csv"
    export.write_text("SKU-1,2\n999,1\n", encoding="utf-8")
    with pytest.raises(CountError, match=r"scan.csv:2: '999' is neither a SKU nor a barcode"):
        read_sheet(export, CODES)


def test_yaml_sheet_uncounted_and_bad_quantity(tmp_path: Path) -> None:
    sheet = tmp_path / "c.yaml"
    sheet.write_text("count: c1\nlocation: oslo\nuncounted: zero\nitems:\n  - sku: SKU-1\n    counted: 3\n"
                     "  - sku: SKU-2\n    counted:\n", encoding="utf-8")
    filled = read_sheet(sheet, CODES)
    assert (filled.counted, filled.listed, filled.uncounted) == ({"SKU-1": 3}, ["SKU-1", "SKU-2"], "zero")
    sheet.write_text("items:\n  - sku: SKU-1\n    counted: three\n", encoding="utf-8")
    with pytest.raises(CountError, match="item 1 \\(SKU-1\\): counted quantity 'three' is not a whole number"):
        read_sheet(sheet, CODES)
