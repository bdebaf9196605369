"""What an operation means for the state: its journal summary and the B it leaves behind."""

from __future__ import annotations

import json

from reconciler.model import OpKind, Operation
from reconciler.state.base import BaseUpdate

# Kinds the applier journals. DRIFT is a note and never reaches the journal.
JOURNALED_KINDS = frozenset(
    {OpKind.RESET, OpKind.ADJUST, OpKind.MOVE, OpKind.DELETE, OpKind.SETTINGS, OpKind.RELEASE, OpKind.RECORD}
)


def base_updates(op: Operation) -> tuple[BaseUpdate, ...]:
    """B after ``op`` is applied: B = D for each leg; delete and release forget B."""
    if op.kind in (OpKind.DELETE, OpKind.RELEASE):
        return tuple(BaseUpdate(key, remove=True) for key in op.keys)
    if op.kind is OpKind.SETTINGS:
        return tuple(BaseUpdate(key, settings=op.settings_after) for key in op.keys)
    if op.kind in (OpKind.RESET, OpKind.ADJUST, OpKind.MOVE, OpKind.RECORD):
        updates = []
        for key, leg in zip(op.keys, op.legs):
            quantity = leg.desired if leg.desired is not None else leg.expected
            updates.append(BaseUpdate(key, quantity=quantity, settings=op.settings_after))
        return tuple(updates)
    return ()


def request_summary(op: Operation) -> str:
    """A compact, secret-free description of what is sent, for the journal."""
    data = {
        "kind": op.kind.value,
        "target": op.target,
        "item": op.item,
        "write_mode": op.write_mode,
        "legs": [{"location": leg.location, "change": leg.change, "expected": leg.expected} for leg in op.legs],
    }
    if op.settings_after is not None:
        data["settings"] = op.settings_after.as_dict()
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def resendable(op: Operation) -> bool:
    """An absolute write lands on the same result however often it is sent."""
    return op.write_mode == "absolute"
