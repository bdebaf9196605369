"""State URLs: where the state lives, and how to name it without its password.

Accepted forms (``state:`` in reconciler.yaml, ``RECONCILER_STATE``, ``--state``):

- a file path, relative to the repository root: ``.reconciler/state.db`` (the default);
- ``sqlite:///abs/path.db`` (absolute) or ``sqlite://rel/path.db`` / ``sqlite:rel/path.db``
  (relative to the repository root);
- ``postgresql://user[:password]@host[:port]/dbname[?schema=NAME&sslmode=...]`` (also
  ``postgres://``). ``schema`` (default ``public``) lets one database hold several stock
  repositories. ``${VAR}`` anywhere in the URL is replaced by the environment variable VAR, so
  the password never has to be written down; without one libpq's own PGPASSWORD / ~/.pgpass
  apply.

Nothing here does I/O; the password only exists in :attr:`StateURL.conninfo`, never in
:meth:`StateURL.redacted`, which is what every message uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from reconciler.errors import StateError

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_PG_SCHEMES = ("postgresql", "postgres")
MASK = "***"


@dataclass(frozen=True)
class StateURL:
    """A parsed state location. ``kind`` is ``sqlite`` or ``postgresql``."""

    kind: str
    path: Path | None = None  # sqlite
    conninfo: str = field(default="", repr=False)  # postgresql, password included: never print
    schema: str = "public"
    display: str = ""  # the URL as the user wrote it, password masked
    secrets: tuple[str, ...] = field(default=(), repr=False)  # to scrub from foreign messages

    def redacted(self) -> str:
        return self.display

    def scrub(self, text: str) -> str:
        """``text`` with every secret of this URL masked (driver messages may echo parts)."""
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, MASK)
        return text

    def __str__(self) -> str:
        return self.display


def is_postgres(text: str) -> bool:
    return text.split("://", 1)[0].lower() in _PG_SCHEMES if "://" in text else False


def redact(text: str) -> str:
    """Mask the password of a postgresql URL without parsing anything else (for messages about
    a URL that failed to parse)."""
    return re.sub(r"(://[^:/@?#]*:)[^@/?#]*@", lambda m: m.group(1) + MASK + "@", text)


def parse_state_url(text: str, *, root: Path | None = None, env: Mapping[str, str] | None = None, origin: str = "state") -> StateURL:
    """Parse ``text``; ``origin`` names where it came from for error messages."""
    text = text.strip()
    if not text:
        raise StateError(f"{origin}: the state location is empty", hint="Give a path or a postgresql:// URL.")
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if text.lower().startswith("sqlite:"):
        rest = text[len("sqlite:"):]
        rest = rest[2:] if rest.startswith("//") else rest
        return _sqlite(rest, root, text)
    if scheme in _PG_SCHEMES:
        return _postgres(text, env or {}, origin)
    if scheme:
        raise StateError(
            f"{origin}: unknown state URL scheme {scheme!r} in {redact(text)}",
            hint="Use a file path, sqlite:///path or postgresql://user@host/db.",
        )
    return _sqlite(text, root, text)


def _sqlite(raw: str, root: Path | None, display: str) -> StateURL:
    path = Path(raw).expanduser()
    if not path.is_absolute() and root is not None:
        path = root / path
    return StateURL("sqlite", path=path, display=str(path) if display == raw else display)


def _expand(text: str, env: Mapping[str, str], origin: str, shown: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise StateError(
                f"{origin}: the state URL {shown} refers to ${{{name}}}, but the environment variable {name} is not set",
                hint=f"export {name}=... before running reconciler.",
            )
        return env[name]

    return _ENV_REF.sub(value, text)


def _postgres(text: str, env: Mapping[str, str], origin: str) -> StateURL:
    shown = redact(text)
    try:
        parts = urlsplit(text)
        query = parse_qsl(parts.query, keep_blank_values=True)
        username, password = parts.username, parts.password
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise StateError(f"{origin}: cannot parse the state URL {shown}: {exc}",
                         hint="Expected postgresql://user@host:port/dbname?schema=NAME.") from exc
    schema = "public"
    kept: list[tuple[str, str]] = []
    secrets: list[str] = []
    for key, val in query:
        if key == "schema":
            schema = val
        else:
            if key == "password":
                secrets.append(_expand(val, env, origin, shown))
            kept.append((key, _expand(val, env, origin, shown)))
    if not _SCHEMA_NAME.match(schema):
        raise StateError(
            f"{origin}: schema {schema!r} in the state URL {shown} is not a plain lower-case identifier",
            hint="Use letters, digits and underscores, starting with a letter, e.g. ?schema=stock_eu.",
        )
    user = _expand(unquote(username or ""), env, origin, shown)
    secret = _expand(unquote(password), env, origin, shown) if password is not None else None
    if secret:
        secrets.append(secret)
    netloc = quote(user, safe="") if user else ""
    if secret is not None:
        netloc += ":" + quote(secret, safe="")
    if netloc:
        netloc += "@"
    hostname = _expand(host or "", env, origin, shown)
    netloc += f"[{hostname}]" if ":" in hostname else hostname  # IPv6 literals keep their brackets
    if port:
        netloc += f":{port}"
    dbname = _expand(unquote(parts.path.lstrip("/")), env, origin, shown)
    conninfo = urlunsplit(("postgresql", netloc, "/" + quote(dbname), urlencode(kept), ""))
    display = _display(parts, query)
    return StateURL("postgresql", conninfo=conninfo, schema=schema, display=display, secrets=tuple(secrets))


def _display(parts: object, query: list[tuple[str, str]]) -> str:
    """The URL as written, ``${VAR}`` references kept, every password masked."""
    split = parts  # urlsplit result
    netloc = split.netloc  # type: ignore[attr-defined]
    if "@" in netloc:
        userinfo, hostport = netloc.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":" + MASK
        netloc = f"{userinfo}@{hostport}"
    shown_query = urlencode([(k, MASK if k == "password" else v) for k, v in query], safe="${}")
    return urlunsplit((split.scheme, netloc, split.path, shown_query, ""))  # type: ignore[attr-defined]
