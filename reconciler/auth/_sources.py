"""Token sources: where a connector's ``Authorization`` header comes from.

- :class:`StaticBearer`: the token in ``credentials_env`` as it is (X-Series personal token,
  Run Free token, today's default).
- :class:`ZettleAssertion`: the Zettle API key (a JWT assertion) exchanged at the token endpoint
  for an access token; renewed by the same grant, there is no refresh token.
- :class:`RefreshTokenSource`: the OAuth refresh-token grant (supplier feed, X-Series apps). The
  current refresh token lives in the state store; each refresh is one store transaction that
  reads it, calls the token endpoint and records the answer, so a rotated token is saved before
  its access token is used, and two processes take turns instead of spending the same token.

Grants go through Authlib (``authlib.integrations.httpx_client.OAuth2Client``); expiry is
Authlib's ``OAuth2Token.is_expired`` with a leeway of (1 - renew_at) of the token's lifetime.
"""

from __future__ import annotations

import base64
import json
import math
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Mapping

import warnings

import httpx
import tenacity

from authlib.deprecate import AuthlibDeprecationWarning

with warnings.catch_warnings():
    # Authlib >= 1.7 prefers the `httpx2` package and warns when it falls back to httpx, which
    # is what reconciler (and its connectors' transports) use.
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.base_client import OAuthError
    from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc6749 import OAuth2Token

from reconciler.connectors.base import Secret
from reconciler.errors import AuthError, VendorUnavailable

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_TIMEOUT_S = 10.0  # a refresh holds the state store's write lock while it waits
_REDACTED = "********"


@dataclass(frozen=True)
class TokenStatus:
    """What `auth status` shows for one target. Never holds a token."""

    flow: str
    expires_at: float | None = None  # epoch seconds of the current access token, None: no expiry / none yet
    scopes: frozenset[str] | None = None  # None: the flow cannot tell (a static token)
    details: tuple[str, ...] = ()


class TokenSource(ABC):
    """Gives the ``Authorization`` header for a target and renews it when the vendor says so."""

    flow: str = "static"
    renewable: bool = False

    @abstractmethod
    def access_token(self) -> str:
        """The current access token, fetched or renewed first when needed."""

    def expire(self, token: str) -> None:
        """The vendor said ``token`` expired: the next :meth:`access_token` renews it, unless
        another thread already did."""

    def header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token()}"}

    def granted_scopes(self) -> frozenset[str] | None:
        """Scopes the credential carries; None when the flow cannot tell."""
        return None

    @abstractmethod
    def status(self) -> TokenStatus: ...

    def secrets(self) -> list[str]:
        """Every secret this source holds now, for scrubbing vendor answers."""
        return []


class StaticBearer(TokenSource):
    flow = "static"

    def __init__(self, credential: Secret) -> None:
        self.credential = credential

    def access_token(self) -> str:
        return self.credential.reveal()

    def status(self) -> TokenStatus:
        return TokenStatus("static", details=("a fixed token or key from the environment (credentials_env), sent "
                                              "as it is",))

    def secrets(self) -> list[str]:
        return [self.credential.reveal()]


class _Renewing(TokenSource):
    """An access token held in memory and renewed by :meth:`_fetch` under a lock."""

    renewable = True

    def __init__(self, target: str, renew_at: float, transport: httpx.BaseTransport | None = None) -> None:
        self.target = target
        self.renew_at = renew_at
        self.transport = transport
        self._token: OAuth2Token | None = None
        self._lock = threading.Lock()
        self.renewals = 0

    @abstractmethod
    def _fetch(self) -> Mapping[str, Any]:
        """Ask the token endpoint for a new access token; the answer's fields."""

    def _leeway(self, token: Mapping[str, Any]) -> int:
        lifetime = float(token.get("expires_in") or 0)
        return max(1, math.ceil(lifetime * (1 - self.renew_at))) if lifetime else 60

    def _stale(self) -> bool:
        token = self._token
        return token is None or bool(token.is_expired(leeway=self._leeway(token)))

    def access_token(self) -> str:
        with self._lock:
            if self._stale():
                self._token = _token(self._renew())
                self.renewals += 1
            return str(self._token["access_token"])  # type: ignore[index]

    def _renew(self) -> Mapping[str, Any]:
        """:meth:`_fetch`, again after a failure that never reached a decision (connection
        refused, 5xx, 429). Each attempt is a whole fetch: for a refresh token, its own store
        transaction, so no transaction waits out a retry while holding the store's write lock."""
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_exponential(0.5, max=4),
            retry=tenacity.retry_if_exception_type(VendorUnavailable), reraise=True,
        )
        return retrying(self._fetch)

    def expire(self, token: str) -> None:
        with self._lock:
            if self._token is not None and self._token.get("access_token") == token:
                self._token = None

    def expires_at(self) -> float | None:
        token = self._token
        return float(token["expires_at"]) if token is not None and token.get("expires_at") else None

    def secrets(self) -> list[str]:
        token = self._token
        return [str(token["access_token"])] if token is not None else []

    def _client(self, **kw: Any) -> OAuth2Client:
        return OAuth2Client(timeout=TOKEN_TIMEOUT_S, transport=self.transport, **kw)

    def _call(self, what: str, grant: Callable[[], Mapping[str, Any]], on_refusal: Callable[[OAuthError], AuthError]) -> Mapping[str, Any]:
        """Run one grant request; translate what goes wrong into reconciler's errors."""
        try:
            return grant()
        except OAuthError as exc:
            raise on_refusal(exc) from None
        except httpx.HTTPStatusError as exc:
            status = exc.response.status_code
            body = self._scrub(exc.response.text[:300])
            cls = VendorUnavailable if status >= 500 or status == 429 else AuthError
            raise cls(f"target {self.target!r}: {what} answered HTTP {status}: {body!r}", status=status,
                      hint="Check auth.token_url in reconciler.yaml; if it is right, the vendor's token service "
                           "is failing: try again later.") from None
        except httpx.TransportError as exc:
            raise VendorUnavailable(
                f"target {self.target!r}: {what} could not be reached ({type(exc).__name__})",
                hint="Check auth.token_url in reconciler.yaml and the network; nothing was sent to the vendor's API.",
            ) from None
        except ValueError as exc:  # an answer that is not a token (Authlib: not a JSON object)
            raise AuthError(f"target {self.target!r}: {what} did not answer with a token ({exc})",
                            hint="Check auth.token_url in reconciler.yaml: something other than the token "
                                 "endpoint may have answered.") from None

    def _scrub(self, text: str) -> str:
        for secret in self.secrets():
            if len(secret) >= 4:
                text = text.replace(secret, _REDACTED)
        return text


def _token(answer: Mapping[str, Any]) -> OAuth2Token:
    data = dict(answer)
    if "access_token" not in data:
        raise AuthError("the token endpoint answered without an access_token",
                        hint="Check auth.token_url in reconciler.yaml.")
    # X-Series also sends `expires` (epoch seconds); use it when expires_in is missing.
    if not data.get("expires_in") and data.get("expires"):
        data["expires_at"] = int(float(data["expires"]))
        data["expires_in"] = max(1, int(float(data["expires"]) - time.time()))
    return OAuth2Token.from_dict(data)


def scopes_of(answer: Mapping[str, Any]) -> frozenset[str] | None:
    scope = answer.get("scope")
    if isinstance(scope, str):
        return frozenset(scope.split())
    if isinstance(scope, (list, tuple)):
        return frozenset(str(s) for s in scope)
    return None


# --- Zettle ------------------------------------------------------------------------------------


def jwt_claims(key: str) -> dict[str, Any]:
    """The payload of a JWT, unverified: only Zettle can verify its own key, and it does so at the
    token endpoint. Used to read ``client_id``, ``scope`` and ``exp`` offline."""
    parts = key.strip().split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT (three dot-separated parts)")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    if not isinstance(claims, dict):
        raise ValueError("the JWT payload is not an object")
    return claims


class ZettleAssertion(_Renewing):
    """Zettle's assertion grant (research/auth_and_discovery.md B1): POST the API key as
    ``assertion`` with the key's own ``client_id`` claim; ``expires_in`` 7200, no refresh token."""

    flow = "zettle-assertion"

    def __init__(self, target: str, key: Secret, token_url: str, *, variable: str, client_id: str | None = None,
                 renew_at: float = 0.9, transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(target, renew_at, transport)
        self.key, self.token_url, self.variable = key, token_url, variable
        try:
            self.claims = jwt_claims(key.reveal())
        except (ValueError, UnicodeDecodeError) as exc:
            raise AuthError(
                f"target {target!r}: the value of {variable} is not a Zettle API key ({exc})",
                hint="Create an API key at my.zettle.com (Integrations > API keys) and put the whole key in "
                     f"{variable}; it is a JWT, not an access token.",
            ) from None
        self.client_id = client_id or str(self.claims.get("client_id") or "")
        if not self.client_id:
            raise AuthError(f"target {target!r}: the Zettle API key in {variable} has no client_id claim",
                            hint="Set auth.client_id to the client ID shown with the key at my.zettle.com.")

    def _fetch(self) -> Mapping[str, Any]:
        def grant() -> Mapping[str, Any]:
            with self._client(client_id=self.client_id, token_endpoint_auth_method="none") as client:
                return dict(client.fetch_token(self.token_url, grant_type=JWT_BEARER, assertion=self.key.reveal()))

        return self._call(f"the Zettle token endpoint {self.token_url}", grant, self._refused)

    def _refused(self, exc: OAuthError) -> AuthError:
        return AuthError(
            f"target {self.target!r}: Zettle refused the API key in {self.variable} "
            f"({exc.error}: {self._scrub(str(exc.description or ''))})",
            hint=f"The key was revoked or is not valid: create a new API key at my.zettle.com and put it in {self.variable}.",
        )

    def granted_scopes(self) -> frozenset[str] | None:
        return scopes_of(self.claims) or frozenset()

    def status(self) -> TokenStatus:
        claimed = self.claims.get("client_id") == self.client_id
        details = [f"client_id {self.client_id} " + ("(the key's own claim)" if claimed else "(auth.client_id)")]
        org = (self.claims.get("user") or {}).get("orgUuid") if isinstance(self.claims.get("user"), dict) else None
        if org:
            details.append(f"organisation {org}")
        if self.claims.get("exp"):
            details.append("API key valid until " + time.strftime("%Y-%m-%d", time.gmtime(int(self.claims["exp"]))))
        return TokenStatus(self.flow, self.expires_at(), self.granted_scopes(), tuple(details))

    def secrets(self) -> list[str]:
        return [self.key.reveal(), *super().secrets()]


# --- refresh-token grant -------------------------------------------------------------------------


@dataclass(frozen=True)
class OAuthClient:
    """An OAuth app: id, secret, token endpoint and how it authenticates there."""

    client_id: str
    client_secret: Secret
    token_url: str
    client_auth: str = "post"  # "basic" | "post"
    variable: str = ""  # where the secret came from, for messages

    def authlib(self, transport: httpx.BaseTransport | None = None, **kw: Any) -> OAuth2Client:
        method = "client_secret_basic" if self.client_auth == "basic" else "client_secret_post"
        return OAuth2Client(client_id=self.client_id, client_secret=self.client_secret.reveal(),
                            token_endpoint_auth_method=method, timeout=TOKEN_TIMEOUT_S, transport=transport, **kw)


@dataclass
class StoredCredential:
    """A row of the state store's ``credentials`` table. ``refresh_token`` is a Secret."""

    target: str
    flow: str
    refresh_token: Secret | None
    scopes: frozenset[str] | None = None
    generation: int = 0
    received_at: str | None = None
    received_by: str | None = None
    source: str | None = None
    access_expires_at: float | None = None


@dataclass
class Rotation:
    """What one refresh brought: the token answer and the stored row after it."""

    answer: Mapping[str, Any]
    stored: StoredCredential = field(repr=False)


class CredentialStore:
    """The part of a state store a refresh-token source needs (reconciler/state/_tokens.py)."""

    def credential(self, target: str) -> StoredCredential | None: ...  # pragma: no cover

    def rotate_credential(self, target: str, flow: str, exchange: Callable[[Secret], Mapping[str, Any]], *,
                          seed: Secret | None, holder: str) -> Rotation: ...  # pragma: no cover

    def close(self) -> None: ...  # pragma: no cover


StoreOpener = Callable[[], ContextManager[CredentialStore]]


class RefreshTokenSource(_Renewing):
    """The OAuth refresh-token grant with the refresh token kept in the state store."""

    flow = "oauth-refresh"

    def __init__(self, target: str, client: OAuthClient, open_store: StoreOpener, *, seed: Secret | None = None,
                 seed_variable: str | None = None, holder: str = "", renew_at: float = 0.9,
                 transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(target, renew_at, transport)
        self.client, self.open_store, self.seed = client, open_store, seed
        self.seed_variable, self.holder = seed_variable, holder
        self._scopes: frozenset[str] | None = None
        self._spent: list[str] = []  # refresh tokens this process saw, for scrubbing
        self._from_seed = False

    def _fetch(self) -> Mapping[str, Any]:
        with self.open_store() as store:
            rotation = store.rotate_credential(self.target, self.flow, self._exchange, seed=self.seed, holder=self.holder)
        self._scopes = rotation.stored.scopes
        return rotation.answer

    def _exchange(self, refresh_token: Secret) -> Mapping[str, Any]:
        """Called by the store inside its transaction with the current refresh token."""
        self._spent = [refresh_token.reveal()]
        self._from_seed = bool(self.seed) and refresh_token.reveal() == self.seed.reveal()  # type: ignore[union-attr]

        def grant() -> Mapping[str, Any]:
            with self.client.authlib(self.transport) as oauth:
                return dict(oauth.refresh_token(self.client.token_url, refresh_token=refresh_token.reveal()))

        answer = self._call(f"the token endpoint {self.client.token_url}", grant, self._refused)
        if answer.get("refresh_token"):
            self._spent.append(str(answer["refresh_token"]))
        return answer

    def _refused(self, exc: OAuthError) -> AuthError:
        words = f"{exc.error}: {self._scrub(str(exc.description or ''))}"
        if exc.error in ("invalid_client", "unauthorized_client"):
            return AuthError(
                f"target {self.target!r}: the token endpoint refused the OAuth client ({words})",
                hint=f"Check auth.client_id in reconciler.yaml and the client secret in {self.client.variable}.",
            )
        if self._from_seed:
            return AuthError(
                f"target {self.target!r}: the state store holds no refresh token, so the one in "
                f"{self.seed_variable} was used, and the token endpoint refused it ({words}); a rotating token "
                "in a CI secret is spent by the first run that uses it",
                hint=f"Run `reconciler auth login {self.target}` against this state, and keep the state with its "
                     "credentials between runs (a PostgreSQL state: a snapshot never carries them; docs/auth.md).",
            )
        return AuthError(
            f"target {self.target!r}: the token endpoint refused the stored refresh token ({words}); it was "
            "revoked, expired, or already used by another copy of this state",
            hint=f"Run `reconciler auth login {self.target}` to sign in again (it stores a new refresh token).",
        )

    def granted_scopes(self) -> frozenset[str] | None:
        if self._scopes is None:
            with self.open_store() as store:
                row = store.credential(self.target)
            self._scopes = row.scopes if row else None
        return self._scopes

    def status(self) -> TokenStatus:
        with self.open_store() as store:
            row = store.credential(self.target)
        if row is None or row.refresh_token is None:
            seed = f" ({self.seed_variable} is set and will be used first)" if self.seed else ""
            return TokenStatus(self.flow, details=(f"no refresh token stored{seed}; run `reconciler auth login {self.target}`",))
        details = (f"client_id {self.client.client_id}",
                   f"refresh token #{row.generation} from {row.source or 'unknown'}, received {row.received_at} "
                   f"by {row.received_by}")
        return TokenStatus(self.flow, self.expires_at() or row.access_expires_at, row.scopes, details)

    def secrets(self) -> list[str]:
        return [self.client.client_secret.reveal(), *self._spent, *super().secrets()]
