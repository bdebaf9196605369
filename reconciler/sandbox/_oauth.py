"""The vendors' token endpoints, for the sandboxes (issue 17 point 5).

A simulator that needs them mounts them with one hook (its ``app`` property returns
``with_oauth(self, super().app)``). :class:`OAuthGate` sits in front of the simulator's app:

- it serves the token endpoint(s), the consent page and ``/_sandbox/oauth`` itself;
- a request carrying an access token it issued is passed on with the simulator's accepted
  token in its place (so every vendor rule behind it still applies), or refused with the
  vendor's 401 when that token expired or was revoked;
- anything else passes through unchanged (static tokens keep working).

Request and answer shapes, per vendor (sources in docs/auth.md):

- Zettle ``POST /token`` (and ``/token/``, the older oauth.izettle.com form):
  ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&client_id=&assertion=`` ->
  ``{"access_token", "expires_in"}``, no refresh token. The assertion must be a key this sandbox
  issued (``POST /_sandbox/oauth/key``), unexpired, not revoked, and ``client_id`` must equal its
  ``client_id`` claim; else 400 ``invalid_grant``.
- X-Series ``POST /api/1.0/token``, client credentials in the form body: authorization_code and
  refresh_token grants -> ``{"access_token", "token_type", "expires", "expires_in",
  "refresh_token", "domain_prefix"}``. Every refresh revokes the refresh token it spent.
- Supplier feed ``POST /oauth/token``, HTTP Basic client authentication (assumed): the same two
  grants -> ``{"access_token", "token_type", "expires_in", "refresh_token", "scope"}``. Whether
  refresh tokens rotate is undocumented: the ``rotate`` switch offers both.

Errors follow RFC 6749 section 5.2: 400 ``invalid_grant`` (unknown, expired, revoked or spent
refresh token, bad code or PKCE verifier), 401 ``invalid_client`` (wrong client id or secret),
400 ``unsupported_grant_type`` / ``invalid_request``.

``/_sandbox/oauth`` (GET/PUT) holds the switches: ``lifetime_s`` (access tokens, default the
vendor's: 7200 / 900 / 86400), ``rotate``, ``expired_answer`` (``"vendor"``: a 401 that says
expired; ``"opaque"``: the plain invalid-token 401), ``consent`` and ``grant_scopes``. POST
``/_sandbox/oauth/grant`` mints a refresh token without a browser, ``/_sandbox/oauth/key`` a
Zettle API key, ``/_sandbox/oauth/revoke`` revokes (``{"refresh_token"}``, ``{"keys": true}`` or
``{"all": true}``), ``/_sandbox/oauth/expire`` ends every access token now;
GET ``/_sandbox/oauth/stats`` counts what the endpoints did.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CONTROL = "/_sandbox/oauth"
CLIENT_ID = "sandbox-client"
CLIENT_SECRET = "sandbox-client-secret"
CODE_LIFETIME_S = 600.0  # X-Series: "the auth code lasts 10 min and is single-use"


def _vendor_expired_zettle() -> Response:
    # documented (iZettle/api-documentation authorization.md)
    return JSONResponse(
        {"developerMessage": "The access token has expired", "errorType": "ACCESS_TOKEN_EXPIRED"}, status_code=401,
        headers={"WWW-Authenticate": 'Bearer error="invalid_request", error_description="ACCESS_TOKEN_EXPIRED"'},
    )


def _vendor_expired_rfc6750() -> Response:
    # ASSUMED for X-Series and the supplier feed: neither documents it; RFC 6750 section 3.1
    return JSONResponse({"error": "invalid_token", "error_description": "The access token provided has expired"},
                        status_code=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


@dataclass(frozen=True)
class OAuthProfile:
    """One vendor's token service."""

    token_paths: tuple[str, ...]
    authorize_path: str | None
    client_auth: str  # "basic" | "post" | "none"
    lifetime_s: float
    rotates: bool
    expired: Callable[[], Response]
    scopes: tuple[str, ...] = ()
    min_state: int = 0  # shortest `state` the consent page accepts
    pkce: bool = False  # the consent page insists on S256 PKCE
    answer: Callable[[dict[str, Any], str], dict[str, Any]] = lambda body, scope: body


def _xseries_answer(body: dict[str, Any], scope: str) -> dict[str, Any]:
    # XS-CL-RT: `expires` (epoch) beside `expires_in`, and the store's domain_prefix; no scope
    return {**body, "expires": int(time.time() + body["expires_in"]), "domain_prefix": "sandbox"}


def _supplier_answer(body: dict[str, Any], scope: str) -> dict[str, Any]:
    return {**body, "scope": scope}


PROFILES: dict[str, OAuthProfile] = {
    "zettle": OAuthProfile(("/token", "/token/"), None, "none", 7200.0, False, _vendor_expired_zettle,
                           ("READ:PRODUCT", "WRITE:PRODUCT")),
    "xseries": OAuthProfile(("/api/1.0/token",), "/connect", "post", 86400.0, True, _vendor_expired_rfc6750,
                            ("inventory:read", "inventory:write", "products:read", "products:write",
                             "consignments:write:stock_order", "consignments:write:stock_transfer",
                             "consignments:write:inventory_count", "outlets:read"), min_state=8,
                            answer=_xseries_answer),
    "lightspeed-supplier": OAuthProfile(("/oauth/token",), "/authorize", "basic", 900.0, True, _vendor_expired_rfc6750,
                                        ("openid", "profile", "offline_access"), min_state=20, pkce=True,
                                        answer=_supplier_answer),
}


class OAuthRefusal(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status

    def response(self) -> Response:
        return JSONResponse({"error": self.error, "error_description": self.description}, status_code=self.status)


@dataclass
class _Grant:
    client_id: str
    scopes: tuple[str, ...]
    state: str = "active"  # active | spent | revoked
    expires_at: float = 0.0  # access tokens and codes only
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Switches:
    lifetime_s: float
    rotate: bool
    expired_answer: str = "vendor"  # vendor | opaque
    consent: bool = True
    grant_scopes: list[str] | None = None  # None: what was asked for


class OAuthServer:
    """The token service state of one sandbox (in memory: tokens die with the sandbox)."""

    def __init__(self, profile: OAuthProfile, sim: Any) -> None:
        self.profile, self.sim = profile, sim
        self.switches = Switches(profile.lifetime_s, profile.rotates)
        self.clients = {CLIENT_ID: CLIENT_SECRET}
        self.access: dict[str, _Grant] = {}
        self.refresh: dict[str, _Grant] = {}
        self.codes: dict[str, _Grant] = {}
        self.keys: dict[str, _Grant] = {}  # Zettle API keys by jti
        self.signing_key = secrets.token_bytes(32)
        self.stats: dict[str, int] = {}
        self._lock = threading.Lock()

    def count(self, what: str) -> None:
        self.stats[what] = self.stats.get(what, 0) + 1

    # --- minting ------------------------------------------------------------------------------
    def _issue(self, client_id: str, scopes: tuple[str, ...], *, refresh: bool) -> dict[str, Any]:
        lifetime = float(self.switches.lifetime_s)
        access = "at-" + secrets.token_urlsafe(24)
        self.access[access] = _Grant(client_id, scopes, expires_at=time.time() + lifetime)
        body: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": lifetime}
        if refresh:
            token = "rt-" + secrets.token_urlsafe(32)
            self.refresh[token] = _Grant(client_id, scopes)
            body["refresh_token"] = token
        return body

    def grant_refresh_token(self, scopes: list[str] | None = None, client_id: str = CLIENT_ID) -> str:
        """A refresh token as if a person had signed in and consented (tests, CI seeding)."""
        with self._lock:
            token = "rt-" + secrets.token_urlsafe(32)
            self.refresh[token] = _Grant(client_id, tuple(scopes if scopes is not None else self.profile.scopes))
            self.count("granted")
            return token

    def api_key(self, scopes: list[str] | None = None, client_id: str | None = None, ttl_s: float = 10 * 365 * 86400) -> str:
        """A Zettle API key: a JWT shaped like SwagPayPal's fixture, HS256-signed by this sandbox."""
        jti = str(uuid.uuid4())
        claims = {"iss": "iZettle", "aud": "API", "exp": int(time.time() + ttl_s), "sub": str(uuid.uuid4()),
                  "scope": list(scopes if scopes is not None else self.profile.scopes), "jti": jti,
                  "user": {"userType": "USER", "uuid": str(uuid.uuid4()), "orgUuid": str(uuid.uuid4()), "userRole": "OWNER"},
                  "type": "user-assertion", "client_id": client_id or str(uuid.uuid4())}
        with self._lock:
            self.keys[jti] = _Grant(claims["client_id"], tuple(claims["scope"]), expires_at=claims["exp"])
        return _jwt(claims, self.signing_key)

    def revoke(self, refresh_token: str | None = None, *, everything: bool = False, keys: bool = False) -> int:
        with self._lock:
            chosen = [g for t, g in self.refresh.items() if everything or t == refresh_token]
            if keys or everything:
                chosen += list(self.keys.values())
            for grant in chosen:
                grant.state = "revoked"
            if everything:
                for grant in self.access.values():
                    grant.state = "revoked"
            return len(chosen)

    def expire_access(self) -> int:
        """End every access token now, as a vendor whose clock runs ahead would."""
        with self._lock:
            for grant in self.access.values():
                grant.expires_at = 0.0
            return len(self.access)

    # --- the token endpoint -------------------------------------------------------------------
    def token(self, form: dict[str, str], authorization: str) -> dict[str, Any]:
        grant_type = form.get("grant_type", "")
        with self._lock:
            if grant_type == JWT_BEARER and self.profile.client_auth == "none":
                return self._assertion(form)
            client_id = self._client(form, authorization)
            if grant_type == "refresh_token":
                return self._refresh(form, client_id)
            if grant_type == "authorization_code" and self.profile.authorize_path:
                return self._code(form, client_id)
            raise OAuthRefusal("unsupported_grant_type", f"grant_type {grant_type!r} is not supported here")

    def _client(self, form: dict[str, str], authorization: str) -> str:
        if self.profile.client_auth == "basic":
            scheme, _, value = authorization.partition(" ")
            try:
                client_id, _, secret = base64.b64decode(value).decode().partition(":")
            except ValueError:
                client_id = secret = ""
            if scheme.lower() != "basic":
                raise OAuthRefusal("invalid_client", "client authentication (HTTP Basic) is required", 401)
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if not hmac.compare_digest(self.clients.get(client_id, "\0").encode(), secret.encode()):
            self.count("invalid_client")
            raise OAuthRefusal("invalid_client", "unknown client or wrong client secret", 401)
        return client_id

    def _refresh(self, form: dict[str, str], client_id: str) -> dict[str, Any]:
        token = form.get("refresh_token", "")
        grant = self.refresh.get(token)
        if grant is None or grant.client_id != client_id:
            self.count("invalid_grant")
            raise OAuthRefusal("invalid_grant", "invalid refresh_token")
        if grant.state != "active":
            self.count(f"{grant.state}_refused")
            raise OAuthRefusal("invalid_grant", f"the refresh token was {'already used' if grant.state == 'spent' else 'revoked'}")
        self.count("refreshed")
        body = self._issue(client_id, grant.scopes, refresh=self.switches.rotate)
        if self.switches.rotate:
            grant.state = "spent"  # XS-CL-RT: "the previously used refresh token will be revoked"
        return self.profile.answer(body, " ".join(grant.scopes))

    def _code(self, form: dict[str, str], client_id: str) -> dict[str, Any]:
        grant = self.codes.pop(form.get("code", ""), None)
        if grant is None or grant.client_id != client_id or grant.expires_at < time.time():
            raise OAuthRefusal("invalid_grant", "invalid, expired or already used authorization code")
        if grant.extra.get("redirect_uri") != form.get("redirect_uri"):
            raise OAuthRefusal("invalid_grant", "redirect_uri does not match the authorization request")
        challenge = grant.extra.get("code_challenge")
        if challenge:
            verifier = form.get("code_verifier", "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if not hmac.compare_digest(digest, challenge):
                raise OAuthRefusal("invalid_grant", "code_verifier does not match the code_challenge")
        self.count("code_exchanged")
        return self.profile.answer(self._issue(client_id, grant.scopes, refresh=True), " ".join(grant.scopes))

    def _assertion(self, form: dict[str, str]) -> dict[str, Any]:
        try:
            claims = _jwt_claims(form.get("assertion", ""), self.signing_key)
        except ValueError:
            self.count("invalid_grant")
            raise OAuthRefusal("invalid_grant", "Invalid assertion JWT") from None  # SwagPayPal fixture wording
        key = self.keys.get(str(claims.get("jti")))
        if key is None or key.state != "active" or key.expires_at < time.time():
            self.count("invalid_grant")
            raise OAuthRefusal("invalid_grant", "Invalid assertion JWT")
        if form.get("client_id") != claims.get("client_id"):
            self.count("invalid_client")
            raise OAuthRefusal("invalid_grant", "client_id does not match the assertion's client_id claim")
        self.count("assertion_exchanged")
        body = self._issue(str(claims["client_id"]), key.scopes, refresh=False)
        return {"access_token": body["access_token"], "expires_in": body["expires_in"]}

    # --- the consent page ---------------------------------------------------------------------
    def authorize(self, query: dict[str, str]) -> Response:
        with self._lock:
            redirect = query.get("redirect_uri", "")
            host = urlsplit(redirect).hostname or ""
            if query.get("client_id") not in self.clients or host not in ("127.0.0.1", "localhost", "::1"):
                return JSONResponse({"error": "invalid_request", "error_description": "unknown client_id or a "
                                     "redirect_uri that is not loopback"}, status_code=400)
            state = query.get("state", "")
            if query.get("response_type") != "code" or len(state) < self.profile.min_state:
                return _back(redirect, error="invalid_request", state=state,
                             error_description=f"response_type=code and a state of {self.profile.min_state}+ characters are required")
            if self.profile.pkce and (query.get("code_challenge_method") != "S256" or not query.get("code_challenge")):
                return _back(redirect, error="invalid_request", state=state, error_description="PKCE S256 is required")
            if not self.switches.consent:
                return _back(redirect, error="access_denied", state=state)
            asked = tuple(query.get("scope", "").split()) or self.profile.scopes
            allowed = self.switches.grant_scopes
            scopes = tuple(s for s in asked if allowed is None or s in allowed)
            code = secrets.token_urlsafe(24)
            self.codes[code] = _Grant(str(query["client_id"]), scopes, expires_at=time.time() + CODE_LIFETIME_S,
                                      extra={"redirect_uri": redirect, "code_challenge": query.get("code_challenge")})
            self.count("authorized")
            # X-Series' callback carries domain_prefix and scope as well (AE-AUTH)
            return _back(redirect, code=code, state=state, scope=" ".join(scopes), domain_prefix="sandbox")

    # --- access tokens at the vendor's API ----------------------------------------------------
    def check(self, token: str) -> Response | bool:
        """True: one of ours and valid; False: not one of ours; a Response: refuse with it."""
        with self._lock:
            grant = self.access.get(token)
            if grant is None:
                return False
            if grant.state == "active" and grant.expires_at > time.time():
                self.count("api_calls")
                return True
            self.count("expired_refused")
        if self.switches.expired_answer == "opaque" or grant.state != "active":
            return JSONResponse({"error": "Access token is not valid"}, status_code=401)
        return self.profile.expired()

    # --- routes -------------------------------------------------------------------------------
    def app(self) -> Starlette:
        routes = [Route(path, self._token_endpoint, methods=["POST"]) for path in self.profile.token_paths]
        if self.profile.authorize_path:
            routes.append(Route(self.profile.authorize_path, self._authorize_endpoint, methods=["GET"]))
        routes += [Route(CONTROL, self._control, methods=["GET", "PUT", "POST"]),
                   Route(CONTROL + "/grant", self._control_grant, methods=["POST"]),
                   Route(CONTROL + "/key", self._control_key, methods=["POST"]),
                   Route(CONTROL + "/revoke", self._control_revoke, methods=["POST"]),
                   Route(CONTROL + "/expire", self._control_expire, methods=["POST"]),
                   Route(CONTROL + "/stats", self._control_stats, methods=["GET"])]
        return Starlette(routes=routes)

    def paths(self) -> set[str]:
        return {*self.profile.token_paths, *([self.profile.authorize_path] if self.profile.authorize_path else [])}

    async def _token_endpoint(self, request: Request) -> Response:
        if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
            return OAuthRefusal("invalid_request", "the token request must be form-encoded").response()
        # parsed here: Starlette's request.form() needs python-multipart, not a dependency
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
        try:
            return JSONResponse(self.token(form, request.headers.get("authorization", "")),
                                headers={"Cache-Control": "no-store"})
        except OAuthRefusal as refusal:
            return refusal.response()

    async def _authorize_endpoint(self, request: Request) -> Response:
        return self.authorize(dict(request.query_params))

    async def _control(self, request: Request) -> Response:
        if request.method != "GET":
            changes = await request.json()
            unknown = set(changes) - set(Switches.__dataclass_fields__)
            if unknown:
                return JSONResponse({"error": f"unknown oauth switch(es): {', '.join(sorted(unknown))}"}, status_code=400)
            for name, value in changes.items():
                setattr(self.switches, name, value)
        return JSONResponse(self.switches.__dict__)

    async def _control_grant(self, request: Request) -> Response:
        body = await _json(request)
        return JSONResponse({"refresh_token": self.grant_refresh_token(body.get("scopes"), body.get("client_id", CLIENT_ID))})

    async def _control_key(self, request: Request) -> Response:
        body = await _json(request)
        return JSONResponse({"api_key": self.api_key(body.get("scopes"), body.get("client_id"),
                                                     float(body.get("ttl_s", 10 * 365 * 86400)))})

    async def _control_revoke(self, request: Request) -> Response:
        body = await _json(request)
        revoked = self.revoke(body.get("refresh_token"), everything=bool(body.get("all")), keys=bool(body.get("keys")))
        return JSONResponse({"revoked": revoked})

    async def _control_expire(self, request: Request) -> Response:
        return JSONResponse({"expired": self.expire_access()})

    async def _control_stats(self, request: Request) -> Response:
        return JSONResponse(dict(self.stats))


class OAuthGate:
    """ASGI: the token service in front of a simulator's own app."""

    def __init__(self, inner: ASGIApp, server: OAuthServer) -> None:
        self.inner, self.server = inner, server
        self.own = server.app()
        self.paths = server.paths()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        path = scope["path"]
        if path in self.paths or path.startswith(CONTROL):
            await self.own(scope, receive, send)
            return
        headers = [(k, v) for k, v in scope.get("headers", []) if k != b"authorization"]
        auth = next((v for k, v in scope.get("headers", []) if k == b"authorization"), b"").decode("latin-1")
        scheme, _, token = auth.partition(" ")
        verdict = self.server.check(token.strip()) if scheme.lower() == "bearer" else False
        if isinstance(verdict, Response):
            await verdict(scope, receive, send)
            return
        if verdict is True:
            # Valid: the simulator behind sees the token it accepts, and applies its own rules.
            headers.append((b"authorization", f"Bearer {self.server.sim.token}".encode()))
            scope = {**scope, "headers": headers}
        await self.inner(scope, receive, send)


def with_oauth(sim: Any, inner: ASGIApp) -> ASGIApp:
    """The hook a simulator's ``app`` property calls: its app behind its vendor's token service."""
    gate = sim.__dict__.get("_oauth_gate")
    if gate is None or gate.inner is not inner:
        gate = OAuthGate(inner, oauth_server(sim))
        sim.__dict__["_oauth_gate"] = gate
    return gate


def oauth_server(sim: Any) -> OAuthServer:
    """The simulator's token service (created on first use)."""
    server = sim.__dict__.get("_oauth_server")
    if server is None:
        server = OAuthServer(PROFILES[sim.kind], sim)
        sim.__dict__["_oauth_server"] = server
    return server


def _back(redirect: str, **params: str) -> Response:
    sep = "&" if "?" in redirect else "?"
    return RedirectResponse(redirect + sep + urlencode({k: v for k, v in params.items() if v}), status_code=302)


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    data = json.loads(raw) if raw else {}
    return data if isinstance(data, dict) else {}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(claims: dict[str, Any], key: bytes) -> str:
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + _b64(json.dumps(claims).encode())
    return head + "." + _b64(hmac.new(key, head.encode(), hashlib.sha256).digest())


def _jwt_claims(token: str, key: bytes) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT")
    expected = _b64(hmac.new(key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, parts[2]):
        raise ValueError("bad signature")
    claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    if not isinstance(claims, dict):
        raise ValueError("bad payload")
    return claims
