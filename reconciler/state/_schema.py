"""Numbered schema migrations for the SQLite state store (PostgreSQL: ``_pg_schema.py``, same numbers).

``MIGRATIONS[i]`` moves a database from schema version ``i`` to ``i + 1``. Never edit a
published migration; append a new one. The store runs the missing ones, each in its own
transaction together with the version bump, when it opens a database.
"""

from __future__ import annotations

from typing import Callable

from sqlite_utils import Database


def _v1_tables(db: Database) -> None:
    db["meta"].create({"key": str, "value": str}, pk="key")
    db["base"].create(
        {"target": str, "location": str, "item": str, "quantity": int, "settings": str},
        pk=("target", "location", "item"),
        not_null={"quantity", "settings"},
    )
    db["plans"].create(
        {
            "plan_id": str,
            "lineage": str,
            "serial_before": int,
            "serial_after": int,
            "status": str,
            "op_count": int,
            "created_at": str,
            "updated_at": str,
        },
        pk="plan_id",
    )
    db["runs"].create(
        {
            "run_id": str,
            "plan_id": str,
            "git_commit": str,
            "who": str,
            "started_at": str,
            "finished_at": str,
            "outcome": str,
            "counts": str,
        },
        pk="run_id",
    )
    _v1_journal_and_lock(db)


def _v1_journal_and_lock(db: Database) -> None:
    db["journal"].create(
        {
            "plan_id": str,
            "op_id": str,
            "run_id": str,
            "target": str,
            "kind": str,
            "status": str,
            "request": str,
            "response": str,
            "error": str,
            "base_updates": str,
            "updated_at": str,
        },
        pk=("plan_id", "op_id"),
    )
    db["locks"].create(
        {
            "id": str,
            "name": str,
            "holder": str,
            "host": str,
            "pid": int,
            "acquired_at": str,
            "expires_at": str,
        },
        pk="id",
    )
    db["locks"].create_index(["name"], unique=True)


def _v2_indexes(db: Database) -> None:
    # `resolve` and `history` look rows up by these; without indexes they scan the journal.
    db["journal"].create_index(["status"], index_name="journal_status")
    db["journal"].create_index(["op_id"], index_name="journal_op_id")
    db["runs"].create_index(["plan_id"], index_name="runs_plan_id")


def _v3_parts_and_target_locks(db: Database) -> None:
    # Plans are applied in per-target parts (`apply --target`); locks are per target, one row
    # per locked target sharing the lock's id. An old whole-state lock ('apply') becomes '*'.
    db.execute("ALTER TABLE locks RENAME TO locks_v2")
    db.execute(
        "CREATE TABLE locks (target TEXT PRIMARY KEY, id TEXT NOT NULL, holder TEXT, host TEXT, pid INTEGER, "
        "acquired_at TEXT, expires_at TEXT, backend_pid INTEGER)"
    )
    db.execute(
        "INSERT INTO locks (target, id, holder, host, pid, acquired_at, expires_at) SELECT "
        "CASE name WHEN 'apply' THEN '*' ELSE name END, id, holder, host, pid, acquired_at, expires_at FROM locks_v2"
    )
    db.execute("DROP TABLE locks_v2")
    db.execute("CREATE INDEX locks_id ON locks (id)")
    db.execute(
        "CREATE TABLE plan_parts (plan_id TEXT NOT NULL, target TEXT NOT NULL, op_count INTEGER NOT NULL, "
        "status TEXT NOT NULL, run_id TEXT, updated_at TEXT, PRIMARY KEY (plan_id, target))"
    )
    db.execute("ALTER TABLE runs ADD COLUMN targets TEXT")


def _v4_credentials(db: Database) -> None:
    # One OAuth refresh token per target (reconciler/state/_tokens.py); never exported.
    db.execute(
        "CREATE TABLE credentials (target TEXT PRIMARY KEY, flow TEXT, refresh_token TEXT, scopes TEXT, "
        "generation INTEGER NOT NULL DEFAULT 0, received_at TEXT, received_by TEXT, source TEXT, access_expires_at TEXT)"
    )


def _v5_counts(db: Database) -> None:
    # Stock counts (reconciler/counts): one row per count, one per position snapshotted at its start.
    db.execute(
        "CREATE TABLE counts (count_id TEXT PRIMARY KEY, location TEXT NOT NULL, started_at TEXT NOT NULL, "
        "started_by TEXT, note TEXT, items TEXT, finished_at TEXT)"
    )
    db.execute(
        "CREATE TABLE count_snapshots (count_id TEXT NOT NULL, target TEXT NOT NULL, item TEXT NOT NULL, "
        "quantity INTEGER NOT NULL, cost TEXT, PRIMARY KEY (count_id, target, item))"
    )


def _v6_live_snapshots(db: Database) -> None:
    # The live stock last read from an incremental-feed target and its version cursor
    # (reconciler/state/_snapshots.py); a cache, never exported.
    db.execute(
        "CREATE TABLE live_snapshots (target TEXT PRIMARY KEY, lineage TEXT NOT NULL, source TEXT NOT NULL, "
        "cursor INTEGER NOT NULL, read_at TEXT NOT NULL, full_at TEXT NOT NULL, records BLOB NOT NULL)"
    )


def _v7_drop_journal_op_id(db: Database) -> None:
    # The op_id index was never used (find_journal's LIKE is case-insensitive, so SQLite scans;
    # every other lookup has plan_id and uses the primary key), yet op ids are hashes: each batch
    # of pending rows landed on ~500 random pages of it, and at 100k+ journal rows their commits
    # cost 2-3x those of a small journal (docs/performance.md, issue 22 point 4).
    db.execute("DROP INDEX IF EXISTS journal_op_id")


def _v8_plan_memos(db: Database) -> None:
    # What the last full plan of a scope needs to plan again from the changes alone
    # (reconciler/_plan_memo.py); a cache, never exported.
    db.execute(
        "CREATE TABLE plan_memos (scope TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, made_at TEXT NOT NULL, "
        "body BLOB NOT NULL)"
    )


MIGRATIONS: list[Callable[[Database], None]] = [
    _v1_tables, _v2_indexes, _v3_parts_and_target_locks, _v4_credentials, _v5_counts, _v6_live_snapshots,
    _v7_drop_journal_op_id, _v8_plan_memos,
]
SCHEMA_VERSION = len(MIGRATIONS)
