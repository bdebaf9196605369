"""`state lock`, `unlock`, `history` and `resolve` through the real CLI entry point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from applykit import adjust, connector, make_plan, reset

from reconciler.apply import apply_plan
from reconciler.cli import main
from reconciler.model import Operation
from reconciler.state import SQLiteStateStore


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
