"""``record_adopted`` (the bulk write of an import) on both backends: journal rows applied with
their base updates, B written, the serial moved, the same as the pending + outcome path."""

from __future__ import annotations

from applykit import make_plan, reset

from reconciler.model import Settings
from reconciler.state import BaseUpdate, JournalStatus, open_state_store
from reconciler.state.base import StateStore


def test_bulk_and_generic_paths_agree(state_url: str, tmp_path) -> None:
    results = []
    for bulk in (True, False):
        url = state_url if bulk else str(tmp_path / "generic.db")
        with open_state_store(url) as store:
            ops = [reset("t", "oslo", "A", None, 4), reset("t", "bergen", "B", None, 0)]
            plan = make_plan(ops, lineage=store.lineage(), serial=0)
            ticket = store.begin_apply(plan, op_count=2, who="u@h")
            rows = [(ops[0], '{"import": true}', BaseUpdate(("t", "oslo", "A"), 4, Settings(reorder_point=2))),
                    (ops[1], '{"import": true}', BaseUpdate(("t", "bergen", "B"), 0, Settings()))]
            serial = store.serial()
            if bulk:
                store.record_adopted(plan.plan_id, ticket.run_id, rows, "imported")
            else:
                StateStore.record_adopted(store, plan.plan_id, ticket.run_id, rows, "imported")
            journal = store.journal(plan.plan_id)
            assert {e.status for e in journal.values()} == {JournalStatus.APPLIED} and store.serial() > serial
            assert journal[ops[0].id].base_updates == (rows[0][2],)
            base = store.load_base().positions
            results.append({k: (r.quantity, r.settings) for k, r in base.items()})
    assert results[0] == results[1] == {("t", "oslo", "A"): (4, Settings(reorder_point=2)), ("t", "bergen", "B"): (0, Settings())}
