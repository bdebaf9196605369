"""The X-Series catalogue as ``reconciler discover`` reads it: product codes, families, deletes.

Shapes from the 2.0 spec (../shared/vendor-specs/xseries-api-2.0.json, ``Product``,
``ProductCode``; research/xseries_counts.md Q3):
- ``product_codes[] {id, type: CUSTOM|EAN|ISBN|ITF|JAN|UPC, code}``; codes are unique per
  product and cannot be shared between products (documented, XS-CL-PC). The SKU "should be
  included in the product_codes array. If it's not, it will be added automatically" (documented,
  AE07 ProductAddVariantPayload): the sandbox adds it as a CUSTOM code.
- ``variant_parent_id`` on variants, ``has_variants`` and ``variant_count`` (documented, XS-OAS).
  Whether the family's parent product is itself listed and sellable is ASSUMED (yes, as one
  more product of the family: the sandbox lists every product).
- ``DELETE /api/2.0/products/{id}`` (documented, XS-OAS) sets ``deleted_at`` and a new version;
  the list leaves deleted products out unless ``deleted=true`` (the parameter is documented, its
  default is ASSUMED false, as for outlets).
- ``GET /products?sku=`` "allows loading a product by one of its SKUs" (documented): it matches
  any product code as well as ``sku`` (ASSUMED: research/xseries_counts.md open question 4).
Fixture items may carry ``sku``, ``barcodes`` (EAN codes) and ``variant_parent_id``.
"""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any, Iterable, Mapping

from reconciler.errors import ConfigError, Problem

CODES_SCHEMA = """
CREATE TABLE IF NOT EXISTS xs_product_codes (
    id TEXT PRIMARY KEY, product_id TEXT NOT NULL, type TEXT NOT NULL, code TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS xs_product_codes_product ON xs_product_codes (product_id);
CREATE INDEX IF NOT EXISTS xs_product_codes_code ON xs_product_codes (code);
"""

CODE_TYPES = ("CUSTOM", "EAN", "ISBN", "ITF", "JAN", "UPC")


def load_codes(conn: sqlite3.Connection, product_id: str, item: Mapping[str, Any]) -> None:
    """A fixture item's codes: its SKU (CUSTOM) and its ``barcodes`` (EAN), once each."""
    codes: list[tuple[str, str]] = []
    if item.get("sku"):
        codes.append(("CUSTOM", str(item["sku"])))
    codes += [("EAN", str(code)) for code in item.get("barcodes") or []]
    if not codes or conn.execute("SELECT 1 FROM xs_product_codes WHERE product_id = ?", (product_id,)).fetchone():
        return
    for _, code in codes[1:] if item.get("sku") else codes:  # a SKU may repeat (the vendor allows it); a barcode not
        taken = conn.execute("SELECT product_id FROM xs_product_codes WHERE code = ? AND type != 'CUSTOM'", (code,)).fetchone()
        if taken:
            raise ConfigError([Problem(f"items: product {product_id} has the code {code!r} of product {taken[0]}", "fixtures",
                                       hint="X-Series product codes cannot be shared between products (documented).")])
    conn.executemany("INSERT INTO xs_product_codes (id, product_id, type, code) VALUES (?, ?, ?, ?)",
                     [(str(uuid.uuid5(uuid.NAMESPACE_URL, f"{product_id}/{t}/{c}")), product_id, t, c) for t, c in codes])


def codes_of(conn_or_db: Any, product_ids: Iterable[str]) -> dict[str, list[dict[str, str]]]:
    """product id -> its product_codes, for one page of products (one query per 500 ids)."""
    ids = list(product_ids)
    out: dict[str, list[dict[str, str]]] = {pid: [] for pid in ids}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        rows = _query(conn_or_db, "SELECT id, product_id, type, code FROM xs_product_codes WHERE product_id IN ("
                      + ",".join("?" * len(chunk)) + ") ORDER BY rowid", chunk)
        for row in rows:
            out[row[1]].append({"id": row[0], "type": row[2], "code": row[3]})
    return out


def family_counts(conn_or_db: Any, parents: Iterable[str]) -> dict[str, int]:
    """parent id -> how many live variants name it as their variant_parent_id."""
    ids = sorted(set(parents))
    if not ids:
        return {}
    rows = _query(conn_or_db, "SELECT variant_parent_id, COUNT(*) FROM xs_products WHERE deleted_at IS NULL AND"
                  " variant_parent_id IN (" + ",".join("?" * len(ids)) + ") GROUP BY variant_parent_id", ids)
    return {row[0]: row[1] for row in rows}


def with_catalogue_fields(db: Any, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add product_codes, has_variants and variant_count to a page of product bodies."""
    codes = codes_of(db, [b["id"] for b in bodies])
    families = family_counts(db, [b["variant_parent_id"] or b["id"] for b in bodies])
    for body in bodies:
        body["product_codes"] = codes.get(body["id"], [])
        count = families.get(body["variant_parent_id"] or body["id"], 0)
        body["has_variants"] = bool(body["variant_parent_id"]) or count > 0
        body["variant_count"] = count
    return bodies


def product_ids_by_code(db: Any, code: str) -> list[str]:
    """Live products having ``code`` as their sku or one of their product codes."""
    rows = _query(db, "SELECT id FROM xs_products WHERE deleted_at IS NULL AND (sku = ? OR id IN"
                  " (SELECT product_id FROM xs_product_codes WHERE code = ?)) ORDER BY version", [code, code])
    return [row[0] for row in rows]


def _query(conn_or_db: Any, sql: str, params: list[Any]) -> list[Any]:
    if isinstance(conn_or_db, sqlite3.Connection):
        return conn_or_db.execute(sql, params).fetchall()
    return conn_or_db.query(sql, params)
