"""Numbered schema migrations for the PostgreSQL state store: the DDL of ``_schema.py``, number
for number, in PostgreSQL's dialect.

``PG_MIGRATIONS[i]`` moves a schema from version ``i`` to ``i + 1``; never edit a published
one, append. Columns and types match the SQLite tables so that ``state migrate`` copies rows
unchanged (integers are BIGINT, everything else TEXT, JSON and timestamps included). Runs and
journal rows get a ``seq`` column: PostgreSQL has no rowid, and history and the journal are
shown in insertion order.
"""

from __future__ import annotations

_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE base (
    target TEXT NOT NULL, location TEXT NOT NULL, item TEXT NOT NULL,
    quantity BIGINT NOT NULL, settings TEXT NOT NULL,
    PRIMARY KEY (target, location, item));
CREATE TABLE plans (
    plan_id TEXT PRIMARY KEY, lineage TEXT, serial_before BIGINT, serial_after BIGINT, status TEXT,
    op_count BIGINT, created_at TEXT, updated_at TEXT);
CREATE TABLE runs (
    seq BIGSERIAL NOT NULL, run_id TEXT PRIMARY KEY, plan_id TEXT, git_commit TEXT, who TEXT,
    started_at TEXT, finished_at TEXT, outcome TEXT, counts TEXT);
CREATE TABLE journal (
    seq BIGSERIAL NOT NULL, plan_id TEXT NOT NULL, op_id TEXT NOT NULL, run_id TEXT, target TEXT, kind TEXT,
    status TEXT, request TEXT, response TEXT, error TEXT, base_updates TEXT, updated_at TEXT,
    PRIMARY KEY (plan_id, op_id));
CREATE TABLE locks (
    id TEXT PRIMARY KEY, name TEXT UNIQUE, holder TEXT, host TEXT, pid BIGINT, acquired_at TEXT, expires_at TEXT);
"""

_V2 = """
CREATE INDEX journal_status ON journal (status);
CREATE INDEX journal_op_id ON journal (op_id);
CREATE INDEX runs_plan_id ON runs (plan_id);
"""

_V3 = """
ALTER TABLE locks RENAME TO locks_v2;
CREATE TABLE locks (
    target TEXT PRIMARY KEY, id TEXT NOT NULL, holder TEXT, host TEXT, pid BIGINT, acquired_at TEXT,
    expires_at TEXT, backend_pid BIGINT);
INSERT INTO locks (target, id, holder, host, pid, acquired_at, expires_at)
    SELECT CASE name WHEN 'apply' THEN '*' ELSE name END, id, holder, host, pid, acquired_at, expires_at FROM locks_v2;
DROP TABLE locks_v2;
CREATE INDEX locks_id ON locks (id);
CREATE TABLE plan_parts (
    plan_id TEXT NOT NULL, target TEXT NOT NULL, op_count BIGINT NOT NULL, status TEXT NOT NULL, run_id TEXT,
    updated_at TEXT, PRIMARY KEY (plan_id, target));
ALTER TABLE runs ADD COLUMN targets TEXT;
"""

_V4 = """
CREATE TABLE credentials (
    target TEXT PRIMARY KEY, flow TEXT, refresh_token TEXT, scopes TEXT, generation BIGINT NOT NULL DEFAULT 0,
    received_at TEXT, received_by TEXT, source TEXT, access_expires_at TEXT);
"""

_V5 = """
CREATE TABLE counts (
    count_id TEXT PRIMARY KEY, location TEXT NOT NULL, started_at TEXT NOT NULL, started_by TEXT, note TEXT,
    items TEXT, finished_at TEXT);
CREATE TABLE count_snapshots (
    count_id TEXT NOT NULL, target TEXT NOT NULL, item TEXT NOT NULL, quantity BIGINT NOT NULL, cost TEXT,
    PRIMARY KEY (count_id, target, item));
"""

_V6 = """
CREATE TABLE live_snapshots (
    target TEXT PRIMARY KEY, lineage TEXT NOT NULL, source TEXT NOT NULL, cursor BIGINT NOT NULL, read_at TEXT NOT NULL,
    full_at TEXT NOT NULL, records BYTEA NOT NULL);
"""

# As SQLite's migration 7: every journal lookup but `resolve`'s op-id prefix search has plan_id
# (the primary key), a plain B-tree serves that LIKE only under the C collation, and the index
# cost a random insert per journalled operation. A prefix search of the journal may scan it.
_V7 = """
DROP INDEX IF EXISTS journal_op_id;
"""

_V8 = """
CREATE TABLE plan_memos (scope TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, made_at TEXT NOT NULL, body BYTEA NOT NULL);
"""

PG_MIGRATIONS: list[str] = [_V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8]
PG_SCHEMA_VERSION = len(PG_MIGRATIONS)
