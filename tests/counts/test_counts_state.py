"""The count tables (schema version 5) on both backends: stored, read back, finished, copied by
`state migrate`'s table list."""

from __future__ import annotations

from reconciler.counts._store import StoredCount, load_count, mark_finished, open_counts, save_count
from reconciler.state import open_state_store
from reconciler.state._schema import SCHEMA_VERSION
from reconciler.state.base import TABLE_COLUMNS


def test_counts_round_trip(state_url: str) -> None:
    count = StoredCount("oslo-1", "oslo", "2026-12-04T09:00:00Z", "ann@shop", "front", ["A", "B"], None,
                        {("xs", "A"): (7, 2.5), ("xs", "B"): (0, None), ("zt", "A"): (3, None)})
    other = StoredCount("bergen-1", "bergen", "2026-12-04T09:05:00Z", "bo@shop", "", ["A"], None, {("zt", "A"): (1, None)})
    with open_state_store(state_url) as store:
        assert store.schema_version() == SCHEMA_VERSION >= 5
        save_count(store, count)
        save_count(store, other)  # counts of two locations open at once
        assert [c[0] for c in open_counts(store)] == ["oslo-1", "bergen-1"]
        assert load_count(store, "oslo-1") == count and load_count(store, "nope") is None
        mark_finished(store, "oslo-1", "2026-12-04T10:00:00Z")
        assert [c[0] for c in open_counts(store)] == ["bergen-1"]
        rows = store.export_rows("count_snapshots")
    assert {"counts", "count_snapshots"} <= set(TABLE_COLUMNS)
    assert [(r["count_id"], r["target"], r["item"], r["quantity"]) for r in rows][:2] == [
        ("bergen-1", "zt", "A", 1), ("oslo-1", "xs", "A", 7)]
