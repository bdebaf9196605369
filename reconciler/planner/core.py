"""make_plan: D, B, A and policy in, a :class:`~reconciler.model.Plan` out. Pure: no I/O.

The only impure input is the clock, and only when ``created_at`` is not given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from operator import attrgetter
from typing import Callable

from reconciler.errors import GuardError, PlanError
from reconciler.model import (
    ActualState,
    BaseState,
    DesiredState,
    Plan,
    Policy,
    PositionKey,
    TargetPolicy,
    gc_paused,
)
from reconciler.planner._build import build_adopts, build_operations, compile_adjustments, merge_in_order, plan_id
from reconciler.planner._counts import CountInput, CountPlan, plan_counts
from reconciler.planner._diff import Diff, run_diff
from reconciler.planner._guards import check_guards
from reconciler.planner._intent import TargetCtx

FORMAT_VERSION = 1


@dataclass
class PlanContext:
    """What a plan over some positions needs to know about all of them to equal the plan over
    all of them: a full plan fills it in (``observed=``), a plan of a subset is given it
    (``context=``; reconciler/_plan_memo.py). ``examined``: the positions that were not calm
    (D = B under merge without settings, with A = B or unknown); every other position needs
    nothing for as long as its A stays B."""

    examined: list[PositionKey] = field(default_factory=list)
    base_locations: dict[tuple[str, str], int] = field(default_factory=dict)
    desired_locations: set[tuple[str, str]] = field(default_factory=set)
    strategy_note: str = ""
    targets: list[str] = field(default_factory=list)  # every target a position of D or B is at


class _Targets:
    """Per-target facts, built on first use so a plan over one target needs only its facts."""

    def __init__(self, actual: ActualState, policy: Policy) -> None:
        self.actual, self.policy = actual, policy
        self.cache: dict[str, TargetCtx] = {}

    def __call__(self, target: str) -> TargetCtx:
        ctx = self.cache.get(target)
        if ctx is None:
            ctx = self.cache[target] = self._build(target)
        return ctx

    def _build(self, target: str) -> TargetCtx:
        caps = self.policy.capabilities.get(target)
        if caps is None:
            raise PlanError(
                f"no capabilities known for target {target!r}; is it configured in reconciler.yaml?"
            )
        live = self.actual.get(target)
        readable = live is not None and live.readable
        return TargetCtx(
            name=target,
            caps=caps,
            policy=self.policy.targets.get(target, TargetPolicy()),
            readable=readable,
            actual=live.positions if live is not None and readable else {},
        )


def _scope(policy: Policy) -> Callable[[str, str], bool] | None:
    ot, ol = policy.only_targets, policy.only_locations
    if ot is None and ol is None:
        return None
    return lambda t, loc: (ot is None or t in ot) and (ol is None or loc in ol)


def _strategy_note(desired: DesiredState) -> str:
    replace = list(map(attrgetter("strategy"), desired.positions.values())).count("replace")
    merge = len(desired.positions) - replace
    return (
        f"merge for {merge} position(s): adjust by D - B on top of live stock; "
        f"replace for {replace} position(s): reset to D wherever live stock differs"
    )


def _unreadable(cache: dict[str, TargetCtx]) -> tuple[list[str], list[str]]:
    names = sorted(t for t, ctx in cache.items() if not ctx.readable)
    notes = [
        f"{t}: live stock cannot be read (write-only API); the last applied quantity stands in "
        "for it, so sales since the last apply are not seen"
        for t in names
    ]
    return names, notes


def _plan_error(errors: list[str], shown: int = 50) -> PlanError:
    # A whole location of undeletable positions would otherwise print thousands of lines.
    more = f"\n  ... and {len(errors) - shown:,} more like these" if len(errors) > shown else ""
    return PlanError("the plan cannot be made:\n" + "\n".join(f"  {e}" for e in errors[:shown]) + more)


def _capped(violations: list[str], shown: int = 200) -> list[str]:
    # Every violation is listed up to a screenful; beyond that the count says the rest.
    if len(violations) <= shown:
        return violations
    return violations[:shown] + [f"... and {len(violations) - shown:,} more violations"]


def make_plan(
    desired: DesiredState,
    base: BaseState,
    actual: ActualState,
    policy: Policy,
    *,
    git_commit: str | None = None,
    git_dirty: bool = False,
    created_at: str | None = None,
    counts: CountPlan | None = None,
    context: PlanContext | None = None,
    observed: PlanContext | None = None,
) -> Plan:
    """The plan that takes the vendors from A towards D, given B (DESIGN.md section 3).

    ``observed``: filled in with this plan's :class:`PlanContext`. ``context``: D and B hold only
    some positions; the context says what the whole of them was (the plan is then the plan of
    the whole, as long as every position left out is calm).

    Raises PlanError for what no override can fix (deletes a target cannot do, settings it cannot
    hold) and GuardError listing every guard violation that was not overridden.
    """
    with gc_paused():
        return _make_plan(desired, base, actual, policy, git_commit, git_dirty, created_at, counts, context, observed)


def _make_plan(
    desired: DesiredState,
    base: BaseState,
    actual: ActualState,
    policy: Policy,
    git_commit: str | None,
    git_dirty: bool,
    created_at: str | None,
    counts: CountPlan | None = None,
    context: PlanContext | None = None,
    observed: PlanContext | None = None,
) -> Plan:
    targets = _Targets(actual, policy)
    # Adopts as columns, except where a count may replace them (take_counts edits intents).
    columns = counts is None or not counts.counts
    diff: Diff = run_diff(desired, base, targets, _scope(policy), adopts=columns, protected=policy.protected_items)
    if diff.errors:
        raise _plan_error(diff.errors)
    strategy_note = _strategy_note(desired) if context is None else context.strategy_note
    if context is not None:
        diff.base_locations, diff.desired_locations = dict(context.base_locations), set(context.desired_locations)
        for name in context.targets:
            targets(name)
    if observed is not None:
        observed.examined, observed.strategy_note = diff.examined, strategy_note
        observed.base_locations, observed.desired_locations = dict(diff.base_locations), set(diff.desired_locations)
        observed.targets = sorted(targets.cache)
    created_at = created_at or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    # Stock counts (docs/counts.md): counted positions become variances against their snapshot.
    counted = plan_counts(diff, counts, targets, desired, base, created_at, _scope(policy))
    # Extended in place, not copied: build_operations frees each intent as it goes, which a
    # second list holding all of them (a million for a chain's first plan) would prevent.
    intents = diff.intents
    intents.extend(compile_adjustments(diff.adjust, targets.cache))
    diff.adjust.clear()
    report = check_guards(diff, desired, policy, intents)
    if report.violations or counted.violations:
        raise GuardError(_capped(report.violations + counted.violations))
    others = build_operations(intents, base.lineage, base.serial)
    if diff.adopts is not None:
        adopted, keys = build_adopts(diff.adopts, base.lineage, base.serial)
        others = merge_in_order(adopted, keys, others)
    ops = counted.mark(others)
    unreadable, notes = _unreadable(targets.cache)
    scope: dict[str, list[str]] = {}
    if policy.only_targets is not None:
        scope["targets"] = sorted(policy.only_targets)
    if policy.only_locations is not None:
        scope["locations"] = sorted(policy.only_locations)
    return Plan(
        format_version=FORMAT_VERSION,
        plan_id=plan_id(base.lineage, base.serial, desired.digest, ops),
        created_at=created_at,
        git_commit=git_commit,
        git_dirty=git_dirty,
        desired_digest=desired.digest,
        desired_files=dict(sorted(desired.file_digests.items())),
        lineage=base.lineage,
        serial=base.serial,
        strategy_note=strategy_note,
        operations=ops,
        warnings=notes + report.warnings + counted.warnings,
        unreadable_targets=unreadable,
        scope=scope,
        counts=counted.blocks,
    )
