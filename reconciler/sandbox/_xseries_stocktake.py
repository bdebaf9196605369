"""X-Series sandbox: inventory counts (STOCKTAKE consignments), with the vendor's background job.

Documented rules enforced (../shared/research/xseries_counts.md, Q1; XS-IC, XS-OAS, JTTC):
- filters ``{"type": "product", "value": id}``, at most 25 a count; other filter types are
  documented but not simulated (422 says so);
- created as STOCKTAKE_SCHEDULED (no lines) or STOCKTAKE_IN_PROGRESS (a background job fills one
  line per filtered product with ``count`` = the expected level, then the status becomes
  STOCKTAKE_IN_PROGRESS_PROCESSED); a client may PUT PROCESSED itself (JTTC);
- lines accept ``received`` only while IN_PROGRESS / PROCESSED, and only lines of the count; a
  PUT without ``received`` is refused "No valid data modification received" (JTTC 619ca61);
- STOCKTAKE_COMPLETE only from PROCESSED: from IN_PROGRESS it is 400 "Invalid status change"
  (JTTC 7005e9f); CANCELLED at any time before completion;
- completing books every line: an empty ``received`` counts as 0 (XS-IC, for the unfiltered case).

Undocumented, so behind switches:
- ``stocktake_sales``: what completion does to sales made since the line's ``count`` was taken:
  ``variance`` (default) applies ``received - count`` on the current level, keeping them;
  ``absolute`` sets the level to ``received``, losing them.
- ``stocktake_delay_s``: how long the background job takes (default 0.3 s; no SLA is published).
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any, Mapping

from starlette.responses import JSONResponse, Response

from reconciler.errors import ConfigError, Problem
from reconciler.sandbox._xseries_common import XsError

if TYPE_CHECKING:
    from reconciler.sandbox._xseries_consignments import ConsignmentAPI

SALES = ("variance", "absolute")
MAX_FILTERS = 25
SCHEDULED, IN_PROGRESS = "STOCKTAKE_SCHEDULED", "STOCKTAKE_IN_PROGRESS"
PROCESSED, COMPLETE = "STOCKTAKE_IN_PROGRESS_PROCESSED", "STOCKTAKE_COMPLETE"
OPEN_STATES = (SCHEDULED, IN_PROGRESS, PROCESSED)
_TABLE = ("CREATE TABLE IF NOT EXISTS xs_stocktakes (consignment_id TEXT PRIMARY KEY, filters TEXT NOT NULL, "
          "process_at REAL)")


class StocktakeAPI:
    def __init__(self, api: ConsignmentAPI, sales: str = "variance", delay_s: float | str = 0.3) -> None:
        if sales not in SALES:
            raise ConfigError([Problem(f"the xseries sandbox option stocktake_sales is {sales!r}; "
                                       f"use {' or '.join(SALES)}", "options")])
        self.api, self.sim, self.sales, self.delay_s = api, api.sim, sales, float(delay_s)
        self._ready = False

    def _table(self, conn: sqlite3.Connection) -> None:
        if not self._ready:
            conn.execute(_TABLE)
            self._ready = True

    # --- create and the background job -----------------------------------------------------------

    def create(self, data: Mapping[str, Any]) -> Response:
        self.sim.require_scope("consignments:write:inventory_count")
        status = data.get("status", SCHEDULED)
        if status not in (SCHEDULED, IN_PROGRESS):
            raise XsError(400, f"A STOCKTAKE consignment cannot be created as {status!r}; "
                               f"create it as {SCHEDULED} or {IN_PROGRESS}")
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise XsError(422, "name is required (a non-empty string)")
        products = self._filters(data.get("filters") or [])
        fields = self.api._outlets(data, "STOCKTAKE", required=True)
        row = self.api._insert("STOCKTAKE", status, name, fields)
        with self.sim.db.transaction() as conn:
            self._table(conn)
            due = self.sim.clock() + self.delay_s if status == IN_PROGRESS else None
            conn.execute("INSERT INTO xs_stocktakes VALUES (?, ?, ?)", (row["id"], json.dumps(products), due))
        from reconciler.sandbox._xseries_consignments import consignment_body

        return JSONResponse({"data": consignment_body(row)}, status_code=201)

    def _filters(self, filters: Any) -> list[str]:
        if not isinstance(filters, list):
            raise XsError(422, "filters must be a list of {type, value}")
        if len(filters) > MAX_FILTERS:
            raise XsError(422, f"A count takes at most {MAX_FILTERS} filters; got {len(filters)}")
        products = []
        for f in filters:
            if not isinstance(f, dict) or f.get("type") != "product":
                raise XsError(422, f"filter {f!r}: only {{\"type\": \"product\", \"value\": id}} is simulated "
                                   "(product_type, brand, supplier and tag are documented but not simulated)")
            if self.sim.product_row(str(f.get("value"))) is None:
                raise XsError(422, f"filter {f!r}: no such product")
            products.append(str(f["value"]))
        return products

    def process(self, row: sqlite3.Row, *, now: bool = False) -> None:
        """The background job: once due, one line per product with count = its level then."""
        if row["type"] != "STOCKTAKE" or row["status"] != IN_PROGRESS:
            return
        with self.sim.db.transaction() as conn:
            self._table(conn)
            job = conn.execute("SELECT filters, process_at FROM xs_stocktakes WHERE consignment_id = ?",
                               (row["id"],)).fetchone()
            if job is None or (not now and (job[1] is None or self.sim.clock() < job[1])):
                return
            stamp = self.sim.now()
            for pid in json.loads(job[0]):
                level = self._level(conn, pid, row["outlet_id"])
                conn.execute("INSERT OR IGNORE INTO xs_consignment_products (consignment_id, product_id, count, "
                             "received, cost, status, created_at, updated_at, version) VALUES (?, ?, ?, NULL, NULL, "
                             "'PENDING', ?, ?, ?)", (row["id"], pid, level, stamp, stamp, self.sim.version_step(conn)))
            self.api._touch(conn, row["id"], {"status": PROCESSED})

    @staticmethod
    def _level(conn: sqlite3.Connection, product_id: str, outlet_id: str) -> float:
        got = conn.execute("SELECT current_amount FROM xs_inventory WHERE product_id = ? AND outlet_id = ?",
                           (product_id, outlet_id)).fetchone()
        return float(got[0]) if got and got[0] is not None else 0.0

    # --- status changes and lines ------------------------------------------------------------------

    def update(self, row: sqlite3.Row, data: Mapping[str, Any]) -> Response:
        self.sim.require_scope("consignments:write:inventory_count")
        status = data.get("status", row["status"])
        if status == row["status"]:
            return self._answer(row["id"])
        if row["status"] not in OPEN_STATES:
            raise XsError(400, f"A {row['status']} count cannot be changed")
        if status in ("CANCELLED", "CLOSED"):
            with self.sim.db.transaction() as conn:
                self.api._touch(conn, row["id"], {"status": status})
        elif (row["status"], status) == (SCHEDULED, IN_PROGRESS):
            with self.sim.db.transaction() as conn:
                self._table(conn)
                conn.execute("UPDATE xs_stocktakes SET process_at = ? WHERE consignment_id = ?",
                             (self.sim.clock() + self.delay_s, row["id"]))
                self.api._touch(conn, row["id"], {"status": IN_PROGRESS})
        elif (row["status"], status) == (IN_PROGRESS, PROCESSED):
            self.process(row, now=True)
        elif (row["status"], status) == (PROCESSED, COMPLETE):
            self._complete(row)
        else:
            raise XsError(400, f"Invalid status change: {row['status']} -> {status!r}")
        return self._answer(row["id"])

    def _complete(self, row: sqlite3.Row) -> None:
        with self.sim.db.transaction() as conn:
            for line in conn.execute("SELECT * FROM xs_consignment_products WHERE consignment_id = ?",
                                     (row["id"],)).fetchall():
                received = line["received"] or 0.0  # an empty line is booked as 0
                level = self._level(conn, line["product_id"], row["outlet_id"])
                delta = received - (line["count"] or 0.0) if self.sales == "variance" else received - level
                self.sim.adjust_stock(conn, line["product_id"], row["outlet_id"], delta)
            conn.execute("UPDATE xs_consignment_products SET status = 'STOCKTAKE_SUCCESS' WHERE consignment_id = ?",
                         (row["id"],))
            self.api._touch(conn, row["id"], {"status": COMPLETE, "received_at": self.sim.now()})

    def set_line(self, row: sqlite3.Row, product_id: str, data: Mapping[str, Any], *, add: bool) -> Response:
        self.sim.require_scope("consignments:write:inventory_count")
        if row["status"] not in (IN_PROGRESS, PROCESSED):
            raise XsError(400, f"Lines of a {row['status']} count cannot change")
        if "received" not in data:
            raise XsError(400, "No valid data modification received")
        try:
            received = float(data["received"])
        except (TypeError, ValueError):
            raise XsError(422, f"received must be a number; got {data['received']!r}") from None
        lines = self.api._lines(row["id"])
        if product_id not in lines and not add:
            raise XsError(404, f"Product {product_id} is not in count {row['id']}")
        with self.sim.db.transaction() as conn:
            stamp, version = self.sim.now(), self.sim.version_step(conn)
            if product_id in lines:  # POST adds to the line (KMJ: "Increases or decreases"), PUT sets it
                value = (lines[product_id]["received"] or 0.0) + received if add else received
                conn.execute("UPDATE xs_consignment_products SET received = ?, updated_at = ?, version = ? "
                             "WHERE consignment_id = ? AND product_id = ?", (value, stamp, version, row["id"], product_id))
            else:
                conn.execute("INSERT INTO xs_consignment_products (consignment_id, product_id, count, received, "
                             "status, created_at, updated_at, version) VALUES (?, ?, NULL, ?, 'PENDING', ?, ?, ?)",
                             (row["id"], product_id, received, stamp, stamp, version))
        return JSONResponse({"data": self.api._line_body(self.api._lines(row["id"])[product_id])})

    def _answer(self, consignment_id: str) -> Response:
        from reconciler.sandbox._xseries_consignments import consignment_body

        return JSONResponse({"data": consignment_body(self.api._row(consignment_id))})
