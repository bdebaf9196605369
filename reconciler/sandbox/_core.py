"""What every vendor simulator shares: SQLite persistence, fault switches, the sales generator,
the test-only control and inspection paths, and the ways to serve it.

A simulator subclasses :class:`Simulator`, sets ``kind``, ``default_token`` and ``schema``, and
implements its vendor routes, its auth check, fixture loading, stock inspection and one sale.

Control paths live under ``/_sandbox/`` (never a vendor path) and need no credential: they are
for tests and demos on loopback. Connectors must never call them.

- ``GET|PUT /_sandbox/faults``   fault switches (see :class:`Faults`)
- ``GET /_sandbox/stock``        TEST-ONLY inspection of every stock record
- ``POST /_sandbox/sell``        sell ``{"count": n}`` random units now
- ``GET|PUT /_sandbox/sales``    the background sales generator ``{"rate": per_second}``
- ``GET /_sandbox/requests``     counts of requests served, by method and path
- ``GET /_sandbox/health``       liveness
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Mapping

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CONTROL_PREFIX = "/_sandbox/"
DROPPED_HEADER = "x-sandbox-dropped"
# Set to True in a request's scope by a handler that refused the write with a 2xx (Run Free's
# 200-with-error): nothing was committed, so no after-write fault may hide it.
REFUSED_SCOPE_KEY = "sandbox.refused"


class VendorAnswer(Exception):
    """A vendor-shaped error raised inside a handler; ``response()`` answers it with ``status``.

    Simulators subclass it per vendor and override ``body()`` where the vendor's shape differs."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"error": self.message}

    def response(self) -> Response:
        return JSONResponse(self.body(), status_code=self.status)


class ConnectionDropped(Exception):
    """Raised after a committed write to make the server cut the connection (a fault switch)."""


class _QuietDrops(logging.Filter):
    """Keeps uvicorn from logging a traceback for every intentional ConnectionDropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ConnectionDropped)


def quiet_dropped_connections() -> None:
    """Install the filter on uvicorn's error logger (idempotent; called by every server start)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in logger.filters):
        logger.addFilter(_QuietDrops())


@dataclass
class Faults:
    """Run-time fault switches. Rates are probabilities per vendor request (0..1)."""

    latency_ms: float = 0.0
    rate_429: float = 0.0
    rate_5xx: float = 0.0
    # probability that a successful write is committed and then the connection is dropped
    drop_after_write: float = 0.0
    # the next N successful writes are committed and then dropped (deterministic for tests)
    drop_next_writes: int = 0
    # probability that a successful write is committed and then answered with a gateway error
    # (``error_after_write_status``, 502 or 504), as a proxy in front of the vendor does when the
    # backend commits but its answer times out: the client cannot tell that it landed
    error_after_write: float = 0.0
    # the next N successful writes are committed and then answered with that gateway error
    error_next_writes: int = 0
    error_after_write_status: int = 502
    retry_after_s: int = 1  # what a simulated 429 asks the client to wait
    # Setting it reseeds the sandbox's randomness (fault draws and sales), so a run can be
    # replayed; None (the default) keeps the seed the sandbox was started with.
    seed: int | None = None

    def __post_init__(self) -> None:
        self._reseed: Callable[[int], None] | None = None

    def on_seed(self, reseed: Callable[[int], None]) -> None:
        """Called with the new seed whenever ``update`` sets one (the simulator reseeds its rng)."""
        self._reseed = reseed

    def update(self, changes: Mapping[str, Any]) -> None:
        """Set some switches. All are checked before any is set: a bad value changes nothing."""
        names = {f.name for f in fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise ValueError(f"unknown fault switch(es): {', '.join(sorted(unknown))}; known: {', '.join(sorted(names))}")
        checked = {name: _switch_value(name, value) for name, value in changes.items()}
        for name, value in checked.items():
            setattr(self, name, value)
        if checked.get("seed") is not None and self._reseed is not None:
            self._reseed(checked["seed"])


_INT_SWITCHES = frozenset({"drop_next_writes", "error_next_writes", "error_after_write_status", "retry_after_s", "seed"})
_RATE_SWITCHES = frozenset({"rate_429", "rate_5xx", "drop_after_write", "error_after_write"})
# What a gateway in front of a vendor answers when the vendor committed but did not answer in time
GATEWAY_STATUSES = frozenset({500, 502, 503, 504})


def _switch_value(name: str, value: Any) -> float | int | None:
    """The switch's value in its type, or ValueError naming the switch and what it takes."""
    if value is None and name == "seed":
        return None
    kind = "an integer" if name in _INT_SWITCHES else "a number"
    # bool is an int subclass, but `"rate_429": true` is a mistake, not a probability of 1
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"fault switch {name}: {value!r} is not {kind}")
    try:
        number: float | int = int(value) if name in _INT_SWITCHES else float(value)
    except ValueError:
        raise ValueError(f"fault switch {name}: {value!r} is not {kind}") from None
    if name in _RATE_SWITCHES and not 0 <= number <= 1:
        raise ValueError(f"fault switch {name}: {value!r} is a probability and must be between 0 and 1")
    if name != "seed" and number < 0:
        raise ValueError(f"fault switch {name}: {value!r} must not be negative")
    if name == "error_after_write_status" and number not in GATEWAY_STATUSES:
        raise ValueError(f"fault switch {name}: {value!r} must be one of {sorted(GATEWAY_STATUSES)}")
    return number


class SandboxDB:
    """One SQLite connection shared by the server's handlers and the sales thread."""

    def __init__(self, path: str | Path | None, schema: str) -> None:
        target = str(path) if path else ":memory:"
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self.lock = threading.RLock()
        with self.lock:
            if path:
                self._conn.execute("PRAGMA journal_mode=WAL")
                # A simulator must survive its own process being killed (WAL does), not a power
                # cut: without an fsync per statement, loading 1,000 fixture rows takes ms, not s.
                self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(schema)

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self._conn.execute(sql, tuple(params)).fetchall()

    def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        with self.lock:
            return self._conn.execute(sql, tuple(params)).rowcount

    def transaction(self) -> _Transaction:
        """``with db.transaction() as conn:`` runs statements atomically under the lock."""
        return _Transaction(self)

    def close(self) -> None:
        with self.lock:
            self._conn.close()


class _Transaction:
    def __init__(self, db: SandboxDB) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.lock.acquire()
        self.db._conn.execute("BEGIN IMMEDIATE")
        return self.db._conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            self.db._conn.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.db.lock.release()


@dataclass
class SalesLog:
    sold: list[dict[str, Any]] = field(default_factory=list)


class Simulator(ABC):
    """Base class of every vendor simulator."""

    kind: ClassVar[str]
    default_token: ClassVar[str]
    schema: ClassVar[str]

    def __init__(
        self,
        *,
        state: str | Path | None = None,
        token: str | None = None,
        fixtures: Mapping[str, Any] | None = None,
        seed: int = 0,
    ) -> None:
        self.token = token or self.default_token
        self.db = SandboxDB(state, self.schema)
        self.rng = random.Random(seed)
        self.faults = Faults()
        self.faults.on_seed(self.rng.seed)
        self.sales = SalesLog()
        self.request_counts: Counter[str] = Counter()
        self._sales_rate = 0.0
        self._sales_stop = threading.Event()
        self._sales_thread: threading.Thread | None = None
        if fixtures:
            self.load_fixtures(fixtures)
        self._app: ASGIApp | None = None

    # --- what each vendor implements ------------------------------------------------------

    @abstractmethod
    def routes(self) -> list[BaseRoute]:
        """The vendor's paths (Starlette routes)."""

    @abstractmethod
    def authenticate(self, request: Request) -> Response | None:
        """None if the request carries the accepted credential, else the vendor's error response."""

    @abstractmethod
    def load_fixtures(self, fixtures: Mapping[str, Any]) -> None:
        """Seed locations, items and stock. Common shape, documented in docs/sandboxes.md:
        ``{"locations": [{"id", "name"?}], "items": [{"id": str | {fields}, "name"?}],
        "stock": [{"location", "item", "quantity", **settings}]}``."""

    @abstractmethod
    def inspect_stock(self) -> list[dict[str, Any]]:
        """TEST-ONLY: every stock record as ``{"location", "item", "quantity", **settings}``."""

    @abstractmethod
    def sell_one(self) -> dict[str, Any] | None:
        """Sell one unit of a random in-stock position (as the till would); what was sold."""

    def rate_limited_response(self, request: Request) -> Response:
        """The vendor's 429. Vendors override with their own body and headers."""
        return JSONResponse(
            {"error": "Too Many Requests"}, status_code=429, headers={"Retry-After": str(self.faults.retry_after_s)}
        )

    def server_error_response(self, request: Request) -> Response:
        return JSONResponse({"error": "Internal Server Error (injected by sandbox)"}, status_code=503)

    # --- control paths ----------------------------------------------------------------------

    def _control_routes(self) -> list[BaseRoute]:
        return [
            Route(CONTROL_PREFIX + "health", self._health, methods=["GET"]),
            Route(CONTROL_PREFIX + "faults", self._faults, methods=["GET", "PUT", "POST"]),
            Route(CONTROL_PREFIX + "stock", self._stock, methods=["GET"]),
            Route(CONTROL_PREFIX + "sell", self._sell, methods=["POST"]),
            Route(CONTROL_PREFIX + "sales", self._sales_control, methods=["GET", "PUT", "POST"]),
            Route(CONTROL_PREFIX + "requests", self._requests, methods=["GET"]),
        ]

    async def _health(self, request: Request) -> Response:
        return JSONResponse({"kind": self.kind, "status": "ok"})

    async def _faults(self, request: Request) -> Response:
        if request.method != "GET":
            try:
                self.faults.update(await request.json())
            except (ValueError, TypeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(asdict(self.faults))

    async def _stock(self, request: Request) -> Response:
        return JSONResponse({"test_only": True, "kind": self.kind, "stock": self.inspect_stock()})

    async def _sell(self, request: Request) -> Response:
        body = await _json_or_empty(request)
        sold = [s for s in (self.sell_one() for _ in range(int(body.get("count", 1)))) if s]
        self.sales.sold.extend(sold)
        return JSONResponse({"sold": sold})

    async def _sales_control(self, request: Request) -> Response:
        if request.method != "GET":
            body = await _json_or_empty(request)
            self.run_sales(float(body.get("rate", 0)))
        return JSONResponse({"rate": self._sales_rate, "sold": self.sales.sold})

    async def _requests(self, request: Request) -> Response:
        return JSONResponse(dict(self.request_counts))

    # --- sales generator ----------------------------------------------------------------------

    def run_sales(self, rate: float) -> None:
        """Sell random stock at ``rate`` units per second in a background thread (0 stops it)."""
        self._sales_stop.set()
        if self._sales_thread:
            self._sales_thread.join(timeout=5)
        self._sales_rate = rate
        if rate <= 0:
            return
        self._sales_stop = threading.Event()
        self._sales_thread = threading.Thread(target=self._sales_loop, args=(self._sales_stop,), daemon=True)
        self._sales_thread.start()

    def _sales_loop(self, stop: threading.Event) -> None:
        while not stop.wait(1.0 / self._sales_rate):
            sold = self.sell_one()
            if sold:
                self.sales.sold.append(sold)

    # --- serving ------------------------------------------------------------------------------

    @property
    def app(self) -> ASGIApp:
        if self._app is None:
            starlette = Starlette(routes=self._control_routes() + self.routes())
            self._app = _VendorMiddleware(starlette, self)
        return self._app

    def wsgi_transport(self) -> httpx.BaseTransport:
        """Mount in-process for sync httpx clients (no sockets)."""
        from a2wsgi import ASGIMiddleware

        return _DroppingWSGITransport(app=ASGIMiddleware(self.app))  # type: ignore[arg-type]

    def asgi_transport(self) -> httpx.AsyncBaseTransport:
        return _DroppingASGITransport(app=self.app)  # type: ignore[arg-type]

    def close(self) -> None:
        self.run_sales(0)
        self.db.close()


async def _json_or_empty(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    data = json.loads(raw)
    return data if isinstance(data, dict) else {}


class _VendorMiddleware:
    """Auth, fault injection and request counting around the vendor routes."""

    def __init__(self, app: ASGIApp, sim: Simulator) -> None:
        self.inner = app
        self.sim = sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.inner(scope, receive, send)
            return
        sim, faults = self.sim, self.sim.faults
        request = Request(scope, receive)
        sim.request_counts[f"{scope['method']} {scope['path']}"] += 1
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        early = sim.authenticate(request)
        if early is None and faults.rate_429 and sim.rng.random() < faults.rate_429:
            early = sim.rate_limited_response(request)
        if early is None and faults.rate_5xx and sim.rng.random() < faults.rate_5xx:
            early = sim.server_error_response(request)
            # This fault is the vendor failing *before* processing the request. A 503 says so only
            # with Retry-After (then any client may retry any write); a 5xx that may follow a
            # commit is the separate error_after_write fault.
            if early.status_code == 503 and "retry-after" not in early.headers:
                early.headers["Retry-After"] = "0"
        if early is not None:
            await early(scope, receive, send)
            return
        if scope["method"] not in WRITE_METHODS or not (
            faults.drop_after_write or faults.drop_next_writes or faults.error_after_write or faults.error_next_writes
        ):
            await self.inner(scope, receive, send)
            return
        await self._write_maybe_dropped(scope, receive, send)

    async def _write_maybe_dropped(self, scope: Scope, receive: Receive, send: Send) -> None:
        messages: list[Message] = []

        async def buffer(message: Message) -> None:
            messages.append(message)

        await self.inner(scope, receive, buffer)  # the write is committed here
        status = next((m["status"] for m in messages if m["type"] == "http.response.start"), 500)
        if scope.get(REFUSED_SCOPE_KEY):
            status = 400  # a refusal answered 2xx: treated as the rejection it is
        faults = self.sim.faults
        drop = status < 400 and (
            faults.drop_next_writes > 0 or self.sim.rng.random() < faults.drop_after_write
        )
        if not drop and self._gateway_error_after(status):
            answer = JSONResponse(
                {"error": f"sandbox fault: the write was committed, then answered {faults.error_after_write_status}"},
                status_code=faults.error_after_write_status,
            )
            await answer(scope, receive, send)
            return
        if not drop:
            for message in messages:
                await send(message)
            return
        if faults.drop_next_writes > 0:
            faults.drop_next_writes -= 1
        # Start the response, then fail: the server closes the connection mid-response, and the
        # client cannot tell whether the committed write happened.
        # The marker header lets in-process transports report the drop deterministically (a2wsgi
        # may hand the started response over before it sees the exception); over a real socket
        # the client never gets it, because the response is cut off.
        start = dict(messages[0])
        start["headers"] = [*start.get("headers", []), (DROPPED_HEADER.encode(), b"1")]
        await send(start)
        raise ConnectionDropped(f"sandbox dropped the connection after committing {scope['method']} {scope['path']}")


    def _gateway_error_after(self, status: int) -> bool:
        """Whether this committed write is answered with the gateway error (and count it)."""
        faults = self.sim.faults
        if status >= 400:
            return False
        if faults.error_next_writes > 0:
            faults.error_next_writes -= 1
            return True
        return bool(faults.error_after_write) and self.sim.rng.random() < faults.error_after_write


class _DroppingWSGITransport(httpx.WSGITransport):
    """In-process, a dropped connection reaches the client as the transport error a real
    server's cut connection gives (not as the sandbox's own exception)."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = super().handle_request(request)
        except ConnectionDropped as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        if DROPPED_HEADER in response.headers:
            response.close()
            raise httpx.RemoteProtocolError(_dropped_message(request), request=request)
        return response


class _DroppingASGITransport(httpx.ASGITransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except ConnectionDropped as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        if DROPPED_HEADER in response.headers:
            await response.aclose()
            raise httpx.RemoteProtocolError(_dropped_message(request), request=request)
        return response


def _dropped_message(request: httpx.Request) -> str:
    return f"sandbox dropped the connection after committing {request.method} {request.url.path}"


class ServerThread:
    """Serve a simulator with uvicorn on loopback in a background thread (tests, ``sandbox up``).

    ``with ServerThread(sim) as server: server.url`` — port 0 picks a free port.
    """

    def __init__(self, sim: Simulator, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        self.sim = sim
        quiet_dropped_connections()
        config = uvicorn.Config(sim.app, host=host, port=port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.host = host

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"the {self.sim.kind} sandbox did not start")
            time.sleep(0.01)
        return self

    @property
    def port(self) -> int:
        return self.server.servers[0].sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
