"""The Ka-ching import URL a user pastes from the Back Office, taken apart (pure; no I/O).

Ka-ching hands out full endpoint URLs, ``https://{BASE_URL}/imports/stock?account=..&integration=..
&apikey=..`` (developers.ka-ching.dk/import-queues-authentication; generated under Advanced Options
-> Import Integrations and copy-pasted, ka-ching-as/ka-ching-ucommerce-app README.md). Used by the
config check (``reconciler validate``) and by the connector, so both read a URL the same way:

- the path ``/imports/stock`` (a trailing slash allowed) is dropped to get the base; a URL of
  another import queue (``/imports/products``, ...) is refused;
- ``account`` and ``integration`` are taken from the query; every other parameter is kept and
  sent on each request (the order of parameters varies between Ka-ching's examples);
- ``apikey`` must not be there: reconciler.yaml lives in git, so the key comes from the
  environment variable named by ``credentials_env``; ``adjustment`` must not be there either:
  the connector adds ``adjustment=true`` to delta imports only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit, urlunsplit

STOCK_PATH = "/imports/stock"
ID_PARAMS = ("account", "integration")
SECRET_PARAM = "apikey"
RESERVED_PARAMS = ("adjustment",)
_OTHER_IMPORT = re.compile(r"^(.*)/imports/([^/]+)/?$")
# Ka-ching stores ids as keys of its (Firebase) database, which may not hold these characters
# (developers.ka-ching.dk/expenses-import-integration, "same DB").
FORBIDDEN_ID_CHARS = ".#$[]/*"


@dataclass(frozen=True)
class KachingURL:
    base: str  # scheme://host[:port][/prefix], without /imports/stock and the query
    params: dict[str, str] = field(default_factory=dict)  # query parameters kept, apikey never
    problems: tuple[str, ...] = ()  # what is wrong, never quoting a secret


def parse_url(url: str) -> KachingURL:
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    problems: list[str] = []
    found = _OTHER_IMPORT.match(path)
    if found:
        if found.group(2) != "stock":
            problems.append(f"it is the URL of the {found.group(2)!r} import queue; paste the stock import URL "
                            f"(its path ends in {STOCK_PATH})")
        path = found.group(1)
    params: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key.lower() == SECRET_PARAM:
            problems.append("it holds the apikey, a secret that must not be committed to git; delete "
                            "`&apikey=...` from the url and put the key in the environment variable named by "
                            "credentials_env (revoke the key if this file was ever pushed)")
        elif key.lower() in RESERVED_PARAMS:
            problems.append(f"it holds {key}=...; delete it: reconciler adds adjustment=true to delta imports itself")
        else:
            params[key] = value
    base = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
    return KachingURL(base, params, tuple(problems))


def bad_id_chars(value: str) -> str:
    """The characters of ``value`` that Ka-ching cannot store in an id ("" when none)."""
    return "".join(sorted({c for c in value if c in FORBIDDEN_ID_CHARS}))
