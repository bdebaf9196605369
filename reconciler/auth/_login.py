"""``reconciler auth login``: the one browser sign-in of a code flow, and ``auth status``.

login: authorization code with PKCE (S256) through Authlib, a loopback listener on 127.0.0.1
for the redirect, the URL shown (and a browser opened when there is one); the refresh token that
comes back goes straight into the state store. No token is ever returned or printed.
"""

from __future__ import annotations

import http.server
import os
import threading
import webbrowser
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import parse_qsl, urlsplit

from authlib.common.security import generate_token

from reconciler.auth._scopes import coverage
from reconciler.auth._sources import OAuthError, RefreshTokenSource, TokenSource, TokenStatus, scopes_of
from reconciler.auth.build import auth_of, authorize_url
from reconciler.connectors.base import Secret
from reconciler.errors import AuthError, ReconcilerError

CALLBACK = "/callback"
_PAGE = "<!doctype html><title>reconciler</title><p>{}</p>"


@dataclass(frozen=True)
class LoginResult:
    target: str
    scopes: frozenset[str] | None
    expires_in: float | None
    generation: int


class _Callback(http.server.BaseHTTPRequestHandler):
    """Takes the first request to /callback; its query is the authorization response."""

    server: _Listener

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        parts = urlsplit(self.path)
        if parts.path != CALLBACK:
            self.send_error(404)
            return
        self.server.answer = dict(parse_qsl(parts.query))
        ok = "code" in self.server.answer
        body = _PAGE.format("Signed in. You can close this tab and return to the terminal." if ok
                            else "Sign-in was not completed; see the terminal.").encode()
        self.send_response(200 if ok else 400)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server.done.set()

    def log_message(self, format: str, *args: Any) -> None:  # the query holds the code: never log it
        return


class _Listener(http.server.HTTPServer):
    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Callback)
        self.answer: dict[str, str] = {}
        self.done = threading.Event()


def login(project: Any, name: str, *, env: Mapping[str, str] | None = None, port: int | None = None,
          open_browser: bool = True, show: Callable[[str], None] = lambda _: None, timeout_s: float = 300.0) -> LoginResult:
    """Run the consent of target ``name`` and store its refresh token. ``show`` receives the
    URL to open (and whether a browser was opened) before the wait starts."""
    env = os.environ if env is None else env
    source = _refresh_source(project, name, env)
    target = project.target(name)
    auth = auth_of(target)
    try:
        listener = _Listener(auth.redirect_port if port is None else port)
    except OSError as exc:
        raise AuthError(f"auth login {name}: cannot listen on 127.0.0.1:{port or auth.redirect_port} ({exc.strerror})",
                        hint="Free the port, or pass --port (the app's registered redirect URI must match).") from None
    redirect = f"http://127.0.0.1:{listener.server_address[1]}{CALLBACK}"
    thread = threading.Thread(target=listener.serve_forever, daemon=True)
    thread.start()
    try:
        scopes = " ".join(auth.scopes or _default_scopes(target.kind))
        with source.client.authlib(redirect_uri=redirect, scope=scopes, code_challenge_method="S256") as oauth:
            verifier = generate_token(64)
            url, state = oauth.create_authorization_url(
                authorize_url(target.kind, auth, (target.url or "")), code_verifier=verifier, state=generate_token(32))
            opened = open_browser and _browser(url)
            show(url if not opened else f"{url}\n(opened in your browser)")
            if not listener.done.wait(timeout_s):
                raise AuthError(f"auth login {name}: no sign-in came back within {int(timeout_s)} s",
                                hint="Open the URL in a browser on this machine and sign in; run the command again.")
            answer = listener.answer
            if answer.get("state") != state:
                raise AuthError(f"auth login {name}: the sign-in answer does not carry this login's state",
                                hint="Run `reconciler auth login` again and use the URL it prints.")
            if "code" not in answer:
                raise AuthError(f"auth login {name}: the vendor answered {answer.get('error', 'without a code')}"
                                f" ({answer.get('error_description', '')})",
                                hint="Sign in and grant the access the app asks for.")
            token = _exchange(oauth, source, answer["code"], verifier)
    finally:
        listener.shutdown()
        listener.server_close()
    granted = scopes_of(token) or scopes_of({"scope": answer.get("scope")}) or frozenset(scopes.split())
    if not token.get("refresh_token"):
        raise AuthError(f"auth login {name}: the vendor issued no refresh token",
                        hint="Ask for the offline_access scope (supplier feed) in auth.scopes, and sign in again.")
    with source.open_store() as store:
        row = store.store_credential(name, source.flow, Secret(str(token["refresh_token"])), scopes=granted,
                                     expires_in=token.get("expires_in"), holder=source.holder, source="login")
    return LoginResult(name, granted, token.get("expires_in"), row.generation)


def _exchange(oauth: Any, source: RefreshTokenSource, code: str, verifier: str) -> dict[str, Any]:
    try:
        return dict(oauth.fetch_token(source.client.token_url, grant_type="authorization_code", code=code,
                                      code_verifier=verifier))
    except OAuthError as exc:
        raise AuthError(f"auth login {source.target}: the token endpoint refused the sign-in ({exc.error}: "
                        f"{exc.description or ''})",
                        hint="Check auth.client_id, the client secret and the app's redirect URI, then try again.") from None
    except Exception as exc:  # httpx errors, an answer that is not a token
        raise AuthError(f"auth login {source.target}: the token endpoint {source.client.token_url} could not be used "
                        f"({type(exc).__name__})", hint="Check auth.token_url in reconciler.yaml.") from None


def _browser(url: str) -> bool:
    try:
        return bool(webbrowser.open(url))
    except webbrowser.Error:
        return False


def _default_scopes(kind: str) -> tuple[str, ...]:
    from reconciler.auth._config import vendor_auth

    return vendor_auth(kind).scopes


def _refresh_source(project: Any, name: str, env: Mapping[str, str]) -> RefreshTokenSource:
    source = project.target_context(name, env=env).token_source
    if not isinstance(source, RefreshTokenSource):
        flow = auth_of(project.target(name)).flow
        raise AuthError(f"target {name!r} uses the {flow} flow, which has no browser sign-in",
                        hint="`auth login` is for targets with auth.flow: oauth-refresh (docs/auth.md); a static "
                             "token or a Zettle API key goes in the environment variable named by credentials_env.")
    return source


# --- status --------------------------------------------------------------------------------------


@dataclass
class TargetAuth:
    """One line of `auth status` (no secrets)."""

    target: str
    kind: str
    flow: str
    status: TokenStatus | None = None
    covers: dict[str, list[str] | None] = field(default_factory=dict)  # word -> missing scopes
    planned: dict[str, int] = field(default_factory=dict)  # word -> operations of the plan
    problem: str | None = None


def auth_status(project: Any, *, env: Mapping[str, str] | None = None, plan: Any = None,
                check: bool = False, targets: Iterable[str] | None = None) -> list[TargetAuth]:
    """What each target's credential is and covers. ``check``: fetch a token now (proves it works)."""
    from reconciler.connectors.base import connector_class

    rows = []
    wanted = list(targets or project.config.targets)
    for name in wanted:
        target = project.target(name)
        row = TargetAuth(name, target.kind, auth_of(target).flow)
        if plan is not None:
            for op in plan.operations:
                if op.target == name and str(op.kind) in ("reset", "adjust", "move", "delete", "settings"):
                    row.planned[str(op.kind)] = row.planned.get(str(op.kind), 0) + 1
        try:
            source = _source(project, name, env)
            if check:
                source.access_token()
            row.status = source.status()
            cls = connector_class(target.kind)
            row.covers = {w: m for w, m in coverage(target.kind, row.status.scopes, cls).items() if _can(cls, w)}
        except ReconcilerError as exc:
            row.problem = str(exc)
        rows.append(row)
    return rows


def _source(project: Any, name: str, env: Mapping[str, str] | None) -> TokenSource:
    from reconciler.auth import source_of

    return source_of(project.target_context(name, env=env))


def _can(cls: Any, word: str) -> bool:
    caps = getattr(cls, "capabilities", None)
    if caps is None:
        return True
    # every target takes resets and adjustments (a delta vendor gets a reset as a movement)
    return {"read": caps.readable, "reset": True, "adjust": True,
            "move": caps.native_move, "delete": caps.delete, "settings": bool(caps.settings),
            "count": False}.get(word, True)
