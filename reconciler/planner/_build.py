"""From intents to the plan's operations: compile to capabilities, order, expected values, ids.

Order is (target, location, item, kind), then the other legs' locations, so two plans made from
the same inputs list the same operations in the same order. Expected values are computed by
walking that order with a running balance per position starting from A (B where A is unknown),
so applying the plan's changes in order to live stock yields every leg's ``expected``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from reconciler.model import Leg, OpKind, Operation, PositionKey, new_leg, new_operation
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


# Ranks by the member's value: a dict keyed by the enum itself would call Enum.__hash__ (Python
# code) once per operation, a visible share of sorting a million of them.
_RANK_OF_VALUE = {kind._value_: rank for kind, rank in KIND_RANK.items()}


def _sort_key(it: Intent) -> tuple:
    legs = it.legs
    # Only a move has a second leg and the rank tells kinds apart, so "" for the missing second
    # location orders exactly as the empty tuple of other legs' locations did.
    return (it.target, legs[0].location, it.item, _RANK_OF_VALUE[it.kind._value_],
            legs[1].location if len(legs) > 1 else "")


def _freeze_leg(kind: OpKind, leg: LegIn, now: int | None) -> Leg:
    """The leg with its change and expected quantity, given the running balance ``now``."""
    if kind is OpKind.RESET:
        change, expected = leg.amount - (now or 0), leg.amount
    elif kind is OpKind.ADJUST or kind is OpKind.MOVE:
        change = leg.amount
        expected = (now or 0) + change
    elif kind is OpKind.DELETE:
        change, expected = 0, None
    else:
        change, expected = 0, now
    return new_leg(leg.location, leg.actual, leg.base, leg.desired, change, expected)


def op_id(it: Intent, legs: tuple[Leg, ...], lineage: str, serial: int) -> str:
    parts = ";".join(f"{l.location}:{l.change}:{l.desired}:{l.base}" for l in legs)
    extra = repr(sorted(it.settings_after.as_dict().items())) if it.settings_after is not None else ""
    text = f"{it.kind._value_}|{it.target}|{it.item}|{parts}|{extra}|{lineage}|{serial}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _frozen_legs(intents: list[Intent]) -> Iterator[tuple[Intent, tuple[Leg, ...]]]:
    """Pop ``intents`` (reversed plan order) and give each with its legs frozen.

    Expected values come from a running balance per position, starting at A (B where A is
    unknown). Operations whose first leg is at one position are adjacent in plan order, so for
    most positions the balance is the previous leg's or the starting one; only positions a
    movement reaches as its second leg can be touched out of order, and only those are kept in
    a dict (which would otherwise hold a million entries for a chain's first plan).
    """
    moved = {(it.target, it.legs[1].location, it.item) for it in intents if len(it.legs) > 1}
    held: dict[PositionKey, int | None] = {}
    last_key: PositionKey | None = None
    last_value: int | None = None
    while intents:
        it = intents.pop()
        kind, target, item = it.kind, it.target, it.item
        legs = []
        for leg in it.legs:
            key = (target, leg.location, item)
            if key in moved:
                now = held[key] if key in held else (leg.actual if leg.actual is not None else leg.base)
                frozen = _freeze_leg(kind, leg, now)
                held[key] = frozen.expected
            else:
                now = last_value if key == last_key else (leg.actual if leg.actual is not None else leg.base)
                frozen = _freeze_leg(kind, leg, now)
                last_key, last_value = key, frozen.expected
            legs.append(frozen)
        yield it, tuple(legs)


def build_operations(intents: list[Intent], lineage: str, serial: int) -> list[Operation]:
    """The plan's operations, in plan order. Consumes ``intents`` (the list is left empty) so
    each intent is freed as soon as its operation exists: both at once would double the memory
    of a plan that changes every position."""
    intents.sort(key=_sort_key)
    intents.reverse()  # popped from the end, in plan order
    tail = f"|{lineage}|{serial}"
    sha, ops = hashlib.sha256, []
    for it, legs in _frozen_legs(intents):
        # The id text is op_id's, written out: this runs once per operation.
        parts = ";".join([f"{l.location}:{l.change}:{l.desired}:{l.base}" for l in legs])
        after = it.settings_after
        extra = repr(sorted(after.as_dict().items())) if after is not None else ""
        text = f"{it.kind._value_}|{it.target}|{it.item}|{parts}|{extra}{tail}"
        ops.append(new_operation(
            sha(text.encode()).hexdigest()[:16], it.kind, it.target, it.item, legs, it.reason,
            it.settings_before, after, tuple(sorted(it.guards)) if it.guards else (), it.write_mode,
        ))
    return ops


def plan_id(lineage: str, serial: int, desired_digest: str, ops: list[Operation]) -> str:
    h = hashlib.sha256(f"{lineage}|{serial}|{desired_digest}|".encode())
    # One update over the joined ids hashes the same bytes as one update per id.
    h.update("".join([op.id for op in ops]).encode())
    return h.hexdigest()[:16]
