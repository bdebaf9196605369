"""Planning from the changes alone: the plan memo (issue 22 point 3).

A pull request's plan in a chain of a million positions should cost what changed, not the chain.
After a plan made in full, the state keeps a memo of it for its scope (``plan_memos``):

- its fingerprint: D's digest (every file of the repository), the state's lineage and serial,
  the guard overrides and this code's memo version; any change and the memo is not used;
- the planner's :class:`~reconciler.planner.PlanContext` (what the whole chain looked like);
- the positions that were not calm, with their D, B and A ("tracked"). A calm position has
  D = B under merge without settings, and A = B: it needs nothing for as long as A stays B;
- per X-Series target, the feed cursor after the read and the newest live record.

The next plan hashes the repository's files without parsing them. When the fingerprint holds,
every target read is X-Series with a trusted snapshot (the reasons to read in full in
connectors/_xseries_incremental.py hold for the memo too), and no count is recorded, it reads
only the feed after the memo's cursor. The positions whose A changed and the tracked ones are
planned with the context; every other position is calm with an unchanged A, so needs nothing.
The result is the plan a full read and a full load would make (tests/test_plan_memo.py compares
them over random changes). Anything else (no memo, a changed file, an apply since: the serial
moved, ``--refresh``, a refused cursor) plans in full and leaves a new memo.

The live snapshot is not rewritten by a plan from the memo: it stays at its cursor, which is
older, so a full plan after it reads the feed since then (more records, same result).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import orjson

from reconciler.model import (
    NO_SETTINGS,
    ActualState,
    BaseState,
    DesiredPosition,
    DesiredState,
    OpKind,
    Plan,
    PositionKey,
    Record,
    Settings,
    SourceRef,
    TargetActual,
)
from reconciler.planner import PlanContext

MEMO_VERSION = 1
# Beyond this many tracked positions (a tenth of all of them, at least 1,000, at most 100,000)
# a memo costs more to keep, and a plan from it saves less, than is worth it: the next plan is
# made in full.
MAX_TRACKED = 100_000
MIN_TRACKED = 1_000
MAX_TRACKED_SHARE = 0.1


def scope_of(targets: Iterable[str], scoped: bool = False) -> str:
    return ("only:" if scoped else "targets:") + ",".join(sorted(targets))


def fingerprint(digest: str, lineage: str, serial: int, overrides: Mapping[str, Any] | None) -> str:
    """What must be the same for a memo to stand for D and B."""
    wanted = sorted((k, v) for k, v in (overrides or {}).items() if v is not None)
    text = json.dumps([MEMO_VERSION, digest, lineage, serial, wanted])
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Memo:
    context: PlanContext
    declared: dict[tuple[str, str], str]
    readable: dict[str, bool]  # every target in scope
    # X-Series target -> [cursor, newest live record as [version, outlet, product]]
    marks: dict[str, list[Any]]
    tracked: dict[PositionKey, tuple[DesiredPosition | None, Record | None, Record | None]] = field(default_factory=dict)
    positions: int = 0  # of D and B together, for the plan note


# --- encoding -------------------------------------------------------------------------------

def _record_out(rec: Record | None) -> list[Any] | None:
    if rec is None:
        return None
    return [rec.quantity, {} if rec.settings is NO_SETTINGS else rec.settings.as_dict()]


def _record_in(data: list[Any] | None) -> Record | None:
    if data is None:
        return None
    return Record(int(data[0]), Settings.from_dict(data[1]) if data[1] else NO_SETTINGS)


def _desired_out(dp: DesiredPosition | None) -> list[Any] | None:
    if dp is None:
        return None
    source = [dp.source.file, dp.source.line] if dp.source is not None else None
    settings = {} if dp.settings is NO_SETTINGS else dp.settings.as_dict()
    return [dp.quantity, settings, dp.strategy, dp.protect, source]


def _desired_in(key: PositionKey, data: list[Any] | None) -> DesiredPosition | None:
    if data is None:
        return None
    quantity, settings, strategy, protect, source = data
    return DesiredPosition(*key, quantity=int(quantity), settings=Settings.from_dict(settings) if settings else NO_SETTINGS,
                           strategy=strategy, protect=bool(protect),
                           source=SourceRef(source[0], int(source[1])) if source else None)


def encode(memo: Memo) -> bytes:
    ctx = memo.context
    body = {
        "version": MEMO_VERSION,
        "context": {"base_locations": [[*tl, n] for tl, n in sorted(ctx.base_locations.items())],
                    "desired_locations": sorted(ctx.desired_locations), "strategy_note": ctx.strategy_note,
                    "targets": ctx.targets},
        "declared": [[*tl, rel] for tl, rel in sorted(memo.declared.items())],
        "readable": memo.readable,
        "marks": memo.marks,
        "positions": memo.positions,
        "tracked": [[*key, _desired_out(d), _record_out(b), _record_out(a)] for key, (d, b, a) in memo.tracked.items()],
    }
    return zlib.compress(orjson.dumps(body), 1)


def decode(blob: bytes) -> Memo | None:
    """The memo, or None when it is of another memo version (or unreadable: a cache only)."""
    try:
        body = orjson.loads(zlib.decompress(blob))
    except (zlib.error, orjson.JSONDecodeError):
        return None
    if not isinstance(body, dict) or body.get("version") != MEMO_VERSION:
        return None
    ctx = body["context"]
    context = PlanContext(
        base_locations={(t, loc): int(n) for t, loc, n in ctx["base_locations"]},
        desired_locations={(t, loc) for t, loc in ctx["desired_locations"]},
        strategy_note=ctx["strategy_note"], targets=list(ctx["targets"]),
    )
    tracked = {}
    for t, loc, item, d, b, a in body["tracked"]:
        key = (t, loc, item)
        tracked[key] = (_desired_in(key, d), _record_in(b), _record_in(a))
    return Memo(context, {(t, loc): rel for t, loc, rel in body["declared"]}, dict(body["readable"]),
                dict(body["marks"]), tracked, int(body["positions"]))


# --- making a memo from a plan --------------------------------------------------------------

def memo_of(plan: Plan, observed: PlanContext, desired: DesiredState, base: BaseState, actual: ActualState,
            marks: Mapping[str, tuple[int, Any]], readable: Mapping[str, bool], positions: int | None = None) -> Memo | None:
    """The memo of a plan just made, or None when it could not stand for it: a target read
    other than through the X-Series feed, a newest record unknown, deletions (their checks need
    every kept position), or too many positions tracked. ``positions``: of the whole chain, when
    D and B hold only some (a plan from a memo)."""
    if any(ok and name not in marks for name, ok in readable.items()):
        return None
    if any(newest is None for _, newest in marks.values()):
        return None
    count = positions if positions is not None else (
        len(desired.positions) + sum(1 for key in base.positions if key not in desired.positions))
    if len(observed.examined) > min(MAX_TRACKED, max(MIN_TRACKED, MAX_TRACKED_SHARE * count)):
        return None
    if any(op.kind is OpKind.DELETE for op in plan.operations):
        return None
    tracked = {}
    for key in observed.examined:
        live = actual.get(key[0])
        a = live.positions.get(key[1:]) if live is not None and live.readable else None
        tracked[key] = (desired.positions.get(key), base.positions.get(key), a)
    return Memo(observed, dict(desired.declared_locations), dict(readable),
                {name: [cursor, list(newest)] for name, (cursor, newest) in marks.items()}, tracked, count)


# --- planning from a memo -------------------------------------------------------------------

@dataclass
class Subproblem:
    """D, B and A of the positions a plan from the memo must plan; all others are calm."""

    desired: DesiredState
    base: BaseState
    actual: ActualState
    changed: int  # positions whose live record changed


def subproblem(memo: Memo, changes: Mapping[str, Mapping[tuple[str, str], Record | None]],
               base_of: Any, digests: DesiredState, lineage: str, serial: int) -> Subproblem:
    """Tracked positions with their A updated by ``changes`` (target -> (location, item) -> record
    now, None: held no more), and every changed position B holds that is not tracked: calm until
    now, so its D is its B. ``base_of(keys)`` reads B of just those keys."""
    d: dict[PositionKey, DesiredPosition] = {}
    b: dict[PositionKey, Record] = {}
    a: dict[str, dict[tuple[str, str], Record]] = {name: {} for name in memo.readable}
    for key, (dp, bp, ap) in memo.tracked.items():
        if dp is not None:
            d[key] = dp
        if bp is not None:
            b[key] = bp
        if ap is not None:
            a[key[0]][key[1:]] = ap
    untracked: list[PositionKey] = []
    changed = 0
    for target, moved in changes.items():
        for (loc, item), rec in moved.items():
            key = (target, loc, item)
            changed += 1
            if key not in memo.tracked:
                untracked.append(key)
            if rec is None:
                a[target].pop((loc, item), None)  # a readable target that does not hold it: A = 0
            else:
                a[target][loc, item] = rec
    for key, rec in base_of(untracked).items():
        # In B, not tracked: calm (D = B under merge without settings). Not in B and not
        # tracked: not in D either (an adopt is tracked), so not managed.
        b[key] = rec
        d[key] = DesiredPosition(*key, quantity=rec.quantity)
    # In a full load's order (file, then line): guard findings are listed in D's order. The
    # calm positions rebuilt from B have no source; they can only drift, which no guard sees.
    ordered = dict(sorted(d.items(), key=_load_order))
    desired = DesiredState(ordered, dict(memo.declared), digests.file_digests, digests.digest)
    actual = {name: TargetActual(readable=ok, positions=a[name] if ok else {}) for name, ok in memo.readable.items()}
    return Subproblem(desired, BaseState(lineage, serial, dict(sorted(b.items()))), actual, changed)


def _load_order(entry: tuple[PositionKey, DesiredPosition]) -> tuple[Any, ...]:
    key, dp = entry
    return (0, dp.source.file, dp.source.line) if dp.source is not None else (1, key)


# --- the workflow ---------------------------------------------------------------------------

@dataclass
class MemoRequest:
    """What plan_project was asked, as far as a plan from the memo needs it."""

    project: Any  # config.Project; from a load that hashed the location files (full plans: parsed)
    targets: list[str]
    url: Any
    env: Mapping[str, str] | None
    transports: Any
    guard_overrides: Mapping[str, Any] | None
    git_commit: str | None
    git_dirty: bool
    precheck: Any  # workflow.Precheck
    progress: Any = None  # Callable[[str], None]
    scoped: bool = False  # --target given: the plan says its scope

    @property
    def scope(self) -> str:
        return scope_of(self.targets, self.scoped)

    def keep(self, store: Any, digest: str, lineage: str, serial: int, memo: Memo | None) -> None:
        """Keep ``memo`` as the scope's, or drop the scope's when this plan has none."""
        if memo is None:
            store.drop_plan_memo(self.scope)
        else:
            store.save_plan_memo(self.scope, fingerprint(digest, lineage, serial, self.guard_overrides), encode(memo))


def plan_from_memo(req: MemoRequest) -> Plan | None:
    """The plan made from the memo and the feed's changes, or None when a full plan is needed.
    Only reads are sent; every check of a full plan that can refuse (unsettled operations, the
    OAuth scopes, the connectors' plan-time problems) runs here too."""
    from contextlib import ExitStack

    from reconciler.counts import count_plan
    from reconciler.state import open_state_store

    project = req.project
    if count_plan(project.root, None) is not None:
        return None  # counts are planned against their snapshots: in full
    store = open_state_store(req.url)
    try:
        row = store.plan_memo(req.scope)
        if row is None:
            return None
        lineage, serial = store.lineage(), store.serial()
        if serial == 0:
            return None  # nothing applied yet: the plan says so (workflow.new_state_note), in full
        if row.fingerprint != fingerprint(project.desired.digest, lineage, serial, req.guard_overrides):
            return None
        memo = decode(row.body)
        if memo is None or set(memo.readable) != set(req.targets):
            return None
        req.precheck(store)
        with ExitStack() as stack:
            return _plan_with(req, project, store, memo, lineage, serial, stack)
    finally:
        store.close()


def _plan_with(req: MemoRequest, project: Any, store: Any, memo: Memo, lineage: str, serial: int, stack: Any) -> Plan | None:
    from reconciler.auth._scopes import check_plan_scopes
    from reconciler.connectors._xseries_incremental import read_changes, why_not_incremental
    from reconciler.planner import make_plan
    from reconciler.workflow import ask_connectors, reading_connectors

    connectors, capabilities = reading_connectors(project, req.targets, env=req.env, transports=req.transports, stack=stack)
    if set(connectors) != {name for name, ok in memo.readable.items() if ok} or set(connectors) != set(memo.marks):
        return None
    changes, notes, marks = {}, [], {}
    for name, conn in connectors.items():
        cursor, newest = memo.marks[name]
        if why_not_incremental(conn, store, refresh=False) is not None:
            return None
        if req.progress:
            req.progress(f"reading the live stock of {name} changed since version {cursor}")
        read = read_changes(conn, int(cursor), tuple(newest) if newest else None)  # type: ignore[arg-type]
        if read is None:
            return None
        changes[name], marks[name] = read.positions, (read.cursor, read.newest)
        notes.append(f"{name}: live stock read incrementally: {read.records} record(s) changed since version "
                     f"{cursor}; planned from the last full plan's memo")
    sub = subproblem(memo, changes, store.base_records, project.desired, lineage, serial)
    policy = project.policy(capabilities, only_targets=frozenset(req.targets) if req.scoped else None,
                            **dict(req.guard_overrides or {}))
    observed = PlanContext()
    plan = make_plan(sub.desired, sub.base, sub.actual, policy, git_commit=req.git_commit, git_dirty=req.git_dirty,
                     context=memo.context, observed=observed)
    check_plan_scopes(plan.operations, connectors)
    ask_connectors(plan, sub.desired, sub.base, connectors)
    plan.notes.extend(f"{note} ({len(observed.examined):,} of {memo.positions:,} positions re-planned)" for note in notes)
    renewed = memo_of(plan, observed, sub.desired, sub.base, sub.actual, marks, memo.readable, memo.positions)
    if renewed is not None:
        renewed.context, renewed.declared = memo.context, memo.declared
    req.keep(store, project.desired.digest, lineage, serial, renewed)
    return plan


def keep_memo(req: MemoRequest, plan: Plan, observed: PlanContext, desired: DesiredState, base: BaseState,
              actual: ActualState, marks: Mapping[str, tuple[int, Any]]) -> None:
    """After a full plan: keep its memo (or drop the old one when this plan cannot have one)."""
    from reconciler.state import open_state_store

    readable = {name: bool(actual.get(name) and actual[name].readable) for name in req.targets}
    memo = memo_of(plan, observed, desired, base, actual, {n: marks[n] for n in marks if n in readable}, readable)
    store = open_state_store(req.url)
    try:
        req.keep(store, desired.digest, base.lineage, base.serial, memo)
    finally:
        store.close()
