"""``reconciler init --from`` over real HTTP to the X-Series and Zettle sandboxes: the new
repository validates, holds today's live stock, and its first plan shows no changes."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import yaml

from cli_kit import run_cli
from discover_kit import BERGEN, OSLO, XS_TOKEN_ENV, ZETTLE_TOKEN_ENV, uid, xs_fixtures
from reconciler.sandbox._core import ServerThread
from reconciler.sandbox.xseries import XSeriesSimulator
from reconciler.sandbox.zettle import ZettleSimulator
from test_discover_zettle_csv import zettle_fixtures


@pytest.fixture
def xs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerThread]:
    monkeypatch.setenv(XS_TOKEN_ENV, XSeriesSimulator.default_token)
    with ServerThread(XSeriesSimulator(state=tmp_path / "xs.db", fixtures=xs_fixtures(30), rate_budget=0)) as server:
        yield server


def test_init_from_xseries_then_plan_shows_no_changes(tmp_path: Path, xs: ServerThread) -> None:
    repo = tmp_path / "shop"
    out = run_cli("init", str(repo), "--from", "xseries", "--url", xs.url, "--name", "xs",
                  "--credentials-env", XS_TOKEN_ENV)
    assert out.code == 0, out
    assert "Adopted 2 position(s)" in out.stdout and "MUG" in out.stdout  # the duplicate SKU is left out, said so
    config = yaml.safe_load((repo / "reconciler.yaml").read_text())
    assert config["targets"]["xs"]["locations"] == {"oslo": OSLO, "bergen": BERGEN}
    catalog = yaml.safe_load((repo / "stock" / "catalog.yaml").read_text())["items"]
    assert catalog["TEE-S"]["ids"]["xs"] == uid("p", "tee-s") and "MUG" not in catalog and len(catalog) == 35
    assert yaml.safe_load((repo / "stock" / "oslo.yaml").read_text())["stock"]["xs"] == {"TEE-S": 4}
    assert yaml.safe_load((repo / "stock" / "bergen.yaml").read_text())["stock"]["xs"] == {"TEE-M": 7}
    for rel in (".gitignore", ".github/workflows/reconciler-plan.yml", ".github/workflows/reconciler-apply.yml",
                ".github/scripts/reconciler-state.sh"):
        assert (repo / rel).exists(), rel
    # the workflows hand CI this target's credentials (read-only ones to plan and drift), no others
    plan_yml = (repo / ".github" / "workflows" / "reconciler-plan.yml").read_text()
    apply_yml = (repo / ".github" / "workflows" / "reconciler-apply.yml").read_text()
    assert f"{XS_TOKEN_ENV}: ${{{{ secrets.{XS_TOKEN_ENV}_READONLY }}}}" in plan_yml
    assert f"{XS_TOKEN_ENV}: ${{{{ secrets.{XS_TOKEN_ENV} }}}}" in apply_yml
    assert "RECONCILER_XS_MAIN_TOKEN" not in plan_yml + apply_yml and "KACHING" not in apply_yml
    assert run_cli("-C", str(repo), "validate").code == 0
    plan = run_cli("-C", str(repo), "plan", "--detailed-exitcode")
    assert plan.code == 0, plan  # 0: no changes (2 would be changes)
    again = run_cli("init", str(repo), "--from", "xseries", "--url", xs.url, "--name", "xs",
                    "--credentials-env", XS_TOKEN_ENV)
    assert again.code == 1 and "exists already" in again.stderr


def test_init_from_zettle_then_plan_shows_no_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILER_ZETTLE_MAIN_TOKEN", ZettleSimulator.default_token)
    with ServerThread(ZettleSimulator(state=tmp_path / "z.db", fixtures=zettle_fixtures(3))) as server:
        repo = tmp_path / "shop"
        out = run_cli("init", str(repo), "--from", "zettle", "--url", server.url)
        assert out.code == 0, out
        config = yaml.safe_load((repo / "reconciler.yaml").read_text())
        assert config["targets"]["zettle-main"]["locations"] == {"store": "STORE"}
        assert config["targets"]["zettle-main"]["credentials_env"] == "RECONCILER_ZETTLE_MAIN_TOKEN"
        stock = yaml.safe_load((repo / "stock" / "store.yaml").read_text())["stock"]["zettle-main"]
        # tracked variants without stock hold 0 (Zettle lists tracked products; read_stock's rule)
        assert stock["TEE-S"] == 3 and set(stock.values()) == {0, 3} and "MUG" not in stock
        assert run_cli("-C", str(repo), "validate").code == 0
        plan = run_cli("-C", str(repo), "plan", "--detailed-exitcode")
        assert plan.code == 0, plan


def test_init_without_the_token_says_which_variable(tmp_path: Path, xs: ServerThread,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECONCILER_XSERIES_MAIN_TOKEN", raising=False)
    out = run_cli("init", str(tmp_path / "shop"), "--from", "xseries", "--url", xs.url)
    assert out.code == 1 and "RECONCILER_XSERIES_MAIN_TOKEN" in out.stderr
    assert not (tmp_path / "shop" / "reconciler.yaml").exists()


def test_init_that_fails_reading_stock_leaves_nothing_behind(tmp_path: Path, xs: ServerThread) -> None:
    """The catalogue is read, the files are written, then the inventory read is refused: the
    folder is as it was, and a second init can start over."""
    import httpx

    from reconciler.discover._init import init_from
    from reconciler.errors import VendorRejected

    real = httpx.HTTPTransport()

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/inventory"):
            return httpx.Response(400, json={"error": "Bad request: refused by the test"})
        return real.handle_request(request)

    repo = tmp_path / "shop"
    repo.mkdir()
    (repo / "README.md").write_text("mine\n")
    with pytest.raises(VendorRejected):
        init_from(repo, "xseries", xs.url, name="xs", credentials_env=XS_TOKEN_ENV,
                  transports={"xs": httpx.MockTransport(answer)})
    assert sorted(p.name for p in repo.iterdir()) == ["README.md"]
    assert run_cli("init", str(repo), "--from", "xseries", "--url", xs.url, "--name", "xs",
                   "--credentials-env", XS_TOKEN_ENV).code == 0
