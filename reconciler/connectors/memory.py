"""Kind ``memory``: a file-backed test connector with configurable capabilities.

Stock lives in a SQLite file (``options.path``) so separate processes (the kill tests, the
CLI) share it. Every applied operation is appended to an ``ops`` log, which is how tests see
that nothing was applied twice and how :meth:`MemoryConnector.verify` answers after a crash.
Locations and items are the canonical names; no id mapping is needed.

Options (``ctx.options``): path (required), readable, absolute, delta, native_move, delete,
verifiable (bools, default true except verifiable), max_batch (default 10), settings (list of
setting names), delay_s / delay_after_s (sleep before / after each batch's write), jitter_ms with
seed (a random sleep of up to jitter_ms before and again after each batch's write, drawn from a
generator seeded with ``seed``: requests of parallel targets interleave differently per seed), fail_items (items whose batch is rejected with a
422), faults_file (a JSON file ``{"fail_items": [...], "delay_s": N}`` read at every batch: faults
a test can change while a plan is applied, or between two runs of one plan, without touching
reconciler.yaml, whose digest the plan holds; ``crash_ops`` there (op ids): their batch is applied, then
:class:`SimulatedCrash` is raised, as if the process died before it heard back), drop_items (the
batch is applied, then the connection "drops").

Every batch received is logged in ``requests`` before anything else happens, rejected or not,
so a test can prove that a refused apply sent nothing at all; every read of the stock is logged
in ``reads``, so a test can prove that a refused plan read nothing either.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from typing import Any, ClassVar, Sequence

import httpx

from reconciler.connectors.base import Connector, OpResult, Outcome, TargetContext, Verification
from reconciler.errors import ConfigError, NotSupported, Problem, VendorRejected, VendorUnavailable
from reconciler.model import SETTING_NAMES, Capabilities, OpKind, Operation, Record, Settings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stock (
    location TEXT NOT NULL, item TEXT NOT NULL, quantity INTEGER NOT NULL,
    settings TEXT NOT NULL DEFAULT '{}', PRIMARY KEY (location, item));
CREATE TABLE IF NOT EXISTS ops (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, op_id TEXT NOT NULL, kind TEXT NOT NULL, applied_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, op_ids TEXT NOT NULL, received_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS reads (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, read_at REAL NOT NULL);
"""


def capabilities_from(options: dict[str, Any]) -> Capabilities:
    return Capabilities(
        readable=bool(options.get("readable", True)),
        absolute=bool(options.get("absolute", True)),
        delta=bool(options.get("delta", True)),
        native_move=bool(options.get("native_move", True)),
        delete=bool(options.get("delete", True)),
        settings=frozenset(options.get("settings", SETTING_NAMES)),
        verifiable_deltas=bool(options.get("verifiable", False)),
        max_batch=int(options.get("max_batch", 10)),
    )


class SimulatedCrash(BaseException):
    """The applying process "dies" right after the vendor committed a batch (faults_file
    ``crash_ops``). A BaseException, like KeyboardInterrupt, so nothing handles it as an error."""


class MemoryConnector(Connector):
    kind: ClassVar[str] = "memory"
    capabilities: ClassVar[Capabilities] = capabilities_from({})
    _variants: ClassVar[dict[tuple[type, Capabilities], type[MemoryConnector]]] = {}

    def __new__(cls, ctx: TargetContext, **_: Any) -> MemoryConnector:
        # Callers read capabilities from the class (type(conn).capabilities), so each
        # configuration gets its own subclass carrying its capabilities.
        caps = capabilities_from(dict(ctx.options))
        if "_configured" in cls.__dict__:
            cls = cls.__mro__[1]  # already a configured variant: configure its parent again
        variant = MemoryConnector._variants.get((cls, caps))
        if variant is None:
            variant = type(cls.__name__, (cls,), {"capabilities": caps, "_configured": True})
            MemoryConnector._variants[(cls, caps)] = variant
        return super().__new__(variant)

    @classmethod
    def reads_with(cls, options: Any) -> bool:
        return bool(options.get("readable", True))

    def __init__(self, ctx: TargetContext, *, transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(ctx, transport=transport)
        path = ctx.options.get("path")
        if not path:
            raise ConfigError([Problem(f"target {ctx.name!r} (kind memory) has no options.path", hint="Set the stock file path.")])
        self._conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)
        self._delay = float(ctx.options.get("delay_s", 0))
        self._delay_after = float(ctx.options.get("delay_after_s", 0))
        self._fail = set(ctx.options.get("fail_items", ()))
        self._faults_file = ctx.options.get("faults_file")
        self._drop = set(ctx.options.get("drop_items", ()))
        self._jitter_s = float(ctx.options.get("jitter_ms", 0)) / 1000
        self._rng = random.Random(ctx.options.get("seed", 0))

    # --- reading --------------------------------------------------------------------------------
    def read_stock(self) -> dict[tuple[str, str], Record]:
        if not type(self).capabilities.readable:
            raise NotSupported(f"target {self.ctx.name!r} is configured write-only (options.readable: false)")
        self._conn.execute("INSERT INTO reads (read_at) VALUES (?)", [time.time()])
        rows = self._conn.execute("SELECT location, item, quantity, settings FROM stock").fetchall()
        return {(r[0], r[1]): Record(int(r[2]), Settings.from_dict(json.loads(r[3]))) for r in rows}

    def applied_count(self, op_id: str) -> int:
        return int(self._conn.execute("SELECT count(*) FROM ops WHERE op_id = ?", [op_id]).fetchone()[0])

    # --- writing --------------------------------------------------------------------------------
    def execute(self, batch: Sequence[Operation]) -> list[OpResult]:
        self._conn.execute("INSERT INTO requests (op_ids, received_at) VALUES (?, ?)",
                           [json.dumps([op.id for op in batch]), time.time()])
        faults = self._faults_now()
        delay = float(faults.get("delay_s", self._delay))
        if delay:
            time.sleep(delay)
        self._jitter()
        rejected = sorted({op.item for op in batch} & (self._fail | set(faults.get("fail_items", ()))))
        if rejected:
            body = json.dumps({"error": "unknown_item", "message": f"Item {rejected[0]} does not exist in this store"})
            raise VendorRejected(f"POST /stock was rejected with HTTP 422: {body}", status=422, body=body)
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            results = [self._apply(op) for op in batch]
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")
        self._jitter()
        if self._delay_after:
            time.sleep(self._delay_after)  # widens the "vendor applied, journal not yet" window
        if {op.item for op in batch} & self._drop:
            raise VendorUnavailable("POST /stock: connection dropped after the request was sent", in_doubt=True)
        if {op.id for op in batch} & set(faults.get("crash_ops", ())):
            raise SimulatedCrash(f"simulated crash after committing {[op.id for op in batch]}")
        return results

    def _jitter(self) -> None:
        if self._jitter_s:
            time.sleep(self._rng.uniform(0, self._jitter_s))

    def _faults_now(self) -> dict[str, Any]:
        if not self._faults_file:
            return {}
        try:
            with open(self._faults_file, encoding="utf-8") as fh:
                return dict(json.load(fh))
        except FileNotFoundError:
            return {}

    def requests_received(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM requests").fetchone()[0])

    def _apply(self, op: Operation) -> OpResult:
        after: dict[str, int] = {}
        if op.kind is OpKind.DELETE:
            self._conn.execute("DELETE FROM stock WHERE location = ? AND item = ?", [op.location, op.item])
        elif op.kind is OpKind.SETTINGS:
            current = self._settings(op.location, op.item)
            merged = current.overlay(op.settings_after or Settings())
            self._upsert(op.location, op.item, None, merged)
        elif op.kind in (OpKind.RESET, OpKind.ADJUST, OpKind.MOVE):
            for leg in op.legs:
                after[leg.location] = self._write_leg(op, leg.location, leg.change, leg.expected)
        else:
            raise NotSupported(f"operation {op.id}: memory connector cannot execute {op.kind}")
        self._conn.execute("INSERT INTO ops (op_id, kind, applied_at) VALUES (?, ?, ?)", [op.id, op.kind.value, time.time()])
        return OpResult(op.id, Outcome.APPLIED, response=json.dumps({"ok": True, "op": op.id, "after": after}), actual_after=after)

    def _write_leg(self, op: Operation, location: str, change: int, expected: int | None) -> int:
        row = self._conn.execute("SELECT quantity FROM stock WHERE location = ? AND item = ?", [location, op.item]).fetchone()
        current = int(row[0]) if row else 0
        absolute = op.write_mode == "absolute" or (op.kind is OpKind.RESET and op.write_mode != "delta")
        quantity = expected if absolute and expected is not None else current + change
        self._upsert(location, op.item, quantity, None)
        return quantity

    def _settings(self, location: str, item: str) -> Settings:
        row = self._conn.execute("SELECT settings FROM stock WHERE location = ? AND item = ?", [location, item]).fetchone()
        return Settings.from_dict(json.loads(row[0])) if row else Settings()

    def _upsert(self, location: str, item: str, quantity: int | None, settings: Settings | None) -> None:
        self._conn.execute(
            "INSERT INTO stock (location, item, quantity, settings) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (location, item) DO UPDATE SET "
            "quantity = coalesce(?, quantity), settings = coalesce(?, settings)",
            [
                location, item, quantity or 0, json.dumps((settings or Settings()).as_dict()),
                quantity, None if settings is None else json.dumps(settings.as_dict()),
            ],
        )

    def verify(self, op: Operation) -> Verification:
        if not type(self).capabilities.verifiable_deltas:
            return Verification.UNKNOWN
        return Verification.APPLIED if self.applied_count(op.id) else Verification.NOT_APPLIED

    def close(self) -> None:
        self._conn.close()


CONNECTOR = MemoryConnector
