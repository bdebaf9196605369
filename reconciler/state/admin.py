"""Looking after a state as a whole: create or upgrade it (``reconciler state init``) and take a
consistent copy of a SQLite state file (``reconciler state snapshot``).

CI keeps a SQLite state on a git branch between runs (docs/gitops.md, "State in CI"); these are
the two things its script needs from reconciler. The copy uses SQLite's online backup API
rather than copying the file: in WAL mode the newest committed pages may still sit in
``state.db-wal``, and a plain copy of ``state.db`` would silently lose them.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import StateError
from reconciler.state.url import StateURL


@dataclass(frozen=True)
class StateInfo:
    """What ``state init`` reports. ``created`` is None when the backend cannot tell (PostgreSQL
    creates its schema inside the store's own open; it is the same call either way)."""

    location: str  # redacted: never a password
    backend: str
    lineage: str
    serial: int
    schema_version: int
    created: bool | None

    def render(self) -> str:
        verdict = {True: "Created a new state", False: "The state exists; its schema is up to date",
                   None: "The state is ready (created if it was absent)"}[self.created]
        return (f"{verdict}: {self.location} ({self.backend})\n"
                f"  lineage:        {self.lineage}\n"
                f"  serial:         {self.serial}\n"
                f"  schema version: {self.schema_version}")


@dataclass(frozen=True)
class SnapshotInfo:
    """What ``state snapshot`` wrote."""

    source: Path
    dest: Path
    lineage: str
    serial: int
    size: int
    credentials_left_out: int = 0  # refresh tokens: never copied (docs/auth.md)

    def render(self) -> str:
        left_out = (f" {self.credentials_left_out} stored refresh token(s) were left out: a snapshot never "
                    "carries credentials (docs/auth.md)." if self.credentials_left_out else "")
        return (f"Snapshot of {self.source} written to {self.dest} "
                f"(lineage {self.lineage}, serial {self.serial}, {self.size} bytes).{left_out}")


def init_state(url: StateURL) -> StateInfo:
    """Create the state at ``url`` if it is absent, else open it (which runs any pending schema
    migration), and say what it holds."""
    from reconciler.state import open_state_store

    created: bool | None = None
    if url.kind == "sqlite":
        assert url.path is not None
        created = not url.path.exists()
    with open_state_store(url, create=True) as store:
        return StateInfo(
            location=url.redacted() or store.describe(), backend=url.kind, lineage=store.lineage(),
            serial=store.serial(), schema_version=int(store.schema_version()), created=created,  # type: ignore[attr-defined]
        )


def snapshot_state(url: StateURL, dest: Path, *, force: bool = False) -> SnapshotInfo:
    """:func:`snapshot_sqlite` for a state URL; a PostgreSQL state is refused with what to use."""
    if url.kind != "sqlite" or url.path is None:
        raise StateError(
            f"state snapshot copies a SQLite state file, and {url.redacted()} is a PostgreSQL state",
            hint="Back it up with `pg_dump --schema=NAME` (the ?schema= of the URL), or copy it into a SQLite "
                 "file with `reconciler state migrate --from URL --to sqlite:///path/state.db`.",
        )
    return snapshot_sqlite(url.path, dest, force=force)


def snapshot_sqlite(src: Path, dest: Path, *, force: bool = False) -> SnapshotInfo:
    """Copy the SQLite state ``src`` to ``dest`` with the backup API: every committed
    transaction, including those still in the WAL, and nothing uncommitted. ``dest`` is written
    atomically (a temp file renamed into place) and, unless ``force``, must not exist."""
    src, dest = Path(src), Path(dest)
    if not src.is_file():
        raise StateError(f"state snapshot: no state database at {src}",
                         hint="Check --state (or RECONCILER_STATE); `reconciler state init` creates one.")
    if dest.exists() and not force:
        raise StateError(f"state snapshot: {dest} exists already; nothing was written",
                         hint="Choose another destination, or pass --force to replace it.")
    if dest.exists() and dest.resolve() == src.resolve():
        raise StateError(f"state snapshot: {dest} is the state itself", hint="Choose another destination.")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
        os.close(fd)
    except OSError as exc:
        raise StateError(f"state snapshot: cannot write into {dest.parent}: {exc.strerror}",
                         hint="Check the destination folder and its permissions.") from exc
    tmp = Path(tmp_name)
    try:
        lineage, serial, left_out = _backup(src, tmp)
        shutil.copymode(src, tmp)  # the copy is as readable as the state, not mkstemp's 0600
        os.replace(tmp, dest)
    except OSError as exc:
        raise StateError(f"state snapshot: cannot write {dest}: {exc.strerror}",
                         hint="Check the destination and its permissions.") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return SnapshotInfo(src, dest, lineage, serial, dest.stat().st_size, left_out)


def _backup(src: Path, tmp: Path) -> tuple[str, int, int]:
    """Back ``src`` up into ``tmp``; returns the copy's lineage and serial (read from the copy,
    so they describe exactly what was written) and how many stored credentials were left out."""
    # mode=rw: never create an empty database where the state was expected
    uri = src.resolve().as_uri() + "?mode=rw"
    source = target = None
    try:
        source = sqlite3.connect(uri, uri=True, timeout=30.0)
        target = sqlite3.connect(str(tmp))
        source.backup(target)
        left_out = _leave_out_credentials(target)
        # One self-contained file (no -wal/-shm beside it) to commit or upload; reconciler
        # switches it back to WAL when it opens it as a state.
        target.execute("PRAGMA journal_mode=DELETE")
        meta = dict(target.execute("SELECT key, value FROM meta WHERE key IN ('lineage', 'serial')").fetchall())
    except sqlite3.Error as exc:
        raise StateError(f"state snapshot: cannot copy {src}: {exc}",
                         hint="Is it a reconciler state database? `reconciler history --state PATH` reads it.") from exc
    finally:
        for conn in (target, source):
            if conn is not None:
                conn.close()
    if "lineage" not in meta:
        raise StateError(f"state snapshot: {src} is a SQLite database but not a reconciler state (no lineage)",
                         hint="Point --state at the state database, e.g. .reconciler/state.db.")
    return str(meta["lineage"]), int(meta.get("serial") or 0), left_out


def _leave_out_credentials(copy: sqlite3.Connection) -> int:
    """Empty the copy's credentials table (refresh tokens: a snapshot may end up on a git branch
    or in an artifact), then VACUUM so no page of the file still holds a deleted token."""
    if not copy.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'credentials'").fetchone():
        return 0
    count = int(copy.execute("SELECT count(*) FROM credentials WHERE refresh_token IS NOT NULL").fetchone()[0])
    copy.execute("DELETE FROM credentials")
    copy.commit()
    copy.execute("VACUUM")
    return count
