"""Stock counts in the plan (docs/counts.md): a counted position is a variance against the
snapshot taken when the count started, not a new desired level.

A count is an observation of the shelf at one moment. Applying ``counted - snapshot`` on top of
live stock keeps every sale made during and after the count; a reset to the counted quantity
would erase them, and merge's ``D - B`` would apply the wrong delta (B may be weeks old).

Pure: the counts come in as data (:class:`CountInput`), read from the repository's
``counts/*.yaml`` and the state's snapshots by :mod:`reconciler.counts`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Callable, Mapping

from reconciler.model import BaseState, DesiredPosition, DesiredState, OpKind, Operation, PositionKey, Record
from reconciler.planner._diff import Diff
from reconciler.planner._intent import Intent, LegIn, TargetCtx, signed

DEFAULT_MAX_AGE = timedelta(days=7)
# Kinds that decide a position's quantity; a count replaces them (settings stay as planned).
_QUANTITY_KINDS = frozenset({OpKind.RESET, OpKind.ADJUST, OpKind.RECORD, OpKind.DRIFT})


@dataclass(frozen=True, slots=True)
class CountedPosition:
    target: str
    item: str
    counted: int
    snapshot: int | None  # live quantity when the count started; None: no snapshot (adopt as usual)
    cost: float | None = None  # unit cost the vendor gave at the start (X-Series average_cost)
    applied: bool = False  # the state's journal holds this count's operation as applied


@dataclass(frozen=True, slots=True)
class CountInput:
    count_id: str
    location: str
    counted_at: str  # ISO 8601 UTC: when the count started (its snapshot's moment)
    file: str  # the counts/ID.yaml record, for messages
    positions: tuple[CountedPosition, ...]


@dataclass(slots=True)
class CountReport:
    warnings: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    # position -> count id, for the operations made for counts
    ops: dict[PositionKey, str] = field(default_factory=dict)
    blocks: list[str] = field(default_factory=list)


def count_op_id(count_id: str, key: PositionKey) -> str:
    """The id of a count's operation at one position: the same in every plan, so the state's
    journal tells whether this count was already applied there (never applied twice)."""
    return hashlib.sha256(f"count|{count_id}|{'|'.join(key)}".encode()).hexdigest()[:16]


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


Scope = Callable[[str, str], bool] | None
"""(target, location) -> in the plan's scope; None: everything"""


def take_counts(diff: Diff, counts: list[CountInput], ctx_of: Callable[[str], TargetCtx],
                desired: Mapping[PositionKey, DesiredPosition], base: Mapping[PositionKey, Record], now: datetime,
                *, max_age: timedelta = DEFAULT_MAX_AGE, allow_old: bool = False, in_scope: Scope = None) -> CountReport:
    """Replace the diff's quantity intents at counted positions by count operations."""
    report = CountReport()
    made: list[Intent] = []
    newest = newest_counts(counts)
    for count in counts:
        if any(newest[(p.target, count.location, p.item)] is count and not p.applied for p in count.positions):
            _age_guard(report, count, now, max_age, allow_old)
        for pos in count.positions:
            key = (pos.target, count.location, pos.item)
            if newest[key] is not count:
                continue  # a later count of the position replaces this one
            if pos.applied or (in_scope is not None and not in_scope(pos.target, count.location)):
                continue
            dp = desired.get(key)
            if dp is None or dp.quantity != pos.counted:
                report.warnings.append(
                    f"count {count.count_id}: {pos.item} at {count.location} in {pos.target} was counted as "
                    f"{pos.counted} but the stock file now says {'nothing' if dp is None else dp.quantity}; "
                    "planned as an ordinary change, not as a count")
                continue
            ctx = ctx_of(pos.target)
            it = _count_intent(report, count, pos, ctx, base.get(key))
            if it is not None:
                made.append(it)
                report.ops[key] = count.count_id
    if report.ops:
        taken = report.ops.keys()
        keep = lambda it: not (it.kind in _QUANTITY_KINDS and (it.target, it.legs[0].location, it.item) in taken)  # noqa: E731
        diff.intents[:] = [it for it in diff.intents if keep(it)]
        diff.adjust[:] = [it for it in diff.adjust if keep(it)]
        diff.negative[:] = [(it, msg) for it, msg in diff.negative if keep(it)]
        diff.intents.extend(made)
    return report


def newest_counts(counts: list[CountInput]) -> dict[PositionKey, CountInput]:
    """Per position, the count taken last: only it can be applied (the stock file holds its result)."""
    newest: dict[PositionKey, CountInput] = {}
    for count in sorted(counts, key=lambda c: (c.counted_at, c.count_id)):
        for pos in count.positions:
            newest[(pos.target, count.location, pos.item)] = count
    return newest


def _age_guard(report: CountReport, count: CountInput, now: datetime, max_age: timedelta, allow_old: bool) -> None:
    age = now - _parse_time(count.counted_at)
    if age <= max_age:
        return
    days = age.total_seconds() / 86400
    msg = (f"count {count.count_id} ({count.location}, {count.file}) was counted {days:.1f} days ago, more than "
           f"{max_age.total_seconds() / 86400:g} days: sales and receipts since then are not in it")
    if allow_old:
        report.warnings.append(msg + " (allowed by --allow-old-count)")
    else:
        report.violations.append(msg + "; count again, or override with --allow-old-count")


def _count_intent(report: CountReport, count: CountInput, pos: CountedPosition, ctx: TargetCtx,
                  b: Record | None) -> Intent | None:
    loc, c = count.location, pos.counted
    bq = b.quantity if b is not None else None
    head = f"count {count.count_id} at {loc} ({count.counted_at}): counted {c}"
    if not ctx.readable:
        report.warnings.append(
            f"count {count.count_id}: {pos.target} is write-only, so {pos.item} at {loc} is reset to the counted "
            f"{c}: sales there since the count ({count.counted_at}) cannot be kept")
        return Intent(OpKind.RESET, pos.target, pos.item, [LegIn(loc, None, bq, c, c)],
                      f"{head}; write-only target: reset to the counted quantity (sales since the count are lost)",
                      write_mode="absolute")
    if pos.snapshot is None:
        report.warnings.append(
            f"count {count.count_id}: no snapshot of {pos.item} at {loc} in {pos.target} (not held there when the "
            "count started, or no state to tell whether the count was applied): planned as usual, not as a count")
        return None  # the diff's own intent (an adoption) stands
    rec = ctx.actual.get((loc, pos.item))
    a = rec.quantity if rec is not None else 0
    variance = c - pos.snapshot
    if variance == 0:
        if bq == c:
            return None
        return Intent(OpKind.RECORD, pos.target, pos.item, [LegIn(loc, a, bq, c, 0)],
                      f"{head} = snapshot {pos.snapshot}: no variance; last applied becomes {c}")
    reason = (f"{head}, snapshot {pos.snapshot}: variance {signed(variance)} applied on live stock "
              f"(sales since the count are kept)")
    it = Intent(OpKind.ADJUST, pos.target, pos.item, [LegIn(loc, a, bq, c, variance)], reason)
    if not ctx.caps.delta:
        it.write_mode = "read-modify-write"
        it.reason += "; target takes absolute quantities only, so apply re-reads live stock and writes it plus the variance"
    return it


def mark_count_ops(ops: list[Operation], report: CountReport) -> list[Operation]:
    """The count operations get their count's ids (:func:`count_op_id`)."""
    if not report.ops:
        return ops
    out = []
    for op in ops:
        key = (op.target, op.location, op.item)
        count_id = report.ops.get(key)
        if count_id is not None and op.kind in (OpKind.ADJUST, OpKind.RESET, OpKind.RECORD) \
                and op.reason.startswith(f"count {count_id} "):
            op = replace(op, id=count_op_id(count_id, key))
        out.append(op)
    return out


def count_blocks(counts: list[CountInput], in_scope: Scope = None, shown: int = 10) -> list[str]:
    """One block per count for the plan and the PR comment, biggest variances first."""
    blocks = []
    newest = newest_counts(counts)
    for count in counts:
        rows = [p for p in count.positions if not p.applied and p.snapshot is not None
                and newest[(p.target, count.location, p.item)] is count
                and (in_scope is None or in_scope(p.target, count.location))]
        if not rows:
            continue
        over = sum(p.counted - p.snapshot for p in rows if p.counted > p.snapshot)  # type: ignore[operator]
        under = sum(p.snapshot - p.counted for p in rows if p.counted < p.snapshot)  # type: ignore[operator]
        costed = [p for p in rows if p.cost is not None]
        value = sum((p.counted - p.snapshot) * p.cost for p in costed)  # type: ignore[operator]
        money = (f"variance value at cost {value:+.2f} ({len(costed)} of {len(rows)} positions have a cost)"
                 if costed else "variance value at cost: no cost from the vendor")
        rows.sort(key=lambda p: (-abs(p.counted - p.snapshot), p.item, p.target))  # type: ignore[operator]
        lines = [f"count {count.count_id}: {count.location}, counted at {count.counted_at}, {len(rows)} position(s), "
                 f"{over} unit(s) over, {under} under, {money}"]
        for p in rows[:shown]:
            v = p.counted - p.snapshot  # type: ignore[operator]
            cost = f", {v * p.cost:+.2f} at cost" if p.cost is not None else ""
            lines.append(f"  {signed(v):>5}  {p.item} in {p.target}: counted {p.counted}, expected {p.snapshot}{cost}")
        if len(rows) > shown:
            lines.append(f"  ... and {len(rows) - shown} more position(s)")
        blocks.append("\n".join(lines))
    return blocks


@dataclass(frozen=True, slots=True)
class CountPlan:
    """The counts to plan and their policy (the planner's ``counts`` input)."""

    counts: tuple[CountInput, ...] = ()
    max_age: timedelta = DEFAULT_MAX_AGE
    allow_old: bool = False


class _Counted:
    """What :func:`plan_counts` did, for the rest of make_plan."""

    def __init__(self, report: CountReport) -> None:
        self.report = report
        self.warnings, self.violations, self.blocks = report.warnings, report.violations, report.blocks

    def mark(self, ops: list[Operation]) -> list[Operation]:
        return mark_count_ops(ops, self.report)


def plan_counts(diff: Diff, plan: CountPlan | None, ctx_of: Callable[[str], TargetCtx], desired: DesiredState,
                base: BaseState, created_at: str, in_scope: Scope) -> _Counted:
    """The hook make_plan calls after the diff (a no-op without counts)."""
    if plan is None or not plan.counts:
        return _Counted(CountReport())
    counts = list(plan.counts)
    report = take_counts(diff, counts, ctx_of, desired.positions, base.positions,
                         _parse_time(created_at), max_age=plan.max_age, allow_old=plan.allow_old, in_scope=in_scope)
    report.blocks = count_blocks(counts, in_scope)
    return _Counted(report)


def count_of(op: Operation) -> str | None:
    """The count id of a count's operation (its reason starts ``count ID at``), else None.
    Connectors use it to write a count their own way (X-Series: a count reason, or a stocktake)."""
    if op.kind is not OpKind.ADJUST or not op.reason.startswith("count "):
        return None
    head = op.reason[len("count "):].split(" ", 2)
    return head[0] if len(head) > 1 and head[1] == "at" else None
