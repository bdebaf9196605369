"""`reconciler auth login` (PKCE, loopback redirect, URL printed) and `auth status`, run as a
user runs them, against the sandboxes' consent pages and token endpoints over real HTTP; the
clear errors for a revoked token, a missing scope, a refused key and a wrong client."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from auth_kit import REFRESH_VAR, SECRET_VAR, Shop, oauth_shop


def _login(shop: Shop, *extra: str, consent: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `auth login t --no-browser --port 0`, act as the person in the browser (open the
    printed URL; the sandbox's consent page redirects to the loopback listener), and wait."""
    env = {k: v for k, v in os.environ.items() if k not in ("RECONCILER_STATE", "RECONCILER_REPO")}
    env.update({k: v for k, v in shop.env.items() if k != REFRESH_VAR})
    proc = subprocess.Popen([sys.executable, "-m", "reconciler", "-C", str(shop.root), "auth", "login", "t",
                             "--no-browser", "--port", "0", "--timeout", "60", *extra],
                            env=env, cwd=shop.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    seen = ""
    deadline = time.monotonic() + 60
    while "http" not in seen and time.monotonic() < deadline and proc.poll() is None:
        seen += proc.stderr.readline()
    url = re.search(r"(http://\S+)", seen)
    assert url, seen
    answer = httpx.get(url.group(1), follow_redirects=True, timeout=30)  # the browser
    assert answer.status_code == (200 if consent else 400), answer.text
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, seen + err)


def _stored(shop: Shop) -> list[tuple]:
    with closing(sqlite3.connect(shop.state)) as conn:
        return conn.execute("SELECT target, flow, generation, source, scopes, refresh_token FROM credentials").fetchall()


@pytest.mark.parametrize("kind", ["lightspeed-supplier", "xseries"])
def test_login_stores_a_refresh_token_that_later_runs_use(tmp_path: Path, kind: str) -> None:
    with oauth_shop(tmp_path, kind, items=4) as shop:
        done = _login(shop)
        assert done.returncode == 0, done.stderr
        assert "code_challenge_method=S256" in done.stderr and "code_challenge=" in done.stderr  # PKCE
        assert "Signed in: target 't' now has refresh token #1" in done.stdout
        [(target, flow, generation, source, scopes, token)] = _stored(shop)
        assert (target, flow, generation, source) == ("t", "oauth-refresh", 1, "login") and token.startswith("rt-")
        assert token not in done.stdout + done.stderr
        assert shop.oauth.stats["code_exchanged"] == 1
        # A later run, without the CI seed variable: it lives on the stored token.
        plan = shop.cli("plan", env={REFRESH_VAR: ""})
        assert plan.returncode == 0, plan.stderr
        assert _stored(shop)[0][2] == 2  # rotated once, and kept


def test_a_refused_consent_is_a_clear_error(tmp_path: Path) -> None:
    with oauth_shop(tmp_path, "lightspeed-supplier", items=2) as shop:
        shop.oauth.switches.consent = False
        done = _login(shop, consent=False)
        assert done.returncode == 1
        assert "access_denied" in done.stderr and "Traceback" not in done.stderr
        assert _stored(shop) == [] if shop.state.exists() else True


def test_login_of_a_target_without_a_code_flow_says_so(tmp_path: Path) -> None:
    with oauth_shop(tmp_path, "zettle", items=2) as shop:
        done = shop.cli("auth", "login", "t", "--no-browser")
        assert done.returncode == 1
        assert "zettle-assertion flow, which has no browser sign-in" in done.stderr


def test_a_revoked_refresh_token_tells_the_user_to_sign_in_again(tmp_path: Path) -> None:
    with oauth_shop(tmp_path, "xseries", items=4) as shop:
        assert shop.cli("plan").returncode == 0
        shop.oauth.revoke(everything=True)
        done = shop.cli("plan")
        assert done.returncode == 1
        assert "invalid_grant" in done.stderr and "Run `reconciler auth login t`" in done.stderr
        assert "Traceback" not in done.stderr
        token = _stored(shop)[0][5]
        assert token not in done.stdout + done.stderr


def test_a_missing_scope_stops_the_plan_before_any_write(tmp_path: Path) -> None:
    """X-Series states the granted scopes on the consent redirect (not in token answers)."""
    with oauth_shop(tmp_path, "xseries", items=4) as shop:
        shop.oauth.switches.grant_scopes = ["inventory:read", "products:read", "outlets:read"]  # no products:write
        assert _login(shop).returncode == 0
        done = shop.cli("plan", "--out", "plans/p.json", env={REFRESH_VAR: ""})
        assert done.returncode == 1, done.stdout
        assert "lacks scope 'products:write', needed by 4 reset operations" in done.stderr
        assert not (shop.root / "plans" / "p.json").exists()
        served = httpx.get(shop.url + "/_sandbox/requests").json()
        assert not [k for k in served if not k.startswith("GET")]  # nothing but reads reached the vendor


def test_zettle_key_scopes_are_read_from_the_key_and_checked(tmp_path: Path) -> None:
    with oauth_shop(tmp_path, "zettle", items=3, scopes=["READ:PRODUCT"]) as shop:
        done = shop.cli("plan")
        assert done.returncode == 1
        assert "lacks scope 'WRITE:PRODUCT'" in done.stderr
        status = shop.cli("auth", "status")
        assert status.returncode == 0, status.stderr
        assert "flow zettle-assertion" in status.stdout and "scopes: READ:PRODUCT" in status.stdout
        assert "reset: MISSING WRITE:PRODUCT" in status.stdout and "read: ok" in status.stdout


def test_a_revoked_zettle_key_and_a_wrong_client_are_refused_clearly(tmp_path: Path) -> None:
    with oauth_shop(tmp_path, "zettle", items=2) as shop:
        shop.oauth.revoke(keys=True)
        done = shop.cli("plan")
        assert done.returncode == 1
        assert "Zettle refused the API key in AUTH_T_SECRET (invalid_grant" in done.stderr
        assert "create a new API key at my.zettle.com" in done.stderr
    with oauth_shop(tmp_path / "b", "zettle", items=2, auth_extra={"client_id": "not-the-keys-client"}) as shop:
        done = shop.cli("plan")
        assert done.returncode == 1
        assert "client_id does not match the assertion's client_id claim" in done.stderr
        assert shop.env[SECRET_VAR] not in done.stderr


def test_a_zettle_key_pasted_as_a_static_bearer_fails_on_the_first_call(tmp_path: Path) -> None:
    with oauth_shop(tmp_path, "zettle", items=2, auth_extra={"flow": "static", "token_url": None}) as shop:
        config = shop.root / "reconciler.yaml"
        text = config.read_text(encoding="utf-8")
        config.write_text(re.sub(r"    auth:\n(      .*\n)+", "", text), encoding="utf-8")
        done = shop.cli("plan")
        assert done.returncode == 1
        assert "401" in done.stderr and "ACCESS_TOKEN_EXPIRED" in done.stderr
        assert shop.oauth.stats.get("assertion_exchanged") is None


def test_status_after_login_and_against_a_plan(tmp_path: Path) -> None:
    with oauth_shop(tmp_path, "xseries", items=3) as shop:
        before = shop.cli("auth", "status", env={REFRESH_VAR: ""})
        assert before.returncode == 0
        assert "no refresh token stored; run `reconciler auth login t`" in before.stdout
        shop.oauth.switches.grant_scopes = ["inventory:read", "products:write"]
        assert _login(shop).returncode == 0
        assert shop.cli("plan", "--out", "plans/p.json").returncode == 0
        status = shop.cli("auth", "status", "--plan", "plans/p.json")
        assert status.returncode == 0, status.stdout + status.stderr
        assert "flow oauth-refresh" in status.stdout and "refresh token #2 from refresh" in status.stdout
        assert "scopes: inventory:read products:write" in status.stdout
        assert "move: MISSING consignments:write:stock_transfer" in status.stdout
        assert "the plan: covered (reset x3)" in status.stdout
        assert re.search(r"access token expires: \d{4}-\d\d-\d\d", status.stdout)
        token = _stored(shop)[0][5]
        assert token not in status.stdout + status.stderr


def test_a_token_revoked_between_plan_and_apply_fails_the_operations_unsent(tmp_path: Path) -> None:
    with oauth_shop(tmp_path, "lightspeed-supplier", items=3) as shop:
        assert shop.cli("plan", "--out", "plans/p.json").returncode == 0
        shop.oauth.revoke(everything=True)
        done = shop.cli("apply", "plans/p.json", "--no-progress")
        assert done.returncode == 3, done.stdout + done.stderr  # failed, not in doubt: nothing was sent
        assert "Run `reconciler auth login t`" in done.stdout + done.stderr
        served = httpx.get(shop.url + "/_sandbox/requests").json()
        assert not [k for k in served if k.startswith("PUT")]
        # After a new sign-in the same apply resumes and sends what failed.
        assert _login(shop).returncode == 0
        again = shop.cli("apply", "plans/p.json", "--no-progress")
        assert again.returncode == 0, again.stdout + again.stderr
