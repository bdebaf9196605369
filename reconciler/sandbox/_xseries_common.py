"""Shared pieces of the X-Series simulator: schema, errors, the version counter, paging, the rate budget.

Split out of :mod:`reconciler.sandbox.xseries` to keep modules small; nothing here is public API.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, Callable, Mapping

from starlette.requests import Request

_SCHEMA = """
CREATE TABLE IF NOT EXISTS xs_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS xs_outlets (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, version INTEGER NOT NULL, deleted_at TEXT
);
CREATE TABLE IF NOT EXISTS xs_products (
    id TEXT PRIMARY KEY, sku TEXT, name TEXT NOT NULL, track_inventory INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, version INTEGER NOT NULL, deleted_at TEXT
);
-- xs_inventory: INVENTORY_TABLE_SQL below, spliced in here
@INVENTORY@;
@INDEX@;
CREATE TABLE IF NOT EXISTS xs_consignments (
    id TEXT PRIMARY KEY, outlet_id TEXT NOT NULL, name TEXT NOT NULL, consignment_date TEXT NOT NULL,
    due_at TEXT, received_at TEXT, type TEXT NOT NULL, status TEXT NOT NULL, supplier_id TEXT,
    source_outlet_id TEXT, reference TEXT, supplier_invoice TEXT, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL, deleted_at TEXT, version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS xs_consignment_products (
    consignment_id TEXT NOT NULL, product_id TEXT NOT NULL, count REAL, received REAL, cost REAL,
    status TEXT NOT NULL DEFAULT 'PENDING', created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    version INTEGER NOT NULL, PRIMARY KEY (consignment_id, product_id)
);
"""

DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 10_000  # govend: every 2.0 endpoint except sales caps pages at 10,000


class XsError(Exception):
    """A vendor error: answered as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def iso(ts: float) -> str:
    """X-Series timestamps look like ``2014-07-13T23:22:00+00:00``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ts))


def http_date(ts: float) -> str:
    """RFC 1123 date, as X-Series sends in ``Retry-After`` (govend parses it as a date)."""
    return formatdate(ts, usegmt=True)


def number(value: float) -> int | float:
    """Whole numbers as JSON integers, like the vendor's examples (``21``, not ``21.0``)."""
    return int(value) if float(value).is_integer() else value


def decimal_string(value: float | None) -> str | None:
    """Consignment counts are decimal strings with five places: ``"60.00000"``."""
    return None if value is None else f"{value:.5f}"


def next_version(conn: sqlite3.Connection, step: int) -> int:
    """Bump the store-wide version counter; versions are global and deliberately not consecutive."""
    row = conn.execute("SELECT value FROM xs_meta WHERE key = 'version'").fetchone()
    value = (row[0] if row else 1_000_000) + step
    conn.execute("INSERT OR REPLACE INTO xs_meta (key, value) VALUES ('version', ?)", (value,))
    return value


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise XsError(400, "Request body is empty; send a JSON document")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise XsError(400, f"Request body is not valid JSON: {exc}") from exc


def unwrap(body: Any) -> Any:
    """The spec wraps request bodies in ``{"data": ...}``, the tutorials do not; accept both."""
    if isinstance(body, dict) and set(body) == {"data"}:
        return body["data"]
    return body


def _int_param(request: Request, name: str, default: int | None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise XsError(400, f"Query parameter {name} must be an integer, got {raw!r}") from exc


@dataclass(frozen=True)
class Cursor:
    """``after`` (exclusive lower bound), ``before`` (exclusive upper bound), ``page_size``."""

    after: int
    before: int | None
    page_size: int

    @classmethod
    def from_request(cls, request: Request) -> Cursor:
        after = _int_param(request, "after", 0) or 0
        before = _int_param(request, "before", None)
        size = _int_param(request, "page_size", DEFAULT_PAGE_SIZE) or DEFAULT_PAGE_SIZE
        if size < 0:
            raise XsError(400, f"Query parameter page_size must be positive, got {size}")
        return cls(after, before, min(size, MAX_PAGE_SIZE))

    def where(self) -> tuple[str, list[Any]]:
        sql, params = "version > ?", [self.after]
        if self.before is not None:
            sql += " AND version < ?"
            params.append(self.before)
        return sql, params


def collection(items: list[dict[str, Any]]) -> dict[str, Any]:
    """A 2.0 collection. An empty page has no ``version`` (the spec's Version needs both numbers)."""
    if not items:
        return {"data": []}
    versions = [item["version"] for item in items]
    return {"data": items, "version": {"min": min(versions), "max": max(versions)}}


# --- the inventory page, from each record's stored JSON text ---------------------------------
#
# At a million positions the simulator spent ~15 us a record building a dict per row and encoding
# it (docs/performance.md, round 2), then ~4-6 us concatenating each record's JSON in the page
# query (round 3). Now each record's JSON text is a STORED generated column of xs_inventory:
# SQLite computes it on every INSERT and UPDATE, whoever writes (fixtures, the 2.1 product PUT,
# consignments, sales, retiring, the benchmark's bulk seeding, a test's raw UPDATE), from the
# row's final values, version included; the page is the group_concat of the stored texts in
# version order (~0.8 us a record, sending included). The text must decode to exactly what
# ``inventory_body`` + ``collection`` give, numbers vs strings and nulls included, so every value
# SQLite could write differently is flagged (``record_py``: "needs the Python path"), and a page
# holding a flagged record is answered by the Python path instead:
# - REAL columns: ``number()`` turns whole values into JSON integers; SQL does the same below 2**52
#   and flags anything bigger (CAST to INTEGER saturates, while ``int(1e300)`` is a 301-digit
#   integer; infinities, which the Python path refuses, too). SQLite 3.40 writes other REALs with
#   15 significant digits (0.30000000000000004 -> 0.3), so a non-whole value is kept only if its
#   text reads back as the same double (1e-07 comes out as 1.0e-07: the same number).
# - reorder_* hold JSON text written by ``json.dumps``; 'null' is copied, anything else goes
#   through ``json()`` (valid, minified); text JSON1 does not accept (NaN, Infinity) is flagged.
# - a record whose text came out NULL (a value no branch above renders) is flagged too.
# Row order: group_concat reads the subquery's rows in its ORDER BY order (a subquery with LIMIT
# is never flattened into an aggregate); tests/sandbox/test_xseries*.py check the page.
# The expressions are part of the table's schema: a state file whose xs_inventory was made by
# other code (before the column existed, or with other expressions) is rebuilt on open
# (``upgrade_inventory``).

_WHOLE = "({c} = CAST({c} AS INTEGER) AND abs({c}) < 4503599627370496)"
_NUM = "(CASE WHEN " + _WHOLE + " THEN CAST({c} AS INTEGER) ELSE {c} END)"
_NUM_BAD = "(abs({c}) >= 4503599627370496 OR (NOT " + _WHOLE + " AND CAST(CAST({c} AS TEXT) AS REAL) IS NOT {c}))"
_REORDER = "(CASE WHEN {c} = 'null' THEN 'null' WHEN json_valid({c}) THEN json({c}) END)"
_ROW = (
    """'{{"id":' || json_quote(id) || ',"product_id":' || json_quote(product_id)"""
    """ || ',"outlet_id":' || json_quote(outlet_id) || ',"inventory_level":' || {amount}"""
    """ || ',"current_amount":' || {amount} || ',"reorder_point":' || {point}"""
    """ || ',"reorder_amount":' || {reorder_amount} || ',"average_cost":' || {cost}"""
    """ || ',"version":' || version || ',"deleted_at":' || json_quote(deleted_at) || '}}'"""
)
RECORD_JSON_SQL = _ROW.format(
    amount=_NUM.format(c="current_amount"),
    cost=_NUM.format(c="average_cost"),
    point=_REORDER.format(c="reorder_point"),
    reorder_amount=_REORDER.format(c="reorder_amount"),
)
RECORD_PY_SQL = "coalesce(record_json IS NULL OR {}, 1)".format(" OR ".join([
    _NUM_BAD.format(c="current_amount"),
    _NUM_BAD.format(c="average_cost"),
    "(reorder_point != 'null' AND NOT json_valid(reorder_point))",
    "(reorder_amount != 'null' AND NOT json_valid(reorder_amount))",
]))
# reorder_point / reorder_amount hold JSON text so that a number, null and the quirky "" survive.
# The stored columns' expressions are part of this text; SCHEMA gets it with "IF NOT EXISTS".
INVENTORY_TABLE_SQL = (
    "CREATE TABLE xs_inventory (\n"
    "    id TEXT PRIMARY KEY, product_id TEXT NOT NULL, outlet_id TEXT NOT NULL,\n"
    "    current_amount REAL NOT NULL, reorder_point TEXT NOT NULL DEFAULT 'null',\n"
    "    reorder_amount TEXT NOT NULL DEFAULT 'null', average_cost REAL NOT NULL DEFAULT 0,\n"
    "    version INTEGER NOT NULL, deleted_at TEXT,\n"
    "    record_json TEXT GENERATED ALWAYS AS (" + RECORD_JSON_SQL + ") STORED,\n"
    "    record_py INTEGER GENERATED ALWAYS AS (" + RECORD_PY_SQL + ") STORED,\n"
    "    UNIQUE (product_id, outlet_id)\n"
    ")"
)
INVENTORY_COLUMNS = (
    "id, product_id, outlet_id, current_amount, reorder_point, reorder_amount, average_cost, version, deleted_at"
)
_INVENTORY_INDEX_SQL = "CREATE INDEX IF NOT EXISTS xs_inventory_version ON xs_inventory (version)"
_INVENTORY_PAGE_SQL = """
SELECT count(*), coalesce(max(record_py), 1), CAST(group_concat(record_json, ',') AS BLOB), min(version), max(version)
FROM (SELECT record_json, record_py, version FROM xs_inventory WHERE @WHERE@ ORDER BY version LIMIT ?)
"""
EMPTY_PAGE = b'{"data":[]}'
_STORED_EXPRESSIONS = (f"record_json TEXT GENERATED ALWAYS AS ({RECORD_JSON_SQL}) STORED",
                       f"record_py INTEGER GENERATED ALWAYS AS ({RECORD_PY_SQL}) STORED")
SCHEMA = _SCHEMA.replace("@INVENTORY@", INVENTORY_TABLE_SQL.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1)) \
    .replace("@INDEX@", _INVENTORY_INDEX_SQL)


def inventory_page_sql(where: str) -> str:
    """The page query for a ``Cursor.where()`` clause (plus filters); its last parameter is the
    page size. It returns one row: (records, 1 if any record needs the Python path, the records'
    texts joined by commas as bytes, lowest version, highest version); ``page_parts`` wraps them."""
    return _INVENTORY_PAGE_SQL.replace("@WHERE@", where)


def page_parts(records: bytes, low: int, high: int) -> tuple[bytes, bytes, bytes]:
    """The page as three pieces, sent one after the other: the records' text is not copied again
    to wrap it (a 10,000-record page is 2.6 MB; each copy costs more in page faults than in
    copying)."""
    return b'{"data":[', records, b'],"version":{"min":%d,"max":%d}}' % (low, high)


def upgrade_inventory(conn: sqlite3.Connection) -> bool:
    """Bring an existing state file's xs_inventory to this code's table (True if it was rebuilt);
    call it inside a transaction, on open, before fixtures are loaded.

    SQLite cannot add a STORED column to a table, so a table made without ``record_json`` (state
    files from before it), or with other expressions, is rebuilt: renamed, copied into a new table
    (which computes every record's text), dropped with its index; then the index is made again."""
    row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'xs_inventory'").fetchone()
    if row is not None and all(expr in row[0] for expr in _STORED_EXPRESSIONS):
        return False
    if row is not None:
        conn.execute("ALTER TABLE xs_inventory RENAME TO xs_inventory_before_upgrade")
    conn.execute(INVENTORY_TABLE_SQL)
    if row is not None:
        conn.execute(f"INSERT INTO xs_inventory ({INVENTORY_COLUMNS})"
                     f" SELECT {INVENTORY_COLUMNS} FROM xs_inventory_before_upgrade ORDER BY rowid")
        conn.execute("DROP TABLE xs_inventory_before_upgrade")
    conn.execute(_INVENTORY_INDEX_SQL)
    return True


def add_family_column(conn: sqlite3.Connection) -> None:
    """State files from before families were modelled get the column (NULL: not a variant)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(xs_products)")}
    if "variant_parent_id" not in columns:
        conn.execute("ALTER TABLE xs_products ADD COLUMN variant_parent_id TEXT")


class RateBudget:
    """X-Series' fixed request budget per window (300 x registers + 50 per 300 s).

    The clock is injectable so tests can move time instead of sleeping five minutes.
    """

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._lock = threading.Lock()
        self._window_start = clock()
        self._used = 0

    def _roll(self) -> None:
        now = self.clock()
        if self.window_s <= 0:
            return  # a zero window never resets: the budget is spent for good
        if now >= self._window_start + self.window_s:
            elapsed_windows = int((now - self._window_start) // self.window_s)
            self._window_start += elapsed_windows * self.window_s
            self._used = 0

    def take(self) -> bool:
        """Spend one request; False once the window's budget is gone."""
        with self._lock:
            self._roll()
            if self.limit <= 0:
                return True  # 0 disables the budget
            if self._used >= self.limit:
                return False
            self._used += 1
            return True

    @property
    def remaining(self) -> int:
        with self._lock:
            self._roll()
            return max(self.limit - self._used, 0)

    @property
    def resets_at(self) -> float:
        with self._lock:
            self._roll()
            return self._window_start + self.window_s

    def configure(self, changes: Mapping[str, Any]) -> None:
        """Test/demo control: ``limit``, ``window_s``, ``reset`` (start a fresh window now)."""
        with self._lock:
            if "limit" in changes:
                self.limit = int(changes["limit"])
            if "window_s" in changes:
                self.window_s = float(changes["window_s"])
            if changes.get("reset"):
                self._window_start, self._used = self.clock(), 0

    def headers(self) -> dict[str, str]:
        if self.limit <= 0:
            return {}
        return {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining)}

    def snapshot(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "remaining": self.remaining,
            "window_s": self.window_s,
            "resets_at": http_date(self.resets_at),
        }
