"""The X-Series full inventory read: pages prefetched on a thread, decoded by orjson.

Against the real X-Series simulator, in-process (httpx WSGI transport) or on loopback. Split
from test_xseries.py, which holds the connector's other behaviour (and is near 500 lines).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator

import httpx
import orjson
import pytest

from json_typed import typed as _typed
from reconciler.connectors import xseries
from reconciler.connectors._http import RetryPolicy
from reconciler.connectors.base import Secret, TargetContext
from reconciler.connectors.xseries import INVENTORY, XSeriesConnector, prefetched
from reconciler.errors import VendorRejected, VendorUnavailable
from reconciler.model import Record, Settings
from reconciler.sandbox.xseries import XSeriesSimulator

TOKEN = "xs-read-token-0f1e2d"
FAST = RetryPolicy(max_attempts=3, base=0.0, max_wait=1.0, jitter=0.0)
OUTLETS = {"oslo": "outlet-oslo", "bergen": "outlet-bergen", "tromsø": "outlet-tromsø-☃"}
PRODUCTS = {f"SKU{i}": f"prod-{i}" for i in range(12)} | {"ÆØÅ": 'prod-"æøå"\u2028'}


def fixtures() -> dict[str, Any]:
    """36+3 records in several pages: whole, fractional and negative amounts, reorder values as
    integers, fractions and unset, non-ASCII ids and characters JSON must escape."""
    stock: list[dict[str, Any]] = []
    for i, product in enumerate(PRODUCTS.values()):
        for j, outlet in enumerate(OUTLETS.values()):
            entry: dict[str, Any] = {"location": outlet, "item": product, "quantity": (i * 7 + j) % 13 - 2}
            if (i + j) % 4 == 0:
                entry |= {"reorder_point": i, "reorder_amount": 2.5 if j else 10}
            if (i + j) % 5 == 0:
                entry |= {"quantity": 0.5 + i, "average_cost": 1e-7}
            stock.append(entry)
    return {
        "locations": [{"id": o} for o in [*OUTLETS.values(), "outlet-unmapped"]],
        "items": [{"id": p} for p in [*PRODUCTS.values(), "prod-unmapped"]],
        "stock": stock + [{"location": "outlet-unmapped", "item": "prod-1", "quantity": 9},
                          {"location": "outlet-oslo", "item": "prod-unmapped", "quantity": 9}],
    }


def context(base_url: str = "http://127.0.0.1", page_size: int = 5) -> TargetContext:
    return TargetContext(name="xs", kind="xseries", base_url=base_url, credential=Secret(TOKEN),
                         location_ids=OUTLETS, item_ids=PRODUCTS, options={"page_size": page_size})


class Hooked(httpx.BaseTransport):
    """The simulator's in-process transport, calling ``hook(n)`` before the n-th inventory page
    request (1-based) and recording which thread sent it."""

    def __init__(self, sim: XSeriesSimulator, hook: Callable[[int], None] = lambda n: None) -> None:
        self.inner, self.hook, self.pages, self.threads = sim.wsgi_transport(), hook, 0, set[str]()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == INVENTORY:
            self.pages += 1
            self.threads.add(threading.current_thread().name)
            self.hook(self.pages)
        return self.inner.handle_request(request)


@pytest.fixture
def sim() -> Iterator[XSeriesSimulator]:
    s = XSeriesSimulator(token=TOKEN, fixtures=fixtures(), rate_budget=0)
    yield s
    s.close()


def prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("xseries-prefetch")]


def sequential_read(conn: XSeriesConnector) -> dict[tuple[str, str], Record]:
    """What the read gave before prefetching: every record on this thread, the newest version
    of a position kept, mapped by the per-record ``_record`` (not the shared-record maker)."""
    outlets = {v: k for k, v in OUTLETS.items()}
    products = {v: k for k, v in PRODUCTS.items()}
    latest: dict[tuple[str, str], tuple[int, Record | None]] = {}
    for rec in conn.inventory_records(INVENTORY):
        key = (outlets.get(rec["outlet_id"]), products.get(rec["product_id"]))
        if None not in key and (key not in latest or latest[key][0] <= rec["version"]):  # type: ignore[operator]
            latest[key] = (rec["version"], None if rec["deleted_at"] else xseries._record(rec))  # type: ignore[index]
    return {k: r for k, (_, r) in latest.items() if r is not None}


def change_during_paging(sim: XSeriesSimulator, at_page: int) -> Callable[[int], None]:
    """A hook that, before page ``at_page``, sets oslo/prod-0 to 77 with reorder 3/"" (a null
    written: the quirky empty string) and retires prod-11: both records move to a later page."""

    def hook(n: int) -> None:
        if n != at_page:
            return
        with httpx.Client(transport=sim.wsgi_transport(), base_url="http://127.0.0.1",
                          headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            line = {"outlet_id": "outlet-oslo", "current_amount": 77, "reorder_point": 3, "reorder_amount": None}
            assert client.put("/api/2.1/products/prod-0", json={"details": {"inventory": [line]}}).status_code == 200
            assert client.put("/api/2.1/products/prod-11", json={"common": {"track_inventory": False}}).status_code == 200

    return hook


# --- same records as a sequential read ----------------------------------------------------------


@pytest.mark.parametrize("page_size", [1, 4, 5, 39, 40, 1000])
def test_prefetched_read_gives_the_records_of_a_sequential_read(sim: XSeriesSimulator, page_size: int) -> None:
    reference = XSeriesConnector(context(page_size=page_size), transport=sim.wsgi_transport(), retry=FAST)
    transport = Hooked(sim)
    conn = XSeriesConnector(context(page_size=page_size), transport=transport, retry=FAST)
    live = conn.read_stock()
    assert live == sequential_read(reference)
    assert len(live) == 39 and live[("bergen", "SKU0")] == Record(-1)
    assert live[("oslo", "SKU0")] == Record(0, Settings(reorder_point=0, reorder_amount=10))  # 0.5 rounds to 0
    assert transport.threads == {"xseries-prefetch-xs"} and not prefetch_threads()
    conn.close(), reference.close()


def test_a_record_changed_during_paging_is_read_at_its_newest(sim: XSeriesSimulator) -> None:
    transport = Hooked(sim, change_during_paging(sim, at_page=3))
    conn = XSeriesConnector(context(page_size=5), transport=transport, retry=FAST)
    live = conn.read_stock()
    assert live[("oslo", "SKU0")] == Record(77, Settings(reorder_point=3))  # "" reads as unset
    assert not any(item == "SKU11" for _, item in live)
    truth = {(r["location"], r["item"]): r for r in sim.inspect_stock()}
    assert live == sequential_read(XSeriesConnector(context(), transport=sim.wsgi_transport(), retry=FAST))
    assert {k: r.quantity for k, r in live.items()} == {
        (loc, item): round(truth[(OUTLETS[loc], PRODUCTS[item])]["quantity"]) for loc, item in live}
    assert transport.pages == 10  # 39 + 2 unmapped records, 3 seen again, in pages of 5; then the empty page
    conn.close()


# --- errors in the prefetch thread reach the caller ---------------------------------------------


def _revoke_token(sim: XSeriesSimulator) -> Callable[[int], None]:
    return lambda n: setattr(sim, "token", "revoked") if n == 3 else None


def _fail_for_good(sim: XSeriesSimulator) -> Callable[[int], None]:
    return lambda n: sim.faults.update({"rate_5xx": 1.0}) if n == 3 else None


@pytest.mark.parametrize("fault, error", [(_revoke_token, VendorRejected), (_fail_for_good, VendorUnavailable)])
def test_an_error_on_page_3_reaches_the_caller_as_the_sequential_read_raised_it(
    fault: Callable[[XSeriesSimulator], Callable[[int], None]], error: type[Exception]
) -> None:
    raised = []
    for read in ("sequential", "prefetched"):
        sim = XSeriesSimulator(token=TOKEN, fixtures=fixtures(), rate_budget=0)
        conn = XSeriesConnector(context(page_size=5), transport=Hooked(sim, fault(sim)), retry=FAST)
        with pytest.raises(error) as info:
            conn.read_stock() if read == "prefetched" else list(conn.inventory_records(INVENTORY))
        raised.append((type(info.value), str(info.value), info.value.status))  # type: ignore[attr-defined]
        conn.close(), sim.close()
    assert raised[0] == raised[1]
    assert "after=" in raised[1][1] and TOKEN not in raised[1][1]
    assert not prefetch_threads()


# --- a consumer that stops early stops the thread -----------------------------------------------


def test_an_exception_while_mapping_stops_the_thread_and_its_reads(
    sim: XSeriesSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = [0]

    def broken(self: Any, rec: Any) -> Record:
        calls[0] += 1
        if calls[0] == 3:
            raise RuntimeError("mapper bug")
        return Record(1)

    monkeypatch.setattr(xseries._RecordMaker, "__call__", broken)
    transport = Hooked(sim, lambda n: time.sleep(0.05))  # a vendor slower than the mapper
    conn = XSeriesConnector(context(page_size=1), transport=transport, retry=FAST)
    with pytest.raises(RuntimeError, match="mapper bug"):
        conn.read_stock()
    assert not prefetch_threads()
    assert transport.pages <= 3 + xseries.PREFETCH_PAGES + 1  # not the 41 pages of the whole read
    conn.close()


def test_closing_early_cuts_a_long_retry_wait_short(sim: XSeriesSimulator) -> None:
    """After page 1 the vendor answers 429 "retry in 30 s": closing must not wait that out."""
    sim.faults.update({"retry_after_s": 30})
    transport = Hooked(sim, lambda n: sim.faults.update({"rate_429": 1.0}) if n == 2 else None)
    conn = XSeriesConnector(context(page_size=5), transport=transport,
                            retry=RetryPolicy(max_attempts=5, base=0.0, max_wait=60.0, jitter=0.0))
    pages = prefetched(lambda stop: conn.inventory_pages(INVENTORY, stop), depth=2, name="xseries-prefetch-t")
    assert len(next(pages)) == 5
    deadline = time.monotonic() + 5
    while transport.pages < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # the thread is now in its 30 s wait
    started = time.monotonic()
    pages.close()
    assert time.monotonic() - started < 2 and not prefetch_threads()
    assert transport.pages == 2  # no attempt after the cancel
    conn.close()


def test_an_empty_inventory_ends_the_thread(sim: XSeriesSimulator) -> None:
    sim.db.execute("DELETE FROM xs_inventory")
    conn = XSeriesConnector(context(), transport=sim.wsgi_transport(), retry=FAST)
    assert conn.read_stock() == {} and not prefetch_threads()
    conn.close()


# --- decoding -----------------------------------------------------------------------------------


def test_orjson_decodes_simulator_pages_exactly_as_the_standard_library(sim: XSeriesSimulator) -> None:
    """Ints stay ints and floats floats, "" and null survive, escapes and non-ASCII decode the same;
    on the SQL-built page and on the Python-built fallback page (a REAL SQLite would misprint)."""
    with httpx.Client(transport=sim.wsgi_transport(), base_url="http://127.0.0.1",
                      headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        client.put("/api/2.1/products/prod-2", json={"details": {"inventory": [
            {"outlet_id": "outlet-bergen", "current_amount": 4, "reorder_point": None}]}})
        sql_page = client.get(INVENTORY, params={"page_size": 1000}).content
        sim.db.execute("UPDATE xs_inventory SET current_amount = ? WHERE product_id = 'prod-3'", (0.1 + 0.2,))
        python_page = client.get(INVENTORY, params={"page_size": 1000}).content
    assert sql_page != python_page
    for page in (sql_page, python_page):
        assert _typed(orjson.loads(page)) == _typed(json.loads(page))
    kinds = {type(r[k]) for r in json.loads(sql_page)["data"] for k in ("current_amount", "reorder_point", "deleted_at")}
    assert kinds == {int, float, str, type(None)}


def _serve(bodies: dict[str, tuple[bytes, str]]) -> tuple[ThreadingHTTPServer, str]:
    """A loopback server answering each query string ``after`` with (body, content type)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            after = httpx.URL(self.path).params.get("after", "0")
            body, kind = bodies[after]
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def test_a_body_that_is_not_json_is_a_vendor_error_naming_the_request() -> None:
    page = {"data": [{"outlet_id": "outlet-oslo", "product_id": "prod-1", "current_amount": 3, "version": 7}],
            "version": {"min": 7, "max": 7}}
    server, url = _serve({"0": (json.dumps(page).encode(), "application/json"),
                          "7": (f"<html>Sign in again ({TOKEN})</html>".encode(), "text/html")})
    conn = XSeriesConnector(context(url), retry=FAST)
    try:
        with pytest.raises(VendorRejected) as info:
            conn.read_stock()
    finally:
        conn.close(), server.shutdown(), server.server_close()
    message = str(info.value)
    assert f"GET {url}/api/2026-01/inventory?after=7&page_size=5 on target 'xs'" in message
    assert "HTTP 200, text/html" in message and "is not JSON" in message and "<html>Sign in again" in message
    assert "reconciler.yaml" in message and TOKEN not in message + (info.value.body or "")
    assert isinstance(info.value.__cause__, ValueError) and not prefetch_threads()


def test_what_orjson_refuses_is_still_read_as_before() -> None:
    """NaN (Python's json takes it) and a declared non-UTF-8 charset: the stdlib decoder reads
    them, as ``Response.json()`` did before orjson."""
    page = '{"data":[{"outlet_id":"outlet-tromsø-☃","product_id":"prod-1","current_amount":3,' \
           '"average_cost":NaN,"version":7}],"version":{"min":7,"max":7}}'
    server, url = _serve({"0": (page.encode("utf-16"), "application/json; charset=utf-16"),
                          "7": (b'{"data":[]}', "application/json")})
    conn = XSeriesConnector(context(url), retry=FAST)
    try:
        assert conn.read_stock() == {("tromsø", "SKU1"): Record(3)}
    finally:
        conn.close(), server.shutdown(), server.server_close()


# --- a vendor that pages out of version order (ASSUMPTION: X-Series pages by version) --------


def record(outlet: str, product: str, version: Any, amount: int, deleted: bool = False) -> dict[str, Any]:
    return {"id": f"{outlet}/{product}/{version}", "outlet_id": outlet, "product_id": product,
            "current_amount": amount, "version": version, "deleted_at": "2026-11-01T00:00:00Z" if deleted else None}


def paged(pages: list[list[dict[str, Any]]]) -> tuple[httpx.MockTransport, list[int]]:
    """Serves ``pages`` one per request, whatever the cursor says; records every ``after``."""
    cursors: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        cursors.append(int(request.url.params["after"]))
        index = (len(cursors) - 1) % (len(pages) + 1)  # the pages, an empty page, then again
        data = pages[index] if index < len(pages) else []
        numbers = [int(r["version"]) for r in data] or [0]
        return httpx.Response(200, json={"data": data, "version": {"min": min(numbers), "max": max(numbers)}})

    return httpx.MockTransport(answer), cursors


@pytest.mark.parametrize("pages, expected", [
    # a later page holds an older version of a position: the newer one stands
    ([[record("outlet-oslo", "prod-0", 5, 1)], [record("outlet-oslo", "prod-0", 3, 9), record("outlet-bergen", "prod-1", 6, 2)]],
     {("oslo", "SKU0"): 1, ("bergen", "SKU1"): 2}),
    # one page out of order: the newer deletion stands over the older record after it
    ([[record("outlet-oslo", "prod-0", 8, 0, deleted=True), record("outlet-oslo", "prod-0", 4, 7)]], {}),
    # versions as text: not trusted for the fast read, compared as numbers by the careful one
    ([[record("outlet-oslo", "prod-0", "10", 4), record("outlet-oslo", "prod-0", "9", 6)]], {("oslo", "SKU0"): 4}),
])
def test_pages_out_of_version_order_are_read_carefully(pages: list, expected: dict) -> None:
    transport, cursors = paged(pages)
    conn = XSeriesConnector(context(page_size=10), transport=transport, retry=FAST)
    got = {key: rec.quantity for key, rec in conn.read_stock().items()}
    conn.close()
    assert got == expected
    assert cursors.count(0) == 2  # the trusting read gave up, the careful one started over


def test_pages_in_version_order_are_read_once() -> None:
    transport, cursors = paged([[record("outlet-oslo", "prod-0", 3, 9), record("outlet-oslo", "prod-1", 4, 1)],
                                [record("outlet-oslo", "prod-0", 7, 2), record("outlet-oslo", "prod-1", 8, 0, deleted=True)]])
    conn = XSeriesConnector(context(page_size=10), transport=transport, retry=FAST)
    assert {key: rec.quantity for key, rec in conn.read_stock().items()} == {("oslo", "SKU0"): 2}
    conn.close()
    assert cursors == [0, 4, 8]
