"""Which scopes each kind of work needs, per vendor, and the plan-time check.

The words are the ones `auth status` shows: read, reset, adjust, move (a transfer), delete,
settings, count. A connector class may declare its own ``oauth_scopes`` mapping of these words
(a sixth vendor then touches nothing here); otherwise the table below applies.

Sources: X-Series research/xseries_counts.md Q4 (XS-SCOPES, XS-REF): reads of
/api/2.0/inventory need ``inventory:read``; the 2.1 product PUT (current_amount, reorder
settings, track_inventory) ``products:write``; SUPPLIER and RETURN consignments
``consignments:write:stock_order``; OUTLET consignments ``consignments:write:stock_transfer``;
STOCKTAKE ``consignments:write:inventory_count``. Zettle: the inventory API takes the product
scopes ``READ:PRODUCT`` / ``WRITE:PRODUCT`` (research/auth_and_discovery.md B1, B3). The supplier
feed documents only ``openid profile offline_access`` plus unnamed "other scopes": without
``offline_access`` no refresh token is issued.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Mapping

from reconciler.errors import MissingScopeError
from reconciler.model import EXECUTABLE_KINDS, Operation

WORDS = ("read", "reset", "adjust", "move", "delete", "settings", "count")

SCOPES: dict[str, dict[str, tuple[str, ...]]] = {
    "xseries": {
        "read": ("inventory:read",),
        "reset": ("products:write",),
        "adjust": ("consignments:write:stock_order",),
        "move": ("consignments:write:stock_transfer",),
        "delete": ("products:write",),
        "settings": ("products:write",),
        "count": ("consignments:write:inventory_count",),
    },
    "zettle": {
        "read": ("READ:PRODUCT",),
        **{word: ("WRITE:PRODUCT",) for word in ("reset", "adjust", "delete", "settings")},
    },
    "lightspeed-supplier": {word: ("offline_access",) for word in ("read", "reset", "adjust", "delete", "settings")},
}


def needed(kind: str, connector: Any = None) -> Mapping[str, tuple[str, ...]]:
    own = getattr(connector, "oauth_scopes", None)
    return own if isinstance(own, Mapping) else SCOPES.get(kind, {})


def coverage(kind: str, granted: frozenset[str] | None, connector: Any = None) -> dict[str, list[str] | None]:
    """word -> the scopes missing for it ([] = covered); None when the credential cannot tell."""
    table = needed(kind, connector)
    return {word: (None if granted is None else [s for s in table[word] if s not in granted]) for word in table}


def check_plan_scopes(operations: Iterable[Operation], connectors: Mapping[str, Any]) -> None:
    """Raise MissingScopeError naming each missing scope and what needs it, before any write.

    ``connectors``: target name -> connector (its ``ctx.token_source`` says what was granted;
    a static token cannot say, and is not checked)."""
    wanted: dict[str, dict[str, list[Operation]]] = defaultdict(lambda: defaultdict(list))
    for op in operations:
        if op.kind in EXECUTABLE_KINDS and op.target in connectors:
            # A connector may need other scopes for some operations (X-Series: a stock count
            # written as a STOCKTAKE needs the "count" word's scope, not the adjustment's).
            word = getattr(connectors[op.target], "scope_word", None)
            wanted[op.target][word(op) if word is not None else str(op.kind)].append(op)
    problems: list[str] = []
    for target, by_word in sorted(wanted.items()):
        connector = connectors[target]
        source = getattr(connector.ctx, "token_source", None)
        granted = source.granted_scopes() if source is not None else None
        if granted is None:
            continue
        for word, missing in coverage(connector.ctx.kind, granted, connector).items():
            ops = by_word.get(word)
            if ops and missing:
                problems.append(f"target {target!r}: the credential lacks scope {', '.join(repr(m) for m in missing)}, "
                                f"needed by {len(ops)} {word} operation{'s' if len(ops) != 1 else ''} "
                                f"(first: {ops[0].id})")
    if problems:
        raise MissingScopeError(
            "the plan needs scopes the credentials do not carry; nothing was sent:\n  " + "\n  ".join(problems),
            hint="Add the scope to the OAuth app or API key, then sign in again (`reconciler auth login TARGET`) "
                 "or put the new key in the environment; `reconciler auth status` shows what each target has.",
        )
