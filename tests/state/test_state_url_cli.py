"""State URLs through the CLI: `state lock`, `unlock`, `history` and `state migrate` on both
backends, and the password never printed."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from applykit import connector, make_plan, reset

from reconciler.apply import apply_plan
from reconciler.cli import main
from reconciler.state import open_state_store, parse_state_url
from reconciler.state.base import TABLE_COLUMNS


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def _password_env(url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """The URL with its password moved into $TEST_PG_PASSWORD, and the password."""
    parsed = parse_state_url(url, env={})
    password = parsed.secrets[0]
    monkeypatch.setenv("TEST_PG_PASSWORD", password)
    return url.replace(f":{password}@", ":${TEST_PG_PASSWORD}@"), password


def _applied_parts(state: str, tmp_path: Path) -> None:
    with open_state_store(state) as store:
        ops = [reset("a", "oslo", "A", None, 1), reset("b", "oslo", "A", None, 2)]
        plan = make_plan(ops, lineage=store.lineage(), serial=0, plan_id="two-parts")
        conns = {t: connector(t, tmp_path / f"{t}.sqlite") for t in ("a", "b")}
        report = apply_plan(plan, store, conns, desired_digest=None, holder="ann@ci", targets={"a"})
        assert report.ok and report.plan_status == "partial" and report.parts == {"a": "applied", "b": "pending"}


def test_history_shows_parts_and_no_password(pg_schema_url: str, tmp_path: Path, capsys, monkeypatch) -> None:
    url, password = _password_env(pg_schema_url, monkeypatch)
    _applied_parts(url, tmp_path)
    code, out, err = run_cli(capsys, "history", "--state", url)
    assert code == 0 and "ann@ci" in out and " a " in out
    with open_state_store(url) as store:
        run_id = store.runs()[0].run_id
    code, out, _ = run_cli(capsys, "history", run_id, "--state", url)
    assert code == 0 and "targets:  a" in out
    assert "a                    applied" in out and "b                    pending" in out and "0/1 operations" in out
    code, out, _ = run_cli(capsys, "state", "lock", "--state", url)
    assert code == 0 and "No apply holds the state lock" in out and "***" in out
    bad = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:1", url)  # a port nothing listens on
    code, _, err = run_cli(capsys, "history", "--state", bad)
    assert code == 1 and "connect failed" in err and "***" in err
    monkeypatch.delenv("TEST_PG_PASSWORD")
    code, _, err = run_cli(capsys, "history", "--state", url)
    assert code == 1 and "TEST_PG_PASSWORD is not set" in err
    for text in capsys.readouterr():
        assert password not in text
    assert all(password not in line for line in (out, err))


_HOLDER = textwrap.dedent("""
    import sys, time
    from reconciler.state import open_state_store
    store = open_state_store(sys.argv[1])
    lock = store.acquire_lock("stuck@runner-7", 3600, ["a"])
    print(lock.id, flush=True)
    for _ in range(600):
        time.sleep(0.1)
        store.renew_lock(lock.id, 3600)  # raises LockHeld once `unlock` ended its lock session
""")


def test_state_lock_lists_and_unlock_ends_a_stuck_holder(state_url: str, capsys) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, state_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store = open_state_store(state_url)  # kept open: on PostgreSQL a lock ends with its connection
    try:
        lock_id = proc.stdout.readline().strip()  # type: ignore[union-attr]
        mine = store.acquire_lock("me@here", 600, ["b"])
        code, out, _ = run_cli(capsys, "state", "lock", "--state", state_url)
        assert code == 0 and out.count("Lock ") == 2 and "stuck@runner-7" in out and "targets:  a" in out
        assert f"reconciler unlock {lock_id}" in out
        code, _, err = run_cli(capsys, "unlock", "nope", "--state", state_url)
        assert code == 1 and "no apply lock with id nope" in err and lock_id in err
        code, out, _ = run_cli(capsys, "unlock", lock_id, "--state", state_url)
        assert code == 0 and f"Removed lock {lock_id}" in out
        code, out, _ = run_cli(capsys, "state", "lock", "--state", state_url)
        assert "stuck@runner-7" not in out and mine.id in out
        if state_url.startswith("postgresql"):
            # the holder's lock session was ended: it notices and stops (LockHeld, exit by exception)
            _, err = proc.communicate(timeout=30)
            assert proc.returncode != 0 and "LockHeld" in err
    finally:
        store.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.communicate()


def test_migrate_sqlite_to_postgres_verifies_and_refuses_overwrite(pg_schema_url: str, tmp_path: Path, capsys) -> None:
    source = tmp_path / "state.db"
    _applied_parts(str(source), tmp_path)
    code, out, err = run_cli(capsys, "state", "migrate", "--from", f"sqlite://{source}", "--to", pg_schema_url)
    assert code == 0, err
    assert "Verified" in out and "journal" in out and parse_state_url(pg_schema_url, env={}).secrets[0] not in out
    with open_state_store(source) as src, open_state_store(pg_schema_url) as dst:
        for table in TABLE_COLUMNS:
            assert dst.export_rows(table) == src.export_rows(table), table
        assert dst.lineage() == src.lineage() and dst.serial() == src.serial()
        assert [p.status.value for p in dst.plan_parts("two-parts")] == ["applied", "pending"]
    code, _, err = run_cli(capsys, "state", "migrate", "--from", str(source), "--to", pg_schema_url)
    assert code == 1 and "already holds a state" in err and "--force" in err
    code, out, _ = run_cli(capsys, "state", "migrate", "--from", str(source), "--to", pg_schema_url, "--force")
    assert code == 0 and "Verified" in out
    code, _, err = run_cli(capsys, "state", "migrate", "--from", str(tmp_path / "none.db"), "--to", pg_schema_url)
    assert code == 1 and "no state database at" in err
