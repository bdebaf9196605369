"""The campaign's own plumbing: it must not hold the state database open between its reads.

Why it matters (found chasing a StalePlanError in the Zettle kill campaign): an apply killed
while committing ``finish_run`` (its WAL frames written, the WAL index in ``-shm`` not yet
updated) leaves a commit that SQLite recovers only when the WAL index is rebuilt, and that happens
only when a connection opens while no other connection has the state open. The harness polls the
journal with a read-only connection per call; ``with sqlite3.connect(...)`` does not close it
(only commits), so those connections lived until the garbage collector ran. While they lived the
killed run's last commit stayed invisible: the journal showed every operation applied, the next
plan was made against the old serial, the collector then closed the connections, the next
apply's open rebuilt the index, found the commit, and refused the plan as stale (serial + 1).
"""

from __future__ import annotations

import gc
import os
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest
from campaign_shop import Shop

from reconciler.state.sqlite import SQLiteStateStore


def _open_handles(path: Path) -> list[str]:
    """Files of this process that are the state database or its -wal/-shm."""
    fds = Path("/proc/self/fd")
    found = []
    for fd in fds.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(path)):
            found.append(target)
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to list open files")
def test_journal_reads_leave_no_connection_open(tmp_path: Path) -> None:
    state = tmp_path / ".reconciler" / "state.db"
    store = SQLiteStateStore(state)  # WAL mode, as the CLI makes it
    store.close()
    shop = SimpleNamespace(state_path=state)
    gc.collect()
    gc.disable()  # the leak lasted exactly until the collector ran: keep it from hiding one
    try:
        for _ in range(3):
            assert Shop.journal(shop, "no-such-plan") == {}  # type: ignore[arg-type]
        assert _open_handles(state) == [], "the journal poll left state connections open"
    finally:
        gc.enable()


def test_journal_before_the_schema_exists_is_empty(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    sqlite3.connect(state).close()  # an empty file: the first apply has not migrated it yet
    assert Shop.journal(SimpleNamespace(state_path=state), "p") == {}  # type: ignore[arg-type]
