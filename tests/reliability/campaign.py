"""The campaign's moving parts: desired states that make big mixed plans, the independent
expectation of the vendor's stock, fault drivers, and "apply until done" with in-doubt
operations settled from the sandbox's truth (never guessed).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from campaign_shop import Position, Shop

IN_DOUBT = 4
SETTLE_S = 0.25  # lets the sandbox finish what a killed client left in flight (and drain Ka-ching's queue)
CLI_RESOLVES = 5  # in-doubt operations per apply settled with the `reconciler resolve` command itself


@dataclass(frozen=True)
class Size:
    """How big a campaign is (conftest.py: --campaign-size / RECONCILER_CAMPAIGN)."""

    name: str
    scale: int  # items per vendor, times the base layout (campaign_shop.SPECS)
    min_ops: int  # operations every campaign plan must hold
    kills: int  # SIGKILLs per vendor
    latency_ms: float
    storms: int  # 429 storms, 5xx bursts and dropped writes (each) per vendor, at most
    sale_rate: float  # units per second sold while the sales test applies
    seed: int = 2026


SIZES = {
    "ci": Size("ci", scale=1, min_ops=200, kills=20, latency_ms=2, storms=2, sale_rate=40),
    "large": Size("large", scale=5, min_ops=1000, kills=100, latency_ms=5, storms=30, sale_rate=80),
}


@dataclass
class Figures:
    """What one vendor's campaign did; summed into docs/reliability.md."""

    kind: str
    plans: int = 0
    operations: int = 0  # operations in the plans applied
    applied: int = 0  # operations the journal ends with as applied
    apply_runs: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    kills: int = 0
    in_doubt: int = 0  # operations reported in doubt (exit code 4)
    resolved_applied: int = 0
    resolved_not_applied: int = 0
    unverifiable_ops: int = 0  # operations in the plans that only the user can settle after a crash
    positions_checked: int = 0
    units_lost: int = 0
    units_doubled: int = 0
    units_sold: int = 0
    seconds: dict[str, float] = field(default_factory=dict)  # apply time per phase


# --- desired states ----------------------------------------------------------------------------


def adopt_desired(rng: random.Random, shop: Shop) -> dict[Position, int]:
    """The first desired state: 90% of positions, which the first plan adopts (resets)."""
    return {(loc, sku): rng.randint(0, 40) for sku in shop.skus for loc in shop.locations if rng.random() < 0.9}


def next_desired(rng: random.Random, shop: Shop, prev: Mapping[Position, int], *, moves: bool,
                 min_ops: int = 0) -> dict[Position, int]:
    """A new desired state from ``prev`` whose plan holds at least ``min_ops`` operations.

    Each position changes in at most one operation: a movement changes exactly two locations of
    an item, adjustments of one item all go the same way (so nothing pairs them), and releases
    (dropped from YAML) and adoptions (added) touch positions nothing else touches.
    """
    for _ in range(100):
        new, ops = _draw(rng, shop, prev, moves)
        if ops >= min_ops:
            return new
    raise AssertionError(f"{shop.spec.kind}: cannot draw a desired state with {min_ops} operations; add items")


def _draw(rng: random.Random, shop: Shop, prev: Mapping[Position, int], moves: bool) -> tuple[dict[Position, int], int]:
    new, ops = dict(prev), 0
    for sku in shop.skus:
        present = [loc for loc in shop.locations if (loc, sku) in new]
        absent = [loc for loc in shop.locations if (loc, sku) not in new]
        roll = rng.random()
        if not present or (absent and roll > 0.96):
            new[(rng.choice(absent), sku)] = rng.randint(0, 30)  # adopted: a reset
            ops += 1
            continue
        if moves and len(present) >= 2 and roll < 0.4:
            src, dst = rng.sample(present, 2)
            if new[(src, sku)] > 0:
                units = rng.randint(1, min(6, new[(src, sku)]))
                new[(src, sku)] -= units
                new[(dst, sku)] += units
                ops += 1
                continue
        if roll < 0.94:
            # down only where every position has a unit to take away, so no leg flips direction
            sign = rng.choice((1, -1)) if all(new[(loc, sku)] > 0 for loc in present) else 1
            for loc in present:
                if len(present) > 1 and rng.random() < 0.15:
                    continue
                delta = rng.randint(1, 6) if sign > 0 else min(rng.randint(1, 6), new[(loc, sku)])
                new[(loc, sku)] += sign * delta  # 0 (nothing to take away) leaves it alone
                ops += delta > 0
            continue
        del new[(rng.choice(present), sku)]  # released: state forgets it, the vendor is untouched
        ops += 1
    return new, ops


def expected_stock(before: Mapping[Position, int], desired: Mapping[Position, int]) -> dict[Position, int]:
    """Merge strategy with nothing sold: every desired position ends at D, the rest is untouched."""
    out = dict(before)
    out.update(desired)
    return out


def compare(figures: Figures, actual: Mapping[Position, int], expected: Mapping[Position, int], what: str) -> None:
    """Count units lost and doubled over every position, then insist there are none."""
    wrong = {}
    for pos in sorted(set(actual) | set(expected)):
        diff = actual.get(pos, 0) - expected.get(pos, 0)
        if diff:
            wrong[pos] = (expected.get(pos), actual.get(pos))
            figures.units_doubled += max(diff, 0)
            figures.units_lost += max(-diff, 0)
    figures.positions_checked += len(expected)
    assert not wrong, f"{figures.kind} {what}: {len(wrong)} positions differ (expected, actual): {dict(list(wrong.items())[:10])}"


# --- counting what the vendor answered -----------------------------------------------------------


class StatusCounter(logging.Handler):
    """Counts the 429 and 5xx answers reconciler's HTTP layer received (it logs every status)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        status = args[1] if len(args) == 2 else None
        if status == 429:
            self.counts["429"] += 1
        elif isinstance(status, int) and status >= 500:
            self.counts["5xx"] += 1

    def __enter__(self) -> StatusCounter:
        logger = logging.getLogger("reconciler.http")
        self._level = logger.level
        logger.setLevel(logging.DEBUG)
        logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logger = logging.getLogger("reconciler.http")
        logger.removeHandler(self)
        logger.setLevel(self._level)


class Driver:
    """A background thread that flips the sandbox's fault switches at seeded random moments,
    at most ``limit`` times (so the campaign's time stays bounded). ``prime`` runs before the
    apply starts, so even a vendor that takes the whole plan in one request meets the fault."""

    def __init__(self, shop: Shop, rng: random.Random, step: Callable[[Driver], None], limit: int,
                 prime: Callable[[Driver], None] | None = None) -> None:
        self.shop, self.rng, self.step, self.limit, self.prime = shop, rng, step, limit, prime
        self.stop = threading.Event()
        self.count = 0
        self.armed = False
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set() and (self.armed or self.count < self.limit):
            self.step(self)

    def __enter__(self) -> Driver:
        if self.prime is not None:
            self.prime(self)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._thread.join(timeout=30)


def storm(switch: str, **extra: Any) -> dict[str, Callable[[Driver], None]]:
    """Bursts: every vendor request answered by ``switch`` for 0.2-0.8 s, then calm for 0.2-1.0 s;
    the first burst starts with the apply."""

    def on(d: Driver) -> None:
        d.shop.faults(**{switch: 1.0}, **extra)
        d.count += 1
        d.armed = True

    def step(d: Driver) -> None:
        if d.armed:
            time.sleep(d.rng.uniform(0.2, 0.8))
            d.shop.faults(**{switch: 0})
            d.armed = False
            return
        d.stop.wait(d.rng.uniform(0.2, 1.0))
        if not d.stop.is_set():
            on(d)

    return {"step": step, "prime": on}


def drops() -> dict[str, Callable[[Driver], None]]:
    """One write at a time is committed and then its connection cut: the first with the apply's
    first write, the next ones at random moments; each is counted once the sandbox used it."""

    def arm(d: Driver) -> None:
        d.shop.faults(drop_next_writes=1)
        d.armed = True

    def step(d: Driver) -> None:
        if not d.armed:
            d.stop.wait(d.rng.uniform(0.0, 0.3))
            if not d.stop.is_set():
                arm(d)
            return
        if d.shop.control("GET", "faults")["drop_next_writes"] == 0:
            d.count += 1
            d.armed = False
        else:
            d.stop.wait(0.01)

    return {"step": step, "prime": arm}


def disarm(d: Driver) -> None:
    """After the apply: count an armed drop the last write used, and take back an unused one."""
    if d.armed and d.shop.control("GET", "faults")["drop_next_writes"] == 0:
        d.count += 1
    d.shop.faults(drop_next_writes=0)


# --- apply until done ----------------------------------------------------------------------------


@dataclass
class PlanRun:
    """One plan being applied: what the test knows independently about each position."""

    shop: Shop
    figures: Figures
    path: Path
    doc: dict[str, Any]
    before: dict[Position, int]  # the vendor's stock before the plan (verified)
    desired: dict[Position, int]
    last_run_s: float = 0.5  # how long the last uninterrupted apply took (kill timing)
    _store: Any = None

    @property
    def plan_id(self) -> str:
        return str(self.doc["plan_id"])

    def op_positions(self, op_id: str) -> list[Position]:
        op = next(o for o in self.doc["operations"] if o["id"] == op_id)
        return [(leg["location"], op["item"]) for leg in op["legs"]]

    def settle(self, in_doubt: list[str], reported: str) -> None:
        """Settle each operation in doubt from the sandbox's truth: the stock of its positions is
        either what it was before the plan (not applied) or that plus the independent change
        D - before (applied). Anything else would be a half-applied write: the test fails."""
        assert in_doubt, "exit code 4 but the journal holds nothing in doubt"
        for op_id in in_doubt:
            # Absolute writes are re-sent and X-Series deltas looked up: only unverifiable deltas may be in doubt.
            assert op_id in self.unverifiable(), f"{self.shop.spec.kind}: {op_id} could be verified, yet is in doubt"
        for op_id in in_doubt:
            assert op_id in reported, f"operation {op_id} in doubt but not shown to the user:\n{reported}"
        time.sleep(SETTLE_S)
        now = self.shop.stock()
        for n, op_id in enumerate(in_doubt):
            landed = []
            for pos in self.op_positions(op_id):
                change = self.desired[pos] - self.before[pos]
                assert now[pos] in (self.before[pos], self.before[pos] + change), (op_id, pos, now[pos], change)
                landed.append(now[pos] == self.before[pos] + change and change != 0)
            assert len(set(landed)) == 1, f"{op_id}: legs disagree about whether it landed: {landed}"
            self._resolve(op_id, landed[0], by_cli=n < CLI_RESOLVES)
            self.figures.in_doubt += 1
            if landed[0]:
                self.figures.resolved_applied += 1
            else:
                self.figures.resolved_not_applied += 1

    def _resolve(self, op_id: str, applied: bool, *, by_cli: bool) -> None:
        """`reconciler resolve OP --applied|--not-applied`. The command settles one operation per
        call and opens the state each time (~30-50 ms); a dropped Ka-ching request leaves its whole
        batch (hundreds of operations) in doubt, so past the first few the function the command
        calls settles the rest, on one open state."""
        if by_cli:
            done = self.shop.cli("resolve", op_id, "--applied" if applied else "--not-applied")
            assert done.code == 0 and op_id in done.out, done.err
            return
        from reconciler.apply import resolve_op
        from reconciler.state import open_state_store

        if self._store is None:
            self._store = open_state_store(self.shop.state_path)
        resolve_op(self._store, op_id, applied, holder="campaign@test", plan_id=self.plan_id)

    def close_store(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def unverifiable(self) -> set[str]:
        """Operations the tool cannot settle alone after a crash: deltas the vendor cannot look up."""
        if self.shop.spec.verifiable:
            return set()
        return {o["id"] for o in self.doc["operations"] if o["kind"] in ("adjust", "move") and o["write_mode"] != "absolute"}

    def in_doubt(self) -> list[str]:
        return sorted(op for op, status in self.shop.journal(self.plan_id).items() if status == "in_doubt")

    def after_run(self, code: int, out: str, err: str) -> bool:
        """Handle one finished apply; True when the plan is fully applied."""
        self.figures.apply_runs += 1
        assert code in (0, 3, IN_DOUBT), f"apply exited {code}:\n{out}\n{err}"
        if code == IN_DOUBT:
            try:
                self.settle(self.in_doubt(), out)
            finally:
                self.close_store()
        else:
            assert not self.in_doubt(), f"ops in doubt but apply exited {code}:\n{out}"
        return code == 0

    def applied(self) -> bool:
        journal = self.shop.journal(self.plan_id)
        return all(journal.get(o["id"]) == "applied" for o in self.doc["operations"] if o["kind"] != "drift")

    def until_done(self, max_runs: int = 40) -> None:
        for _ in range(max_runs):
            if self.applied():
                return
            started = time.monotonic()
            done = self.shop.cli("apply", str(self.path), "--no-progress")
            self.last_run_s = time.monotonic() - started
            if self.after_run(done.code, done.out, done.err):
                return
        raise AssertionError(f"{self.shop.spec.kind}: plan {self.plan_id} not applied after {max_runs} runs")

    def finish(self, what: str) -> dict[Position, int]:
        """The plan is applied: check the journal and the vendor's stock."""
        ops = [o for o in self.doc["operations"] if o["kind"] != "drift"]
        assert self.applied(), "plan done but some operations are not applied"
        self.figures.plans += 1
        self.figures.operations += len(ops)
        self.figures.applied += len(ops)
        self.figures.unverifiable_ops += len(self.unverifiable())
        expected = expected_stock(self.before, self.desired)
        time.sleep(SETTLE_S if self.shop.spec.kind == "kaching" else 0)
        compare(self.figures, self.shop.stock(), expected, what)
        return expected


def starting_stock(rng: random.Random, spec: Any, scale: int) -> dict[Position, int]:
    """The sandbox's seeded stock before the campaign: 0..30 units at every position."""
    return {(f"loc{l}", f"SKU-{i:04d}"): rng.randint(0, 30) for l in range(spec.locations) for i in range(spec.items * scale)}


def new_plan(shop: Shop, figures: Figures, before: dict[Position, int], desired: dict[Position, int],
             min_ops: int) -> PlanRun:
    shop.write_desired(desired)
    path, doc = shop.plan()
    ops = [o for o in doc["operations"] if o["kind"] != "drift"]
    assert len(ops) >= min_ops, f"{shop.spec.kind}: the plan has {len(ops)} operations, fewer than {min_ops}"
    return PlanRun(shop, figures, path, doc, before, desired)
