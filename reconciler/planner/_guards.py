"""Guards (DESIGN.md section 3): plan-time errors the user can override explicitly.

Each guard collects every violation; without its override they are all raised together in one
:class:`~reconciler.errors.GuardError`, each naming the position or location and the override.
With the override, the operations concerned carry the guard's name in ``overridden_guards`` and
the plan's warnings say what was let through.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.model import DesiredState, Guards, OpKind, Policy
from reconciler.planner._diff import Diff
from reconciler.planner._intent import Intent, signed

OVERRIDES: dict[str, tuple[str, str]] = {
    # guard -> (CLI flag, reconciler.yaml setting)
    "negative": ("--allow-negative", "guards.allow_negative: true"),
    "missing-location": ("--allow-missing-location", "guards.allow_missing_location: true"),
    "mass-delete": ("--allow-mass-delete", "guards.allow_mass_delete: true"),
    "protected": ("--allow-protected", "guards.allow_protected: true"),
}


_VERBS = {OpKind.SETTINGS: "change the settings of", OpKind.MOVE: "move stock of"}


@dataclass(slots=True)
class GuardReport:
    violations: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _allowed(guards: Guards, name: str) -> bool:
    return {
        "negative": guards.allow_negative,
        "missing-location": guards.allow_missing_location,
        "mass-delete": guards.allow_mass_delete,
        "protected": guards.allow_protected,
    }[name]


Finding = tuple[list[Intent], str]
"""The intents a violation concerns, and the message naming it."""


def _record(report: GuardReport, guards: Guards, name: str, found: list[Finding]) -> None:
    if not found:
        return
    flag, setting = OVERRIDES[name]
    if not _allowed(guards, name):
        report.violations.extend(f"{msg}; override with {flag} or {setting}" for _, msg in found)
        return
    added = frozenset((name,))
    for its, _ in found:
        for it in its:
            it.guards = it.guards | added
    shown = "; ".join(msg for _, msg in found[:5])
    more = f" (and {len(found) - 5} more)" if len(found) > 5 else ""
    report.warnings.append(f"guard overridden ({flag}): {shown}{more}")


def _by_location(intents: list[Intent]) -> dict[tuple[str, str], list[Intent]]:
    out: dict[tuple[str, str], list[Intent]] = {}
    for it in intents:
        for leg in it.legs:
            out.setdefault((it.target, leg.location), []).append(it)
    return out


def _missing_locations(diff: Diff, desired: DesiredState, intents: list[Intent]) -> list[Finding]:
    found: list[Finding] = []
    at: dict[tuple[str, str], list[Intent]] | None = None
    for tl, managed in sorted(diff.base_locations.items()):
        if tl in diff.desired_locations:
            continue
        at = at if at is not None else _by_location(intents)
        why = (
            f"the stock file {desired.declared_locations[tl]} declares no items for it"
            if tl in desired.declared_locations
            else "no stock file declares it"
        )
        found.append((
            at.get(tl, []),
            f"{tl[0]}/{tl[1]}: state holds {managed} position(s) there but {why}, "
            "so all of them would be deleted or released",
        ))
    return found


def _zeroing(it: Intent) -> list[str]:
    """Locations this intent deletes or brings to zero."""
    if it.kind is OpKind.DELETE:
        return [it.legs[0].location]
    if it.kind in (OpKind.RESET, OpKind.ADJUST, OpKind.MOVE):
        return [
            leg.location for leg in it.legs
            # only managed positions (in B) count, as the share is of B's positions there
            if leg.desired == 0 and leg.base is not None and (leg.actual if leg.actual is not None else leg.base)
        ]
    return []


def _mass_delete(diff: Diff, share: float, intents: list[Intent]) -> list[Finding]:
    hits: dict[tuple[str, str], list[Intent]] = {}
    delete, release, drift = OpKind.DELETE, OpKind.RELEASE, OpKind.DRIFT
    for it in intents:
        kind = it.kind
        # Runs over every intent of the plan: skip without a call what cannot zero anything (a
        # leg desired above zero, or an unmanaged position: adopts in a chain's first plan).
        if kind is release or kind is drift:
            continue
        if kind is not delete and len(it.legs) == 1 and (it.legs[0].desired != 0 or it.legs[0].base is None):
            continue
        for loc in _zeroing(it):
            hits.setdefault((it.target, loc), []).append(it)
    found: list[Finding] = []
    for tl, its in sorted(hits.items()):
        managed = diff.base_locations.get(tl, 0)
        # a position zeroed by a movement and a leftover adjustment counts once
        count = len({it.item for it in its})
        if managed and count > share * managed:
            found.append((
                its,
                f"{tl[0]}/{tl[1]}: the plan deletes or zeroes {count} of {managed} managed "
                f"positions, more than the allowed share of {share:.0%} (guards.max_delete_share)",
            ))
    return found


def _protected(policy: Policy, intents: list[Intent]) -> list[Finding]:
    found: list[Finding] = []
    protected, drift = policy.protected_items, OpKind.DRIFT
    for it in intents:
        # Runs over every intent of the plan; almost none is protected, so that is asked first.
        if not (it.protect or it.item in protected) or it.kind is drift or it.kind is OpKind.RECORD:
            continue  # a record changes nothing at the vendor
        leg = it.legs[0]
        if it.kind is OpKind.RESET and leg.actual is not None and leg.actual == leg.amount:
            continue  # adopting a position that already holds D changes nothing the flag protects
        change = f" by {signed(leg.amount)}" if it.kind in (OpKind.ADJUST, OpKind.MOVE) else ""
        where = f"{it.source}: " if it.source else ""
        verb = _VERBS.get(it.kind, it.kind.value)
        found.append(([it], f"{where}{it.target}/{leg.location}/{it.item} is protected; the plan would {verb} it{change}"))
    return found


def check_guards(diff: Diff, desired: DesiredState, policy: Policy, intents: list[Intent]) -> GuardReport:
    """Run every guard over the compiled intents; return violations and override warnings."""
    report = GuardReport()
    g = policy.guards
    # Negative results were found per position by the diff, before movement pairing.
    _record(report, g, "negative", [([it], msg) for it, msg in diff.negative])
    _record(report, g, "missing-location", _missing_locations(diff, desired, intents))
    _record(report, g, "mass-delete", _mass_delete(diff, g.max_delete_share, intents))
    _record(report, g, "protected", _protected(policy, intents))
    return report
