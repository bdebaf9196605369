"""Incremental X-Series reads (reconciler/connectors/_xseries_incremental.py): the live snapshot
and its version cursor kept in the state, merged with the changes since, or read in full when
it may be wrong. Real HTTP to the X-Series sandbox on loopback, a real SQLite state, and in each
scenario the plan after an incremental read is the plan after a full read (``--refresh``).
"""

from __future__ import annotations

import sqlite3
import textwrap
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import yaml

from reconciler.sandbox._core import ServerThread
from reconciler.sandbox.xseries import XSeriesSimulator

TOKEN = "xs-incremental-token-7e1"
ENV = {"XS_TOKEN": TOKEN}
PRODUCTS = {"TEE": "prod-tee", "CAP": "prod-cap", "MUG": "prod-mug"}


def fixtures(quantity: int = 5) -> dict[str, Any]:
    return {
        "locations": [{"id": "outlet-oslo"}, {"id": "outlet-bergen"}, {"id": "outlet-unmapped"}],
        "items": [{"id": p} for p in [*PRODUCTS.values(), "prod-unmapped"]],
        "stock": [{"location": o, "item": p, "quantity": quantity + i}
                  for i, (o, p) in enumerate((o, p) for o in ("outlet-oslo", "outlet-bergen") for p in PRODUCTS.values())]
        + [{"location": "outlet-unmapped", "item": "prod-tee", "quantity": 9}],
    }


def write_repo(root: Path, url: str, version: str, **options: Any) -> Path:
    (root / "stock").mkdir(parents=True, exist_ok=True)
    opts = {"inventory_api_version": version, "page_size": 2, **options}
    (root / "reconciler.yaml").write_text(textwrap.dedent(f"""\
        version: 1
        locations: {{oslo: {{}}, bergen: {{}}}}
        targets:
          xs:
            kind: xseries
            url: {url}
            credentials_env: XS_TOKEN
            locations: {{oslo: outlet-oslo, bergen: outlet-bergen}}
            options: {yaml.safe_dump(opts, default_flow_style=True).strip()}
        """))
    (root / "stock" / "catalog.yaml").write_text(
        "items:\n" + "".join(f"  {sku}: {{ids: {{xs: {pid}}}}}\n" for sku, pid in PRODUCTS.items()))
    stock(root, {"TEE": 5, "CAP": 6, "MUG": 7}, {"TEE": 8, "CAP": 9, "MUG": 10})
    return root


def stock(root: Path, oslo: dict[str, Any], bergen: dict[str, Any]) -> None:
    for name, items in (("oslo", oslo), ("bergen", bergen)):
        data = {"location": name, "strategy": "replace", "stock": {"xs": items}}
        (root / "stock" / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture(params=["2026-01", "2026-04"])
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)  # GET with after= ; POST ascending with deleted rows


@pytest.fixture
def sim() -> Iterator[XSeriesSimulator]:
    s = XSeriesSimulator(token=TOKEN, fixtures=fixtures(), rate_budget=0)
    yield s
    s.close()


@pytest.fixture
def server(sim: XSeriesSimulator) -> Iterator[ServerThread]:
    with ServerThread(sim) as running:
        yield running


@pytest.fixture
def repo(tmp_path: Path, server: ServerThread, version: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    return write_repo(tmp_path / "repo", server.url, version)


def plan(repo: Path, **kw: Any) -> Any:
    from reconciler.workflow import plan_project

    return plan_project(repo, env=ENV, **kw)


def read_note(p: Any) -> str:
    [note] = [n for n in p.notes if n.startswith("xs: live stock read")]
    return str(note)


def ops(p: Any) -> list[tuple[Any, ...]]:
    return sorted((op.id, op.kind.value, op.location, op.item, repr(op.legs)) for op in p.operations)


def incremental_equals_full(repo: Path) -> Any:
    """Plan incrementally, then in full (--refresh): the same operations. Returns the first."""
    fast = plan(repo)
    assert "read incrementally" in read_note(fast), read_note(fast)
    full = plan(repo, refresh=True)
    assert "read in full" in read_note(full) and "--refresh" in read_note(full)
    assert ops(fast) == ops(full)
    assert fast.marks == full.marks  # the adjustment listing's cursor too (bounded by the read's versions)
    return fast


def requests(server: ServerThread) -> dict[str, int]:
    return httpx.get(server.url + "/_sandbox/requests").json()  # type: ignore[no-any-return]


def feed_reads(server: ServerThread) -> int:
    return sum(n for path, n in requests(server).items() if path.endswith("/inventory"))


def bump(sim: XSeriesSimulator, outlet: str, product: str, delta: float) -> None:
    with sim.db.transaction() as conn:
        sim.adjust_stock(conn, product, outlet, delta)


def test_first_plan_reads_in_full_and_the_next_only_the_changes(repo: Path, server: ServerThread) -> None:
    first = plan(repo)
    assert "read in full" in read_note(first) and "no snapshot kept yet" in read_note(first)
    before = feed_reads(server)
    second = plan(repo)
    assert "read incrementally: 0 record(s) changed since version" in read_note(second)
    # an empty page after the cursor and the look-up of one product, not every page of the feed
    assert feed_reads(server) - before < before
    assert ops(first) == ops(second)


def test_plan_note_is_shown_in_text_and_markdown(repo: Path) -> None:
    from reconciler.render import render

    plan(repo)
    second = plan(repo)
    for fmt in ("text", "markdown"):
        assert "xs: live stock read incrementally" in render(second, fmt)


def test_sales_receipts_and_a_record_changed_twice(repo: Path, sim: XSeriesSimulator) -> None:
    plan(repo)
    sim.sell_one()
    sim.sell_one()
    bump(sim, "outlet-oslo", "prod-cap", 4)  # a receipt
    bump(sim, "outlet-bergen", "prod-mug", -2)  # changed twice: the higher version wins
    bump(sim, "outlet-bergen", "prod-mug", 7)
    fast = incremental_equals_full(repo)
    # the feed holds each changed record once, at its newest version (sales may hit the same ones)
    assert any(f" {n} record(s) changed" in read_note(fast) for n in (2, 3, 4))
    resets = {(op.location, op.item): op for op in fast.operations if op.kind.value == "reset"}
    assert ("bergen", "MUG") in resets and ("oslo", "CAP") in resets


def test_a_deleted_record_removes_the_position(repo: Path, sim: XSeriesSimulator) -> None:
    plan(repo)
    with sim.db.transaction() as conn:
        conn.execute("UPDATE xs_inventory SET deleted_at = ?, version = ? WHERE product_id = ? AND outlet_id = ?",
                     (sim.now(), sim.version_step(conn), "prod-tee", "outlet-oslo"))
    fast = incremental_equals_full(repo)
    touched = [op for op in fast.operations if (op.location, op.item) == ("oslo", "TEE")]
    assert touched  # the position is gone at the vendor: the plan puts it back


def test_the_apply_writes_are_picked_up_by_the_next_incremental_read(repo: Path, sim: XSeriesSimulator) -> None:
    from reconciler.workflow import apply_saved_plan

    plan(repo)
    stock(repo, {"TEE": 1, "CAP": 6, "MUG": 7}, {"TEE": 8, "CAP": 2, "MUG": 10})
    edit = plan(repo)
    assert edit.has_changes
    assert apply_saved_plan(repo, edit, env=ENV).ok
    after = plan(repo)
    assert "read incrementally" in read_note(after)
    assert "0 record(s) changed" not in read_note(after)  # the writes bumped the versions
    assert not after.has_changes
    assert ops(after) == ops(plan(repo, refresh=True))


def test_after_an_apply_whose_answers_were_lost_the_incremental_plan_equals_the_full_one(
        repo: Path, sim: XSeriesSimulator) -> None:
    """Writes committed whose answers were dropped: whatever the journal says of them, the
    versions they bumped bring them into the next incremental read."""
    from reconciler.workflow import apply_saved_plan

    plan(repo)
    stock(repo, {"TEE": 1, "CAP": 6, "MUG": 7}, {"TEE": 8, "CAP": 9, "MUG": 10})
    edit = plan(repo)
    sim.faults.update({"drop_next_writes": 50})
    apply_saved_plan(repo, edit, env=ENV)
    sim.faults.update({"drop_next_writes": 0})
    incremental_equals_full(repo)


def test_a_doubtful_journal_row_since_the_read_invalidates(repo: Path) -> None:
    """The store's journal decides: a row of the target left in doubt after the snapshot was read."""
    plan(repo)
    db = sqlite3.connect(repo / ".reconciler" / "state.db")
    with db:
        db.execute("INSERT INTO journal (plan_id, op_id, target, kind, status, updated_at) "
                   "VALUES ('p', 'o', 'xs', 'reset', 'not_applied', '9999-01-01T00:00:00Z')")
    db.close()
    after = plan(repo)
    assert "read in full" in read_note(after) and "left in doubt" in read_note(after)


def test_refresh_reads_in_full(repo: Path) -> None:
    plan(repo)
    assert "--refresh" in read_note(plan(repo, refresh=True))
    assert "read incrementally" in read_note(plan(repo))


def test_the_age_limit_forces_a_full_read(tmp_path: Path, server: ServerThread, version: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    repo = write_repo(tmp_path / "aged", server.url, version, incremental_max_age=0.0003)  # ~1 s
    plan(repo)
    time.sleep(1.5)
    note = read_note(plan(repo))
    assert "read in full" in note and "over incremental_max_age" in note


def test_incremental_off_reads_in_full_every_time(tmp_path: Path, server: ServerThread, version: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    repo = write_repo(tmp_path / "off", server.url, version, incremental=False)
    plan(repo)
    assert not [n for n in plan(repo).notes if n.startswith("xs: live stock read")]


def test_a_snapshot_of_another_lineage_is_not_used(repo: Path, sim: XSeriesSimulator) -> None:
    plan(repo)
    db = sqlite3.connect(repo / ".reconciler" / "state.db")
    with db:
        db.execute("UPDATE live_snapshots SET lineage = 'another-state'")
    db.close()
    sim.sell_one()
    note = read_note(plan(repo))
    assert "read in full" in note and "another state lineage" in note
    incremental_equals_full(repo)


def test_a_fresh_sandbox_behind_the_same_url_is_a_cursor_gone_backwards(
        tmp_path: Path, version: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The vendor's versions restart below the cursor (a reset sandbox): read in full."""
    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    old = XSeriesSimulator(token=TOKEN, fixtures=fixtures(), rate_budget=0)
    with ServerThread(old) as first:
        port = first.port
        repo = write_repo(tmp_path / "repo", first.url, version)
        for _ in range(30):  # move the cursor far above what a fresh sandbox starts with
            bump(old, "outlet-oslo", "prod-tee", 1)
        plan(repo)
    old.close()
    fresh = XSeriesSimulator(token=TOKEN, fixtures=fixtures(quantity=20), rate_budget=0)
    try:
        with ServerThread(fresh, port=port):
            note = read_note(plan(repo))
            assert "read in full" in note and "cursor went backwards" in note
            incremental_equals_full(repo)
    finally:
        fresh.close()


def test_the_migration_adds_the_table_and_state_migrate_does_not_copy_it() -> None:
    from reconciler.state.base import TABLE_COLUMNS
    from reconciler.state._pg_schema import PG_SCHEMA_VERSION
    from reconciler.state._schema import SCHEMA_VERSION

    assert SCHEMA_VERSION == PG_SCHEMA_VERSION >= 6
    assert "live_snapshots" not in TABLE_COLUMNS


def test_merge_keeps_the_higher_version_in_any_order_and_deletions_remove() -> None:
    from reconciler.connectors._xseries_incremental import _merge

    old = {"version": 5, "outlet_id": "o", "product_id": "p", "current_amount": 1}
    new = {"version": 9, "outlet_id": "o", "product_id": "p", "current_amount": 2}
    gone = {"version": 12, "outlet_id": "o", "product_id": "q", "current_amount": 0, "deleted_at": "2026-01-01"}
    stale = {"version": 3, "outlet_id": "o", "product_id": "q", "current_amount": 4}
    for pages in ([[old, new], [gone, stale]], [[new], [old, stale], [gone]], [[stale, gone, new, old]]):
        snapshot: dict[str, Any] = {"o": {"q": [1, 7, None, None]}}
        assert _merge(snapshot, pages, 2) == (4, 12)
        assert snapshot == {"o": {"p": [9, 2, None, None]}}


def test_a_cursor_the_vendor_calls_unknown_is_read_again_in_full(repo: Path, sim: XSeriesSimulator) -> None:
    plan(repo)
    sim.sell_one()
    db = sqlite3.connect(repo / ".reconciler" / "state.db")
    [(cursor,)] = db.execute("SELECT cursor FROM live_snapshots").fetchall()
    db.close()
    sim.dated.refuse_next_cursors = 1  # the sandbox answers the next cursor 400 (an assumed answer)
    note = read_note(plan(repo))
    assert "read in full" in note and f"refused cursor {cursor}" in note
    incremental_equals_full(repo)
