"""SQLite persistence of the Zettle simulator: locations, products, variants, the STORE balance,
low-stock settings and the movement ledger.

Only the STORE balance is stored per variant: SOLD, BIN and SUPPLIER are virtual in v1/v2 (their
balances are not tracked; SUPPLIER holds unlimited stock), so a movement changes at most the one
STORE number. Every movement is still written to the ledger with its ``externalUuid``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from reconciler.errors import ConfigError, Problem
from reconciler.sandbox._core import SandboxDB

LOCATION_TYPES = ("STORE", "BIN", "SOLD", "SUPPLIER")
VIRTUAL_TYPES = frozenset({"BIN", "SOLD", "SUPPLIER"})
# Fixed namespace so generated UUIDs are the same on every run (and across restarts).
_NAMESPACE = uuid.UUID("6c1e3f0e-2b51-5c39-9d0a-0f6a3c2e7a11")
DEFAULT_ORGANIZATION_UUID = str(uuid.uuid5(_NAMESPACE, "organization"))
DEFAULT_STORE_UUID = str(uuid.uuid5(_NAMESPACE, "location:STORE"))
# The location id a stock repository writes for "the organisation's STORE, discovered".
STORE_ALIAS = "STORE"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS locations (
    uuid TEXT PRIMARY KEY, type TEXT NOT NULL UNIQUE, name TEXT NOT NULL, description TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS products (uuid TEXT PRIMARY KEY, name TEXT, tracked INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS variants (
    uuid TEXT PRIMARY KEY, product_uuid TEXT NOT NULL REFERENCES products(uuid), name TEXT,
    balance INTEGER NOT NULL DEFAULT 0, updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS low_stock (
    variant_uuid TEXT PRIMARY KEY, product_uuid TEXT NOT NULL, level REAL, alert INTEGER
);
CREATE TABLE IF NOT EXISTS movements (
    id INTEGER PRIMARY KEY AUTOINCREMENT, external_uuid TEXT, product_uuid TEXT NOT NULL,
    variant_uuid TEXT NOT NULL, from_uuid TEXT NOT NULL, to_uuid TEXT NOT NULL,
    change INTEGER NOT NULL, source TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS external_requests (external_uuid TEXT PRIMARY KEY, response TEXT NOT NULL);
"""


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def derived_uuid(store_uuid: str, location_type: str) -> str:
    """BIN/SOLD/SUPPLIER UUIDs not given by fixtures: derived from the STORE UUID, so stable."""
    return str(uuid.uuid5(_NAMESPACE, f"{store_uuid}:{location_type}"))


def normalize_uuid(value: object) -> str | None:
    """The canonical (lower-case, hyphenated) form, or None when ``value`` is not a UUID."""
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


@dataclass(frozen=True)
class Location:
    uuid: str
    type: str
    name: str
    description: str

    def as_json(self) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "type": self.type,
            "name": self.name,
            "description": self.description,
            "default": self.type == "STORE",
        }


@dataclass(frozen=True)
class Move:
    """One validated movement of ``change`` units of a variant between two locations."""

    product: str
    variant: str
    source: Location
    target: Location
    change: int

    @property
    def store_delta(self) -> int:
        if self.target.type == "STORE":
            return self.change
        if self.source.type == "STORE":
            return -self.change
        return 0  # between two virtual locations: nothing tracked changes


def _fixture_problem(message: str, hint: str) -> ConfigError:
    return ConfigError([Problem(message, file="zettle fixtures", hint=hint)])


def _fixture_uuid(value: object, where: str) -> str:
    found = normalize_uuid(value)
    if found is None:
        raise _fixture_problem(f"{where}: {value!r} is not a UUID", "Zettle ids are UUIDs.")
    return found


def _fixture_item(value: object, where: str) -> tuple[str, str]:
    if not isinstance(value, Mapping) or "product" not in value or "variant" not in value:
        raise _fixture_problem(
            f"{where}: item id {value!r} is not a mapping with 'product' and 'variant'",
            'Write it as {"product": "<uuid>", "variant": "<uuid>"}.',
        )
    return _fixture_uuid(value["product"], f"{where}.product"), _fixture_uuid(value["variant"], f"{where}.variant")


class ZettleStore:
    """All reads and writes of the simulator's SQLite state."""

    def __init__(self, db: SandboxDB) -> None:
        self.db = db

    # --- meta and options -----------------------------------------------------------------

    def options(self) -> dict[str, Any]:
        rows = self.db.query("SELECT value FROM meta WHERE key = 'options'")
        return json.loads(rows[0]["value"]) if rows else {}

    def update_options(self, changes: Mapping[str, Any]) -> None:
        merged = {**self.options(), **changes}
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES ('options', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (json.dumps(merged),),
        )

    def organization_uuid(self) -> str:
        return normalize_uuid(self.options().get("organization_uuid")) or DEFAULT_ORGANIZATION_UUID

    # --- locations ------------------------------------------------------------------------

    def ensure_locations(self) -> None:
        """A fresh state gets the four system locations (as Zettle creates them on first use)."""
        if not self.db.query("SELECT 1 FROM locations LIMIT 1"):
            self.replace_locations({"STORE": DEFAULT_STORE_UUID})

    def replace_locations(self, given: Mapping[str, str]) -> None:
        store = given["STORE"]
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM locations")
            for kind in LOCATION_TYPES:
                conn.execute(
                    "INSERT INTO locations (uuid, type, name, description) VALUES (?, ?, ?, ?)",
                    (given.get(kind) or derived_uuid(store, kind), kind, kind, "System generated location "),
                )

    def store_uuid_or_default(self) -> str:
        rows = self.db.query("SELECT uuid FROM locations WHERE type = 'STORE'")
        return rows[0]["uuid"] if rows else DEFAULT_STORE_UUID

    def locations(self) -> list[Location]:
        rows = self.db.query("SELECT uuid, type, name, description FROM locations")
        found = [Location(r["uuid"], r["type"], r["name"], r["description"]) for r in rows]
        return sorted(found, key=lambda loc: LOCATION_TYPES.index(loc.type))

    def location(self, location_uuid: str) -> Location | None:
        return next((loc for loc in self.locations() if loc.uuid == location_uuid), None)

    def location_of_type(self, location_type: str) -> Location:
        return next(loc for loc in self.locations() if loc.type == location_type)

    def store(self) -> Location:
        return self.location_of_type("STORE")

    # --- fixtures -------------------------------------------------------------------------

    def load_fixtures(self, fixtures: Mapping[str, Any]) -> None:
        self._load_locations(fixtures.get("locations") or [])
        store = self.store().uuid
        for index, item in enumerate(fixtures.get("items") or []):
            product, variant = _fixture_item(item.get("id"), f"items[{index}].id")
            self._upsert_variant(product, variant, item.get("name"))
        tracked: dict[str, bool] = {}
        for index, record in enumerate(fixtures.get("stock") or []):
            self._load_stock_record(index, record, store, tracked)
        for product, is_tracked in tracked.items():
            self.db.execute("UPDATE products SET tracked = ? WHERE uuid = ?", (int(is_tracked), product))

    def _load_locations(self, entries: list[Mapping[str, Any]]) -> None:
        given: dict[str, str] = {}
        for index, entry in enumerate(entries):
            kind = str(entry.get("type") or "STORE").upper()
            if kind not in LOCATION_TYPES:
                raise _fixture_problem(f"locations[{index}].type: {kind!r} is unknown", f"Use one of {LOCATION_TYPES}.")
            if kind in given:
                raise _fixture_problem(
                    f"locations[{index}]: a second {kind} location",
                    "Zettle v1/v2 has exactly one location of each type (one STORE).",
                )
            if kind == "STORE" and str(entry.get("id")).upper() == STORE_ALIAS:
                # A repository that lets the connector discover the STORE writes `STORE` as its id
                # (reconciler sandbox up builds fixtures from it): keep the generated UUID.
                given[kind] = self.store_uuid_or_default()
                self.update_options({"store_alias": STORE_ALIAS})
                continue
            given[kind] = _fixture_uuid(entry.get("id"), f"locations[{index}].id")
        if given:
            if "STORE" not in given:
                raise _fixture_problem("locations: no STORE location", "List the STORE location UUID first.")
            self.replace_locations(given)
        self.ensure_locations()

    def _load_stock_record(self, index: int, record: Mapping[str, Any], store: str, tracked: dict[str, bool]) -> None:
        where = f"stock[{index}]"
        given = record.get("location")
        location = store if str(given).upper() == STORE_ALIAS else _fixture_uuid(given, f"{where}.location")
        if location != store:
            raise _fixture_problem(
                f"{where}.location: {record.get('location')!r} is not the STORE location {store}",
                "Only the STORE location holds stock in Zettle v1/v2.",
            )
        product, variant = _fixture_item(record.get("item"), f"{where}.item")
        quantity = record.get("quantity", 0)
        if not isinstance(quantity, int) or isinstance(quantity, bool):
            raise _fixture_problem(f"{where}.quantity: {quantity!r} is not a whole number", "Use an integer.")
        self._upsert_variant(product, variant, None)
        self.db.execute(
            "UPDATE variants SET balance = ?, updated_at = ? WHERE uuid = ?", (quantity, now_iso(), variant)
        )
        is_tracked = bool(record.get("tracked", True))
        if tracked.setdefault(product, is_tracked) != is_tracked:
            raise _fixture_problem(
                f"{where}.tracked: product {product} is both tracked and untracked",
                "Tracking is per product in Zettle: give every variant of a product the same 'tracked'.",
            )
        if "low_stock_level" in record or "low_stock_alert" in record:
            self.set_low_stock([(product, variant, record.get("low_stock_level"), record.get("low_stock_alert"))])

    def _upsert_variant(self, product: str, variant: str, name: object) -> None:
        owner = self.db.query("SELECT product_uuid FROM variants WHERE uuid = ?", (variant,))
        if owner and owner[0]["product_uuid"] != product:
            raise _fixture_problem(
                f"variant {variant} belongs to product {owner[0]['product_uuid']}, not {product}",
                "A Zettle variant UUID belongs to exactly one product.",
            )
        self.db.execute("INSERT OR IGNORE INTO products (uuid, tracked) VALUES (?, 1)", (product,))
        self.db.execute(
            "INSERT OR IGNORE INTO variants (uuid, product_uuid, updated_at) VALUES (?, ?, ?)",
            (variant, product, now_iso()),
        )
        if name is not None:
            self.db.execute("UPDATE variants SET name = ? WHERE uuid = ?", (str(name), variant))

    # --- products, variants, balances -----------------------------------------------------

    def product_exists(self, product: str) -> bool:
        return bool(self.db.query("SELECT 1 FROM products WHERE uuid = ?", (product,)))

    def is_tracked(self, product: str) -> bool:
        rows = self.db.query("SELECT tracked FROM products WHERE uuid = ?", (product,))
        return bool(rows and rows[0]["tracked"])

    def variant_owner(self, variant: str) -> str | None:
        rows = self.db.query("SELECT product_uuid FROM variants WHERE uuid = ?", (variant,))
        return rows[0]["product_uuid"] if rows else None

    def tracked_products(self) -> list[str]:
        return [r["uuid"] for r in self.db.query("SELECT uuid FROM products WHERE tracked = 1 ORDER BY rowid")]

    def store_balances(self, products: list[str] | None = None, since: str | None = None) -> list[dict[str, Any]]:
        """Non-zero STORE balances of tracked products, in catalogue order."""
        rows = self.db.query(
            "SELECT v.uuid, v.product_uuid, v.balance, v.updated_at FROM variants v "
            "JOIN products p ON p.uuid = v.product_uuid "
            "WHERE p.tracked = 1 AND v.balance != 0 ORDER BY p.rowid, v.rowid"
        )
        wanted = set(products) if products is not None else None
        return [
            {"productUuid": r["product_uuid"], "variantUuid": r["uuid"], "balance": r["balance"]}
            for r in rows
            if (wanted is None or r["product_uuid"] in wanted) and (since is None or r["updated_at"] > since)
        ]

    def tracked_variants(self) -> list[dict[str, Any]]:
        """Every variant of a tracked product, zero balances included, in catalogue order (the v3
        stock listing), with its low-stock settings and last change time."""
        rows = self.db.query(
            "SELECT v.uuid, v.product_uuid, v.balance, v.updated_at, l.level, l.alert FROM variants v "
            "JOIN products p ON p.uuid = v.product_uuid LEFT JOIN low_stock l ON l.variant_uuid = v.uuid "
            "WHERE p.tracked = 1 ORDER BY p.rowid, v.rowid"
        )
        return [dict(r) for r in rows]

    def balance(self, variant: str) -> int:
        rows = self.db.query("SELECT balance FROM variants WHERE uuid = ?", (variant,))
        return int(rows[0]["balance"]) if rows else 0

    def apply(self, moves: list[Move], tracking: Mapping[str, bool], external_uuid: str | None, source: str) -> None:
        """Write the movements and tracking changes in one transaction (all or nothing)."""
        stamp = now_iso()
        with self.db.transaction() as conn:
            for product, is_tracked in tracking.items():
                conn.execute("UPDATE products SET tracked = ? WHERE uuid = ?", (int(is_tracked), product))
            for move in moves:
                if move.store_delta:
                    conn.execute(
                        "UPDATE variants SET balance = balance + ?, updated_at = ? WHERE uuid = ?",
                        (move.store_delta, stamp, move.variant),
                    )
                conn.execute(
                    "INSERT INTO movements (external_uuid, product_uuid, variant_uuid, from_uuid, to_uuid, change,"
                    " source, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (external_uuid, move.product, move.variant, move.source.uuid, move.target.uuid, move.change,
                     source, stamp),
                )

    def sellable(self) -> list[tuple[str, str]]:
        rows = self.db.query(
            "SELECT v.uuid, v.product_uuid FROM variants v JOIN products p ON p.uuid = v.product_uuid "
            "WHERE p.tracked = 1 AND v.balance > 0 ORDER BY v.rowid"
        )
        return [(r["product_uuid"], r["uuid"]) for r in rows]

    def all_variants(self) -> list[dict[str, Any]]:
        rows = self.db.query(
            "SELECT v.uuid, v.product_uuid, v.balance, p.tracked, l.level, l.alert FROM variants v "
            "JOIN products p ON p.uuid = v.product_uuid LEFT JOIN low_stock l ON l.variant_uuid = v.uuid "
            "ORDER BY p.rowid, v.rowid"
        )
        return [dict(r) for r in rows]

    # --- movement ledger and externalUuid -------------------------------------------------

    def movements(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.query("SELECT * FROM movements ORDER BY id")]

    def remembered_response(self, external_uuid: str) -> dict[str, Any] | None:
        rows = self.db.query("SELECT response FROM external_requests WHERE external_uuid = ?", (external_uuid,))
        return json.loads(rows[0]["response"]) if rows else None

    def remember_response(self, external_uuid: str, response: Mapping[str, Any]) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO external_requests (external_uuid, response) VALUES (?, ?)",
            (external_uuid, json.dumps(response)),
        )

    # --- low stock ------------------------------------------------------------------------

    def set_low_stock(self, entries: list[tuple[str, str, object, object]]) -> None:
        with self.db.transaction() as conn:
            for product, variant, level, alert in entries:
                conn.execute(
                    "INSERT INTO low_stock (variant_uuid, product_uuid, level, alert) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(variant_uuid) DO UPDATE SET level = excluded.level, alert = excluded.alert",
                    (variant, product, level, None if alert is None else int(bool(alert))),
                )

    def delete_low_stock(self, variants: list[str]) -> None:
        with self.db.transaction() as conn:
            conn.executemany("DELETE FROM low_stock WHERE variant_uuid = ?", [(v,) for v in variants])

    def low_stock(self, product: str | None = None) -> list[dict[str, Any]]:
        rows = self.db.query(
            "SELECT l.variant_uuid, l.product_uuid, l.level, l.alert FROM low_stock l "
            "JOIN variants v ON v.uuid = l.variant_uuid ORDER BY v.rowid"
        )
        return [dict(r) for r in rows if product is None or r["product_uuid"] == product]
