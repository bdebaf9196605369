"""Reading a vendor's answer body for what it says, not trusting its status (issue 16 point 4).

Shared by the connectors whose vendors document an error body but no status for it (Run Free)
or no success body at all (the Lightspeed supplier feed): pure functions over the body text.
"""

from __future__ import annotations

import json
from typing import Any

ERROR_KEYS = ("error", "errors")


def parse_json(text: str) -> Any:
    """The body as JSON, or None when it is not JSON."""
    try:
        return json.loads(text)
    except ValueError:
        return None


def error_message(text: str, keys: tuple[str, ...] = ERROR_KEYS) -> str | None:
    """The message of a ``{"error": ...}`` (or another of ``keys``) body, else None."""
    data = parse_json(text)
    if not isinstance(data, dict):
        return None
    for key in keys:
        value = data.get(key)
        if value not in (None, "", False, [], {}):
            return value if isinstance(value, str) else json.dumps(value)
    return None
