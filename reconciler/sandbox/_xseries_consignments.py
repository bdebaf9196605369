"""X-Series consignments (API 2.0): supplier orders, outlet transfers and supplier returns.

Workflows and their stock effects (the reason a connector uses them for adjustments):

- SUPPLIER ``OPEN -> SENT -> DISPATCHED -> RECEIVED``; ``received`` units land at ``outlet_id`` on RECEIVED.
- OUTLET ``OPEN -> SENT -> RECEIVED``; ``count`` leaves ``source_outlet_id`` on SENT, ``received``
  (or ``count`` when not given) arrives at ``outlet_id`` on RECEIVED.
- RETURN ``OPEN -> SENT``; ``count`` leaves ``outlet_id`` on SENT.

All three can be CANCELLED before their final state. STOCKTAKE is not simulated (422).
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from reconciler.errors import ConfigError, Problem
from reconciler.sandbox._xseries_common import Cursor, XsError, collection, decimal_string, json_body, unwrap

if TYPE_CHECKING:
    from reconciler.sandbox.xseries import XSeriesSimulator

Handler = Callable[[Request], Awaitable[Response]]

TYPES = ("SUPPLIER", "OUTLET", "RETURN", "STOCKTAKE")
TRANSITIONS: dict[str, dict[str, frozenset[str]]] = {
    "SUPPLIER": {
        "OPEN": frozenset({"SENT", "CANCELLED"}),
        "SENT": frozenset({"DISPATCHED", "CANCELLED"}),
        "DISPATCHED": frozenset({"RECEIVED", "CANCELLED"}),
    },
    "OUTLET": {"OPEN": frozenset({"SENT", "CANCELLED"}), "SENT": frozenset({"RECEIVED", "CANCELLED"})},
    "RETURN": {"OPEN": frozenset({"SENT", "CANCELLED"})},
}
CREATE_STATUSES = {"SUPPLIER": ("OPEN", "SENT"), "OUTLET": ("OPEN",), "RETURN": ("OPEN",)}
FINAL = frozenset({"RECEIVED", "CANCELLED"})
# Product lines may not be removed in these states (spec, DeleteProductFromConsignment).
NO_LINE_DELETE = {
    "SUPPLIER": frozenset({"DISPATCHED", "RECEIVED", "CANCELLED"}),
    "OUTLET": frozenset({"SENT", "RECEIVED", "CANCELLED"}),
    "RETURN": frozenset({"SENT", "CANCELLED"}),
}
OPTIONAL_TEXT = ("due_at", "supplier_id", "reference", "supplier_invoice", "consignment_date")
BULK_LIMIT = 500  # the docs advise at most 500 lines per call; enforced here (an assumption)
# Switches for behaviour the vendor does not document (docs/sandboxes/xseries.md), first = default:
# - open_line_received: a single-line POST/PUT carrying ``received`` on an OPEN SUPPLIER order.
#   Documented: only a SENT order is auto-dispatched by it, and in OPEN "only count is updated",
#   so ``received`` is most likely dropped ("drop"); it might be refused ("reject"); the old
#   sandbox dispatched it like the bulk endpoint ("dispatch", lenient, not what the docs say).
# - partial_status_put: a consignment PUT without name, outlet_id and type (the spec's required
#   fields). Refused by default ("reject"); a live client's partial STOCKTAKE PUT was accepted,
#   so "accept" models that reading.
SWITCHES = {"open_line_received": ("drop", "reject", "dispatch"), "partial_status_put": ("reject", "accept")}
REQUIRED_PUT_FIELDS = ("name", "outlet_id", "type")


def switch_value(name: str, value: str) -> str:
    """A switch's value, or a ConfigError naming the switch and its values."""
    allowed = SWITCHES[name]
    if value not in allowed:
        raise ConfigError([Problem(f"the xseries sandbox option {name} must be one of {', '.join(allowed)}, "
                                   f"got {value!r}", "options")])
    return value


@dataclass
class Line:
    """One product line of a request, validated."""

    product_id: str
    count: float | None = None
    received: float | None = None
    cost: float | None = None
    fields: frozenset[str] = frozenset()  # which of count/received/cost the request carried


class ConsignmentAPI:
    """Handlers for ``/api/2.0/consignments...``; state lives in the simulator's database."""

    def __init__(self, sim: XSeriesSimulator, open_line_received: str = "drop",
                 partial_status_put: str = "reject", stocktake: Mapping[str, Any] | None = None) -> None:
        from reconciler.sandbox._xseries_stocktake import StocktakeAPI

        self.sim = sim
        self.open_line_received = open_line_received
        self.partial_status_put = partial_status_put
        self.stocktake = StocktakeAPI(self, **dict(stocktake or {}))  # STOCKTAKE (inventory counts)

    def route_table(self) -> list[tuple[str, Handler, list[str]]]:
        base = "/api/2.0/consignments"
        return [
            (base, self._list, ["GET"]),
            (base, self._create, ["POST"]),
            (base + "/{consignment_id}", self._get, ["GET"]),
            (base + "/{consignment_id}", self._update, ["PUT"]),
            (base + "/{consignment_id}", self._delete, ["DELETE"]),
            (base + "/{consignment_id}/products", self._list_lines, ["GET"]),
            (base + "/{consignment_id}/products", self._add_line, ["POST"]),
            (base + "/{consignment_id}/products/{product_id}", self._update_line, ["PUT"]),
            (base + "/{consignment_id}/products/{product_id}", self._delete_line, ["DELETE"]),
            (base + "/{consignment_id}/bulk", self._bulk, ["POST"]),
        ]

    # --- reading --------------------------------------------------------------------------------

    def _row(self, consignment_id: str) -> sqlite3.Row:
        rows = self.sim.db.query(
            "SELECT * FROM xs_consignments WHERE id = ? AND deleted_at IS NULL", (consignment_id,)
        )
        if not rows:
            raise XsError(404, f"Consignment {consignment_id} not found")
        if rows[0]["type"] == "STOCKTAKE" and rows[0]["status"] == "STOCKTAKE_IN_PROGRESS":
            self.stocktake.process(rows[0])  # the background job, once due
            rows = self.sim.db.query("SELECT * FROM xs_consignments WHERE id = ?", (consignment_id,))
        return rows[0]

    def _lines(self, consignment_id: str) -> dict[str, sqlite3.Row]:
        rows = self.sim.db.query(
            "SELECT * FROM xs_consignment_products WHERE consignment_id = ? ORDER BY version", (consignment_id,)
        )
        return {r["product_id"]: r for r in rows}

    async def _list(self, request: Request) -> Response:
        cursor = Cursor.from_request(request)
        where, params = cursor.where()
        # `reference` is an ASSUMPTION (not in the spec): connectors find their own orders after a crash.
        for name in ("type", "status", "outlet_id", "reference"):
            if (value := request.query_params.get(name)) is not None:
                where, params = f"{where} AND {name} = ?", [*params, value]
        if request.query_params.get("deleted", "false").lower() != "true":
            where += " AND deleted_at IS NULL"
        rows = self.sim.db.query(
            f"SELECT * FROM xs_consignments WHERE {where} ORDER BY version LIMIT ?", [*params, cursor.page_size]
        )
        return JSONResponse(collection([consignment_body(r) for r in rows]))

    async def _get(self, request: Request) -> Response:
        return JSONResponse({"data": consignment_body(self._row(request.path_params["consignment_id"]))})

    async def _list_lines(self, request: Request) -> Response:
        consignment_id = request.path_params["consignment_id"]
        self._row(consignment_id)
        cursor = Cursor.from_request(request)
        where, params = cursor.where()
        rows = self.sim.db.query(
            f"SELECT * FROM xs_consignment_products WHERE consignment_id = ? AND {where} ORDER BY version LIMIT ?",
            [consignment_id, *params, cursor.page_size],
        )
        return JSONResponse(collection([self._line_body(r) for r in rows]))

    def _line_body(self, row: sqlite3.Row) -> dict[str, Any]:
        product = self.sim.product_row(row["product_id"])
        return {
            "product_id": row["product_id"],
            "product_sku": product["sku"] if product else None,
            "count": decimal_string(row["count"]),
            "received": decimal_string(row["received"]),
            "cost": decimal_string(row["cost"]),
            "is_included": True,
            "status": row["status"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
            "deleted_at": None,
            "version": row["version"],
        }

    # --- consignments -------------------------------------------------------------------------------

    async def _create(self, request: Request) -> Response:
        data = _object(unwrap(await json_body(request)), "consignment")
        ctype = data.get("type")
        if ctype not in TYPES:
            raise XsError(422, f"type must be one of {', '.join(TYPES)}; got {ctype!r}")
        if ctype == "STOCKTAKE":
            return self.stocktake.create(data)
        self.sim.require_scope("consignments:write:stock_transfer" if ctype == "OUTLET" else "consignments:write:stock_order")
        status = data.get("status", "OPEN")
        if status not in CREATE_STATUSES[ctype]:
            raise XsError(422, f"A {ctype} consignment cannot be created as {status!r}; "
                               f"create it as {' or '.join(CREATE_STATUSES[ctype])}")
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise XsError(422, "name is required (a non-empty string)")
        fields = self._outlets(data, ctype, required=True)
        fields.update(_optional_text(data))
        return JSONResponse({"data": consignment_body(self._insert(ctype, status, name, fields))}, status_code=201)

    def _outlets(self, data: Mapping[str, Any], ctype: str, *, required: bool) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if required or "outlet_id" in data:
            if not self.sim.outlet_exists(data.get("outlet_id")):
                raise XsError(422, f"outlet_id {data.get('outlet_id')!r} is not an outlet of this store")
            fields["outlet_id"] = data["outlet_id"]
        if ctype == "OUTLET" and (required or "source_outlet_id" in data):
            source = data.get("source_outlet_id")
            if not self.sim.outlet_exists(source):
                raise XsError(422, f"source_outlet_id {source!r} must be an outlet of this store (the sender)")
            if source == data.get("outlet_id", fields.get("outlet_id")):
                raise XsError(422, "source_outlet_id and outlet_id must be different outlets")
            fields["source_outlet_id"] = source
        return fields

    def _insert(self, ctype: str, status: str, name: str, fields: Mapping[str, Any]) -> sqlite3.Row:
        consignment_id, stamp = str(uuid.uuid4()), self.sim.now()
        with self.sim.db.transaction() as conn:
            conn.execute(
                "INSERT INTO xs_consignments (id, outlet_id, name, consignment_date, due_at, type, status,"
                " supplier_id, source_outlet_id, reference, supplier_invoice, created_at, updated_at, version)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (consignment_id, fields["outlet_id"], name, fields.get("consignment_date") or stamp,
                 fields.get("due_at"), ctype, status, fields.get("supplier_id"), fields.get("source_outlet_id"),
                 fields.get("reference"), fields.get("supplier_invoice"), stamp, stamp, self.sim.version_step(conn)),
            )
        return self._row(consignment_id)

    async def _update(self, request: Request) -> Response:
        row = self._row(request.path_params["consignment_id"])
        data = _object(unwrap(await json_body(request)), "consignment")
        if row["type"] == "STOCKTAKE":
            return self.stocktake.update(row, data)
        if row["status"] in FINAL:
            raise XsError(422, f"A {row['status']} consignment cannot be edited")
        missing = [name for name in REQUIRED_PUT_FIELDS if name not in data]
        if missing and self.partial_status_put == "reject":
            raise XsError(422, f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} required: send "
                               "name, outlet_id and type (and supplier_id / source_outlet_id when set) with the status")
        if "type" in data and data["type"] != row["type"]:
            raise XsError(422, f"The type of a consignment cannot change (it is {row['type']})")
        fields = _optional_text(data)
        if "name" in data:
            if not isinstance(data["name"], str) or not data["name"]:
                raise XsError(422, "name must be a non-empty string")
            fields["name"] = data["name"]
        # The documented PUT repeats outlet_id (and source_outlet_id): only a change is refused.
        if any(name in data and data[name] != row[name] for name in ("outlet_id", "source_outlet_id")):
            if row["status"] != "OPEN":
                raise XsError(422, "outlet_id and source_outlet_id can only change while the consignment is OPEN")
            fields.update(self._outlets({**dict(row), **data}, row["type"], required=True))
        status = data.get("status", row["status"])
        if status != row["status"]:
            self._check_transition(row, status)
        with self.sim.db.transaction() as conn:
            if status != row["status"]:
                self._transition(conn, row, status)
            self._touch(conn, row["id"], fields)
        return JSONResponse({"data": consignment_body(self._row(row["id"]))})

    def _check_transition(self, row: sqlite3.Row, status: Any) -> None:
        allowed = TRANSITIONS[row["type"]].get(row["status"], frozenset())
        if status not in allowed:
            options = ", ".join(sorted(allowed)) or "none"
            raise XsError(422, f"A {row['type']} consignment cannot go from {row['status']} to {status!r} "
                               f"(allowed: {options})")
        lines = self._lines(row["id"])
        if not lines:
            raise XsError(422, "Cannot update the status of a consignment that has no products")
        if status == "RECEIVED" and not any(_arriving(row["type"], line) for line in lines.values()):
            raise XsError(422, "At least one product needs a non-zero received quantity before RECEIVED")

    def _transition(self, conn: sqlite3.Connection, row: sqlite3.Row, status: str) -> None:
        """Move to ``status`` and apply its stock effect, inside the caller's transaction."""
        lines = conn.execute(
            "SELECT * FROM xs_consignment_products WHERE consignment_id = ?", (row["id"],)
        ).fetchall()
        ctype, old, adjust = row["type"], row["status"], self.sim.adjust_stock
        for line in lines:
            count = line["count"] or 0.0
            if ctype == "SUPPLIER" and status == "RECEIVED":
                adjust(conn, line["product_id"], row["outlet_id"], line["received"] or 0.0)
            elif ctype == "RETURN" and status == "SENT":
                adjust(conn, line["product_id"], row["outlet_id"], -count)
            elif ctype == "OUTLET" and status == "SENT":
                adjust(conn, line["product_id"], row["source_outlet_id"], -count)
            elif ctype == "OUTLET" and status == "RECEIVED":
                adjust(conn, line["product_id"], row["outlet_id"], _arriving(ctype, line))
            elif ctype == "OUTLET" and status == "CANCELLED" and old == "SENT":
                adjust(conn, line["product_id"], row["source_outlet_id"], count)  # back to the sender
        if status == "RECEIVED":
            conn.execute(
                "UPDATE xs_consignment_products SET status = 'SUCCESS' WHERE consignment_id = ?", (row["id"],)
            )
        received_at = self.sim.now() if status == "RECEIVED" else row["received_at"]
        self._touch(conn, row["id"], {"status": status, "received_at": received_at})

    def _touch(self, conn: sqlite3.Connection, consignment_id: str, fields: Mapping[str, Any]) -> None:
        changes = {**fields, "updated_at": self.sim.now(), "version": self.sim.version_step(conn)}
        sets = ", ".join(f"{name} = ?" for name in changes)
        conn.execute(f"UPDATE xs_consignments SET {sets} WHERE id = ?", [*changes.values(), consignment_id])

    async def _delete(self, request: Request) -> Response:
        row = self._row(request.path_params["consignment_id"])
        if _stock_applied(row):
            raise XsError(422, f"A {row['type']} consignment in {row['status']} has moved stock and cannot be deleted")
        with self.sim.db.transaction() as conn:
            self._touch(conn, row["id"], {"deleted_at": self.sim.now()})
        return Response(status_code=204)

    # --- product lines -------------------------------------------------------------------------------

    def _check_lines_editable(self, row: sqlite3.Row) -> None:
        if row["status"] in FINAL:
            raise XsError(422, f"Cannot change products of a {row['status']} consignment")

    async def _add_line(self, request: Request) -> Response:
        row = self._row(request.path_params["consignment_id"])
        if row["type"] == "STOCKTAKE":
            data = _object(unwrap(await json_body(request)), "data")
            return self.stocktake.set_line(row, str(data.get("product_id")), data, add=True)
        line = self._parse_line(unwrap(await json_body(request)), "data")
        self._check_lines_editable(row)
        if line.product_id in self._lines(row["id"]):
            raise XsError(422, f"Product {line.product_id} is already in this consignment; use PUT to change it")
        self._write_lines(row, [self._single_line(row, line)], accumulate=False, bulk=False)
        return JSONResponse({"data": self._line_body(self._lines(row["id"])[line.product_id])})

    async def _update_line(self, request: Request) -> Response:
        row = self._row(request.path_params["consignment_id"])
        product_id = request.path_params["product_id"]
        data = _object(unwrap(await json_body(request)), "data")
        if row["type"] == "STOCKTAKE":
            return self.stocktake.set_line(row, product_id, data, add=False)
        line = self._parse_line({**data, "product_id": product_id}, "data")
        self._check_lines_editable(row)
        if product_id not in self._lines(row["id"]):
            raise XsError(404, f"Product {product_id} is not in consignment {row['id']}")
        self._write_lines(row, [self._single_line(row, line)], accumulate=False, bulk=False)
        return JSONResponse({"data": self._line_body(self._lines(row["id"])[product_id])})

    async def _delete_line(self, request: Request) -> Response:
        row = self._row(request.path_params["consignment_id"])
        product_id = request.path_params["product_id"]
        if row["status"] in NO_LINE_DELETE[row["type"]]:
            raise XsError(422, f"Cannot remove products from a {row['type']} consignment in {row['status']}")
        if product_id not in self._lines(row["id"]):
            raise XsError(404, f"Product {product_id} is not in consignment {row['id']}")
        with self.sim.db.transaction() as conn:
            conn.execute(
                "DELETE FROM xs_consignment_products WHERE consignment_id = ? AND product_id = ?",
                (row["id"], product_id),
            )
            self._touch(conn, row["id"], {})
        return Response(status_code=204)

    async def _bulk(self, request: Request) -> Response:
        row = self._row(request.path_params["consignment_id"])
        items = unwrap(await json_body(request))
        if not isinstance(items, list):
            raise XsError(422, "The bulk body must be an array of {product_id, count, received, cost}")
        if len(items) > BULK_LIMIT:
            raise XsError(422, f"Too many products in one bulk call: {len(items)} (at most {BULK_LIMIT}); split it")
        lines = [self._parse_line(item, f"[{i}]") for i, item in enumerate(items)]
        for i, line in enumerate(lines):
            if not {"count", "received"} & line.fields:
                raise XsError(422, f"[{i}]: each product needs count or received")
        self._check_lines_editable(row)
        self._write_lines(row, lines, accumulate=True, bulk=True)
        stored = self._lines(row["id"])
        result = {}
        for product_id in dict.fromkeys(line.product_id for line in lines):
            entry = {"count": decimal_string(stored[product_id]["count"])}
            if stored[product_id]["received"] is not None:
                entry["received"] = decimal_string(stored[product_id]["received"])
            result[product_id] = entry
        return JSONResponse({"data": result})

    def _parse_line(self, data: Any, where: str) -> Line:
        data = _object(data, where)
        product_id = data.get("product_id")
        if not isinstance(product_id, str) or self.sim.product_row(product_id) is None:
            raise XsError(422, f"{where}.product_id {product_id!r} is not a product of this store")
        line = Line(product_id)
        present = set()
        for name in ("count", "received", "cost"):
            if data.get(name) is not None:
                setattr(line, name, _quantity(data[name], f"{where}.{name}"))
                present.add(name)
        line.fields = frozenset(present)
        return line

    def _single_line(self, row: sqlite3.Row, line: Line) -> Line:
        """A single-line write's ``received`` on an OPEN supplier order (see SWITCHES)."""
        if row["type"] != "SUPPLIER" or row["status"] != "OPEN" or "received" not in line.fields:
            return line
        if self.open_line_received == "reject":
            raise XsError(422, "received can only be set once the order is SENT (or through /bulk)")
        if self.open_line_received == "drop":
            line.received, line.fields = None, line.fields - {"received"}
        return line

    def _write_lines(self, row: sqlite3.Row, lines: list[Line], *, accumulate: bool, bulk: bool) -> None:
        """Store lines in one transaction, with the side effects the spec describes: ``received``
        auto-dispatches a SENT order, and through /bulk an OPEN one too (2024-03 changelog)."""
        stamp = self.sim.now()
        dispatching = ("OPEN", "SENT") if bulk or self.open_line_received == "dispatch" else ("SENT",)
        with self.sim.db.transaction() as conn:
            for line in lines:
                self._write_line(conn, row, line, accumulate, stamp)
            if row["type"] == "SUPPLIER" and row["status"] in dispatching and any(
                "received" in line.fields for line in lines
            ):
                self._touch(conn, row["id"], {"status": "DISPATCHED"})  # the spec's auto-dispatch
            else:
                self._touch(conn, row["id"], {})

    def _write_line(self, conn: sqlite3.Connection, row: sqlite3.Row, line: Line, accumulate: bool, stamp: str) -> None:
        old = conn.execute(
            "SELECT * FROM xs_consignment_products WHERE consignment_id = ? AND product_id = ?",
            (row["id"], line.product_id),
        ).fetchone()
        values = {name: (old[name] if old else None) for name in ("count", "received", "cost")}
        for name in line.fields:
            new = getattr(line, name)
            values[name] = (values[name] or 0.0) + new if accumulate and name != "cost" else new
        version = self.sim.version_step(conn)
        conn.execute(
            "INSERT INTO xs_consignment_products (consignment_id, product_id, count, received, cost, created_at,"
            " updated_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (consignment_id, product_id) DO UPDATE"
            " SET count = excluded.count, received = excluded.received, cost = excluded.cost,"
            " updated_at = excluded.updated_at, version = excluded.version",
            (row["id"], line.product_id, values["count"], values["received"], values["cost"], stamp, stamp, version),
        )
        # Stock already left with the SENT transfer or return: a changed count moves the difference.
        if row["status"] == "SENT" and row["type"] in ("OUTLET", "RETURN"):
            delta = (values["count"] or 0.0) - ((old["count"] or 0.0) if old else 0.0)
            sender = row["source_outlet_id"] if row["type"] == "OUTLET" else row["outlet_id"]
            self.sim.adjust_stock(conn, line.product_id, sender, -delta)


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise XsError(422, f"{where} must be a JSON object")
    return value


def _optional_text(data: Mapping[str, Any]) -> dict[str, Any]:
    fields = {}
    for name in OPTIONAL_TEXT:
        if name in data:
            if data[name] is not None and not isinstance(data[name], str):
                raise XsError(422, f"{name} must be a string or null, got {data[name]!r}")
            fields[name] = data[name]
    return fields


def _quantity(value: Any, where: str) -> float:
    """Counts arrive as numbers or as decimal strings ("60.00000"); both are accepted."""
    if isinstance(value, bool):
        raise XsError(422, f"{where} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise XsError(422, f"{where} must be a number, got {value!r}") from exc
    if number < 0 or number != number:
        raise XsError(422, f"{where} must be 0 or more, got {value!r}")
    return number


def _arriving(ctype: str, line: sqlite3.Row) -> float:
    """Units a RECEIVED moves in: ``received``, or for a transfer ``count`` when nothing was counted."""
    if line["received"] is not None or ctype != "OUTLET":
        return line["received"] or 0.0
    return line["count"] or 0.0


def _stock_applied(row: sqlite3.Row) -> bool:
    if row["status"] == "RECEIVED":
        return True
    return row["type"] in ("OUTLET", "RETURN") and row["status"] == "SENT"


def consignment_body(row: sqlite3.Row) -> dict[str, Any]:
    names = ("id", "outlet_id", "name", "consignment_date", "due_at", "received_at", "type", "status",
             "supplier_id", "source_outlet_id", "reference", "supplier_invoice", "created_at", "updated_at",
             "deleted_at", "version")
    return {**{name: row[name] for name in names}, "show_inactive": False, "filters": []}
