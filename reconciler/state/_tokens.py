"""The ``credentials`` table: one OAuth refresh token per target (schema version 4).

Rotating refresh tokens die when used (X-Series revokes the token a refresh spent), so the
only valid one must never live only in a process's memory. :meth:`rotate_credential` reads the
current token, calls the token endpoint and writes what came back in ONE transaction that
holds the row's write lock: the new token is committed before its access token is used, and a
second process waits for the first and then spends the new token, never the spent one.

The table is never exported: not by ``state migrate`` (not in TABLE_COLUMNS), not by ``state
snapshot`` (admin.py empties it in the copy), not in any rendering.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping

from reconciler.connectors.base import Secret
from reconciler.errors import AuthError

_COLUMNS = "target, flow, refresh_token, scopes, generation, received_at, received_by, source, access_expires_at"


class CredentialsMixin:
    """Store methods for refresh tokens; mixed into SQLStateStore (both backends)."""

    # PostgreSQL locks the row it reads for the rest of the transaction; SQLite's BEGIN
    # IMMEDIATE already holds the database's write lock.
    _row_lock = ""

    def credential(self, target: str) -> Any:
        """The stored row (its ``refresh_token`` None before any sign-in), or None."""
        with self._errors("read the stored credential"):  # type: ignore[attr-defined]
            row = self._one(f"SELECT {_COLUMNS} FROM credentials WHERE target = ?", [target])  # type: ignore[attr-defined]
        return None if row is None else _stored(row)

    def rotate_credential(self, target: str, flow: str, exchange: Callable[[Secret], Mapping[str, Any]], *,
                          seed: Secret | None, holder: str) -> Any:
        """Spend the stored refresh token (or ``seed`` when none is stored) through ``exchange``
        and store what it returned, all in one transaction. If ``exchange`` raises, nothing
        changes. A refresh token the answer does not replace is kept (supplier feed: rotation
        is not documented)."""
        from reconciler.auth._sources import Rotation

        with self._tx(f"refresh the token of {target}"):  # type: ignore[attr-defined]
            # The placeholder row gives PostgreSQL a row to lock even before the first token.
            self._execute("INSERT INTO credentials (target, flow, generation) VALUES (?, ?, 0) "  # type: ignore[attr-defined]
                          "ON CONFLICT (target) DO NOTHING", [target, flow])
            row = self._one(f"SELECT {_COLUMNS} FROM credentials WHERE target = ?{self._row_lock}", [target])  # type: ignore[attr-defined]
            current = Secret(row[2]) if row[2] else seed
            if not current:
                raise AuthError(f"target {target!r} has no refresh token in the state store",
                                hint=f"Run `reconciler auth login {target}` once (a browser sign-in); it stores one.")
            answer = exchange(current)
            fresh = str(answer.get("refresh_token") or current.reveal())
            scope = answer.get("scope")
            scopes = json.dumps(sorted(scope.split() if isinstance(scope, str) else scope)) if scope else row[3]
            expires_in = answer.get("expires_in")
            now = self._clock()  # type: ignore[attr-defined]
            expires = _iso(now + timedelta(seconds=float(expires_in))) if expires_in else None
            generation = int(row[4] or 0) + (1 if fresh != current.reveal() else 0)
            source = "refresh" if row[2] else "seed"
            self._execute(
                "UPDATE credentials SET flow = ?, refresh_token = ?, scopes = ?, generation = ?, received_at = ?, "  # type: ignore[attr-defined]
                "received_by = ?, source = ?, access_expires_at = ? WHERE target = ?",
                [flow, fresh, scopes, generation, _iso(now), holder, source, expires, target],
            )
            stored = self._one(f"SELECT {_COLUMNS} FROM credentials WHERE target = ?", [target])  # type: ignore[attr-defined]
        return Rotation(answer, _stored(stored))

    def store_credential(self, target: str, flow: str, refresh_token: Secret, *, scopes: Any, expires_in: Any,
                         holder: str, source: str = "login") -> Any:
        """Keep the refresh token a sign-in returned (``auth login``), replacing any other."""
        with self._tx(f"store the token of {target}"):  # type: ignore[attr-defined]
            now = self._clock()  # type: ignore[attr-defined]
            expires = _iso(now + timedelta(seconds=float(expires_in))) if expires_in else None
            old = self._one("SELECT generation FROM credentials WHERE target = ?", [target])  # type: ignore[attr-defined]
            generation = int(old[0] or 0) + 1 if old else 1
            scope_text = json.dumps(sorted(scopes)) if scopes is not None else None
            self._execute("DELETE FROM credentials WHERE target = ?", [target])  # type: ignore[attr-defined]
            self._execute(
                f"INSERT INTO credentials ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",  # type: ignore[attr-defined]
                [target, flow, refresh_token.reveal(), scope_text, generation, _iso(now), holder, source, expires],
            )
        return self.credential(target)

    def forget_credential(self, target: str) -> bool:
        with self._tx(f"forget the token of {target}"):  # type: ignore[attr-defined]
            return bool(self._execute("DELETE FROM credentials WHERE target = ?", [target]).rowcount)  # type: ignore[attr-defined]


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat()


def _stored(row: Any) -> Any:
    from reconciler.auth._sources import StoredCredential

    scopes = frozenset(json.loads(row[3])) if row[3] else None
    expires = datetime.fromisoformat(row[8]).timestamp() if row[8] else None
    return StoredCredential(str(row[0]), str(row[1] or ""), Secret(row[2]) if row[2] else None, scopes,
                            int(row[4] or 0), row[5], row[6], row[7], expires)
