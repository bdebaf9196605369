"""From intents to the plan's operations: compile to capabilities, order, expected values, ids.

Order is (target, location, item, kind), then the other legs' locations, so two plans made from
the same inputs list the same operations in the same order. Expected values are computed by
walking that order with a running balance per position starting from A (B where A is unknown),
so applying the plan's changes in order to live stock yields every leg's ``expected``.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from itertools import islice
from operator import le

from reconciler.model import Leg, OpKind, Operation, PositionKey, new_leg, new_operation
from reconciler.planner._diff import Adopts, AdoptReasons
from reconciler.planner._intent import Intent, LegIn, TargetCtx
from reconciler.planner._moves import pair_movements

KIND_RANK = {
    OpKind.DELETE: 0,
    OpKind.RELEASE: 1,
    OpKind.RECORD: 1,  # never at the same position as a release (one needs D, the other its absence)
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


class _Balances:
    """The running balance per position, for expected values, walked in plan order.

    It starts at A (B where A is unknown). Operations whose first leg is at one position are
    adjacent in plan order, so for most positions the balance is the previous leg's or the
    starting one; only positions a movement reaches as its second leg can be touched out of
    order, and only those are kept in a dict (which would otherwise hold a million entries for a
    chain's first plan).
    """

    def __init__(self, intents: list[Intent]) -> None:
        self.moved = {(it.target, it.legs[1].location, it.item) for it in intents if len(it.legs) > 1}
        self.held: dict[PositionKey, int | None] = {}
        self.last_key: PositionKey | None = None
        self.last_value: int | None = None

    def freeze(self, it: Intent) -> tuple[Leg, ...]:
        """The intent's legs, frozen at the balances, which they then move on."""
        kind, target, item, moved, held = it.kind, it.target, it.item, self.moved, self.held
        legs = []
        for leg in it.legs:
            key = (target, leg.location, item)
            if key in moved:
                now = held[key] if key in held else (leg.actual if leg.actual is not None else leg.base)
                frozen = _freeze_leg(kind, leg, now)
                held[key] = frozen.expected
            else:
                now = self.last_value if key == self.last_key else (leg.actual if leg.actual is not None else leg.base)
                frozen = _freeze_leg(kind, leg, now)
                self.last_key, self.last_value = key, frozen.expected
            legs.append(frozen)
        return tuple(legs)


def build_operations(intents: list[Intent], lineage: str, serial: int) -> list[Operation]:
    """The plan's operations, in plan order. Consumes ``intents`` (the list is left empty) so
    each intent is freed as soon as its operation exists: both at once would double the memory
    of a plan that changes every position."""
    intents.sort(key=_sort_key)
    intents.reverse()  # popped from the end, in plan order
    balances = _Balances(intents)
    tail = f"|{lineage}|{serial}"
    ops: list[Operation] = []
    sha, pop, add, reset = hashlib.sha256, intents.pop, ops.append, OpKind.RESET
    reset_value = reset._value_
    while intents:
        it = pop()
        kind, target, item, after = it.kind, it.target, it.item, it.settings_after
        # The id text is op_id's, written out: this runs once per operation.
        extra = "" if after is None else repr(sorted(after.as_dict().items()))
        if kind is reset and len(it.legs) == 1 and not balances.moved:
            # A reset of one leg where no movement reaches (the million adopts of a chain's
            # first plan): balances.freeze written out. None is spelt out in the id text, as
            # formatting None goes through a slow generic path.
            leg = it.legs[0]
            loc, desired, base, amount = leg.location, leg.desired, leg.base, leg.amount
            key = (target, loc, item)
            now = balances.last_value if key == balances.last_key else (leg.actual if leg.actual is not None else base)
            change = amount - (now or 0)
            legs: tuple[Leg, ...] = (new_leg(loc, leg.actual, base, desired, change, amount),)
            balances.last_key, balances.last_value = key, amount
            text = f"{reset_value}|{target}|{item}|{loc}:{change}:{desired}:{'None' if base is None else base}|{extra}{tail}"
        else:
            legs = balances.freeze(it)
            parts = ";".join([f"{l.location}:{l.change}:{l.desired}:{l.base}" for l in legs])
            text = f"{kind._value_}|{target}|{item}|{parts}|{extra}{tail}"
        add(new_operation(
            sha(text.encode()).hexdigest()[:16], kind, target, item, legs, it.reason,
            it.settings_before, after, tuple(sorted(it.guards)) if it.guards else (), it.write_mode,
        ))
    return ops


def build_adopts(adopts: Adopts, lineage: str, serial: int) -> tuple[list[Operation], list[PositionKey]]:
    """The operations of the column-kept adopts, in plan order, and their positions (sorted).

    Each adopt is the only operation at its position, so its leg needs no running balance:
    a record (A = D) changes nothing and expects A; a reset changes A (0 where unknown) to D.
    The id text is op_id's for these legs (base None, no settings), written out.
    """
    keys, actual, desired = adopts.keys, adopts.actual, adopts.desired
    if not all(map(le, keys, islice(keys, 1, None))):  # D in file order is usually plan order
        order = sorted(range(len(keys)), key=keys.__getitem__)
        keys, actual, desired = ([col[i] for i in order] for col in (keys, actual, desired))
    adopts.keys, adopts.actual, adopts.desired = [], [], []
    reasons, sha, record, reset = AdoptReasons(), hashlib.sha256, OpKind.RECORD, OpKind.RESET
    tail = f"|{lineage}|{serial}"
    ops: list[Operation] = []
    add = ops.append
    for (target, loc, item), a, d in zip(keys, actual, desired):
        if a == d:
            text = f"record|{target}|{item}|{loc}:0:{d}:None|{tail}"
            add(new_operation(sha(text.encode()).hexdigest()[:16], record, target, item,
                              (new_leg(loc, a, None, d, 0, a),), reasons[d, a], None, None, (), ""))
        else:
            change = d - (a or 0)
            text = f"reset|{target}|{item}|{loc}:{change}:{d}:None|{tail}"
            add(new_operation(sha(text.encode()).hexdigest()[:16], reset, target, item,
                              (new_leg(loc, a, None, d, change, d),), reasons[d, a], None, None, (), "absolute"))
    return ops, keys


def merge_in_order(adopted: list[Operation], keys: list[PositionKey], others: list[Operation]) -> list[Operation]:
    """Both lists in plan order, as one. ``keys``: the positions of ``adopted``, sorted. No
    other operation is at an adopted position, so the position alone places each one."""
    if not others:
        return adopted
    if not adopted:
        return others
    out: list[Operation] = []
    start = 0
    for op in others:
        pos = (op.target, op.legs[0].location, op.item)
        at = bisect_left(keys, pos, start)
        if at < len(keys) and keys[at] == pos:
            raise AssertionError(f"an operation at the adopted position {pos}")  # run_diff's contract
        out += adopted[start:at]
        out.append(op)
        start = at
    out += adopted[start:]
    return out


def plan_id(lineage: str, serial: int, desired_digest: str, ops: list[Operation]) -> str:
    h = hashlib.sha256(f"{lineage}|{serial}|{desired_digest}|".encode())
    # One update over the joined ids hashes the same bytes as one update per id.
    h.update("".join([op.id for op in ops]).encode())
    return h.hexdigest()[:16]
