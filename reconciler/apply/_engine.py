"""Execute a saved plan exactly once (DESIGN.md section 6).

Order of events, each step durable before the next:
1. checks that need no vendor: desired files, the lock of the targets applied (per target, so
   parts of one plan for different targets run at the same time), lineage/serial/already applied;
2. per target (targets in parallel threads, operations in plan order): journal a batch
   ``pending``, send it, journal each outcome with the B it implies in one transaction;
3. close the run; the plan is ``applied`` once every operation of every part (target) is.

A re-run of an interrupted plan skips what is applied and settles what was left in flight
without guessing: absolute writes are re-sent, others are verified with the vendor, and what
cannot be verified is marked in doubt for the user to settle with ``reconciler resolve``.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping, Sequence

from reconciler.apply._ops import JOURNALED_KINDS, base_updates, request_summary, resendable
from reconciler.apply._unsettled import unsettled_error, unsettled_touching
from reconciler.apply.report import ApplyReport, OpReport, ProgressEvent
from reconciler.connectors.base import Connector, OpResult, Outcome, Verification
from reconciler.errors import PlanError, ReconcilerError, StalePlanError, StateError, VendorError, VendorUnavailable
from reconciler.model import STATE_ONLY_KINDS, OpKind, Operation, Plan
from reconciler.state.base import BaseUpdate, JournalEntry, JournalStatus, LockInfo, StateStore
from reconciler.state.base import Outcome as Written

DEFAULT_LOCK_TTL_S = 900.0
# How long after an apply's last sign of life (start, or the end of a batch) a lock it holds may
# be taken over from another host, where its pid cannot be checked. Below a minute a single batch
# waiting out a vendor's Retry-After could lose its lock mid-write.
LOCK_TTL_ENV = "RECONCILER_LOCK_TTL"
MIN_LOCK_TTL_S = 60.0
Progress = Callable[[ProgressEvent], None]


def lock_ttl_from_env(env: Mapping[str, str] | None = None) -> float:
    """Seconds from $RECONCILER_LOCK_TTL, else DEFAULT_LOCK_TTL_S."""
    raw = (os.environ if env is None else env).get(LOCK_TTL_ENV, "").strip()
    if not raw:
        return DEFAULT_LOCK_TTL_S
    try:
        ttl = float(raw)
    except ValueError:
        ttl = -1.0
    if not MIN_LOCK_TTL_S <= ttl < float("inf"):
        raise StateError(
            f"{LOCK_TTL_ENV}={raw!r} is not a lock expiry reconciler can use",
            hint=f"Give a number of seconds of at least {MIN_LOCK_TTL_S:.0f} (default {DEFAULT_LOCK_TTL_S:.0f}), or unset it.",
        )
    return ttl


class _LockKeeper:
    """Pushes the lock's expiry while a long apply runs, so it is not taken over as dead."""

    def __init__(self, store: StateStore, lock: LockInfo, ttl_s: float) -> None:
        self.store, self.lock, self.ttl_s = store, lock, ttl_s
        self._last = time.monotonic()
        self._mutex = threading.Lock()

    def touch(self) -> None:
        with self._mutex:
            if time.monotonic() - self._last >= self.ttl_s / 3:
                self.lock = self.store.renew_lock(self.lock.id, self.ttl_s)
                self._last = time.monotonic()


@dataclass(frozen=True)
class _Run:
    """What every target's thread of one run shares; nothing in it changes while they run."""

    plan: Plan
    run_id: str
    store: StateStore
    journal: Mapping[str, JournalEntry]
    keeper: _LockKeeper
    progress: Progress | None


class _Part:
    """One target's share of a run, owned by the one thread that applies it.

    Outcomes are written here and nowhere else: a batch's are buffered in this object (never in
    one shared between threads) and committed in the batch's own transaction, so no thread can
    take, drop or misfile another thread's outcomes."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self._batch: list[tuple[Written, Sequence[BaseUpdate]]] | None = None

    def write(self, op: Operation, status: JournalStatus, *, response: str = "", error: str | None = None) -> OpReport:
        updates = base_updates(op) if status is JournalStatus.APPLIED else ()
        outcome = Written(op.id, status, response, error)
        if self._batch is not None:
            self._batch.append((outcome, updates))
        else:
            self.run.store.record_outcome(self.run.plan.plan_id, outcome, updates)
        return _report(op, status.value, error=error, response=response)

    @contextmanager
    def outcomes_of_one_batch(self) -> Iterator[None]:
        """Journal a batch's outcomes in one commit. A crash before it leaves them all pending,
        which a resume settles exactly as it settles one operation left pending."""
        if self._batch is not None:
            raise RuntimeError("a target's batches are settled one at a time")
        self._batch = []
        try:
            yield
        finally:
            outcomes, self._batch = self._batch, None
            self.run.store.record_outcomes(self.run.plan.plan_id, outcomes)

    def pending(self, ops: Sequence[Operation]) -> None:
        rows = [(op, request_summary(op), base_updates(op)) for op in ops]
        self.run.store.record_pending(self.run.plan.plan_id, self.run.run_id, rows)


def _report(op: Operation, status: str, *, note: str = "", error: str | None = None, response: str = "") -> OpReport:
    return OpReport(op.id, op.target, op.kind.value, op.item, op.location, status, note, error, response)


def _check_plan(plan: Plan, desired_digest: str | None, connectors: Mapping[str, Connector], ops: Sequence[Operation]) -> None:
    if desired_digest is not None and desired_digest != plan.desired_digest:
        raise StalePlanError(
            f"plan {plan.plan_id} was made from desired files with digest {plan.desired_digest[:12]}, "
            f"but the files now have digest {desired_digest[:12]}: they changed since the plan was made",
            hint="Make a new plan from the current files with `reconciler plan --out` and review it.",
        )
    missing = sorted({op.target for op in ops if op.kind not in STATE_ONLY_KINDS} - set(connectors))
    if missing:
        raise PlanError(
            f"plan {plan.plan_id} has operations for target(s) {', '.join(missing)} but no connector was opened for them",
            hint="Check that these targets are still in reconciler.yaml.",
        )


def apply_plan(
    plan: Plan,
    store: StateStore,
    connectors: Mapping[str, Connector],
    *,
    desired_digest: str | None,
    holder: str,
    progress: Progress | None = None,
    targets: set[str] | None = None,
    lock_ttl_s: float | None = None,
    parallel: bool = True,
) -> ApplyReport:
    """Apply ``plan`` once, or with ``targets`` only those targets' parts of it. Raises
    StalePlanError/LockHeld before any request; otherwise returns the report (the caller maps
    failures to ApplyIncomplete and doubts to InDoubt)."""
    journaled = [op for op in plan.operations if op.kind in JOURNALED_KINDS]
    selected = [op for op in journaled if targets is None or op.target in targets]
    _check_plan(plan, desired_digest, connectors, selected)
    if targets is not None and not selected:
        return _nothing_for(plan, store, targets)
    parts = dict(Counter(op.target for op in journaled))
    lock_ttl_s = lock_ttl_from_env() if lock_ttl_s is None else lock_ttl_s
    part_targets = sorted({op.target for op in selected})
    # Lock exactly the targets this run writes; an empty plan takes the whole-state lock.
    lock = store.acquire_lock(holder, lock_ttl_s, part_targets or None)
    try:
        _refuse_if_unsettled(plan, store, selected)
        ticket = store.begin_apply(
            plan, op_count=len(journaled), who=holder, parts=parts, targets=None if targets is None else part_targets
        )
        run = _Run(plan, ticket.run_id, store, store.journal(plan.plan_id), _LockKeeper(store, lock, lock_ttl_s), progress)
        report = ApplyReport(plan.plan_id, ticket.run_id, ticket.resumed)
        try:
            report.ops = _execute_all(run, selected, connectors, parallel)
        except BaseException:
            _close_aborted(store, ticket.run_id)
            raise
        report.ops.extend(_skipped(plan, selected))
        order = {op.id: i for i, op in enumerate(plan.operations)}
        report.ops.sort(key=lambda r: order.get(r.op_id, 0))
        report.plan_status = store.finish_run(ticket.run_id, report.outcome, report.counts).status.value
        report.parts = {p.target: p.status.value for p in store.plan_parts(plan.plan_id)}
        report.targets = tuple(part_targets) if targets is not None else ()
        return report
    finally:
        store.release_lock(lock.id)


def _refuse_if_unsettled(plan: Plan, store: StateStore, selected: Sequence[Operation]) -> None:
    """Another plan's operations still pending or in doubt on positions this one writes: B
    there is not known for sure, so applying over it could double a delta."""
    keys: set[tuple[str, str, str]] = set()

    def touches(key: tuple[str, str, str]) -> bool:
        # Built on the first unsettled row only: most applies find none, and at 100k
        # operations the set costs ~3 us per operation.
        if not keys:
            keys.update(k for op in selected for k in op.keys)
        return key in keys

    blocking = unsettled_touching(store, {op.target for op in selected}, touches, other_than=plan.plan_id)
    if blocking:
        raise unsettled_error(blocking, f"apply of plan {plan.plan_id}", store.locks())


def _nothing_for(plan: Plan, store: StateStore, targets: set[str]) -> ApplyReport:
    """``--target`` of a target the plan does not touch: a CI matrix job with nothing to do.
    Nothing is locked, recorded or sent; the serial does not move."""
    report = ApplyReport(plan.plan_id, "-", False, _skipped(plan, []), targets=tuple(sorted(targets)))
    record = store.plan_record(plan.plan_id)
    report.plan_status = record.status.value if record is not None else "not started"
    report.parts = {p.target: p.status.value for p in store.plan_parts(plan.plan_id)}
    return report


def _close_aborted(store: StateStore, run_id: str) -> None:
    """Best effort: the run's history should say it was cut short, but the original error
    (possibly the state database itself failing) is what the user must see."""
    try:
        store.finish_run(run_id, "aborted", {})
    except ReconcilerError:
        pass


def _skipped(plan: Plan, selected: Sequence[Operation]) -> list[OpReport]:
    chosen = {op.id for op in selected}
    out = []
    for op in plan.operations:
        if op.id in chosen:
            continue
        note = "drift note, nothing to send" if op.kind is OpKind.DRIFT else "target not selected for this run"
        out.append(_report(op, "skipped", note=note))
    return out


def _execute_all(run: _Run, ops: Sequence[Operation], connectors: Mapping[str, Connector], parallel: bool) -> list[OpReport]:
    by_target: dict[str, list[Operation]] = {}
    for op in ops:
        by_target.setdefault(op.target, []).append(op)
    if not parallel or len(by_target) <= 1:
        return [r for target, t_ops in by_target.items() for r in _run_target(_Part(run), connectors.get(target), t_ops)]
    with ThreadPoolExecutor(max_workers=len(by_target), thread_name_prefix="apply") as pool:
        futures = [pool.submit(_run_target, _Part(run), connectors.get(t), t_ops) for t, t_ops in by_target.items()]
        return [r for f in futures for r in f.result()]


def _run_target(part: _Part, conn: Connector | None, ops: Sequence[Operation]) -> list[OpReport]:
    reports: list[OpReport] = []
    to_send: list[Operation] = []
    state_only: list[Operation] = []
    for op in ops:
        settled = _settle_prior(part, conn, op, part.run.journal.get(op.id))
        if settled is not None:
            reports.append(settled)
        elif op.kind in STATE_ONLY_KINDS:
            state_only.append(op)
        else:
            to_send.append(op)
    if state_only:
        # Nothing to send (a release forgets B; a record sets B to what the vendor already
        # holds): journalled and recorded in B together, before any write of this target.
        part.pending(state_only)
        with part.outcomes_of_one_batch():
            reports.extend(part.write(op, JournalStatus.APPLIED, response=f"{op.kind}: state only, nothing sent")
                           for op in state_only)
    if to_send:
        assert conn is not None  # _check_plan guarantees a connector for every sending target
        reports.extend(_send_all(part, conn, to_send))
    return reports


def _settle_prior(part: _Part, conn: Connector | None, op: Operation, entry: JournalEntry | None) -> OpReport | None:
    """What an earlier run left for ``op``: a final report, or None to send it (again)."""
    if entry is None or entry.status in (JournalStatus.FAILED, JournalStatus.NOT_APPLIED):
        return None
    if entry.status is JournalStatus.APPLIED:
        return _report(op, "skipped", note="applied by an earlier run", response=entry.response)
    if op.kind in STATE_ONLY_KINDS or resendable(op):
        return None  # sending it again lands on the same result
    return _verify(part, conn, op, after="was left in flight by an interrupted apply")


def _verify(part: _Part, conn: Connector | None, op: Operation, *, after: str, response: str = "") -> OpReport | None:
    """Ask the vendor whether ``op`` landed. None: it did not, send it."""
    try:
        verdict = conn.verify(op) if conn is not None else Verification.UNKNOWN
        problem = ""
    except VendorError as exc:
        verdict, problem = Verification.UNKNOWN, f" (verification failed: {exc})"
    if verdict is Verification.APPLIED:
        return part.write(op, JournalStatus.APPLIED, response=response or "verified applied after interruption")
    if verdict is Verification.NOT_APPLIED:
        return None
    note = f"{op.kind} {after}; the vendor cannot tell whether it was applied{problem}"
    reply = part.write(op, JournalStatus.IN_DOUBT, response=response, error=note)
    return _report(op, "in_doubt", note=note, error=note, response=reply.response)


def _send_all(part: _Part, conn: Connector, ops: Sequence[Operation]) -> list[OpReport]:
    batches = conn.batches(ops)
    reports: list[OpReport] = []
    for number, batch in enumerate(batches, start=1):
        batch_reports = _send_batch(part, conn, batch)
        reports.extend(batch_reports)
        if part.run.progress is not None:
            statuses = [r.status for r in batch_reports]
            part.run.progress(
                ProgressEvent(
                    batch[0].target, number, len(batches), len(reports), len(ops),
                    statuses.count("applied"), statuses.count("failed"), statuses.count("in_doubt"),
                )
            )
        part.run.keeper.touch()
    return reports


def _send_batch(part: _Part, conn: Connector, batch: Sequence[Operation]) -> list[OpReport]:
    part.pending(batch)
    with part.outcomes_of_one_batch():
        return _settle_batch(part, conn, batch)


def _settle_batch(part: _Part, conn: Connector, batch: Sequence[Operation]) -> list[OpReport]:
    try:
        results = conn.execute(batch)
    except VendorUnavailable as exc:
        if exc.in_doubt:
            return [_after_drop(part, conn, op, exc) for op in batch]
        return [part.write(op, JournalStatus.FAILED, response=exc.body or "", error=str(exc)) for op in batch]
    except ReconcilerError as exc:
        body = getattr(exc, "body", None) or ""
        return [part.write(op, JournalStatus.FAILED, response=body, error=str(exc)) for op in batch]
    by_id = {r.op_id: r for r in results}
    return [_record_result(part, op, by_id.get(op.id)) for op in batch]


def _after_drop(part: _Part, conn: Connector, op: Operation, exc: VendorUnavailable) -> OpReport:
    if resendable(op):
        return part.write(op, JournalStatus.FAILED, response=exc.body or "",
                         error=f"{exc}; it is an absolute write, so the next apply simply sends it again")
    settled = _verify(part, conn, op, after=f"lost its connection after sending ({exc})", response=exc.body or "")
    if settled is not None:
        return settled
    return part.write(op, JournalStatus.FAILED, response=exc.body or "", error=f"{exc}; the vendor shows it was not applied")


def _record_result(part: _Part, op: Operation, result: OpResult | None) -> OpReport:
    if result is None:
        note = "the connector returned no result for this operation"
        part.write(op, JournalStatus.IN_DOUBT, error=note)
        return _report(op, "in_doubt", note=note, error=note)
    if result.outcome is Outcome.APPLIED:
        return part.write(op, JournalStatus.APPLIED, response=result.response)
    if result.outcome is Outcome.IN_DOUBT:
        note = result.error or "the vendor's answer did not say whether it was applied"
        part.write(op, JournalStatus.IN_DOUBT, response=result.response, error=note)
        return _report(op, "in_doubt", note=note, error=note, response=result.response)
    return part.write(op, JournalStatus.FAILED, response=result.response, error=result.error or "failed")
