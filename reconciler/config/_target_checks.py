"""Checks of one target's fields that only its kind knows (``KindRule.target_check``).

Each takes the target's name, its validated TargetConfig and its raw YAML mapping (for lines)
and returns located Problems; a check never quotes a secret.
"""

from __future__ import annotations

from typing import Any, Callable

from reconciler.config._yaml import LineDict
from reconciler.connectors._kaching_url import ID_PARAMS, bad_id_chars, parse_url
from reconciler.errors import Problem

CONFIG_FILE = "reconciler.yaml"
KACHING_HINT = ("Paste the stock import URL from Ka-ching's Back Office as url: (without &apikey=...), or add "
                "`options: {account: <account>, integration: <integration>}` to the target.")


def _lines(raw: Any) -> Callable[[str], int | None]:
    return raw.line_of if isinstance(raw, LineDict) else (lambda key: None)


def from_tuples(name: str, found: list[tuple[str, str, str]], raw: Any) -> list[Problem]:
    """Problems from (field, message, hint) tuples, located at the field's line (or the kind's)."""
    line_of = _lines(raw)
    return [Problem(f"target {name!r}: {message}", CONFIG_FILE, line_of(field) or line_of("kind"), hint)
            for field, message, hint in found]


def kaching(name: str, target: Any, raw: Any) -> list[Problem]:
    """The pasted Back Office URL (no apikey in it), account and integration from the url or the
    options, and stock location ids Ka-ching can store."""
    line_of = _lines(raw)
    problems: list[Problem] = []
    url = parse_url(target.url) if target.url else None
    if url is not None:
        problems += [Problem(f"the url of target {name!r} (kaching): {text}", CONFIG_FILE, line_of("url"), KACHING_HINT)
                     for text in url.problems]
    from_url = url.params if url is not None else {}
    if any(str(key).lower() == "apikey" for key in target.options):
        problems.append(Problem(f"options of target {name!r} (kaching) hold the apikey, a secret that must not be "
                                "committed to git", CONFIG_FILE, line_of("options"),
                                "Delete it and put the key in the environment variable named by credentials_env "
                                "(revoke the key if this file was ever pushed)."))
    for option in ID_PARAMS:
        value = target.options.get(option)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            problems.append(Problem(f"options.{option} of target {name!r} (kaching) must be quoted text", CONFIG_FILE,
                                    line_of("options"), KACHING_HINT))
        elif value and from_url.get(option) and from_url[option] != value:
            problems.append(Problem(f"target {name!r} (kaching): options.{option} ({value}) differs from {option} in the "
                                    f"url ({from_url[option]})", CONFIG_FILE, line_of("options"), "Keep one of them."))
        elif not value and not from_url.get(option) and url is not None:
            line = line_of("options") if isinstance(raw, LineDict) and "options" in raw else line_of("url")
            problems.append(Problem(f"target {name!r} (kaching) needs options.{option} (or {option}= in its url's query)",
                                    CONFIG_FILE, line, KACHING_HINT))
    raw_locations = raw.get("locations") if isinstance(raw, LineDict) else None
    where = _lines(raw_locations)
    for location, vendor_id in target.locations.items():
        bad = bad_id_chars(vendor_id or "")
        if bad:
            problems.append(Problem(f"target {name!r} (kaching): the stock location id {vendor_id!r} of {location!r} "
                                    f"holds {' '.join(bad)}, which Ka-ching cannot store in an id", CONFIG_FILE,
                                    where(location), "Use the location's id as Ka-ching shows it (no . / # $ * [ ])."))
    return problems


def lightspeed_supplier(name: str, target: Any, raw: Any) -> list[Problem]:
    """``options.read_api``: absent or "none" (write-only, the documented feed) or "assumed"."""
    value = target.options.get("read_api")
    if value is None or value in ("none", "assumed"):
        return []
    return [Problem(f"options.read_api of target {name!r} (lightspeed-supplier) must be none or assumed, not {value!r}",
                    CONFIG_FILE, _lines(raw)("options"),
                    "Leave it out (write-only: the documented API) or write `read_api: assumed` to use the unverified "
                    "read path (docs/connectors/lightspeed-supplier.md).")]
