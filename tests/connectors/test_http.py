"""The shared vendor HTTP layer: TLS rule, retries, Retry-After, limits, errors, redaction."""

from __future__ import annotations

import logging
import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest

from reconciler.connectors._http import (
    RequestCancelled,
    RetryPolicy,
    TokenBucket,
    VendorHTTP,
    parse_retry_after,
    redact_url,
)
from reconciler.connectors.base import Secret, TargetContext
from reconciler.errors import InsecureTransportError, VendorRejected, VendorUnavailable

TOKEN = "tok_live_4f9a8b7c6d5e"


def _ctx(base_url: str = "https://vendor.example", **kw) -> TargetContext:
    return TargetContext(name="shop", kind="test", base_url=base_url, credential=Secret(TOKEN),
                         location_ids={}, item_ids={}, **kw)


class Recorder:
    """A MockTransport handler answering from a script, recording every request."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def _client(handler, *, sleeps=None, retry=RetryPolicy(max_attempts=4, base=0.1, max_wait=5, jitter=0), **ctx_kw):
    sleeps = [] if sleeps is None else sleeps
    auth = lambda r: r.headers.__setitem__("Authorization", f"Bearer {TOKEN}")  # noqa: E731
    return VendorHTTP(_ctx(**ctx_kw), httpx.MockTransport(handler), auth=auth, retry=retry, sleep=sleeps.append)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://127.8.0.1", "http://localhost:9", "http://[::1]:80"])
def test_plain_http_to_loopback_is_allowed(url: str) -> None:
    VendorHTTP(_ctx(url)).close()


@pytest.mark.parametrize("url", ["http://vendor.example", "http://10.0.0.5", "ftp://127.0.0.1"])
def test_plain_http_elsewhere_is_refused(url: str) -> None:
    with pytest.raises(InsecureTransportError, match="https"):
        VendorHTTP(_ctx(url))


def test_absolute_url_to_plain_http_is_refused_per_request() -> None:
    handler = Recorder(httpx.Response(200))
    with _client(handler) as http, pytest.raises(InsecureTransportError):
        http.get("http://evil.example/next-page")
    assert handler.requests == []


def test_5xx_then_success_is_retried_with_growing_backoff() -> None:
    handler = Recorder(httpx.Response(503), httpx.Response(502), httpx.Response(200, json={"ok": 1}))
    sleeps: list[float] = []
    with _client(handler, sleeps=sleeps) as http:
        assert http.request("PUT", "/stock", idempotent=True, json={"q": 1}).json() == {"ok": 1}
    assert len(handler.requests) == 3 and sleeps == [0.1, 0.2]
    assert handler.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"


def test_a_write_that_was_not_processed_is_retried() -> None:
    """429 and 503 with Retry-After say the vendor did not take the request: safe for any write."""
    handler = Recorder(
        httpx.Response(429, headers={"Retry-After": "1"}),
        httpx.Response(503, headers={"Retry-After": "2"}),
        httpx.Response(200, json={"ok": 1}),
    )
    sleeps: list[float] = []
    with _client(handler, sleeps=sleeps) as http:
        assert http.request("POST", "/stock", idempotent=False, json={"q": 1}).json() == {"ok": 1}
    assert len(handler.requests) == 3 and sleeps == [1, 2]


@pytest.mark.parametrize("status", [500, 502, 504, 503])
def test_an_ambiguous_answer_to_a_non_idempotent_write_is_in_doubt_and_not_resent(status: int) -> None:
    """A gateway's 502/504 (or a 500, or a 503 that does not say to come back) may follow a commit."""
    handler = Recorder(httpx.Response(status, text="upstream timed out"), httpx.Response(200, json={"ok": 1}))
    with _client(handler, sleeps=[]) as http, pytest.raises(VendorUnavailable) as caught:
        http.request("POST", "/stock", idempotent=False, json={"q": 1})
    assert caught.value.in_doubt and caught.value.status == status
    assert "may or may not have been applied" in str(caught.value) and "upstream timed out" in str(caught.value)
    assert len(handler.requests) == 1


def test_retry_after_seconds_and_http_date_are_honoured() -> None:
    when = datetime.now(timezone.utc) + timedelta(seconds=3)
    handler = Recorder(
        httpx.Response(429, headers={"Retry-After": "2"}),
        httpx.Response(429, headers={"Retry-After": format_datetime(when, usegmt=True)}),
        httpx.Response(429, headers={"Retry-After": "3600"}),
        httpx.Response(200),
    )
    sleeps: list[float] = []
    with _client(handler, sleeps=sleeps) as http:
        http.get("/inventory")
    # the date is truncated to the second (2 < true wait <= 3), rounded up and +1 s: 3 or 4 whole seconds
    assert sleeps[0] == 2 and sleeps[1] in (3.0, 4.0) and sleeps[2] == 5  # capped at max_wait


def test_parse_retry_after_forms() -> None:
    now = datetime(2026, 11, 24, 9, 59, 30, tzinfo=timezone.utc)
    assert parse_retry_after("120") == 120 and parse_retry_after("junk") is None and parse_retry_after(None) is None
    assert parse_retry_after("1.5") == 1.5  # delta-seconds are exact: no rounding
    assert parse_retry_after("Tue, 24 Nov 2026 09:00:00 GMT", now=now) == 0  # long past: no wait


@pytest.mark.parametrize(
    ("now_fraction", "expected"),
    [
        (0.0, 31.0),  # 30 s to the stated second, +1 s for the fraction the date truncated
        (0.2, 31.0),  # 29.8 s: ceil(30.8), a whole number of seconds
        (0.999, 31.0),  # 29.001 s: ceil(30.001)
        (30.3, 1.0),  # the stated second has begun: its truncated fraction may still be ahead
        (31.0, 0.0),  # the stated second is over: no wait
    ],
)
def test_http_date_retry_after_is_rounded_up_to_whole_seconds(now_fraction: float, expected: float) -> None:
    """An HTTP date has 1-second resolution: the vendor's reset may be up to 1 s after the stated
    second, so the wait is ceil(stated - now + 1), a whole number of seconds never shorter."""
    now = datetime(2026, 11, 24, 9, 59, 30, tzinfo=timezone.utc) + timedelta(seconds=now_fraction)
    wait = parse_retry_after("Tue, 24 Nov 2026 10:00:00 GMT", now=now)
    assert wait == expected and wait == int(wait)
    stated = datetime(2026, 11, 24, 10, 0, 0, tzinfo=timezone.utc).timestamp()
    assert now.timestamp() + wait >= stated + 1  # past the latest moment the stated second can mean


def test_retries_exhausted_is_vendor_unavailable() -> None:
    handler = Recorder(httpx.Response(500, text="upstream down"))
    with _client(handler) as http, pytest.raises(VendorUnavailable) as err:
        http.request("PUT", "/api/2.1/products/9", idempotent=True, json={})
    assert len(handler.requests) == 4
    assert "PUT https://vendor.example/api/2.1/products/9" in str(err.value) and "4 attempts" in str(err.value)
    assert err.value.status == 500 and err.value.body == "upstream down" and not err.value.in_doubt


def test_4xx_is_rejected_at_once_with_the_body_verbatim() -> None:
    body = '{"errors":[{"code":"E_VALIDATION","detail":"current_amount must be >= 0"}]}'
    handler = Recorder(httpx.Response(422, text=body))
    with _client(handler) as http, pytest.raises(VendorRejected) as err:
        http.request("PUT", "/api/2.1/products/9", idempotent=True, json={})
    assert len(handler.requests) == 1 and err.value.body == body and err.value.status == 422
    assert "PUT https://vendor.example/api/2.1/products/9" in str(err.value) and "422" in str(err.value)


def test_transport_errors_before_sending_are_retried_for_writes() -> None:
    handler = Recorder(httpx.ConnectError("refused"), httpx.Response(201))
    with _client(handler) as http:
        assert http.request("POST", "/consignments", idempotent=False).status_code == 201
    assert len(handler.requests) == 2


def test_dropped_write_is_in_doubt_and_not_resent() -> None:
    handler = Recorder(httpx.ReadError("connection reset"), httpx.Response(201))
    with _client(handler) as http, pytest.raises(VendorUnavailable) as err:
        http.request("POST", "/consignments", idempotent=False)
    assert err.value.in_doubt and len(handler.requests) == 1
    handler = Recorder(httpx.ReadTimeout("slow"), httpx.Response(200))
    with _client(handler) as http:
        assert http.request("PUT", "/inventory", idempotent=True).status_code == 200
    assert len(handler.requests) == 2


def test_credentials_never_reach_messages_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    handler = Recorder(httpx.Response(401, text=f"bad token {TOKEN}"))
    with _client(handler) as http, pytest.raises(VendorRejected) as err:
        http.get("/inventory", params={"apikey": TOKEN, "page": 2})
    text = str(err.value) + repr(err.value.body) + caplog.text
    assert TOKEN not in text and "apikey=********" in str(err.value) and "page=2" in str(err.value)
    assert redact_url(f"https://u:{TOKEN}@h/p?access_token={TOKEN}&x=1") == "https://h/p?access_token=********&x=1"


def test_token_bucket_spaces_requests() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    bucket = TokenBucket(4.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        bucket.take()
    assert slept == [0.25, 0.25, 0.25, 0.25]


def test_rate_and_concurrency_limits_hold_under_threads() -> None:
    active, peak, lock = [0], [0], threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.02)
        with lock:
            active[0] -= 1
        return httpx.Response(200)

    http = VendorHTTP(_ctx(concurrency=2, rate_limit=200.0), httpx.MockTransport(handler))
    threads = [threading.Thread(target=http.get, args=("/x",)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    http.close()
    assert peak[0] == 2


def _hanging_up_server() -> tuple[int, list[bytes], threading.Event]:
    """A real TCP server that reads each request and closes without answering."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    seen: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            seen.append(conn.recv(65536))
            conn.close()
        server.close()

    threading.Thread(target=serve, daemon=True).start()
    return server.getsockname()[1], seen, stop


def test_real_server_hanging_up_after_a_write() -> None:
    port, seen, stop = _hanging_up_server()
    try:
        http = VendorHTTP(_ctx(f"http://127.0.0.1:{port}"), retry=RetryPolicy(max_attempts=3, base=0.01, jitter=0))
        with pytest.raises(VendorUnavailable) as err:
            http.request("POST", "/api/consignments", idempotent=False, json={"q": 1})
        assert err.value.in_doubt and len(seen) == 1
        with pytest.raises(VendorUnavailable) as err:
            http.get("/api/inventory")
        assert not err.value.in_doubt and len(seen) == 4  # the read was retried
        http.close()
    finally:
        stop.set()


def test_backoff_grows_exponentially_with_random_jitter_on_top() -> None:
    handler = Recorder(httpx.Response(503))
    sleeps: list[float] = []
    policy = RetryPolicy(max_attempts=5, base=0.1, max_wait=30, jitter=0.5)
    with _client(handler, sleeps=sleeps, retry=policy) as http, pytest.raises(VendorUnavailable):
        http.get("/inventory")
    assert len(sleeps) == 4
    for attempt, wait in enumerate(sleeps):
        assert 0.1 * 2**attempt <= wait <= 0.1 * 2**attempt + 0.5
    assert len({round(w - 0.1 * 2**i, 9) for i, w in enumerate(sleeps)}) > 1  # the jitter is random, not fixed


def test_rate_burst_lets_a_window_budget_go_at_once_then_paces() -> None:
    handler = Recorder(httpx.Response(200, json={}))
    sleeps: list[float] = []
    with _client(handler, sleeps=sleeps, rate_limit=0.5, rate_burst=5) as http:
        for _ in range(7):
            http.get("/ping")
    assert len(handler.requests) == 7
    # five go at once; the sixth and seventh each wait for a token at 0.5/s (about 2 s apart)
    assert len(sleeps) == 2 and all(1.9 < s <= 4.01 for s in sleeps)


def test_cancel_ends_a_retry_wait_at_once_and_sends_nothing_more() -> None:
    """A prefetch thread's request: its consumer stopping must not wait out a 60 s Retry-After."""
    handler = Recorder(httpx.Response(429, headers={"Retry-After": "60"}))
    cancel = threading.Event()
    http = VendorHTTP(_ctx(), httpx.MockTransport(handler), retry=RetryPolicy(max_attempts=5, max_wait=120))
    threading.Timer(0.2, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(RequestCancelled):
        http.get("/inventory", cancel=cancel)
    assert time.monotonic() - started < 5 and len(handler.requests) == 1
    with pytest.raises(RequestCancelled):  # already cancelled: not even a first attempt
        http.get("/inventory", cancel=cancel)
    assert len(handler.requests) == 1
    http.close()


def test_cancel_ends_a_rate_limit_wait() -> None:
    handler = Recorder(httpx.Response(200, json={}))
    cancel = threading.Event()
    http = VendorHTTP(_ctx(rate_limit=0.01), httpx.MockTransport(handler))  # one request per 100 s
    http.get("/first", cancel=cancel)
    threading.Timer(0.2, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(RequestCancelled):
        http.get("/second", cancel=cancel)
    assert time.monotonic() - started < 5 and [r.url.path for r in handler.requests] == ["/first"]
    http.close()
