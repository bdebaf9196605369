"""From intents to the plan's operations: compile to capabilities, order, expected values, ids.

Order is (target, location, item, kind), then the other legs' locations, so two plans made from
the same inputs list the same operations in the same order. Expected values are computed by
walking that order with a running balance per position starting from A (B where A is unknown),
so applying the plan's changes in order to live stock yields every leg's ``expected``.
"""

from __future__ import annotations

import hashlib

from reconciler.model import Leg, OpKind, Operation, PositionKey
from reconciler.planner._intent import Intent, LegIn, TargetCtx
from reconciler.planner._moves import pair_movements

KIND_RANK = {
    OpKind.DELETE: 0,
    OpKind.RELEASE: 1,
    OpKind.RESET: 2,
    OpKind.ADJUST: 3,
    OpKind.MOVE: 4,
    OpKind.SETTINGS: 5,
    OpKind.DRIFT: 6,
}


def _as_reset(it: Intent) -> Intent:
    """An adjustment for a target that takes absolute quantities only."""
    leg = it.legs[0]
    start = leg.actual if leg.actual is not None else leg.base
    assert start is not None  # an adjustment always has B
    expected = start + leg.amount
    it.kind = OpKind.RESET
    it.write_mode = "absolute"
    it.reason += f"; target takes absolute quantities only, so written as a reset to {expected}"
    leg.amount = expected
    return it


def _as_read_modify_write(it: Intent) -> Intent:
    """An adjustment for a readable target that takes absolute quantities only.

    It stays an ADJUST: the connector re-reads the live quantity just before it writes and
    writes live + d, so sales made between plan and apply survive (merge semantics). A reset
    to A + d would overwrite them.
    """
    it.write_mode = "read-modify-write"
    it.reason += "; target takes absolute quantities only, so apply re-reads live stock and writes it plus the change"
    return it


def compile_adjustments(cands: list[Intent], ctx_of: dict[str, TargetCtx]) -> list[Intent]:
    """Adjust candidates become movements (where inferred), adjustments, or resets."""
    out: list[Intent] = []
    groups: dict[tuple[str, str], list[Intent]] = {}
    for it in cands:
        ctx = ctx_of[it.target]
        if not ctx.caps.delta:
            # Without a read API there is nothing to re-read: B + d is the best known result.
            out.append(_as_read_modify_write(it) if ctx.caps.readable else _as_reset(it))
        elif ctx.policy.infer_movements:
            groups.setdefault((it.target, it.item), []).append(it)
        else:
            out.append(it)
    for group in groups.values():
        out.extend(pair_movements(group) if len(group) > 1 else group)
    return out


def _sort_key(it: Intent) -> tuple:
    return (it.target, it.legs[0].location, it.item, KIND_RANK[it.kind], tuple(l.location for l in it.legs[1:]))


def _freeze_leg(it: Intent, leg: LegIn, running: dict[PositionKey, int | None]) -> Leg:
    key = (it.target, leg.location, it.item)
    if key in running:
        now = running[key]
    else:
        now = leg.actual if leg.actual is not None else leg.base
    kind = it.kind
    if kind is OpKind.RESET:
        change, expected = leg.amount - (now or 0), leg.amount
    elif kind is OpKind.ADJUST or kind is OpKind.MOVE:
        change = leg.amount
        expected = (now or 0) + change
    elif kind is OpKind.DELETE:
        change, expected = 0, None
    else:
        change, expected = 0, now
    running[key] = expected
    return Leg(leg.location, leg.actual, leg.base, leg.desired, change, expected)


def op_id(it: Intent, legs: tuple[Leg, ...], lineage: str, serial: int) -> str:
    parts = ";".join(f"{l.location}:{l.change}:{l.desired}:{l.base}" for l in legs)
    extra = repr(sorted(it.settings_after.as_dict().items())) if it.settings_after is not None else ""
    text = f"{it.kind.value}|{it.target}|{it.item}|{parts}|{extra}|{lineage}|{serial}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build_operations(intents: list[Intent], lineage: str, serial: int) -> list[Operation]:
    intents.sort(key=_sort_key)
    running: dict[PositionKey, int | None] = {}
    ops: list[Operation] = []
    for it in intents:
        legs = tuple(_freeze_leg(it, leg, running) for leg in it.legs)
        ops.append(
            Operation(
                id=op_id(it, legs, lineage, serial),
                kind=it.kind,
                target=it.target,
                item=it.item,
                legs=legs,
                reason=it.reason,
                settings_before=it.settings_before,
                settings_after=it.settings_after,
                overridden_guards=tuple(sorted(it.guards)),
                write_mode=it.write_mode,
            )
        )
    return ops


def plan_id(lineage: str, serial: int, desired_digest: str, ops: list[Operation]) -> str:
    h = hashlib.sha256(f"{lineage}|{serial}|{desired_digest}|".encode())
    for op in ops:
        h.update(op.id.encode())
    return h.hexdigest()[:16]

