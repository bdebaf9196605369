"""A stock repository with one OAuth target ``t`` and its sandbox served over real HTTP.

The sandbox's token service (reconciler/sandbox/_oauth.py) is reached at the sandbox's own
address; ``auth.token_url`` / ``auth.authorize_url`` point there, as a merchant's would point at
the vendor. Secrets reach reconciler only through the environment (``Shop.env``).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx
import yaml

from reconciler.config import load_project
from reconciler.sandbox import ServerThread, simulator_class
from reconciler.sandbox._fixtures import position_quantity, target_fixtures
from reconciler.sandbox._oauth import CLIENT_ID, CLIENT_SECRET, OAuthServer, oauth_server

LOCATION = {"xseries": "outlet-oslo", "lightspeed-supplier": "feed-1",
            "zettle": "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b"}
SECRET_VAR = "AUTH_T_SECRET"  # the client secret, or the Zettle API key
REFRESH_VAR = "AUTH_T_REFRESH"  # the first refresh token (a CI secret)
PATHS = {"lightspeed-supplier": ("/oauth/token", "/authorize"), "xseries": ("/api/1.0/token", "/connect"),
         "zettle": ("/token", None)}


def item_id(kind: str, n: int) -> Any:
    if kind == "zettle":
        return {"product": str(uuid.uuid5(uuid.NAMESPACE_OID, f"p{n}")), "variant": str(uuid.uuid5(uuid.NAMESPACE_OID, f"v{n}"))}
    return f"prod-{n:04d}" if kind == "xseries" else f"item-{n:04d}"


def auth_block(kind: str, url: str, **extra: Any) -> dict[str, Any]:
    token, authorize = PATHS[kind]
    if kind == "zettle":
        return {"flow": "zettle-assertion", "token_url": url + token, **extra}
    block = {"flow": "oauth-refresh", "client_id": CLIENT_ID, "refresh_token_env": REFRESH_VAR,
             "token_url": url + token, "authorize_url": url + authorize}
    return {**block, **extra}


@dataclass
class Shop:
    root: Path
    kind: str
    server: ServerThread
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def oauth(self) -> OAuthServer:
        return oauth_server(self.server.sim)

    @property
    def state(self) -> Path:
        return self.root / ".reconciler" / "state.db"

    def live(self) -> dict[str, int]:
        rows = httpx.get(self.url + "/_sandbox/stock", timeout=30).json()["stock"]
        return {_key(r["item"]): int(r["quantity"]) for r in rows}

    def cli(self, *argv: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """``python -m reconciler -C ROOT ARGV`` in its own process, as a user runs it."""
        full = {k: v for k, v in os.environ.items() if k not in ("RECONCILER_STATE", "RECONCILER_REPO")}
        full.update(self.env)
        full.update(env or {})
        # cwd: relative paths (--out plans/p.json) land in the shop, as for a user working there
        return subprocess.run([sys.executable, "-m", "reconciler", "-C", str(self.root), *argv], env=full, cwd=self.root,
                              capture_output=True, text=True, timeout=timeout)


def _key(item: Any) -> str:
    return item["variant"] if isinstance(item, dict) and "variant" in item else str(item)


def desired_quantity(kind: str, n: int) -> int:
    return position_quantity("t", LOCATION[kind], item_id(kind, n)) + 1 + n % 3


def write_repo(root: Path, kind: str, url: str, items: int, auth: dict[str, Any] | None,
               settings: dict[str, Any] | None = None, commit: bool = True) -> None:
    (root / "stock").mkdir(parents=True, exist_ok=True)
    target: dict[str, Any] = {"kind": kind, "url": url, "credentials_env": SECRET_VAR,
                              "locations": {"oslo": LOCATION[kind]}}
    if auth:
        target["auth"] = auth
    if kind == "lightspeed-supplier":  # these tests read stock and settings through the assumed read path
        target["options"] = {"read_api": "assumed"}
    config = {"version": 1, "locations": {"oslo": {}}, "guards": {"max_delete_share": 1.0}, "targets": {"t": target}}
    (root / "reconciler.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    catalog = {"items": {f"SKU-{n:04d}": {"ids": {"t": item_id(kind, n)}} for n in range(items)}}
    (root / "stock" / "catalog.yaml").write_text(yaml.safe_dump(catalog, sort_keys=False), encoding="utf-8")
    stock = {f"SKU-{n:04d}": ({"quantity": desired_quantity(kind, n), **settings} if settings else desired_quantity(kind, n))
             for n in range(items)}
    (root / "stock" / "oslo.yaml").write_text(yaml.safe_dump({"location": "oslo", "stock": {"t": stock}}, sort_keys=False),
                                              encoding="utf-8")
    (root / ".gitignore").write_text(".reconciler/\nplans/\n", encoding="utf-8")
    if not commit:
        return
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit", "-q", "-m", "stock"]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@contextlib.contextmanager
def oauth_shop(tmp: Path, kind: str, *, items: int = 20, lifetime_s: float | None = None,
               scopes: list[str] | None = None, settings: dict[str, Any] | None = None,
               auth_extra: dict[str, Any] | None = None, sim_options: dict[str, Any] | None = None) -> Iterator[Shop]:
    """A repository at tmp/shop whose target ``t`` is a live ``kind`` sandbox reached with OAuth."""
    root = tmp / "shop"
    # The url is only known once the server runs; the fixtures only once the repo exists.
    write_repo(root, kind, "http://127.0.0.1:9", items, None, settings, commit=False)
    fixtures = target_fixtures(load_project(root), "t")
    if kind == "lightspeed-supplier":
        sim_options = {"read_api": "assumed", **(sim_options or {})}
    sim = simulator_class(kind)(fixtures=fixtures, **(sim_options or {}))
    with contextlib.ExitStack() as stack:
        stack.callback(sim.close)
        server = stack.enter_context(ServerThread(sim))
        shop = Shop(root, kind, server)
        write_repo(root, kind, server.url, items, auth_block(kind, server.url, **(auth_extra or {})), settings)
        if lifetime_s is not None:
            shop.oauth.switches.lifetime_s = lifetime_s
        if kind == "zettle":
            shop.env[SECRET_VAR] = shop.oauth.api_key(scopes)
        else:
            shop.env[SECRET_VAR] = CLIENT_SECRET
            shop.env[REFRESH_VAR] = shop.oauth.grant_refresh_token(scopes)
        yield shop
