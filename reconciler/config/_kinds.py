"""What each target kind accepts in the stock repository: id shapes, settings, options.

These are facts about the vendors' data (VENDORS.md), needed at validation time, before any
connector is loaded. Connectors own what they can *do* (Capabilities); this module owns what
the YAML may *say* about them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from reconciler.config import _target_checks
from reconciler.connectors._kaching_url import FORBIDDEN_ID_CHARS

ItemId = str | Mapping[str, str]
IdCheck = Callable[[Any], "tuple[ItemId | None, str | None]"]


def _string_id(value: Any) -> tuple[ItemId | None, str | None]:
    if isinstance(value, str) and value.strip():
        return value, None
    return None, "a non-empty quoted string"


def _fields_id(value: Any, required: tuple[str, ...], optional: tuple[str, ...]) -> tuple[ItemId | None, str | None]:
    """A mapping with exactly the required fields, some optional ones, all non-empty strings."""
    if not isinstance(value, Mapping):
        return None, None
    keys = set(value)
    if not set(required) <= keys or not keys <= set(required) | set(optional):
        return None, None
    if not all(isinstance(v, str) and v.strip() for v in value.values()):
        return None, None
    return {k: value[k] for k in (*required, *optional) if k in value}, None


def _zettle_id(value: Any) -> tuple[ItemId | None, str | None]:
    ids, _ = _fields_id(value, ("product", "variant"), ())
    return (ids, None) if ids else (None, "a mapping {product: <uuid>, variant: <uuid>} of quoted strings")


def _kaching_id(value: Any) -> tuple[ItemId | None, str | None]:
    # A bare string is shorthand for {product: ...}; connectors always receive the mapping.
    if isinstance(value, str) and value.strip():
        value = {"product": value}
    ids, _ = _fields_id(value, ("product",), ("variant",))
    if ids is None:
        return None, "a mapping {product: <id>} or {product: <id>, variant: <id>} of quoted strings"
    if any(c in FORBIDDEN_ID_CHARS for v in ids.values() for c in v):
        # Ka-ching keeps ids as keys of its database, which cannot hold these characters
        # (developers.ka-ching.dk/expenses-import-integration)
        return None, "ids without any of . / # $ * [ ] (Ka-ching cannot store them)"
    return ids, None


def _runfree_id(value: Any) -> tuple[ItemId | None, str | None]:
    ids, _ = _fields_id(value, ("upc",), ())
    if ids is None and isinstance(value, Mapping) and value.get("width") == "":
        # apparel without a width: sent as "" (whether Run Free accepts it is unknown,
        # docs/connectors/runfree.md); sku and size must still be there
        ids, _ = _fields_id({**value, "width": "-"}, ("sku", "size", "width"), ())
        ids = {**ids, "width": ""} if ids else None
    if ids is None:
        ids, _ = _fields_id(value, ("sku", "size", "width"), ())
    if ids:
        return ids, None
    return None, "a mapping {upc: \"<upc>\"} or {sku: <sku>, size: \"<size>\", width: <width>} of quoted strings"


def _any_id(value: Any) -> tuple[ItemId | None, str | None]:
    ids, _ = _string_id(value)
    if ids is None:
        ids, _ = _fields_id(value, (), tuple(value) if isinstance(value, Mapping) else ())
    return (ids, None) if ids else (None, "a quoted string or a mapping of quoted strings")


# (field of the target the problem is about, message, hint)
TargetProblem = tuple[str, str, str]
ZETTLE_API_VERSIONS = ("v3", "v2")
ZETTLE_STORE_WORD = "STORE"  # the location id meaning "the organisation's STORE, found through the API"


def zettle_target_problems(options: Mapping[str, Any], locations: Mapping[str, Any]) -> list[TargetProblem]:
    """Zettle options (docs/connectors/zettle.md): api_version is v3 or v2. (A location id other
    than STORE is checked against the vendor's inventory list at first contact.)"""
    version = options.get("api_version", "v3")
    if str(version).strip().lower() in ZETTLE_API_VERSIONS:
        return []
    return [("options", f"options.api_version must be v3 or v2, not {version!r}",
             "v3 is Zettle's documented API (the default); v2 selects the deprecated v1/v2 paths.")]


@dataclass(frozen=True)
class KindRule:
    """What the YAML may say about a target of one kind."""

    id_check: IdCheck
    settings: frozenset[str] = frozenset()
    single_location: bool = False
    needs_endpoint: bool = True  # url and credentials_env are required
    required_options: tuple[str, ...] = ()
    # further checks of the target's fields: (name, TargetConfig, raw YAML mapping) -> Problems
    target_check: Callable[[str, Any, Any], list[Any]] | None = None


KINDS: dict[str, KindRule] = {
    "xseries": KindRule(_string_id, frozenset({"reorder_point", "reorder_amount"})),
    "lightspeed-supplier": KindRule(_string_id, frozenset({"tracking", "backordering"}), single_location=True,
                                    target_check=_target_checks.lightspeed_supplier),
    "zettle": KindRule(_zettle_id, frozenset({"low_stock_level"}), single_location=True,
                       target_check=lambda name, target, raw: _target_checks.from_tuples(
                           name, zettle_target_problems(target.options, target.locations), raw)),
    # account and integration: from the pasted url's query or the options (_target_checks.kaching)
    "kaching": KindRule(_kaching_id, target_check=_target_checks.kaching),
    "runfree": KindRule(_runfree_id),
    # In-process target for tests: accepts every setting and any id shape.
    "memory": KindRule(
        _any_id,
        frozenset({"reorder_point", "reorder_amount", "tracking", "backordering", "low_stock_level"}),
        needs_endpoint=False,
    ),
}

KIND_NAMES: tuple[str, ...] = tuple(KINDS)

# Type of each setting value: integer settings are counts (>= 0), the rest are flags.
INT_SETTINGS = frozenset({"reorder_point", "reorder_amount", "low_stock_level"})
BOOL_SETTINGS = frozenset({"tracking", "backordering"})


def settings_owner(setting: str) -> str:
    """Which kinds support a setting, for hints."""
    kinds = [k for k, rule in KINDS.items() if setting in rule.settings and k != "memory"]
    return " or ".join(kinds) or "no kind"
