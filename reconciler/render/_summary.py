"""Counts shared by the renderers: per kind, per (target, location), units up and down."""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.model import Leg, OpKind, Operation, Plan

# kind -> (singular, plural), in the order the verdict lists them
NOUNS: dict[OpKind, tuple[str, str]] = {
    OpKind.RESET: ("reset", "resets"),
    OpKind.ADJUST: ("adjustment", "adjustments"),
    OpKind.MOVE: ("movement", "movements"),
    OpKind.DELETE: ("deletion", "deletions"),
    OpKind.RELEASE: ("release", "releases"),
    OpKind.RECORD: ("state record", "state records"),
    OpKind.SETTINGS: ("settings change", "settings changes"),
    OpKind.DRIFT: ("drift note", "drift notes"),
}
QUANTITY_KINDS = frozenset({OpKind.RESET, OpKind.ADJUST, OpKind.MOVE})


@dataclass(slots=True)
class Tally:
    counts: dict[OpKind, int] = field(default_factory=lambda: dict.fromkeys(NOUNS, 0))
    up: int = 0
    down: int = 0

    def add(self, op: Operation, legs: tuple[Leg, ...]) -> None:
        self.counts[op.kind] += 1
        if op.kind in QUANTITY_KINDS:
            for leg in legs:
                if leg.change > 0:
                    self.up += leg.change
                else:
                    self.down -= leg.change


@dataclass(slots=True)
class Summary:
    total: Tally
    by_location: dict[tuple[str, str], Tally]


def summarize(plan: Plan) -> Summary:
    total = Tally()
    by_location: dict[tuple[str, str], Tally] = {}
    for op in plan.operations:
        total.add(op, op.legs)
        for leg in op.legs:
            key = (op.target, leg.location)
            tally = by_location.get(key)
            if tally is None:
                tally = by_location[key] = Tally()
            # A movement counts at both of its locations, with that location's leg only.
            tally.add(op, (leg,))
    return Summary(total, dict(sorted(by_location.items())))


def _n(count: int, kind: OpKind) -> str:
    one, many = NOUNS[kind]
    return f"{count:,} {one if count == 1 else many}"


def verdict_parts(summary: Summary) -> tuple[str, str]:
    """("3 resets, 12 adjustments, 1 deletion", " (units +57 / −20); 2 drift notes")."""
    counts = summary.total.counts
    parts = [_n(counts[k], k) for k in NOUNS if k is not OpKind.DRIFT and counts[k]]
    head = ", ".join(parts) if parts else "no changes"
    units = f" (units +{summary.total.up:,} / \u2212{summary.total.down:,})" if parts else ""
    drift = f"; {_n(counts[OpKind.DRIFT], OpKind.DRIFT)}" if counts[OpKind.DRIFT] else ""
    return head, units + drift


def verdict(summary: Summary) -> str:
    head, tail = verdict_parts(summary)
    return head + tail


def fmt_qty(value: int | None, missing: str = "\u2014") -> str:
    """A quantity; ``missing`` for None ("—" for an absent B or D, "?" for an unknown A)."""
    return missing if value is None else str(value)


def fmt_change(value: int) -> str:
    return f"+{value}" if value > 0 else ("\u2212" + str(-value) if value < 0 else "0")


def describe_legs(op: Operation) -> tuple[str, str, str, str, str, str]:
    """(location, A, B, D, change, expected) cells; a movement shows both legs as from → to."""
    if op.kind is OpKind.MOVE and len(op.legs) == 2:
        f, t = op.legs
        arrow = " \u2192 "
        return (
            f"{f.location}{arrow}{t.location}",
            f"{fmt_qty(f.actual, '?')}{arrow}{fmt_qty(t.actual, '?')}",
            f"{fmt_qty(f.base)}{arrow}{fmt_qty(t.base)}",
            f"{fmt_qty(f.desired)}{arrow}{fmt_qty(t.desired)}",
            f"{t.change:,} units",
            f"{fmt_qty(f.expected)}{arrow}{fmt_qty(t.expected)}",
        )
    leg = op.legs[0]
    change = fmt_change(leg.change) if op.kind in QUANTITY_KINDS else ""
    if op.kind is OpKind.SETTINGS and op.settings_after is not None:
        change = settings_change(op)
    return (
        leg.location, fmt_qty(leg.actual, "?"), fmt_qty(leg.base), fmt_qty(leg.desired), change,
        fmt_qty(leg.expected),
    )


def settings_change(op: Operation) -> str:
    """Only the settings this operation changes, as "name old→new"."""
    before = op.settings_before.as_dict() if op.settings_before is not None else {}
    after = op.settings_after.as_dict() if op.settings_after is not None else {}
    return ", ".join(
        f"{k} {before.get(k, 'unset')}\u2192{v}" for k, v in after.items() if before.get(k) != v
    )
