"""The live snapshot table (schema version 6) on both backends: kept, replaced, dropped, its
age by the store's clock, doubtful journal rows since a read, and never exported."""

from __future__ import annotations

from applykit import adjust, make_plan

from reconciler.state import JournalStatus, Outcome, open_state_store
from reconciler.state.base import TABLE_COLUMNS


def test_a_snapshot_is_kept_replaced_and_dropped(state_url: str) -> None:
    with open_state_store(state_url) as store:
        assert store.schema_version() >= 6 and store.live_snapshot("xs") is None
        read_at = store.save_live_snapshot("xs", lineage=store.lineage(), source="u 2026-01", cursor=41,
                                           records=b"\x00blob", full_at=None)
        kept = store.live_snapshot("xs")
        assert (kept.cursor, kept.records, kept.read_at, kept.full_at) == (41, b"\x00blob", read_at, read_at)
        assert 0 <= kept.age_s < 60
        store.save_live_snapshot("xs", lineage=kept.lineage, source=kept.source, cursor=57, records=b"x",
                                 full_at="2020-01-01T00:00:00Z")
        again = store.live_snapshot("xs")
        assert again.cursor == 57 and again.full_at == "2020-01-01T00:00:00Z" and again.age_s > 86400
        assert "live_snapshots" not in TABLE_COLUMNS  # `state migrate` does not copy a cache
        assert store.drop_live_snapshot("xs") and store.live_snapshot("xs") is None


def test_doubtful_journal_rows_since_a_read_are_counted(state_url: str) -> None:
    with open_state_store(state_url) as store:
        op, other = adjust("t", "oslo", "A", 5, 5, 8), adjust("t", "oslo", "B", 1, 1, 2)
        plan = make_plan([op, other], lineage=store.lineage(), serial=0)
        ticket = store.begin_apply(plan, op_count=2, who="u@h")
        store.record_pending(plan.plan_id, ticket.run_id, [(op, "{}", []), (other, "{}", [])])
        assert store.doubtful_since("t", "2000-01-01T00:00:00Z") == 2  # pending: maybe sent
        store.record_outcome(plan.plan_id, Outcome(op.id, JournalStatus.APPLIED, "{}"))
        store.record_outcome(plan.plan_id, Outcome(other.id, JournalStatus.IN_DOUBT, "lost"))
        assert store.doubtful_since("t", "2000-01-01T00:00:00Z") == 1  # applied is certain; in doubt is not
        assert store.doubtful_since("other", "2000-01-01T00:00:00Z") == 0
        assert store.doubtful_since("t", "9999-01-01T00:00:00Z") == 0  # before the read: not counted
