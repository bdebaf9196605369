"""Issue 17 points 3 and 6: rotating refresh tokens survive CI. The refresh token lives in the
state store (SQLite or PostgreSQL) and each refresh is one transaction, so a token rotated by
one process is the one the next process uses, processes refreshing at once take turns, and a
crash right after a rotation loses nothing."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from auth_kit import REFRESH_VAR, Shop, oauth_shop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pg_server import pg_schema_url, pg_url, state_url  # noqa: E402,F401  (fixtures)

from reconciler.state import open_state_store, parse_state_url  # noqa: E402

DRIVER = Path(__file__).resolve().parent / "refresh_driver.py"


def _env(shop: Shop, state: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RECONCILER_STATE", "RECONCILER_REPO")}
    return {**env, **shop.env, "RECONCILER_STATE": state, **extra}


def _driver(shop: Shop, state: str, mode: str, count: int = 1, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(DRIVER), str(shop.root), mode, str(count)], env=_env(shop, state, **extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _generation(state: str, root: Path) -> int:
    with open_state_store(parse_state_url(state, root=root, env=os.environ)) as store:
        row = store.credential("t")
        return row.generation if row else 0


@pytest.mark.parametrize("kind", ["xseries", "lightspeed-supplier"])
def test_a_token_rotated_by_one_process_is_the_one_the_next_uses(tmp_path: Path, kind: str, state_url: str) -> None:
    with oauth_shop(tmp_path, kind, items=3) as shop:
        first = shop.cli("plan", env={"RECONCILER_STATE": state_url})
        assert first.returncode == 0, first.stderr
        # The next runner has no seed (CI secrets are read once); it gets the rotated token from the store.
        second = shop.cli("plan", env={"RECONCILER_STATE": state_url, REFRESH_VAR: ""})
        assert second.returncode == 0, second.stderr
        assert shop.oauth.stats["refreshed"] == 2 and _generation(state_url, shop.root) == 2
        # The control: a runner that kept the first token (another state) is refused, as X-Series would.
        stale = shop.cli("plan", env={"RECONCILER_STATE": str(tmp_path / "elsewhere.db")})
        assert stale.returncode == 1
        assert "already used" in stale.stderr and "auth login t" in stale.stderr
        assert "the state store holds no refresh token, so the one in AUTH_T_REFRESH was used" in stale.stderr


def test_processes_refreshing_at_once_take_turns(tmp_path: Path, state_url: str) -> None:
    """Three processes, 13 refreshes each (the first token, then 12 forced renewals), against
    one store: 39 rotations, each token spent exactly once, no process refused."""
    with oauth_shop(tmp_path, "xseries", items=3) as shop:
        runners = [_driver(shop, state_url, "loop", 12) for _ in range(3)]
        outcomes = [(r.wait(timeout=240), r.stderr.read() if r.stderr else "") for r in runners]
        assert [code for code, _ in outcomes] == [0, 0, 0], outcomes
        assert shop.oauth.stats["refreshed"] == 39
        assert {k: v for k, v in shop.oauth.stats.items() if "refused" in k or k.startswith("invalid")} == {}
        assert _generation(state_url, shop.root) == 39


def test_a_crash_right_after_a_rotation_loses_nothing(tmp_path: Path, state_url: str) -> None:
    with oauth_shop(tmp_path, "xseries", items=5) as shop:
        crashed = _driver(shop, state_url, "crash")
        assert crashed.wait(timeout=120) == 9  # died holding an unused access token
        assert shop.oauth.stats["refreshed"] == 1 and _generation(state_url, shop.root) == 1
        # The seed it spent is dead at the vendor now; the next run needs the stored one.
        plan = shop.cli("plan", "--out", "plans/p.json", env={"RECONCILER_STATE": state_url})
        assert plan.returncode == 0, plan.stderr
        applied = shop.cli("apply", "plans/p.json", "--no-progress", env={"RECONCILER_STATE": state_url})
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert {k: v for k, v in shop.oauth.stats.items() if "refused" in k} == {}


def test_a_failed_refresh_changes_nothing_in_the_store(tmp_path: Path) -> None:
    """The refresh runs inside the store's transaction: when the vendor refuses, the stored
    token and its generation are untouched (and the next try is the same token)."""
    with oauth_shop(tmp_path, "lightspeed-supplier", items=2) as shop:
        assert shop.cli("plan").returncode == 0
        with closing(sqlite3.connect(shop.state)) as conn:
            before = conn.execute("SELECT refresh_token, generation, received_at FROM credentials").fetchall()
        shop.oauth.clients["sandbox-client"] = "rotated-secret"  # the app's secret was changed
        refused = shop.cli("plan")
        assert refused.returncode == 1 and "invalid_client" in refused.stderr
        assert "Check auth.client_id in reconciler.yaml and the client secret in AUTH_T_SECRET" in refused.stderr
        with closing(sqlite3.connect(shop.state)) as conn:
            assert conn.execute("SELECT refresh_token, generation, received_at FROM credentials").fetchall() == before
