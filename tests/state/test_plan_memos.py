"""The plan memo table (schema version 8) and point reads of B, on both backends."""

from __future__ import annotations

from reconciler.model import NO_SETTINGS, Record, Settings
from reconciler.state import open_state_store
from reconciler.state.base import TABLE_COLUMNS


def test_a_memo_is_kept_replaced_and_dropped(state_url: str) -> None:
    with open_state_store(state_url) as store:
        assert store.schema_version() >= 8 and store.plan_memo("targets:xs") is None
        store.save_plan_memo("targets:xs", "f1", b"\x00one")
        store.save_plan_memo("targets:xs", "f2", b"\x00two")
        kept = store.plan_memo("targets:xs")
        assert (kept.fingerprint, kept.body) == ("f2", b"\x00two") and kept.made_at.endswith("Z")
        assert store.plan_memo("only:xs") is None  # a scoped plan has a memo of its own
        assert "plan_memos" not in TABLE_COLUMNS  # a cache: `state migrate` does not copy it
        assert store.drop_plan_memo("targets:xs") and store.plan_memo("targets:xs") is None


def test_base_records_reads_just_the_keys_asked(state_url: str) -> None:
    keys = [("xs", f"loc-{i % 7}", f"SKU-{i}") for i in range(700)]  # more than one query's worth
    with open_state_store(state_url) as store:
        _insert(store, keys)
        wanted = keys[::3] + [("xs", "nowhere", "SKU-1"), ("other", "loc-0", "SKU-0")]
        got = store.base_records(wanted)
    assert set(got) == set(keys[::3])
    assert got[keys[3]] == Record(3) and got[keys[3]].settings is NO_SETTINGS
    assert got[keys[300]] == Record(300, Settings(reorder_point=2))


def _insert(store, keys) -> None:  # type: ignore[no-untyped-def]
    with store._tx("seed base"):
        store._executemany("INSERT INTO base (target, location, item, quantity, settings) VALUES (?, ?, ?, ?, ?)",
                           [(*k, i, '{"reorder_point": 2}' if i % 100 == 0 else "{}") for i, k in enumerate(keys)])
