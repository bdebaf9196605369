"""Credentials' one home: token sources behind one interface, and the auth connectors use.

A connector asks for its auth with :func:`bearer_auth` (or :func:`api_key` for a key that goes
in the query string) and never sees a grant. Which source a target gets is decided by its
``auth`` block in reconciler.yaml (:mod:`reconciler.auth._config`), built by
:func:`reconciler.auth.build.token_source`. See docs/auth.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from reconciler.auth._config import AuthConfig

if TYPE_CHECKING:
    import httpx

    from reconciler.auth._sources import TokenSource
    from reconciler.connectors.base import TargetContext

__all__ = ["AuthConfig", "api_key", "bearer_auth", "source_of"]


def source_of(ctx: TargetContext) -> TokenSource:
    """The target's token source: the one built from its ``auth`` block, else its static bearer."""
    from reconciler.auth._sources import StaticBearer

    source = getattr(ctx, "token_source", None)
    return source if source is not None else StaticBearer(ctx.credential)


def bearer_auth(ctx: TargetContext, extra: Callable[[Any], None] | None = None) -> httpx.Auth:
    """The httpx auth of a connector whose vendor takes ``Authorization: Bearer``: the header on
    each request, renewal before expiry and once on a 401 that says the token expired.
    ``extra`` adds the vendor's own headers after it."""
    from reconciler.auth._httpx import SourceAuth

    return SourceAuth(source_of(ctx), extra)


def api_key(ctx: TargetContext) -> str:
    """A static key a vendor takes outside the Authorization header (Ka-ching's ``apikey``)."""
    return ctx.credential.reveal()
