"""Movement inference: pair falls and rises of one item within one target into movements.

Rule (deterministic greedy): within one (target, item), sources are the locations whose D - B
falls and sinks those where it rises. Both lists are sorted by size, largest first, ties by
location name. The largest remaining source is paired with the largest remaining sink for
min(fall, rise) units; the paired amounts are subtracted and the loop repeats until one side is
exhausted. What is left becomes ordinary adjustments. Pairing largest with largest keeps the
number of movements small and no location is paired twice with the same partner.
"""

from __future__ import annotations

from reconciler.model import OpKind
from reconciler.planner._intent import Intent, LegIn, signed


def _ranked(cands: list[Intent], sign: int) -> list[list]:
    # [remaining units, intent]; sorted largest first, then by location name
    picked = [[abs(c.legs[0].amount), c] for c in cands if (c.legs[0].amount > 0) == (sign > 0)]
    picked.sort(key=lambda p: (-p[0], p[1].legs[0].location))
    return picked


def _move(src: Intent, dst: Intent, qty: int) -> Intent:
    s, d = src.legs[0], dst.legs[0]
    reason = (
        f"movement of {qty} from {s.location} to {d.location}: desired falls by "
        f"{-s.amount} at {s.location} and rises by {d.amount} at {d.location}"
    )
    return Intent(
        kind=OpKind.MOVE,
        target=src.target,
        item=src.item,
        legs=[
            LegIn(s.location, s.actual, s.base, s.desired, -qty),
            LegIn(d.location, d.actual, d.base, d.desired, qty),
        ],
        reason=reason,
        write_mode="delta",
        guards=src.guards | dst.guards,
        protect=src.protect or dst.protect,
        source=src.source or dst.source,
    )


def pair_movements(cands: list[Intent]) -> list[Intent]:
    """Turn one (target, item)'s adjustment candidates into movements plus leftover adjustments.

    Every candidate has one leg whose ``amount`` is D - B. Units are conserved: the sum of all
    returned amounts equals the sum of the candidates' amounts.
    """
    sources, sinks = _ranked(cands, -1), _ranked(cands, +1)
    if not sources or not sinks:
        return cands
    out: list[Intent] = []
    i = j = 0
    while i < len(sources) and j < len(sinks):
        src, dst = sources[i], sinks[j]
        qty = min(src[0], dst[0])
        out.append(_move(src[1], dst[1], qty))
        src[0] -= qty
        dst[0] -= qty
        if src[0] == 0:
            i += 1
        if dst[0] == 0:
            j += 1
    for remaining, cand in sources[i:] + sinks[j:]:
        if remaining:
            leg = cand.legs[0]
            sign = 1 if leg.amount > 0 else -1
            if remaining != abs(leg.amount):
                cand.reason += f" (the rest of {signed(leg.amount)} moves to or from other locations)"
            leg.amount = sign * remaining
            out.append(cand)
    return out

