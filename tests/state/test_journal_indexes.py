"""The journal's indexes (schema version 7): nothing keyed by the hashed op id alone.

Op ids are sha256 hashes, so an index on them takes every batch of pending rows as ~500
random inserts; at 100k+ journal rows those pages made the pending commit cost 2-3x what it
costs on a small journal (docs/performance.md, issue 22 point 4). Lookups by op id go through
the primary key (plan_id, op_id); ``resolve``'s prefix search scans.
"""

from __future__ import annotations

from pathlib import Path

from applykit import adjust, make_plan
from sqlite_utils import Database

from reconciler.state import JournalStatus, Outcome, SQLiteStateStore, open_state_store
from reconciler.state._schema import MIGRATIONS, SCHEMA_VERSION
from reconciler.state.sqlite import WAL_CHECKPOINT_PAGES


def _journal_indexes(store: object) -> dict[str, str]:
    """Index name -> its definition, on either backend."""
    if isinstance(store, SQLiteStateStore):
        rows = store.db.execute("SELECT name, coalesce(sql, '') FROM sqlite_master WHERE type = 'index' "
                                "AND tbl_name = 'journal'").fetchall()
    else:
        rows = store._all("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'journal' "  # type: ignore[attr-defined]
                          "AND schemaname = current_schema()")
    return {name: definition for name, definition in rows}


def test_no_journal_index_is_keyed_by_the_op_id_alone(state_url: str) -> None:
    with open_state_store(state_url) as store:
        assert store.schema_version() == SCHEMA_VERSION >= 7
        indexes = _journal_indexes(store)
        assert "journal_op_id" not in indexes and "journal_status" in indexes
        assert not any(d.replace(" ", "").lower().endswith("(op_id)") for d in indexes.values()), indexes
        # and a prefix search still finds an operation (it scans)
        op = adjust("t", "oslo", "A", 5, 5, 8, op_id="ab12cd34ef")
        plan = make_plan([op], lineage=store.lineage(), serial=store.serial())
        ticket = store.begin_apply(plan, op_count=1, who="test")
        store.record_pending(plan.plan_id, ticket.run_id, [(op, "{}", [])])
        store.record_outcome(plan.plan_id, Outcome(op.id, JournalStatus.IN_DOUBT, "", "lost"))
        assert [e.op_id for e in store.find_journal("ab12", [JournalStatus.IN_DOUBT])] == [op.id]


def test_a_version_6_database_loses_the_op_id_index_and_keeps_its_journal(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    db = Database(path)
    db["schema_version"].create({"version": int, "applied_at": str}, pk="version")
    for number in range(6):
        MIGRATIONS[number](db)
    db["schema_version"].insert({"version": 6, "applied_at": "2026-12-01T00:00:00Z"})
    db["meta"].insert_all([{"key": "lineage", "value": "L-1"}, {"key": "serial", "value": "3"}])
    db["journal"].insert({"plan_id": "p", "op_id": "ffee01", "run_id": "r", "target": "t", "kind": "adjust",
                          "status": "in_doubt", "request": "{}", "response": "", "error": "lost",
                          "base_updates": "[]", "updated_at": "2026-12-01T00:00:00Z"})
    assert "journal_op_id" in {i.name for i in db["journal"].indexes}
    db.close()

    with SQLiteStateStore(path) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert "journal_op_id" not in _journal_indexes(store)
        assert [e.op_id for e in store.find_journal("ffee")] == ["ffee01"]
        assert store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == WAL_CHECKPOINT_PAGES
