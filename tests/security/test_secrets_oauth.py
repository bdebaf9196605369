"""The secrets scan (test_secrets.py) extended to the OAuth credentials of issue 17: Zettle API
keys, OAuth client secrets, refresh tokens (first, rotated and spent) and access tokens. The
whole workflow runs as a user runs it against OAuth sandboxes; every byte printed, every file
written (plans, the PR comment, the snapshot), and a DEBUG log are scanned in every encoding.

The state database is the one place a refresh token may live (by design, docs/auth.md): it is
scanned as the control (the current refresh token IS found there) and left out of the verdict;
its snapshot is scanned like any other file.
"""

from __future__ import annotations

import io
import logging
import sys
from pathlib import Path
from typing import Iterator

import pytest
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "auth"))
from auth_kit import REFRESH_VAR, SECRET_VAR, Shop, oauth_shop  # noqa: E402
from test_secrets import leak_forms  # noqa: E402

from reconciler.sandbox._oauth import CLIENT_SECRET, OAuthServer  # noqa: E402
from reconciler.state import open_state_store, parse_state_url  # noqa: E402
from reconciler.workflow import apply_saved_plan, plan_project  # noqa: E402


def issued(server: OAuthServer, shop: Shop) -> list[str]:
    """Every credential the sandbox handed out or was handed, so far."""
    return [*server.refresh, *server.access, shop.env[SECRET_VAR], CLIENT_SECRET]


def leaks(blob: bytes, secrets: list[str], where: str) -> list[str]:
    return [f"{where}: {form[:12]!r}..." for secret in secrets for form in leak_forms(secret) if form in blob]


def _files(root: Path) -> Iterator[tuple[str, bytes]]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and ".git/" not in path.as_posix():
            yield path.relative_to(root).as_posix(), path.read_bytes()


@pytest.mark.parametrize("kind", ["xseries", "lightspeed-supplier", "zettle"])
def test_no_oauth_credential_in_any_output_file_snapshot_or_log(tmp_path: Path, kind: str) -> None:
    with oauth_shop(tmp_path, kind, items=6, lifetime_s=2) as shop:
        printed: list[tuple[str, str]] = []

        def run(*argv: str, code: int = 0) -> None:
            done = shop.cli(*argv)
            printed.append((" ".join(argv), done.stdout + done.stderr))
            assert done.returncode == code, done.stdout + done.stderr
            assert "Traceback" not in done.stderr

        run("auth", "status", "--check")
        run("plan", "--out", "plans/p.json")
        for fmt in ("markdown", "json"):  # markdown: the PR comment
            run("show", "plans/p.json", "--format", fmt)
        run("apply", "plans/p.json", "--no-progress")
        run("drift")
        run("history")
        run("auth", "status")
        run("state", "snapshot", "snapshots/state.db")
        if kind != "zettle":  # a refused refresh prints its error: scanned too
            shop.oauth.revoke(everything=True)
            run("plan", code=1)

        # DEBUG logs of httpx, httpcore, authlib and reconciler during a plan and an apply
        if kind != "zettle":  # a new sign-in after the revocation: a fresh first refresh token
            shop.env[REFRESH_VAR] = shop.oauth.grant_refresh_token()
            with open_state_store(parse_state_url(str(shop.state), root=shop.root, env={})) as store:
                store.forget_credential("t")
        oslo = shop.root / "stock" / "oslo.yaml"
        data = yaml.safe_load(oslo.read_text(encoding="utf-8"))
        data["stock"]["t"] = {sku: quantity + 1 for sku, quantity in data["stock"]["t"].items()}
        oslo.write_text(yaml.safe_dump(data), encoding="utf-8")
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        root_logger = logging.getLogger()
        old = root_logger.level
        root_logger.addHandler(handler)
        root_logger.setLevel(logging.DEBUG)
        try:
            plan = plan_project(shop.root, env=shop.env)
            assert apply_saved_plan(shop.root, plan, env=shop.env, allow_dirty=True).ok
        finally:
            root_logger.removeHandler(handler)
            root_logger.setLevel(old)
        assert "127.0.0.1" in stream.getvalue()  # requests were logged

        secrets = issued(shop.oauth, shop)
        assert len(secrets) >= 6
        found = [leak for name, text in printed for leak in leaks(text.encode(), secrets, f"output of `{name}`")]
        found += leaks(stream.getvalue().encode(), secrets, "debug log")
        files = dict(_files(shop.root))
        assert "snapshots/state.db" in files and "plans/p.json" in files
        state = {name for name in files if name.startswith(".reconciler/state.db")}
        found += [leak for name, blob in files.items() if name not in state for leak in leaks(blob, secrets, name)]
        assert found == []
        if kind != "zettle":
            # The control: the state database does hold the current refresh token (so the scan can see one).
            assert any(leaks(files[name], secrets, name) for name in state)
