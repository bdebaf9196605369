"""`state lock`, `state init`, `state snapshot`, `unlock`, `history` and `resolve` through the real
CLI entry point, on real SQLite files (and a PostgreSQL schema for `state init`)."""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
import subprocess
import sys
from pathlib import Path

import pytest
from applykit import adjust, connector, make_plan, reset
from sqlite_utils import Database

from reconciler.apply import apply_plan
from reconciler.cli import main
from reconciler.model import Operation
from reconciler.state import SQLiteStateStore, open_state_store, parse_state_url
from reconciler.state._schema import MIGRATIONS, SCHEMA_VERSION


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


class _Crash(BaseException):
    pass


def _in_doubt(tmp_path: Path) -> tuple[Path, Operation]:
    """A state whose plan has one delta operation left in doubt."""
    state, stock = tmp_path / "state.db", tmp_path / "shop.sqlite"
    op = adjust("shop", "oslo", "A", 0, 0, 4)
    with SQLiteStateStore(state) as store:
        plan = make_plan([op], lineage=store.lineage(), serial=0)
        boom = connector("shop", stock)
        boom.execute = lambda batch: (_ for _ in ()).throw(_Crash())  # type: ignore[method-assign]
        with pytest.raises(_Crash):
            apply_plan(plan, store, {"shop": boom}, desired_digest=None, holder="ann@box")
        report = apply_plan(plan, store, {"shop": connector("shop", stock)}, desired_digest=None, holder="ann@box")
        assert report.counts["in_doubt"] == 1
    return state, op


def test_lock_show_and_unlock(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state.db"
    with SQLiteStateStore(state, hostname="ci-9", pid=4242) as other:
        lock = other.acquire_lock("ci@ci-9", 600)
    code, out, _ = run_cli(capsys, "state", "lock", "--state", str(state))
    assert code == 0 and "ci@ci-9" in out and "4242" in out and f"reconciler unlock {lock.id}" in out
    code, _, err = run_cli(capsys, "unlock", "nope", "--state", str(state))
    assert code == 1 and "no apply lock with id nope" in err and lock.id in err
    code, out, _ = run_cli(capsys, "unlock", lock.id, "--state", str(state))
    assert code == 0 and lock.id in out
    code, out, _ = run_cli(capsys, "state", "lock", "--state", str(state))
    assert "No apply holds the state lock" in out


def test_missing_state_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "history", "--state", str(tmp_path / "none.db"))
    assert code == 1 and "no state database at" in err and "none.db" in err


def test_history_and_run_detail(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    state, op = _in_doubt(tmp_path)
    monkeypatch.setenv("RECONCILER_STATE", str(state))
    code, out, _ = run_cli(capsys, "history")
    assert code == 0 and out.count("ann@box") == 2 and "in_doubt" in out and "aborted" in out
    with SQLiteStateStore(state) as store:
        run_id = store.runs()[0].run_id
    code, out, _ = run_cli(capsys, "history", run_id)
    assert code == 0 and op.id in out and "in_doubt" in out and "plan-1" in out
    code, _, err = run_cli(capsys, "history", "zzz")
    assert code == 1 and "no run zzz" in err


def test_resolve_by_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state, op = _in_doubt(tmp_path)
    code, _, err = run_cli(capsys, "resolve", op.id, "--state", str(state))
    assert code == 1 and "--applied or --not-applied" in err
    with SQLiteStateStore(state, hostname="elsewhere") as other:
        lock = other.acquire_lock("bob@elsewhere", 600)
    code, _, err = run_cli(capsys, "resolve", op.id, "--applied", "--state", str(state))
    assert code == 5 and "bob@elsewhere" in err
    with SQLiteStateStore(state) as store:
        store.release_lock(lock.id)
    code, out, _ = run_cli(capsys, "resolve", op.id, "--applied", "--state", str(state))
    assert code == 0 and "now applied" in out
    with SQLiteStateStore(state) as store:
        assert store.load_base().positions[("shop", "oslo", "A")].quantity == 4
    code, _, err = run_cli(capsys, "resolve", op.id, "--not-applied", "--state", str(state))
    assert code == 1 and "no operation in doubt" in err


def test_console_script_runs(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    with SQLiteStateStore(state) as store:
        plan = make_plan([reset("shop", "oslo", "A", None, 1)], lineage=store.lineage(), serial=0)
        apply_plan(plan, store, {"shop": connector("shop", tmp_path / "s.sqlite")}, desired_digest=None, holder="x@y")
    done = subprocess.run([sys.executable, "-m", "reconciler", "history", "--state", str(state)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "x@y" in done.stdout and "1 applied" in done.stdout


# --- state init / state snapshot ---------------------------------------------------------------


def test_state_init_creates_then_reopens_and_upgrades_an_old_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "fresh" / "state.db"
    code, out, _ = run_cli(capsys, "state", "init", "--state", str(state))
    assert code == 0 and out.startswith(f"Created a new state: {state} (sqlite)")
    with SQLiteStateStore(state) as store:
        lineage = store.lineage()
    assert f"lineage:        {lineage}\n" in out and "serial:         0\n" in out
    code, out, _ = run_cli(capsys, "state", "init", "--state", str(state))
    assert code == 0 and out.startswith("The state exists") and lineage in out

    old = tmp_path / "old.db"  # a state written by a reconciler of schema version 1
    db = Database(old)
    db["schema_version"].create({"version": int, "applied_at": str}, pk="version")
    MIGRATIONS[0](db)
    db["schema_version"].insert({"version": 1, "applied_at": "2026-01-01T00:00:00Z"})
    db["meta"].insert_all([{"key": "lineage", "value": "L-old"}, {"key": "serial", "value": "7"}])
    db.close()
    code, out, _ = run_cli(capsys, "state", "init", "--state", str(old))
    assert code == 0 and "L-old" in out and "serial:         7" in out and f"schema version: {SCHEMA_VERSION}" in out
    with closing(sqlite3.connect(old)) as conn, conn:  # commits, then closes
        assert conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] == SCHEMA_VERSION
        conn.execute("INSERT INTO schema_version VALUES (?, 'x')", [SCHEMA_VERSION + 1])
    conn.close()
    code, _, err = run_cli(capsys, "state", "init", "--state", str(old))
    assert code == 1 and "newer than this reconciler" in err


def test_state_init_on_postgresql_never_prints_the_password(pg_schema_url: str, capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    password = parse_state_url(pg_schema_url, env={}).secrets[0]
    monkeypatch.setenv("TEST_PG_PASSWORD", password)
    monkeypatch.setenv("RECONCILER_STATE", pg_schema_url.replace(f":{password}@", ":${TEST_PG_PASSWORD}@"))
    code, out, err = run_cli(capsys, "state", "init")
    assert code == 0 and "(postgresql)" in out and "serial:         0" in out, err
    assert password not in out + err and ":***@" in out
    with open_state_store(pg_schema_url, create=False) as store:  # it exists now
        lineage = store.lineage()
    assert f"lineage:        {lineage}" in out
    code, again, _ = run_cli(capsys, "state", "init")
    assert code == 0 and f"lineage:        {lineage}" in again  # opened, not made anew


def _applied_state(tmp_path: Path) -> Path:
    state = tmp_path / "state.db"
    SQLiteStateStore(state).close()  # schema checkpointed into state.db; what follows stays in the WAL
    return state


def test_snapshot_holds_committed_wal_pages_and_nothing_uncommitted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = _applied_state(tmp_path)
    with SQLiteStateStore(state) as store:
        store.db.execute("PRAGMA wal_autocheckpoint=0")  # keep every commit in state.db-wal, as a busy state has
        plan = make_plan([reset("shop", "oslo", "A", None, 3)], lineage=store.lineage(), serial=0)
        apply_plan(plan, store, {"shop": connector("shop", tmp_path / "s.sqlite")}, desired_digest=None, holder="x@y")
        serial = store.serial()
        assert serial > 0 and Path(f"{state}-wal").stat().st_size > 0
        shutil.copy(state, tmp_path / "plain.db")  # what copying the file would keep: no run at all
        with sqlite3.connect(tmp_path / "plain.db") as plain:
            assert plain.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
        plain.close()
        writer = sqlite3.connect(state, isolation_level=None)
        writer.execute("PRAGMA cache_size=5")  # small cache: the open transaction spills pages into the WAL
        wal_before = Path(f"{state}-wal").stat().st_size
        writer.execute("BEGIN IMMEDIATE")
        writer.executemany("INSERT INTO meta VALUES (?, ?)", [(f"junk-{i}", "x" * 3000) for i in range(300)])
        assert Path(f"{state}-wal").stat().st_size > wal_before  # uncommitted pages sit in the WAL
        try:
            code, out, err = run_cli(capsys, "state", "snapshot", str(tmp_path / "copy.db"), "--state", str(state))
        finally:
            writer.execute("ROLLBACK")
            writer.close()
    assert code == 0 and f"written to {tmp_path / 'copy.db'}" in out and f"serial {serial}" in out, err
    assert not Path(f"{tmp_path / 'copy.db'}-wal").exists()  # one self-contained file
    with sqlite3.connect(tmp_path / "copy.db") as copy:
        assert copy.execute("SELECT count(*) FROM meta WHERE key LIKE 'junk-%'").fetchone()[0] == 0
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    copy.close()
    with SQLiteStateStore(tmp_path / "copy.db") as copied:
        assert copied.serial() == serial and copied.runs()[0].who == "x@y"
        assert copied.load_base().positions[("shop", "oslo", "A")].quantity == 3


def test_snapshot_refuses_an_existing_destination_a_missing_state_and_postgresql(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state, dest = _applied_state(tmp_path), tmp_path / "copy.db"
    dest.write_text("keep me")
    code, _, err = run_cli(capsys, "state", "snapshot", str(dest), "--state", str(state))
    assert code == 1 and "exists already" in err and "--force" in err and dest.read_text() == "keep me"
    code, out, _ = run_cli(capsys, "state", "snapshot", str(dest), "--force", "--state", str(state))
    assert code == 0 and "written to" in out
    with SQLiteStateStore(dest) as copied, SQLiteStateStore(state) as original:
        assert copied.lineage() == original.lineage()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []  # no temp file left
    code, _, err = run_cli(capsys, "state", "snapshot", str(tmp_path / "b.db"), "--state", str(tmp_path / "none.db"))
    assert code == 1 and "no state database at" in err and not (tmp_path / "none.db").exists()
    url = "postgresql://ci:s3cret-pw@127.0.0.1:1/stock?schema=eu"
    code, out, err = run_cli(capsys, "state", "snapshot", str(tmp_path / "pg.db"), "--state", url)
    assert code == 1 and "pg_dump" in err and "s3cret-pw" not in out + err and not (tmp_path / "pg.db").exists()
