"""The one ``httpx.Auth`` every connector uses: the token source's header on each request, and
one renewal and resend when the vendor answers 401 saying the token expired.

A 401 is an answer, so the request was not executed: resending it cannot double a write.
Only one resend per request, so a credential that keeps failing surfaces as the vendor's 401.
"""

from __future__ import annotations

from typing import Callable, Generator

import httpx

from reconciler.auth._sources import TokenSource

AuthHook = Callable[[httpx.Request], None]


def says_expired(response: httpx.Response) -> bool:
    """Whether a 401 says the access token expired (rather than: it was never valid).

    Zettle: ``WWW-Authenticate: Bearer error="invalid_request", error_description="ACCESS_TOKEN_EXPIRED"``
    or "The access token has expired" (authorization.md, documented). RFC 6750 servers send
    ``error="invalid_token"`` for an expired token; X-Series and the supplier feed document no
    shape, so either signal (or the word "expired" in the body) counts.
    """
    if response.status_code != 401:
        return False
    challenge = response.headers.get("www-authenticate", "").lower()
    if "expired" in challenge or "invalid_token" in challenge:
        return True
    try:
        text = response.text.lower()
    except (UnicodeDecodeError, httpx.ResponseNotRead):
        return False
    return "expired" in text or "invalid_token" in text


class SourceAuth(httpx.Auth):
    """Bearer from a :class:`TokenSource`, then ``extra`` (a vendor's own headers)."""

    requires_response_body = True

    def __init__(self, source: TokenSource, extra: AuthHook | None = None) -> None:
        self.source = source
        self.extra = extra
        # the body of a 401 is only read when it may say "expired" to a source that can renew
        self.requires_response_body = source.renewable

    def _sign(self, request: httpx.Request) -> str:
        token = self.source.access_token()
        request.headers["Authorization"] = f"Bearer {token}"
        if self.extra is not None:
            self.extra(request)
        return token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        used = self._sign(request)
        response = yield request
        if self.source.renewable and says_expired(response):
            self.source.expire(used)
            self._sign(request)
            yield request
