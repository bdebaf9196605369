"""A decoded JSON value with every scalar's type spelled out, for comparing two decoders or two
page builders: 21, 21.0 and "21" must not compare equal."""

from __future__ import annotations

from typing import Any


def typed(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: typed(v) for key, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    return (type(value).__name__, value)
