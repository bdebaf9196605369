"""The ``auth`` block of a target in reconciler.yaml, and each vendor's documented defaults.

Only names live here: client ids, hosts, scopes and the NAMES of environment variables. Every
secret (API key, client secret, the first refresh token) comes from the environment, and a
rotated refresh token from the state store; reconciler.yaml is in git.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from reconciler.errors import Problem

FlowName = Literal["static", "zettle-assertion", "oauth-refresh"]
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


class AuthConfig(BaseModel):
    """``targets.<name>.auth``. Absent: ``flow: static`` (the bearer in ``credentials_env``)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    flow: FlowName = "static"
    # oauth-refresh: the app's client id (not a secret). zettle-assertion: overrides the key's
    # own client_id claim (partner attribution, with options.application_id).
    client_id: str | None = None
    # oauth-refresh: where the first refresh token may come from when the state store has none
    # (a CI secret); once rotated, the state store's copy is the only valid one.
    refresh_token_env: str | None = None
    token_url: str | None = None
    authorize_url: str | None = None
    scopes: tuple[str, ...] | None = None
    # "basic" (HTTP Basic client_id:client_secret) or "post" (both in the form body)
    client_auth: Literal["basic", "post"] | None = None
    # the loopback port `auth login` listens on; the app's registered redirect URI must match
    redirect_port: int = Field(8765, ge=0, le=65535)
    # renew an access token once this share of its lifetime has passed (issue 17: at most ~0.9)
    renew_at: float = Field(0.9, gt=0.0, le=0.95)

    @field_validator("scopes", mode="before")
    @classmethod
    def _scope_list(cls, value: object) -> object:
        # YAML gives a list; strict mode wants the tuple the frozen model stores
        return tuple(value) if isinstance(value, list) else value

    @model_validator(mode="after")
    def _flow_fields(self) -> AuthConfig:
        if self.flow == "oauth-refresh" and not self.client_id:
            raise ValueError("flow oauth-refresh needs client_id: the OAuth app's client id (the client secret goes "
                             "in the environment variable named by credentials_env)")
        if self.flow == "static" and (self.client_id or self.refresh_token_env or self.token_url or self.authorize_url):
            raise ValueError("client_id, refresh_token_env, token_url and authorize_url only apply to the "
                             "zettle-assertion and oauth-refresh flows; set flow:")
        for name in ("token_url", "authorize_url"):
            url = getattr(self, name)
            if url is not None and not re.match(r"https?://[^/\s]+", url):
                raise ValueError(f"{name} must be an http(s) URL")
        return self


@dataclass(frozen=True)
class VendorAuth:
    """What a vendor documents about its OAuth endpoints (sources in docs/auth.md)."""

    flows: tuple[str, ...]
    token_url: str | None = None  # "{url}" stands for the target's own base url
    authorize_url: str | None = None
    scopes: tuple[str, ...] = ()
    client_auth: str = "post"


XSERIES_SCOPES = (
    "inventory:read", "inventory:write", "products:read", "products:write", "consignments:write:stock_order",
    "consignments:write:stock_transfer", "consignments:write:inventory_count", "outlets:read",
)

VENDORS: dict[str, VendorAuth] = {
    # research/xseries_counts.md Q4 (XS-CL-RT, PM): token at the store's own domain prefix, the
    # client credentials in the form body; consent at secure.retail.lightspeed.app/connect.
    "xseries": VendorAuth(("static", "oauth-refresh"), "{url}/api/1.0/token",
                          "https://secure.retail.lightspeed.app/connect", XSERIES_SCOPES, "post"),
    # research/auth_and_discovery.md A2 (lightspeed-vendors.readme.io): authorization code + PKCE;
    # Basic client authentication at the token endpoint is ASSUMED (a screenshot tab, not text).
    "lightspeed-supplier": VendorAuth(("static", "oauth-refresh"), "https://accounts.lightspeed.app/oauth/token",
                                      "https://accounts.lightspeed.app/authorize",
                                      ("openid", "profile", "offline_access"), "basic"),
    # research/auth_and_discovery.md B1 (iZettle/api-documentation authorization.md)
    "zettle": VendorAuth(("static", "zettle-assertion"), "https://oauth.zettle.com/token"),
}


def vendor_auth(kind: str) -> VendorAuth:
    return VENDORS.get(kind, VendorAuth(("static",)))


def auth_problems(name: str, kind: str, auth: AuthConfig, line: int | None) -> list[Problem]:
    """`reconciler validate`: a flow the target's vendor does not offer, located at its block."""
    problems = []
    flows = vendor_auth(kind).flows
    if auth.flow not in flows:
        problems.append(Problem(f"target {name!r}: kind {kind} does not offer the auth flow {auth.flow!r}",
                                "reconciler.yaml", line, f"Use one of: {', '.join(flows)} (docs/auth.md)."))
    if auth.refresh_token_env is not None and not _ENV_NAME.fullmatch(auth.refresh_token_env):
        # Checked here, not by the schema, whose messages quote the value: it may be a pasted token.
        problems.append(Problem(f"target {name!r}: auth.refresh_token_env must be the NAME of an environment variable "
                                "(capitals, digits and _), never the token itself", "reconciler.yaml", line,
                                "Put the token in a CI secret or environment variable and write its name here; "
                                "revoke the token if it is real."))
    return problems
