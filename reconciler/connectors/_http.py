"""The HTTP layer every vendor connector uses: TLS rule, retries, rate and concurrency limits,
error translation and credential redaction.

Retry rules (DESIGN.md section 6):
- 429, and 503 with Retry-After, say the vendor did not process the request: retried for every
  method, honouring Retry-After in both its forms (seconds, HTTP date), capped by the policy.
- Any other 5xx (500, 502, 504, a 503 without Retry-After) is retried only for idempotent
  requests. A gateway answers 502/504 when the vendor behind it took too long, which says
  nothing about whether the write was committed: for a non-idempotent write it is raised at once
  as ``VendorUnavailable(in_doubt=True)``, and the applier verifies the operation or asks.
- A transport error before the request left (connect failures, pool timeouts) is retried for
  every method too.
- A transport error after the request may have been sent (read timeout, dropped connection) is
  retried only for idempotent requests. For the others the write may have landed, so it is
  raised at once as ``VendorUnavailable(in_doubt=True)`` and the applier verifies or asks.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import random
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Generator, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import tenacity

from reconciler.connectors.base import TargetContext
from reconciler.errors import InsecureTransportError, VendorError, VendorRejected, VendorUnavailable

log = logging.getLogger("reconciler.http")

REDACTED = "********"
SECRET_PARAMS = frozenset(
    {"apikey", "api_key", "key", "token", "access_token", "refresh_token", "client_secret", "secret", "password", "signature"}
)
# Errors raised before any byte of the request reached the server: safe to retry any method.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)
_MAX_BODY_IN_MESSAGE = 2000

AuthHook = Callable[[httpx.Request], None]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5
    base: float = 0.5  # first backoff, seconds; doubles each attempt
    max_wait: float = 30.0  # cap on any single wait, Retry-After included
    jitter: float = 0.5  # up to this many seconds added at random


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    # Only "localhost" itself: a name like x.localhost may be sent to DNS by some resolvers
    # (RFC 6761 only asks them not to), so it is not trusted to stay on this machine.
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_secure(url: str | httpx.URL, target: str) -> None:
    parsed = httpx.URL(str(url))
    if parsed.scheme == "https" or (parsed.scheme == "http" and is_loopback(parsed.host)):
        return
    raise InsecureTransportError(
        f"target {target!r}: refusing {parsed.scheme}://{parsed.host}: only https is allowed (plain http only to loopback)",
        hint="Use an https:// url for this target in reconciler.yaml (plain http is only for 127.0.0.1/localhost sandboxes).",
    )


def redact_url(url: str | httpx.URL) -> str:
    """The URL with credential-like query values masked and any userinfo dropped."""
    parts = urlsplit(str(url))
    query = [(k, REDACTED if k.lower() in SECRET_PARAMS else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="*"), ""))


_SECRET_QUERY = re.compile(r"([?&](?:" + "|".join(sorted(SECRET_PARAMS)) + r")=)[^&#\s\"']*", re.IGNORECASE)


class _RedactingFilter(logging.Filter):
    """httpx logs every request URL at INFO; query-string credentials must not reach logs."""

    secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        clean = _SECRET_QUERY.sub(r"\1" + REDACTED, text)
        for secret in self.secrets:
            clean = clean.replace(secret, REDACTED)
        if clean != text:
            record.msg, record.args = clean, None
        return True


_LOG_FILTER = _RedactingFilter()
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).addFilter(_LOG_FILTER)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date.

    A date is turned into whole seconds, rounded up, plus one (see below): never earlier than
    the vendor's real reset moment."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    # An HTTP date has one-second resolution: the vendor's real reset moment may lie up to a
    # second after the stated one (the fraction is truncated). Retrying early just earns another
    # 429, so round up to whole seconds and add that second. A date in the past still waits out
    # the truncated fraction (up to 1 s), which is the conservative reading.
    return float(max(0, math.ceil((when - (now or datetime.now(timezone.utc))).total_seconds() + 1)))


class TokenBucket:
    """``rate`` requests per second with bursts of at most ``burst``; thread-safe."""

    def __init__(self, rate: float, burst: float = 1.0, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate, self.burst = rate, max(1.0, burst)
        self._tokens = self.burst
        self._clock, self._sleep = clock, sleep
        self._stamp = clock()
        self._mutex = threading.Lock()

    def take(self, sleep: Callable[[float], object] | None = None) -> None:
        """Take a token, waiting for one with ``sleep`` (the bucket's own when None)."""
        with self._mutex:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            wait = 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate
            self._tokens -= 1  # may go negative: later callers queue behind this one
        if wait > 0:
            (sleep or self._sleep)(wait)


class _HookAuth(httpx.Auth):
    def __init__(self, hook: AuthHook) -> None:
        self.hook = hook

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.hook(request)
        yield request


class RequestCancelled(Exception):
    """A request given a ``cancel`` event that was set: no (further) attempt was made.

    Only the thread that asked for the cancel sees it (a prefetch stopped by its consumer), so it
    is not a ReconcilerError and carries no advice for a user."""


class _Retry(Exception):
    """One attempt failed in a way worth retrying; carries what the final error needs."""

    def __init__(self, reason: str, *, status: int | None = None, body: str | None = None, retry_after: float | None = None):
        super().__init__(reason)
        self.reason, self.status, self.body, self.retry_after = reason, status, body, retry_after


_MAX_BODY_SHOWN = 300  # characters of an unreadable answer quoted in its error


class VendorHTTP:
    """An httpx.Client for one target with reconciler's retry, limit and error rules."""

    def __init__(
        self,
        ctx: TargetContext,
        transport: httpx.BaseTransport | None = None,
        *,
        auth: AuthHook | httpx.Auth | None = None,
        retry: RetryPolicy = RetryPolicy(),
        headers: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        require_secure(ctx.base_url, ctx.name)
        self.ctx, self.retry, self._sleep = ctx, retry, sleep
        self._secret = ctx.credential.reveal() if ctx.credential else ""
        if len(self._secret) >= 4:
            _LOG_FILTER.secrets.add(self._secret)
        client_auth = _HookAuth(auth) if callable(auth) and not isinstance(auth, httpx.Auth) else auth
        self.client = httpx.Client(
            base_url=ctx.base_url, transport=transport, auth=client_auth, headers=dict(headers or {}),
            timeout=ctx.timeout_s, follow_redirects=False,
        )
        self._slots = threading.BoundedSemaphore(max(1, ctx.concurrency))
        self._bucket = TokenBucket(ctx.rate_limit, ctx.rate_burst, sleep=sleep) if ctx.rate_limit else None

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> VendorHTTP:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def scrub(self, text: str) -> str:
        """``text`` with the credential masked, in case a vendor echoes it back."""
        return text.replace(self._secret, REDACTED) if self._secret and len(self._secret) >= 4 else text

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, idempotent=True, **kw)

    def json(self, response: httpx.Response, *, written: bool = False) -> Any:
        """The answer's JSON, or :meth:`unreadable` when it is not JSON."""
        try:
            return response.json()
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
            raise self.unreadable(response, f"is not JSON ({exc})", written=written) from exc

    def unreadable(self, response: httpx.Response, what: str, *, written: bool = False) -> VendorError:
        """The error for a 2xx answer that is not what the API documents (a proxy's login page,
        a truncated body). After a write (``written``) the request may have landed all the same,
        so it is in doubt: the applier verifies the operation or asks the user, never re-sends
        it blindly. Before one, nothing was changed: the vendor's answer, rejected."""
        body = self.scrub(response.text)
        shown = body if len(body) <= _MAX_BODY_SHOWN else body[:_MAX_BODY_SHOWN] + "..."
        message = (
            f"{response.request.method} {redact_url(response.request.url)} on target {self.ctx.name!r}: "
            f"the answer (HTTP {response.status_code}, {response.headers.get('content-type') or 'no content type'}) "
            f"{what}: {shown!r}"
        )
        hint = ("Something other than the vendor's API may have answered: check the target's url in "
                "reconciler.yaml (a proxy or login page in between?).")
        if written:
            return VendorUnavailable(message, status=response.status_code, body=body, in_doubt=True, hint=hint)
        return VendorRejected(message, status=response.status_code, body=body, hint=hint + " Then plan again.")

    def request(
        self, method: str, path: str, *, idempotent: bool, cancel: threading.Event | None = None, **kw: Any
    ) -> httpx.Response:
        """Send one request with retries. Returns a 2xx/3xx response or raises a VendorError.

        ``cancel``: for a request made on a worker thread whose consumer may stop early. A retry
        backoff or a rate-limit wait can last minutes (RetryPolicy.max_wait, Retry-After), so
        once it is set, waits end at once and no further attempt starts: RequestCancelled. An
        attempt already on the wire runs to its end (bounded by the client timeout). With
        ``cancel``, waits are ``cancel.wait`` rather than the client's ``sleep``."""
        method = method.upper()
        request = self.client.build_request(method, path, **kw)
        require_secure(request.url, self.ctx.name)
        where = f"{method} {redact_url(request.url)}"
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(max(1, self.retry.max_attempts)),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(_Retry),
            sleep=self._sleep if cancel is None else cancel.wait,
            reraise=True,
        )
        try:
            return retrying(self._attempt, request, where, idempotent, cancel)
        except _Retry as exc:
            attempts = self.retry.max_attempts
            raise VendorUnavailable(
                self.scrub(f"{where} failed after {attempts} attempt{'s' if attempts != 1 else ''} on target {self.ctx.name!r}: {exc.reason}"),
                status=exc.status, body=exc.body, retry_after=exc.retry_after,
                hint="The vendor is unavailable or rate limiting; re-run apply later to retry.",
            ) from None

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        backoff = self.retry.base * (2 ** (state.attempt_number - 1)) + random.uniform(0, self.retry.jitter)
        if isinstance(exc, _Retry) and exc.retry_after is not None:
            backoff = exc.retry_after
        return min(self.retry.max_wait, backoff)

    def _attempt(
        self, request: httpx.Request, where: str, idempotent: bool, cancel: threading.Event | None = None
    ) -> httpx.Response:
        if self._bucket is not None:
            self._bucket.take(None if cancel is None else cancel.wait)
        if cancel is not None and cancel.is_set():
            # Not a _Retry, so tenacity lets it through at once (reraise=True).
            raise RequestCancelled(where)
        with self._slots:
            try:
                response = self.client.send(request)
                response.read()
            except _NOT_SENT as exc:
                raise _Retry(f"could not connect ({type(exc).__name__})") from exc
            except httpx.TransportError as exc:
                if idempotent:
                    raise _Retry(f"connection failed ({type(exc).__name__})") from exc
                raise VendorUnavailable(
                    self.scrub(f"{where} on target {self.ctx.name!r}: the connection failed after the request "
                               f"was sent ({type(exc).__name__}); it may or may not have been applied"),
                    in_doubt=True,
                ) from None
        log.debug("%s -> %s", where, response.status_code)
        return self._check(response, where, idempotent)

    def _check(self, response: httpx.Response, where: str, idempotent: bool = True) -> httpx.Response:
        status = response.status_code
        if status < 400:
            return response
        body = self.scrub(response.text)
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if status == 429 or (status == 503 and retry_after is not None) or (status >= 500 and idempotent):
            raise _Retry(f"HTTP {status}", status=status, body=body, retry_after=retry_after)
        if status >= 500:
            shown = body if len(body) <= _MAX_BODY_SHOWN else body[:_MAX_BODY_SHOWN] + "..."
            raise VendorUnavailable(
                f"{where} on target {self.ctx.name!r} was answered HTTP {status} after the request was sent: "
                f"it may or may not have been applied (answer: {shown!r})",
                status=status, body=body, in_doubt=True,
                hint="Re-run apply: it asks the vendor whether the operation landed where the vendor can tell, "
                     "otherwise settle it with `reconciler resolve`.",
            )
        shown = body if len(body) <= _MAX_BODY_IN_MESSAGE else body[:_MAX_BODY_IN_MESSAGE] + "..."
        raise VendorRejected(
            f"{where} was rejected by target {self.ctx.name!r} with HTTP {status}: {shown}",
            status=status, body=body,
        )
