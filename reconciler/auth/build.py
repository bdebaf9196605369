"""Build a target's token source from its ``auth`` block, its secret and the state store."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

from reconciler.auth._config import AuthConfig, auth_problems, vendor_auth
from reconciler.auth._sources import (
    OAuthClient,
    RefreshTokenSource,
    StaticBearer,
    TokenSource,
    ZettleAssertion,
)
from reconciler.connectors.base import Secret
from reconciler.errors import ConfigError, Problem

CONFIG_FILE = "reconciler.yaml"


def auth_of(target: Any) -> AuthConfig:
    return getattr(target, "auth", None) or AuthConfig()


def endpoint(template: str | None, base_url: str) -> str | None:
    return template.replace("{url}", base_url.rstrip("/")) if template else None


def token_url(kind: str, auth: AuthConfig, base_url: str) -> str | None:
    return auth.token_url or endpoint(vendor_auth(kind).token_url, base_url)


def authorize_url(kind: str, auth: AuthConfig, base_url: str) -> str | None:
    return auth.authorize_url or endpoint(vendor_auth(kind).authorize_url, base_url)


def _problem(name: str, message: str, hint: str, line: int | None) -> ConfigError:
    return ConfigError([Problem(f"target {name!r}: {message}", CONFIG_FILE, line, hint)])


def check_flow(name: str, kind: str, auth: AuthConfig, line: int | None = None) -> None:
    """A flow the vendor does not offer is a configuration error, located at the auth block."""
    problems = auth_problems(name, kind, auth, line)
    if problems:
        raise ConfigError(problems)


def token_source(project: Any, name: str, credential: Secret, env: Mapping[str, str] | None = None,
                 line: int | None = None) -> TokenSource | None:
    """The target's token source; None for the static flow (the connector's credential is the bearer)."""
    target = project.target(name)
    auth = auth_of(target)
    check_flow(name, target.kind, auth, line)
    if auth.flow == "static":
        return None
    env = os.environ if env is None else env
    base_url = (target.url or "").rstrip("/")
    url = token_url(target.kind, auth, base_url)
    if not url:
        raise _problem(name, f"flow {auth.flow} needs auth.token_url", "Add auth.token_url: https://...", line)
    variable = target.credentials_env or ""
    if auth.flow == "zettle-assertion":
        return ZettleAssertion(name, credential, url, variable=variable, client_id=auth.client_id, renew_at=auth.renew_at)
    client = OAuthClient(str(auth.client_id), credential, url, auth.client_auth or vendor_auth(target.kind).client_auth,
                         variable)
    seed = env.get(auth.refresh_token_env) if auth.refresh_token_env else None
    from reconciler.workflow import who

    return RefreshTokenSource(name, client, store_opener(project, env), seed=Secret(seed) if seed else None,
                              seed_variable=auth.refresh_token_env, holder=f"{who()} pid {os.getpid()}",
                              renew_at=auth.renew_at)


def store_opener(project: Any, env: Mapping[str, str]) -> Any:
    """Opens the project's state store for one refresh and closes it again: refreshes are rare,
    and a connection of its own keeps the refresh transaction apart from the applier's."""

    @contextmanager
    def opened() -> Iterator[Any]:
        from reconciler.workflow import open_store

        store = open_store(project, env=env)
        try:
            yield store
        finally:
            store.close()

    return opened


def static_source(credential: Secret) -> TokenSource:
    return StaticBearer(credential)
