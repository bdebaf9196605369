"""The planner's side of counts, pure: D, B, A and the counts in, a plan out (no I/O)."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "planner"))
from planner_helpers import FULL, WRITE_ONLY, actual, base, desired, policy  # noqa: E402

from reconciler.errors import GuardError  # noqa: E402
from reconciler.model import Capabilities, OpKind  # noqa: E402
from reconciler.planner import make_plan  # noqa: E402
from reconciler.planner._counts import CountedPosition, CountInput, CountPlan, count_op_id  # noqa: E402

AT = "2026-01-01T00:00:00Z"
FEED = Capabilities(readable=True, absolute=True, delta=False, native_move=False, delete=False)


def _counts(*positions: CountedPosition, counted_at: str = "2025-12-31T09:00:00Z", **kw: object) -> CountPlan:
    return CountPlan((CountInput("c1", "oslo", counted_at, "stock/counts/c1.yaml", positions),), **kw)  # type: ignore[arg-type]


def _plan(d: dict, b: dict, a: dict, counts: CountPlan, caps: dict | None = None, unreadable: tuple = ()) -> object:
    return make_plan(desired(d), base(b), actual(a, unreadable), policy(caps or {"x": FULL}), created_at=AT,
                     counts=counts)


def test_variance_against_the_snapshot_is_applied_on_live_stock() -> None:
    # B 10 (weeks old), snapshot 7 at the count, counted 5, live 4 now (one sold since): adjust -2
    p = _plan({("x", "oslo", "A"): 5}, {("x", "oslo", "A"): 10}, {("x", "oslo", "A"): 4},
              _counts(CountedPosition("x", "A", 5, 7, cost=2.0)))
    [op] = p.operations
    assert (op.kind, op.legs[0].change, op.legs[0].expected, op.legs[0].desired) == (OpKind.ADJUST, -2, 2, 5)
    assert op.id == count_op_id("c1", ("x", "oslo", "A")) and op.reason.startswith("count c1 at oslo")
    assert p.counts == ["count c1: oslo, counted at 2025-12-31T09:00:00Z, 1 position(s), 0 unit(s) over, 2 under, "
                        "variance value at cost -4.00 (1 of 1 positions have a cost)\n"
                        "     -2  A in x: counted 5, expected 7, -4.00 at cost"]


def test_zero_variance_records_b_and_applied_counts_are_left_to_the_diff() -> None:
    p = _plan({("x", "oslo", "A"): 7, ("x", "oslo", "B"): 3}, {("x", "oslo", "A"): 10, ("x", "oslo", "B"): 3},
              {("x", "oslo", "A"): 6, ("x", "oslo", "B"): 1},
              _counts(CountedPosition("x", "A", 7, 7), CountedPosition("x", "B", 3, 4, applied=True)))
    assert [(op.kind, op.item, op.legs[0].change) for op in p.operations] == [
        (OpKind.RECORD, "A", 0), (OpKind.DRIFT, "B", 0)]


def test_write_only_is_a_reset_with_a_warning_and_no_snapshot_adopts() -> None:
    p = _plan({("w", "oslo", "A"): 5, ("x", "oslo", "N"): 5}, {("w", "oslo", "A"): 9}, {("x", "oslo", "Z"): 1},
              _counts(CountedPosition("w", "A", 5, None), CountedPosition("x", "N", 5, None)),
              caps={"w": WRITE_ONLY, "x": FULL}, unreadable=("w",))
    assert [(op.kind, op.item, op.legs[0].expected) for op in p.operations] == [(OpKind.RESET, "A", 5), (OpKind.RESET, "N", 5)]
    assert "adopt" in p.operations[1].reason
    assert any("no snapshot of N at oslo in x" in w for w in p.warnings)
    assert any("w is write-only" in w and "cannot be kept" in w for w in p.warnings)


def test_absolute_only_readable_target_re_reads_and_a_changed_file_is_an_ordinary_change() -> None:
    p = _plan({("f", "oslo", "A"): 5, ("f", "oslo", "B"): 8}, {("f", "oslo", "A"): 9, ("f", "oslo", "B"): 9},
              {("f", "oslo", "A"): 8, ("f", "oslo", "B"): 9},
              _counts(CountedPosition("f", "A", 5, 9), CountedPosition("f", "B", 6, 9)), caps={"f": FEED})
    a, b = p.operations
    assert (a.write_mode, a.legs[0].change, a.reason.startswith("count c1")) == ("read-modify-write", -4, True)
    assert not b.reason.startswith("count ") and any("planned as an ordinary change" in w for w in p.warnings)


def test_a_count_older_than_the_limit_is_a_guard() -> None:
    old = _counts(CountedPosition("x", "A", 5, 7), counted_at="2025-12-20T00:00:00Z")
    with pytest.raises(GuardError, match=r"count c1 \(oslo, stock/counts/c1.yaml\) was counted 12.0 days ago"):
        _plan({("x", "oslo", "A"): 5}, {("x", "oslo", "A"): 10}, {("x", "oslo", "A"): 7}, old)
    allowed = _counts(CountedPosition("x", "A", 5, 7), counted_at="2025-12-20T00:00:00Z", allow_old=True)
    assert _plan({("x", "oslo", "A"): 5}, {("x", "oslo", "A"): 10}, {("x", "oslo", "A"): 7}, allowed).operations
    longer = _counts(CountedPosition("x", "A", 5, 7), counted_at="2025-12-20T00:00:00Z", max_age=timedelta(days=14))
    assert _plan({("x", "oslo", "A"): 5}, {("x", "oslo", "A"): 10}, {("x", "oslo", "A"): 7}, longer).operations


def test_blocks_list_the_biggest_variances_first() -> None:
    d = {("x", "oslo", s): 5 for s in "ABC"}
    p = _plan(d, {k: 5 for k in d}, {k: 5 for k in d},
              _counts(CountedPosition("x", "A", 5, 6), CountedPosition("x", "B", 5, 1), CountedPosition("x", "C", 5, 8)))
    assert [line.split()[1] for line in p.counts[0].splitlines()[1:]] == ["B", "C", "A"]
    assert "4 unit(s) over, 4 under" in p.counts[0]


def test_a_later_count_of_a_position_replaces_an_earlier_one_never_both() -> None:
    first = CountInput("c1", "oslo", "2025-12-31T09:00:00Z", "stock/counts/c1.yaml", (CountedPosition("x", "A", 5, 7),))
    later = CountInput("c2", "oslo", "2025-12-31T15:00:00Z", "stock/counts/c2.yaml",
                       (CountedPosition("x", "A", 5, 6), CountedPosition("x", "B", 2, 3)))
    d, b, a = {("x", "oslo", "A"): 5, ("x", "oslo", "B"): 2}, {("x", "oslo", "A"): 9, ("x", "oslo", "B"): 3}, \
        {("x", "oslo", "A"): 6, ("x", "oslo", "B"): 3}
    for order in ((first, later), (later, first)):
        p = _plan(d, b, a, CountPlan(order))
        assert [(op.item, op.legs[0].change, op.reason.split()[1]) for op in p.operations] == [("A", -1, "c2"), ("B", -1, "c2")]
        assert [blk.split(":")[0] for blk in p.counts] == ["count c2"] and not p.warnings
    # once the later count is applied, the earlier one stays superseded: nothing more, no warning
    done = CountInput("c2", "oslo", "2025-12-31T15:00:00Z", "stock/counts/c2.yaml",
                      (CountedPosition("x", "A", 5, 6, applied=True), CountedPosition("x", "B", 2, 3, applied=True)))
    p = _plan(d, {("x", "oslo", "A"): 5, ("x", "oslo", "B"): 2}, {("x", "oslo", "A"): 5, ("x", "oslo", "B"): 2},
              CountPlan((first, done)))
    assert not p.operations and not p.warnings and not p.counts


def test_an_old_count_already_applied_stops_nothing() -> None:
    # count records stay in the repository after they are applied: weeks later they must not block plans
    done = _counts(CountedPosition("x", "A", 5, 7, applied=True), counted_at="2025-10-01T00:00:00Z")
    p = _plan({("x", "oslo", "A"): 5}, {("x", "oslo", "A"): 5}, {("x", "oslo", "A"): 4}, done)
    assert [op.kind for op in p.operations] == [OpKind.DRIFT] and not p.warnings
