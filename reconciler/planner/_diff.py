"""The three-way diff (DESIGN.md section 3): one pass over the positions, one intent per change.

This is the hot loop of ``plan`` (a million positions for a large chain), so it touches each
key once, keeps per-target lookups in :class:`TargetCtx`, and builds no objects for the common
case of a position that needs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from reconciler.model import (
    NO_SETTINGS,
    BaseState,
    DesiredPosition,
    DesiredState,
    OpKind,
    PositionKey,
    Record,
)
from reconciler.planner._intent import NO_GUARDS, Intent, LegIn, TargetCtx, signed

_RESET = OpKind.RESET
_new_object = object.__new__  # an instance with no slot set: the adopt path sets each one

_UNKNOWN_NOTE = "live stock unknown (write-only target): last applied stands in for it"


@dataclass(slots=True)
class Adopts:
    """Positions D holds and B does not, without settings and not protected: a chain's first plan
    is nothing else. Each becomes one single-leg operation (a record where A = D, else a reset)
    that no other operation touches: intents, guards and running balances have nothing to say
    about it (the guards skip unmanaged positions and unprotected ones)."""

    keys: list[PositionKey] = field(default_factory=list)  # D's own key tuples, in D's order
    actual: list[int | None] = field(default_factory=list)  # A; None: a write-only target
    desired: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Diff:
    intents: list[Intent] = field(default_factory=list)
    adjust: list[Intent] = field(default_factory=list)  # D != B under merge, before compiling
    errors: list[str] = field(default_factory=list)  # structural problems: PlanError
    negative: list[tuple[Intent, str]] = field(default_factory=list)
    desired_locations: set[tuple[str, str]] = field(default_factory=set)
    base_locations: dict[tuple[str, str], int] = field(default_factory=dict)  # managed count
    # every position that took more than the fast path (D != B, replace, settings, not in B or
    # not in D, or A != B): all the others need nothing whatever A becomes, as long as A = B
    examined: list[PositionKey] = field(default_factory=list)
    # Adopts without settings, unprotected, kept as columns (run_diff(adopts=True)): no intent
    # each; build_adopts makes their operations in bulk.
    adopts: Adopts | None = None


_NOTHING_HELD = Record(0)


def _where(dp: DesiredPosition | None) -> str:
    return str(dp.source) if dp is not None and dp.source is not None else ""


def _live(ctx: TargetCtx, loc: str, item: str) -> Record | None:
    # A readable target that does not hold the position holds none of it: A = 0.
    if not ctx.readable:
        return None
    return ctx.actual.get((loc, item)) or _NOTHING_HELD


def diff_present(diff: Diff, ctx: TargetCtx, dp: DesiredPosition, b: Record | None) -> None:
    """D present: adopt, replace, drift note or adjustment candidate; then settings."""
    loc, item, dq = dp.location, dp.item, dp.quantity
    arec = _live(ctx, loc, item)
    a = arec.quantity if arec is not None else None
    bq = b.quantity if b is not None else None
    adopt: Intent | None = None
    if b is None and a == dq:
        adopt = _record(diff, ctx, dp, a, None, adopt_reason(dq, a))
    elif b is None:
        adopt = _reset(diff, ctx, dp, a, bq, adopt_reason(dq, a))
    elif dp.strategy == "replace":
        if (a if a is not None else bq) != dq:
            was = f"live stock {a}" if a is not None else f"last applied {bq}; {_UNKNOWN_NOTE}"
            _reset(diff, ctx, dp, a, bq, f"replace: reset to {dq} ({was})")
        elif bq != dq:
            _record(diff, ctx, dp, a, bq, f"replace: the vendor already holds {dq} (last applied {bq}): {_RECORDED}")
    elif bq == dq:
        if a is not None and a != bq:
            note = (
                f"drift: live stock {a} differs from last applied {bq} by {signed(a - bq)} "
                "(sales or receipts); left as is"
            )
            diff.intents.append(Intent(OpKind.DRIFT, ctx.name, item, [LegIn(loc, a, bq, dq, 0)], note))
    else:
        _adjust(diff, ctx, dp, a, bq)
    if dp.settings is not NO_SETTINGS and not dp.settings.is_empty():
        held = _settings(diff, ctx, dp, arec, b)
        if adopt is not None and held:
            # No settings operation is needed, but B must learn the managed settings now, or
            # the next plan (which compares D with B) would plan them as a change.
            adopt.settings_after = dp.settings
            held_text = ", ".join(f"{k} {v}" for k, v in dp.settings.as_dict().items())
            adopt.reason += f"; vendor already holds {held_text}: recorded as managed"


class AdoptReasons(dict[tuple[int, int | None], str]):
    """The adopt reason per (desired, actual), made once: a chain's first plan has a million
    adopts but few distinct pairs, so its operations also share one string per pair."""

    def __missing__(self, pair: tuple[int, int | None]) -> str:
        reason = self[pair] = adopt_reason(*pair)
        return reason


_RECORDED = "recorded as applied, nothing sent"


def adopt_reason(dq: int, a: int | None) -> str:
    if a == dq:
        return f"adopt: first time this tool manages it; the vendor already holds {dq}: {_RECORDED}"
    how = f"vendor holds {a}" if a is not None else "live stock unknown (write-only target)"
    return f"adopt: first time this tool manages it; reset to {dq} ({how})"


def _record(diff: Diff, ctx: TargetCtx, dp: DesiredPosition, a: int | None, bq: int | None, why: str) -> Intent:
    """The vendor already holds D but B does not say so: B := D, nothing sent. Without it a
    later edit (or a switch to merge) would adjust from a B that is not what the vendor holds."""
    leg = LegIn(dp.location, a, bq, dp.quantity, 0)
    it = Intent(OpKind.RECORD, ctx.name, dp.item, [leg], why, "", protect=dp.protect, source=dp.source)
    diff.intents.append(it)
    return it


def _reset(diff: Diff, ctx: TargetCtx, dp: DesiredPosition, a: int | None, bq: int | None, why: str) -> Intent:
    leg = LegIn(dp.location, a, bq, dp.quantity, dp.quantity)
    it = Intent(OpKind.RESET, ctx.name, dp.item, [leg], why, "absolute", protect=dp.protect, source=dp.source)
    diff.intents.append(it)
    return it


def _adjust(diff: Diff, ctx: TargetCtx, dp: DesiredPosition, a: int | None, bq: int) -> None:
    delta = dp.quantity - bq
    on = f"live stock {a}" if a is not None else f"last applied {bq} ({_UNKNOWN_NOTE})"
    why = f"desired {dp.quantity}, last applied {bq}: adjust by {signed(delta)} on top of {on}"
    it = Intent(
        OpKind.ADJUST, ctx.name, dp.item, [LegIn(dp.location, a, bq, dp.quantity, delta)], why,
        "delta", protect=dp.protect, source=dp.source,
    )
    if a is not None and a + delta < 0:
        it.guards = frozenset(("negative",))
        where = f"{_where(dp)}: " if dp.source else ""
        msg = (
            f"{where}{ctx.name}/{dp.location}/{dp.item}: adjusting live stock {a} by {signed(delta)} "
            f"would leave {a + delta}"
        )
        diff.negative.append((it, msg))
    diff.adjust.append(it)


def _settings(diff: Diff, ctx: TargetCtx, dp: DesiredPosition, arec: Record | None, b: Record | None) -> bool:
    """Plan a settings operation if needed; True when the settings are already held."""
    wanted = dp.settings.as_dict()
    unsupported = sorted(set(wanted) - ctx.caps.settings)
    if unsupported:
        where = f"{_where(dp)}: " if dp.source else ""
        diff.errors.append(
            f"{where}{ctx.name}/{dp.location}/{dp.item}: target {ctx.name} cannot hold the "
            f"setting(s) {', '.join(unsupported)}; remove them from the stock file"
        )
        return False
    if dp.strategy == "replace" and arec is not None:
        before = arec.settings
    elif b is not None:
        before = b.settings
    else:
        before = arec.settings if arec is not None else NO_SETTINGS
    have = before.as_dict()
    if all(have.get(k) == v for k, v in wanted.items()):
        return True
    after = before.overlay(dp.settings)
    changed = ", ".join(f"{k} {have.get(k, 'unset')} -> {v}" for k, v in wanted.items() if have.get(k) != v)
    a = arec.quantity if arec is not None else None
    leg = LegIn(dp.location, a, b.quantity if b else None, dp.quantity, 0)
    diff.intents.append(
        Intent(
            OpKind.SETTINGS, ctx.name, dp.item, [leg], f"settings: {changed}", "absolute",
            settings_before=before, settings_after=after, protect=dp.protect, source=dp.source,
        )
    )
    return False


def diff_absent(diff: Diff, ctx: TargetCtx, key: PositionKey, b: Record) -> None:
    """D absent, B present: delete with pruning on, release with it off."""
    _, loc, item = key
    arec = _live(ctx, loc, item)
    a = arec.quantity if arec is not None else None
    leg = LegIn(loc, a, b.quantity, None, 0)
    if ctx.policy.prune:
        if not ctx.caps.delete:
            diff.errors.append(
                f"{ctx.name}/{loc}/{item}: no longer desired and pruning is on, but target "
                f"{ctx.name} cannot stop tracking stock; set prune: false for it (its positions "
                "are then released) or keep the position in the stock file"
            )
            return
        why = "no longer desired; pruning is on: stop tracking it at the vendor"
        diff.intents.append(Intent(OpKind.DELETE, ctx.name, item, [leg], why, "absolute"))
    else:
        why = "no longer desired; pruning is off: state forgets it, the vendor is untouched"
        diff.intents.append(Intent(OpKind.RELEASE, ctx.name, item, [leg], why))


def run_diff(
    desired: DesiredState,
    base: BaseState,
    ctx_of: Callable[[str], TargetCtx],
    in_scope: Callable[[str, str], bool] | None,
    *,
    adopts: bool = False,
    protected: frozenset[str] = frozenset(),
) -> Diff:
    """Classify every position in D or B (one pass each; A-only positions are not managed).

    ``adopts``: adopts without settings go to ``diff.adopts`` as columns instead of intents,
    except at positions that are protected (``dp.protect`` or an item in ``protected``), which
    the protected guard must see."""
    diff = Diff()
    bpos, add, reasons = base.positions, diff.intents.append, AdoptReasons()
    examined = diff.examined.append
    columns = diff.adopts = Adopts() if adopts else None
    if columns is not None:
        adopt_key, adopt_actual, adopt_desired = columns.keys.append, columns.actual.append, columns.desired.append
    ctx: TargetCtx | None = None
    actual: dict[tuple[str, str], Record] | None = None  # ctx.actual if readable
    # Positions come grouped by file, so (target, location) rarely changes between keys;
    # tracking the last one avoids a set insertion per position.
    last_t = last_loc = None
    for key, dp in desired.positions.items():
        t, loc, item = key
        if loc != last_loc or t != last_t:
            if in_scope is not None and not in_scope(t, loc):
                continue
            if t != last_t:
                ctx = ctx_of(t)
                actual = ctx.actual if ctx.readable else None
            last_t, last_loc = t, loc
            diff.desired_locations.add((t, loc))
        b = bpos.get(key) if bpos else None  # a chain's first plan: B is empty
        if b is None and dp.settings is NO_SETTINGS:
            examined(key)
            # Adopt without settings: every position of a chain's first plan. What diff_present
            # and _reset build, written out (a call and keyword arguments cost more than the
            # objects): the intent and its leg get every slot here, so no __init__ runs.
            a = None if actual is None else (actual.get((loc, item)) or _NOTHING_HELD).quantity
            if columns is not None and not dp.protect and item not in protected:
                adopt_key(key)
                adopt_actual(a)
                adopt_desired(dp.quantity)
                continue
            if a == dp.quantity:
                _record(diff, ctx, dp, a, None, reasons[dp.quantity, a])  # type: ignore[arg-type]
                continue
            leg, it = _new_object(LegIn), _new_object(Intent)
            leg.location, leg.actual, leg.base, leg.desired, leg.amount = loc, a, None, dp.quantity, dp.quantity
            it.kind, it.target, it.item, it.legs, it.reason = _RESET, t, item, [leg], reasons[dp.quantity, a]
            it.write_mode, it.settings_before, it.settings_after, it.guards = "absolute", None, None, NO_GUARDS
            it.protect, it.source = dp.protect, dp.source
            add(it)
            continue
        # Fast path, the common case: merge, D == B, no settings, and A == B (or A unknown).
        if b is not None and b.quantity == dp.quantity and dp.strategy == "merge" and dp.settings is NO_SETTINGS:
            if not ctx.readable:  # type: ignore[union-attr]
                continue
            arec = ctx.actual.get((loc, item))  # type: ignore[union-attr]
            if (arec.quantity if arec is not None else 0) == b.quantity:
                continue
        examined(key)
        diff_present(diff, ctx, dp, b)  # type: ignore[arg-type]
    _diff_base(diff, desired, base, ctx_of, in_scope)
    return diff


def _diff_base(
    diff: Diff,
    desired: DesiredState,
    base: BaseState,
    ctx_of: Callable[[str], TargetCtx],
    in_scope: Callable[[str, str], bool] | None,
) -> None:
    """Count managed positions per location; positions in B but not in D are deleted or released."""
    dpos, counts = desired.positions, diff.base_locations
    last: tuple[str, str] | None = None
    run = 0
    for key in base.positions:
        tl = key[:2]
        if tl != last:
            if last is not None:
                counts[last] = counts.get(last, 0) + run
            last, run = tl, 0
        run += 1
        if key not in dpos and (in_scope is None or in_scope(key[0], key[1])):
            diff.examined.append(key)
            diff_absent(diff, ctx_of(key[0]), key, base.positions[key])
    if last is not None:
        counts[last] = counts.get(last, 0) + run
    if in_scope is not None:
        for tl in [tl for tl in counts if not in_scope(*tl)]:
            del counts[tl]
