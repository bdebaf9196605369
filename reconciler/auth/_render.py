"""Text for `auth login` and `auth status` (renderers return strings; only the CLI prints)."""

from __future__ import annotations

import time
from typing import Sequence

from reconciler.auth._login import LoginResult, TargetAuth


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    left = epoch - time.time()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))
    return f"{stamp} ({'in ' + _span(left) if left > 0 else 'expired'})"


def _span(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


def render_login(result: LoginResult) -> str:
    scopes = " ".join(sorted(result.scopes)) if result.scopes else "(not stated by the vendor)"
    return (f"Signed in: target {result.target!r} now has refresh token #{result.generation} in the state store.\n"
            f"  scopes: {scopes}\n"
            "The token itself is never shown. `reconciler auth status` shows what it covers.")


def render_status(rows: Sequence[TargetAuth]) -> str:
    lines: list[str] = []
    for row in rows:
        lines.append(f"{row.target} ({row.kind}): flow {row.flow}")
        if row.problem:
            lines.append(f"  problem: {row.problem}")
            lines.append("")
            continue
        status = row.status
        assert status is not None
        lines.append(f"  access token expires: {_when(status.expires_at) if status.expires_at else 'no token fetched yet' if status.flow != 'static' else 'not known (static token)'}")
        if status.scopes is None:
            lines.append("  scopes: not visible to reconciler " + ("(a static token)" if status.flow == "static" else
                                                               "(not stated by the vendor yet)") + "; not checked")
        else:
            lines.append(f"  scopes: {' '.join(sorted(status.scopes)) or '(none)'}")
        lines.extend(f"  {detail}" for detail in status.details)
        if row.covers and any(missing is not None for missing in row.covers.values()):
            cells = []
            for word, missing in row.covers.items():
                mark = "?" if missing is None else "ok" if not missing else "MISSING " + ",".join(missing)
                cells.append(f"{word}: {mark}")
            lines.append("  covers: " + "; ".join(cells))
        if row.planned and status.scopes is None:
            lines.append("  the plan: not checked (the credential's scopes are not visible to reconciler)")
        elif row.planned:
            short = [f"{word} x{count} needs {','.join(row.covers.get(word) or [])}"
                     for word, count in row.planned.items() if row.covers.get(word)]
            lines.append("  the plan: " + ("NOT covered: " + "; ".join(short) if short else
                                           "covered (" + ", ".join(f"{w} x{c}" for w, c in row.planned.items()) + ")"))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
