"""Writing discovered ids into catalog.yaml and reconciler.yaml *in place*.

A round trip through ruamel.yaml keeps the merchant's comments, key order, quoting and layout;
only the keys discover adds are new text. (A re-dump through PyYAML would drop every comment.)
New string ids are double-quoted, mapping ids (Zettle) written in flow style, as the examples
in docs/configuration.md are.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Mapping, Sequence

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from reconciler.config._stock import CATALOG_FILE
from reconciler.config.schema import CONFIG_FILE
from reconciler.discover._match import Row, Status
from reconciler.errors import ConfigError, Problem


def _yaml() -> YAML:
    yaml = YAML()  # round-trip mode
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long line of the merchant's
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _load(path: Path, rel: str) -> Any:
    try:
        return _yaml().load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([Problem(f"cannot read the file: {exc.strerror}", rel)]) from exc
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError([Problem(f"not valid YAML: {getattr(exc, 'problem', exc)}", rel,
                                   mark.line + 1 if mark else None)]) from exc


def _dump(data: Any) -> str:
    out = io.StringIO()
    _yaml().dump(data, out)
    return out.getvalue()


def _id_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        flow = CommentedMap((k, DoubleQuotedScalarString(str(v))) for k, v in value.items())
        flow.fa.set_flow_style()
        return flow
    return DoubleQuotedScalarString(str(value))


def _mapping(parent: Any, key: str, rel: str) -> CommentedMap:
    value = parent.get(key)
    if value is None:
        value = CommentedMap()
        parent[key] = value
    if not isinstance(value, dict):
        raise ConfigError([Problem(f"{key}: is not a mapping", rel, hint="Fix it (reconciler validate) and run again.")])
    return value


def catalog_text(root: Path, target: str, rows: Sequence[Row]) -> str | None:
    """The new catalog.yaml with the MATCHED and ADDED ids of ``rows``; None when unchanged."""
    wanted = [r for r in rows if r.status in (Status.MATCHED, Status.ADDED)]
    if not wanted:
        return None
    path = root / CATALOG_FILE
    data = _load(path, CATALOG_FILE) if path.exists() else None
    if data is None:
        data = CommentedMap()
    items = _mapping(data, "items", CATALOG_FILE)
    for row in wanted:
        entry = items.get(row.key)
        if entry is None:
            entry = CommentedMap()
            if row.note:
                entry["name"] = row.note
            items[row.key] = entry
        if not isinstance(entry, dict):
            raise ConfigError([Problem(f"catalog entry {row.key!r} is not a mapping", CATALOG_FILE)])
        _mapping(entry, "ids", CATALOG_FILE)[target] = _id_value(row.found)
    return _dump(data)


def config_text(root: Path, target: str, rows: Sequence[Row]) -> str | None:
    """The new reconciler.yaml with the target's MATCHED and ADDED location ids (ADDED ones also
    become canonical locations, described by the vendor's name); None when unchanged."""
    wanted = [r for r in rows if r.status in (Status.MATCHED, Status.ADDED)]
    if not wanted:
        return None
    data = _load(root / CONFIG_FILE, CONFIG_FILE)
    targets = _mapping(data, "targets", CONFIG_FILE)
    if not isinstance(targets.get(target), dict):
        raise ConfigError([Problem(f"target {target!r} is not in targets:", CONFIG_FILE)])
    located = _mapping(targets[target], "locations", CONFIG_FILE)
    canonical = _mapping(data, "locations", CONFIG_FILE)
    for row in wanted:
        if row.status is Status.ADDED and row.key not in canonical:
            description = CommentedMap(description=row.note or row.key)
            description.fa.set_flow_style()
            canonical[row.key] = description
        located[row.key] = _id_value(row.found)
    return _dump(data)
