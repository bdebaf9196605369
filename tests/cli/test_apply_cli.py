"""`reconciler apply` as a user runs it (issue 3, points 2, 3, 5 and 6), against the file-backed
memory target: saved and unsaved plans, confirmation, progress, summary, exit codes 0/3/4/5,
and every refusal, each proved to happen before any request reached the target."""

from __future__ import annotations

import json
import os
import pty
import sqlite3
from contextlib import closing
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import pytest
from cli_kit import DESIRED, OSLO, applied_ops, commit, config, requests_sent, run_cli, sell, shop_stock, write
from cli_kit import Shop

from reconciler.planfile import load_plan
from reconciler.state import SQLiteStateStore


def plan(*args: str):  # type: ignore[no-untyped-def]
    return run_cli("plan", *args)


def apply(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return run_cli("apply", *args, input=input)


def saved_plan(name: str = "p") -> str:
    path = f"plans/{name}.json"
    made = plan("--out", path)
    assert made.code == 0, made.stderr
    return path


def adopted(shop: Shop) -> None:
    done = apply(saved_plan("adopt"))
    assert done.code == 0, done.stderr
    assert shop_stock(shop.stock) == DESIRED


def runs(shop: Shop) -> int:
    if not shop.state.exists():
        return 0
    with SQLiteStateStore(shop.state) as store:
        return len(store.runs())


# --- the happy paths -------------------------------------------------------------------------


def test_saved_plan_is_applied_with_progress_lines_and_a_summary(shop: Shop) -> None:
    path = saved_plan()
    plan_id = load_plan(path).plan_id

    result = apply(path)

    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"Plan {plan_id} (run ") and lines[0].endswith(": 5 applied, 0 failed, 0 in doubt, 0 skipped.")
    assert lines[-1] == "All operations are applied."
    # stderr is not a terminal: one line per batch (max_batch 1 -> five batches), none on stdout
    progress = [line for line in result.stderr.splitlines() if line.startswith("shop: batch")]
    assert progress == [f"shop: batch {n}/5, {n}/5 operations" for n in range(1, 6)]
    assert shop_stock(shop.stock) == DESIRED and requests_sent(shop.stock) == 5
    assert plan("--detailed-exitcode").code == 0  # B now equals D and A


def test_no_progress_flag_silences_the_batch_lines(shop: Shop) -> None:
    result = apply(saved_plan(), "--no-progress")

    assert result.code == 0 and "batch" not in result.stderr


def test_unsaved_plan_with_auto_approve_prints_the_plan_then_applies(shop: Shop) -> None:
    result = apply("--auto-approve")

    assert result.code == 0, result.stderr
    assert result.stdout.startswith("Plan: 5 resets")
    assert "5 applied, 0 failed, 0 in doubt, 0 skipped." in result.stdout
    assert shop_stock(shop.stock) == DESIRED


def test_color_flag_colours_the_unsaved_plan_even_when_piped(shop: Shop) -> None:
    coloured = apply("--auto-approve", "--color")

    shown_plan, summary = coloured.stdout.split("\nPlan ", 1)
    assert coloured.code == 0 and "\x1b[" in shown_plan and "5 applied" in summary


def test_unsaved_plan_is_refused_when_stdin_is_not_a_terminal(shop: Shop) -> None:
    result = apply(input="y\n")  # a "y" on a pipe is not a human's confirmation

    assert result.code == 1
    assert result.stdout.startswith("Plan: 5 resets")  # the plan was shown...
    assert "standard input is not a terminal" in result.stderr and "--auto-approve" in result.stderr
    assert requests_sent(shop.stock) == 0 and runs(shop) == 0  # ...and nothing was sent


def test_unsaved_plan_with_nothing_to_do_asks_nothing(shop: Shop) -> None:
    adopted(shop)

    result = apply()

    assert (result.code, result.stdout.splitlines()[0]) == (0, "Plan: no changes")
    assert requests_sent(shop.stock) == 5  # only the adoption's


def _at_a_terminal(root: Path, answer: str) -> tuple[int, str, str]:
    """`reconciler apply` in a real process whose stdin is a pseudo-terminal, answering the prompt."""
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "reconciler", "apply"], cwd=root, stdin=terminal,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        os.write(controller, answer.encode() + b"\n")  # typed ahead; the terminal buffers it
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(terminal)
        os.close(controller)
    return proc.returncode, out, err


def test_unsaved_plan_at_a_terminal_asks_and_obeys_the_answer(shop: Shop) -> None:
    code, out, err = _at_a_terminal(shop.root, "n")
    assert code == 1 and "Apply these operations? [y/N]" in err and "Aborted." in err
    assert out.startswith("Plan: 5 resets") and requests_sent(shop.stock) == 0 and runs(shop) == 0

    code, out, err = _at_a_terminal(shop.root, "y")
    assert code == 0, err
    assert "5 applied, 0 failed, 0 in doubt, 0 skipped." in out and "shop: batch 5/5" in err
    assert shop_stock(shop.stock) == DESIRED


def test_guard_flags_are_refused_with_a_saved_plan(shop: Shop) -> None:
    path = saved_plan()

    result = apply(path, "--allow-negative")

    assert result.code == 1 and "guard flags apply when planning, not to a saved plan" in result.stderr
    assert requests_sent(shop.stock) == 0


def test_guard_flags_reach_the_plan_of_an_unsaved_apply(shop: Shop) -> None:
    adopted(shop)
    sell(shop.stock, "oslo", "CAP", 4)
    write(shop.root, {"stock/oslo.yaml": OSLO.replace("CAP: 4", "CAP: 1")})
    commit(shop.root)

    stopped = apply("--auto-approve")
    allowed = apply("--auto-approve", "--allow-negative")

    assert stopped.code == 1 and "override with --allow-negative" in stopped.stderr
    assert allowed.code == 0, allowed.stderr
    assert "guard overridden (--allow-negative)" in allowed.stdout
    assert shop_stock(shop.stock)[("oslo", "CAP")] == -3


# --- failures (exit 3), doubts (exit 4) ------------------------------------------------------


def test_a_rejected_operation_fails_verbatim_others_continue_and_a_rerun_resumes(shop_factory: Callable[..., Shop],
                                                                                tmp_path: Path) -> None:
    faults = tmp_path / "faults.json"
    shop = shop_factory(faults_file=str(faults))
    faults.write_text(json.dumps({"fail_items": ["CAP"]}), encoding="utf-8")
    path = saved_plan()

    first = apply(path)

    assert first.code == 3
    assert "4 applied, 1 failed, 0 in doubt, 0 skipped." in first.stdout
    assert "Failed (re-run apply to retry them):" in first.stdout
    assert 'Item CAP does not exist in this store' in first.stdout  # the vendor's own words
    assert "Error: some operations failed" in first.stderr
    # CAP is the fourth operation (target, location, item order); the count stays on later lines
    assert [line for line in first.stderr.splitlines() if "batch" in line][3:] == [
        "shop: batch 4/5, 4/5 operations, 1 failed, 0 in doubt", "shop: batch 5/5, 5/5 operations, 1 failed, 0 in doubt"]
    assert shop_stock(shop.stock) == {k: v for k, v in DESIRED.items() if k[1] != "CAP"}

    faults.unlink()  # the cause is fixed; the same plan is applied again
    second = apply(path)

    assert second.code == 0, second.stderr
    assert ", resumed): 1 applied, 0 failed, 0 in doubt, 4 skipped." in second.stdout
    assert shop_stock(shop.stock) == DESIRED
    assert Counter(applied_ops(shop.stock)).most_common(1)[0][1] == 1  # nothing applied twice


def test_an_unverifiable_dropped_delta_is_in_doubt_until_resolved(shop: Shop, tmp_path: Path) -> None:
    adopted(shop)
    write(shop.root, {"reconciler.yaml": config(shop.stock, drop_items=["CAP"]),
                      "stock/oslo.yaml": OSLO.replace("CAP: 4", "CAP: 9")})
    commit(shop.root)
    path = saved_plan("raise-cap")
    [op] = load_plan(path).operations

    result = apply(path)

    assert result.code == 4
    assert "0 applied, 0 failed, 1 in doubt, 0 skipped." in result.stdout
    assert f"reconciler resolve {op.id} --applied | --not-applied" in result.stdout
    assert "Error: some operations are in doubt" in result.stderr
    history = run_cli("history")
    [run_id] = [line.split()[0] for line in history.stdout.splitlines()[1:2]]
    detail = run_cli("history", run_id)
    assert detail.code == 0 and op.id in detail.stdout and "in_doubt" in detail.stdout

    # the vendor shows +5 arrived: say so, and B follows
    settled = run_cli("resolve", op.id, "--applied")
    assert settled.code == 0 and "now applied" in settled.stdout
    assert plan("--detailed-exitcode").code == 0  # D == B == A: nothing left to do
    again = apply(path)
    assert again.code == 0 and again.stdout.startswith("Already applied, nothing sent: plan ") and not again.stderr


def test_resolve_all_settles_every_operation_in_doubt_of_a_plan_at_once(shop: Shop, tmp_path: Path) -> None:
    adopted(shop)
    write(shop.root, {"reconciler.yaml": config(shop.stock, drop_items=["CAP", "BLUE-L"]),
                      "stock/oslo.yaml": OSLO.replace("CAP: 4", "CAP: 9").replace("BLUE-L: 3", "BLUE-L: 1")})
    commit(shop.root)
    path = saved_plan("raise-two")
    plan_id = load_plan(path).plan_id
    assert apply(path).code == 4

    usage = run_cli("resolve", "--all", "--applied")  # --all needs the plan it settles
    assert usage.code == 1 and "--all --plan PLAN" in usage.stderr
    settled = run_cli("resolve", "--all", "--plan", plan_id, "--not-applied")
    assert settled.code == 0 and settled.stdout.count("is now not_applied") == 2
    nothing_left = run_cli("resolve", "--all", "--plan", plan_id, "--applied")
    assert nothing_left.code == 1 and "no operation in doubt" in nothing_left.stderr


# --- refusals before any request ---------------------------------------------------------------


def _state_removed(shop: Shop) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{shop.state}{suffix}").unlink(missing_ok=True)


def _state_replaced(shop: Shop) -> None:
    _state_removed(shop)
    assert run_cli("state", "init").code == 0  # a fresh state: another lineage, serial 0 again


REFUSALS: list[tuple[str, Callable[[Shop], None], str]] = [
    ("another-lineage", _state_replaced, "it belongs to another state database"),
    ("no-state", _state_removed, "no state at "),
    ("older-serial", lambda shop: _apply_other_plan(shop), "something was applied since"),
    ("desired-files-changed", lambda shop: write(shop.root, {"stock/oslo.yaml": OSLO.replace("CAP: 4", "CAP: 6")}),
     "the desired files changed since the plan was made: stock/oslo.yaml (changed); the state is still at serial 0"),
]


def _apply_other_plan(shop: Shop) -> None:
    # Same files, another scope: another plan (the same inputs would give the same plan id).
    other = "plans/other.json"
    assert plan("--location", "bergen", "--out", other).code == 0
    assert apply(other).code == 0


@pytest.mark.parametrize(("change", "message"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_stale_plans_are_refused_before_any_request(shop: Shop, change: Callable[[Shop], None], message: str) -> None:
    path = saved_plan()
    change(shop)
    sent = requests_sent(shop.stock)

    result = apply(path)

    assert result.code == 1 and message in result.stderr and "reconciler plan --out" in result.stderr
    assert requests_sent(shop.stock) == sent


def test_a_plan_applied_in_full_is_not_resent_and_the_first_plan_after_the_state_is_lost(shop: Shop) -> None:
    path = saved_plan()
    assert apply(path).code == 0

    before = requests_sent(shop.stock)
    replay = apply(path)  # a re-run of a successful apply (a CI job run again): exit 0, nothing sent
    assert replay.code == 0, replay
    assert replay.stdout.startswith(f"Already applied, nothing sent: plan {load_plan(path).plan_id} was already applied in full.")
    assert requests_sent(shop.stock) == before

    _state_replaced(shop)  # a fresh state database: serial 0 again, like the plan's
    lost = apply(path)
    assert lost.code == 1 and "another state database" in lost.stderr
    assert requests_sent(shop.stock) == 5 and Counter(applied_ops(shop.stock)).most_common(1)[0][1] == 1


def test_a_plan_made_from_uncommitted_files_needs_allow_dirty(shop: Shop) -> None:
    write(shop.root, {"stock/oslo.yaml": OSLO.replace("CAP: 4", "CAP: 6")})
    path = saved_plan()

    refused = apply(path)
    allowed = apply(path, "--allow-dirty")

    assert refused.code == 1 and "uncommitted changes" in refused.stderr and "--allow-dirty" in refused.stderr
    assert allowed.code == 0, allowed.stderr
    assert shop_stock(shop.stock)[("oslo", "CAP")] == 6


def test_a_bad_lock_expiry_setting_is_refused_before_any_request(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    path = saved_plan()
    monkeypatch.setenv("RECONCILER_LOCK_TTL", "5")

    result = apply(path)

    assert result.code == 1 and "RECONCILER_LOCK_TTL='5'" in result.stderr and "at least 60" in result.stderr
    assert requests_sent(shop.stock) == 0


# --- the lock ----------------------------------------------------------------------------------


def _lock(shop: Shop, *, host: str, pid: int, ttl_s: float = 900, age_s: float = 0) -> str:
    then = datetime.now(timezone.utc) - timedelta(seconds=age_s)
    with SQLiteStateStore(shop.state, hostname=host, pid=pid, clock=lambda: then) as other:
        return other.acquire_lock(f"ci@{host}", ttl_s).id


def test_a_live_lock_stops_apply_with_exit_5_naming_the_holder(shop: Shop) -> None:
    path = saved_plan()
    lock_id = _lock(shop, host="ci-runner-7", pid=4242)

    held = apply(path)
    shown = run_cli("state", "lock")

    assert held.code == 5 and "ci@ci-runner-7 (host ci-runner-7, pid 4242)" in held.stderr
    assert f"reconciler unlock {lock_id}" in held.stderr and requests_sent(shop.stock) == 0
    assert shown.code == 0 and "ci@ci-runner-7" in shown.stdout and lock_id in shown.stdout
    assert run_cli("unlock", lock_id).code == 0
    assert apply(path).code == 0


def test_a_lock_whose_process_is_gone_on_this_host_is_taken_over(shop: Shop) -> None:
    path = saved_plan()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket

    _lock(shop, host=socket.gethostname(), pid=int(gone.stdout))

    result = apply(path)

    assert result.code == 0, result.stderr
    assert shop_stock(shop.stock) == DESIRED


@pytest.mark.parametrize(("age_s", "code"), [(100, 5), (1000, 0)])
def test_a_lock_from_another_host_waits_for_its_expiry(shop: Shop, age_s: float, code: int) -> None:
    path = saved_plan()
    _lock(shop, host="elsewhere", pid=1, ttl_s=900, age_s=age_s)  # expires 900 s after it was taken

    assert apply(path).code == code


def test_two_apply_processes_one_fails_at_once_and_the_lock_expiry_is_configurable(
        shop_factory: Callable[..., Shop], tmp_path: Path) -> None:
    faults = tmp_path / "faults.json"
    shop = shop_factory(faults_file=str(faults))
    path = saved_plan()
    faults.write_text(json.dumps({"delay_s": 60}), encoding="utf-8")  # the first apply hangs in its first batch
    env = {**os.environ, "RECONCILER_LOCK_TTL": "120"}
    first = subprocess.Popen([sys.executable, "-m", "reconciler", "apply", path], cwd=shop.root, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lock = _wait_for_lock(shop.state)
        started = time.monotonic()
        second = subprocess.run([sys.executable, "-m", "reconciler", "apply", path], cwd=shop.root,
                                capture_output=True, text=True, timeout=60)
        waited = time.monotonic() - started
    finally:
        first.kill()  # SIGKILL: its lock is left behind, held by a pid that is gone
        first.communicate()
    assert second.returncode == 5 and f"pid {first.pid}" in second.stderr, second.stderr
    assert waited < 30  # at once, not after the first apply
    acquired, expires = (datetime.fromisoformat(t.replace("Z", "+00:00")) for t in lock)
    assert (expires - acquired).total_seconds() == 120  # $RECONCILER_LOCK_TTL of the holder

    faults.unlink()
    resumed = apply(path)  # takes over the dead process's lock at once and finishes its plan

    assert resumed.code == 0, resumed.stderr
    assert ", resumed)" in resumed.stdout and shop_stock(shop.stock) == DESIRED


def _wait_for_lock(state: Path) -> tuple[str, str]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if state.exists():
            with closing(sqlite3.connect(state, timeout=10)) as conn:
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
                row = conn.execute("SELECT acquired_at, expires_at FROM locks").fetchone() if "locks" in tables else None
            if row:
                return row
        time.sleep(0.02)
    raise AssertionError("the first apply never took the lock")


# --- drift -----------------------------------------------------------------------------------


def test_drift_reports_live_stock_that_differs_from_what_was_applied(shop: Shop) -> None:
    adopted(shop)
    assert run_cli("drift", "--detailed-exitcode").code == 0

    sell(shop.stock, "bergen", "SOCK", 2)
    result = run_cli("drift", "--detailed-exitcode")

    assert result.code == 2
    assert "SOCK" in result.stdout and "bergen" in result.stdout and "-2" in result.stdout


# --- a real kill ---------------------------------------------------------------------------------


def test_apply_killed_mid_run_resumes_and_applies_no_delta_twice(shop_factory: Callable[..., Shop]) -> None:
    import signal

    shop = shop_factory(delay_after_s=0.25, verifiable=True)
    adopted(shop)
    write(shop.root, {"stock/oslo.yaml": OSLO.replace("RED-M: 5", "RED-M: 7").replace("BLUE-L: 3", "BLUE-L: 1")
                      .replace("CAP: 4", "CAP: 6"),
                      "stock/bergen.yaml": "location: bergen\nstock:\n  shop:\n    RED-M: 5\n    SOCK: 2\n"})
    commit(shop.root)
    path = saved_plan("deltas")
    deltas = [op.id for op in load_plan(path).operations]
    assert len(deltas) == 5 and {op.write_mode for op in load_plan(path).operations} == {"delta"}
    sell(shop.stock, "oslo", "RED-M", 1)  # a sale between plan and apply survives the merge

    proc = subprocess.Popen([sys.executable, "-m", "reconciler", "apply", path], cwd=shop.root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while proc.poll() is None and len(set(applied_ops(shop.stock)) & set(deltas)) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)  # the vendor has the 2nd delta; the journal may not yet
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL

    again = apply(path)

    assert again.code == 0, again.stdout + again.stderr
    assert ", resumed)" in again.stdout
    assert Counter(op for op in applied_ops(shop.stock) if op in deltas) == Counter(deltas)  # each exactly once
    assert shop_stock(shop.stock) == {("oslo", "RED-M"): 6, ("oslo", "BLUE-L"): 1, ("oslo", "CAP"): 6,
                                      ("bergen", "RED-M"): 5, ("bergen", "SOCK"): 2}
