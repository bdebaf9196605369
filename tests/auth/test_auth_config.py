"""Issue 17 point 1: the `auth` block of a target in reconciler.yaml, checked by `validate`
with file:line and what to do; secrets only ever as names of environment variables."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cli"))
from cli_kit import run_cli  # noqa: E402

from reconciler.auth._config import AuthConfig  # noqa: E402

BASE = {"version": 1, "locations": {"oslo": {}},
        "targets": {"t": {"kind": "xseries", "url": "https://shop.retail.lightspeed.app", "credentials_env": "T_SECRET",
                          "locations": {"oslo": "outlet-1"}}}}


def _repo(tmp_path: Path, auth: object, kind: str = "xseries") -> Path:
    config = yaml.safe_load(yaml.safe_dump(BASE))
    config["targets"]["t"]["kind"] = kind
    if auth is not None:
        config["targets"]["t"]["auth"] = auth
    (tmp_path / "stock").mkdir(exist_ok=True)
    (tmp_path / "reconciler.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    (tmp_path / "stock" / "catalog.yaml").write_text("items: {}\n", encoding="utf-8")
    return tmp_path


def _line(root: Path, key: str) -> int:
    lines = (root / "reconciler.yaml").read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, start=1) if line.strip().startswith(key + ":"))


def test_no_auth_block_is_the_static_bearer() -> None:
    assert AuthConfig().flow == "static"


def test_a_valid_refresh_flow_block_passes(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"flow": "oauth-refresh", "client_id": "app-1", "refresh_token_env": "T_REFRESH",
                            "scopes": ["inventory:read", "products:write"]})
    done = run_cli("-C", str(root), "validate")
    assert done.code == 0, done.stderr


@pytest.mark.parametrize(("auth", "kind", "key", "words"), [
    ({"flow": "oauth-refresh"}, "xseries", "auth", "flow oauth-refresh needs client_id"),
    ({"flow": "zettle-assertion"}, "xseries", "auth", "kind xseries does not offer the auth flow 'zettle-assertion'"),
    ({"flow": "oauth-refresh", "client_id": "x"}, "zettle", "auth", "kind zettle does not offer the auth flow 'oauth-refresh'"),
    ({"flow": "oauth-refresh", "client_id": "x", "refresh_token_env": "rt-abc.def-123"}, "xseries", "auth",
     "refresh_token_env must be the NAME of an environment variable"),
    ({"flow": "static", "client_id": "x"}, "xseries", "auth", "only apply to the zettle-assertion and oauth-refresh flows"),
    ({"flow": "oauth-refresh", "client_id": "x", "token_url": "ftp://x"}, "xseries", "auth", "token_url must be an http(s) URL"),
    ({"flow": "oauth-refrsh"}, "xseries", "flow", "oauth-refresh"),
    ({"flw": "static"}, "xseries", "flw", "Did you mean 'flow'?"),
])
def test_a_bad_auth_block_is_a_located_problem(tmp_path: Path, auth: dict, kind: str, key: str, words: str) -> None:
    root = _repo(tmp_path, auth, kind)
    done = run_cli("-C", str(root), "validate")
    said = done.stdout + done.stderr
    assert done.code == 1
    assert words in said, said
    assert f"reconciler.yaml:{_line(root, key)}:" in said, said
    assert "rt-abc.def-123" not in said  # a pasted token is never echoed


def test_a_zettle_secret_that_is_not_an_api_key_fails_before_any_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _repo(tmp_path, {"flow": "zettle-assertion"}, "zettle")
    config = yaml.safe_load((root / "reconciler.yaml").read_text(encoding="utf-8"))
    config["targets"]["t"]["url"] = "http://127.0.0.1:9"  # a closed port: a request would fail differently
    config["targets"]["t"]["locations"] = {"oslo": "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b"}
    (root / "reconciler.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    monkeypatch.setenv("T_SECRET", "an-access-token-pasted-by-hand")
    done = run_cli("-C", str(root), "plan")
    assert done.code == 1
    assert "the value of T_SECRET is not a Zettle API key" in done.stderr
    assert "an-access-token-pasted-by-hand" not in done.stderr
