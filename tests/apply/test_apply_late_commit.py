"""A journal commit that surfaces late cannot hide from the next plan (issue 16, point 6).

An apply sends an adjustment and its outcome commit is delayed (a slow disk, a reader holding
an old snapshot); meanwhile the next plan is made from the old B. The apply then dies before it
closes its run. The outcome commit must move the serial, so that the plan made from the old B
is refused as stale instead of adjusting by D - B a second time.
"""

from __future__ import annotations

import threading
from contextlib import closing
from pathlib import Path

import pytest
from applykit import adjust, connector, make_plan, ops_log, stock_of

from reconciler.apply import apply_plan
from reconciler.errors import StalePlanError
from reconciler.state import SQLiteStateStore


class _Killed(BaseException):
    """The process dying right after its outcome commit."""


class LateCommitStore(SQLiteStateStore):
    """Holds the outcome commit until ``release`` is set, then dies before the run is closed."""

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.waiting, self.release, self.dead = threading.Event(), threading.Event(), False

    def record_outcomes(self, plan_id, outcomes) -> None:
        self.waiting.set()
        assert self.release.wait(30)
        super().record_outcomes(plan_id, outcomes)
        self.dead = True
        raise _Killed()

    def finish_run(self, run_id, outcome, counts):
        if self.dead:  # a dead process closes nothing
            raise _Killed()
        return super().finish_run(run_id, outcome, counts)


def test_a_plan_made_before_a_late_outcome_commit_is_refused(tmp_path: Path, stock_path: Path, adopted) -> None:
    state = tmp_path / ".reconciler" / "state.db"
    key, held = ("oslo", "SKU-001"), adopted[("oslo", "SKU-001")]
    with LateCommitStore(state) as dying, SQLiteStateStore(state) as planner_view, closing(connector("shop", stock_path)) as conn:
        first = make_plan([adjust("shop", *key, held, held, held + 5)], lineage=planner_view.lineage(),
                          serial=planner_view.serial(), plan_id="first")

        def first_apply() -> None:
            with pytest.raises(_Killed):
                apply_plan(first, dying, {"shop": conn}, desired_digest=first.desired_digest, holder="t@h", parallel=False)

        worker = threading.Thread(target=first_apply)
        worker.start()
        assert dying.waiting.wait(30), "the first apply never reached its outcome commit"
        # The next plan, from what the state shows before the outcome commit: B is still `held`.
        b_seen = planner_view.load_base().positions[("shop", *key)].quantity
        assert b_seen == held
        second = make_plan([adjust("shop", *key, held + 5, b_seen, held + 7)], lineage=planner_view.lineage(),
                           serial=planner_view.serial(), plan_id="second")
        dying.release.set()
        worker.join(30)
        assert dying.dead
        with pytest.raises(StalePlanError, match="serial"):
            apply_plan(second, planner_view, {"shop": conn}, desired_digest=second.desired_digest, holder="t@h")
    assert stock_of(stock_path)[key] == held + 5  # the first adjustment, once; the second was never sent
    assert ops_log(stock_path)["adjust-shop-oslo-SKU-001"] == 1
