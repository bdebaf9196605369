"""Numbered schema migrations for the SQLite state store.

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


MIGRATIONS: list[Callable[[Database], None]] = [_v1_tables, _v2_indexes]
SCHEMA_VERSION = len(MIGRATIONS)
