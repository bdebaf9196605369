"""``reconciler import`` end to end: a Zettle sandbox on loopback, a real repository in a temp
folder, the CLI through click's CliRunner, then ``plan`` against the same sandbox."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from click.testing import CliRunner

from reconciler.cli import _register, cli
from reconciler.model import OpKind
from reconciler.sandbox._core import ServerThread
from reconciler.sandbox.zettle import ZettleSimulator
from reconciler.workflow import plan_project

STORE = "7d1e2f3a-0000-4000-8000-000000000001"
P1, V1, V2 = (f"7d1e2f3a-0000-4000-8000-0000000001{i:02d}" for i in range(3))
P2, V3 = "7d1e2f3a-0000-4000-8000-000000000200", "7d1e2f3a-0000-4000-8000-000000000201"
P3, V4 = "7d1e2f3a-0000-4000-8000-000000000300", "7d1e2f3a-0000-4000-8000-000000000301"
TOKEN_ENV = "TEST_ZETTLE_TOKEN"
ENV = {TOKEN_ENV: ZettleSimulator.default_token, "TEST_KACHING_KEY": "kc-key"}


def sim_fixtures() -> dict[str, Any]:
    def rec(product: str, variant: str, qty: int, **extra: Any) -> dict[str, Any]:
        return {"location": STORE, "item": {"product": product, "variant": variant}, "quantity": qty, **extra}

    return {"locations": [{"id": STORE}], "stock": [
        rec(P1, V1, 12, low_stock_level=3), rec(P1, V2, 0), rec(P2, V3, 5), rec(P3, V4, 9, tracked=False),
    ]}


def write_repo(root: Path, url: str) -> None:
    (root / "stock").mkdir(parents=True)
    (root / "reconciler.yaml").write_text(textwrap.dedent(f"""\
        version: 1
        locations:
          bergen: {{}}
          copenhagen: {{}}
        targets:
          zettle-main:
            kind: zettle
            url: {url}
            credentials_env: {TOKEN_ENV}
            locations:
              bergen: "{STORE}"
          kaching-dk:
            kind: kaching
            url: http://127.0.0.1:9
            credentials_env: TEST_KACHING_KEY
            locations:
              bergen: "bergen-1"
            options: {{account: a, integration: q}}
        """))
    (root / "stock" / "catalog.yaml").write_text(textwrap.dedent(f"""\
        items:
          TEE-S:
            ids:
              zettle-main: {{product: "{P1}", variant: "{V1}"}}
              kaching-dk: {{product: tee, variant: s}}
          TEE-M:
            ids:
              zettle-main: {{product: "{P1}", variant: "{V2}"}}
          CAP:
            ids:
              zettle-main: {{product: "{P2}", variant: "{V3}"}}
          MUG:
            ids:
              zettle-main: {{product: "{P3}", variant: "{V4}"}}
          UNMAPPED:
            ids:
              kaching-dk: {{product: other}}
        """))
    # An existing location file with another target's section, which import must keep.
    (root / "stock" / "bergen.yaml").write_text(textwrap.dedent("""\
        # Bergen: desired stock
        location: bergen
        stock:
          kaching-dk:
            TEE-S: 4
        """))


@pytest.fixture
def served() -> Iterator[tuple[ZettleSimulator, str]]:
    sim = ZettleSimulator(fixtures=sim_fixtures())
    with ServerThread(sim) as server:
        yield sim, server.url
    sim.close()


@pytest.fixture
def repo(tmp_path: Path, served: tuple[ZettleSimulator, str], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    write_repo(tmp_path, served[1])
    return tmp_path


def run(repo: Path, *args: str) -> Any:
    _register()
    return CliRunner().invoke(cli, ["-C", str(repo), *args], env=ENV, catch_exceptions=False)


def live(sim: ZettleSimulator) -> dict[str, int]:
    return {r["item"]["variant"]: r["quantity"] for r in sim.inspect_stock() if r["tracked"]}


def test_import_writes_live_stock_keeps_other_sections_and_plans_clean(repo: Path, served: Any) -> None:
    sim, _ = served
    result = run(repo, "import", "--target", "zettle-main")
    assert result.exit_code == 0, result.output
    assert "stock/bergen.yaml: 3 position(s)" in result.output
    text = (repo / "stock" / "bergen.yaml").read_text()
    data = yaml.safe_load(text)
    assert text.startswith("# Bergen: desired stock")
    assert data["stock"]["kaching-dk"] == {"TEE-S": 4}
    state = live(sim)
    assert data["stock"]["zettle-main"] == {
        "CAP": state[V3], "TEE-M": state[V2], "TEE-S": {"quantity": state[V1], "low_stock_level": 3}}
    assert "MUG" not in data["stock"]["zettle-main"]  # untracked in Zettle: not stocked
    plan = plan_project(repo, only_targets=["zettle-main"], env=ENV)
    assert not plan.has_changes, [op.reason for op in plan.operations]


def test_import_then_edit_plans_the_edit_only(repo: Path) -> None:
    assert run(repo, "import", "--target", "zettle-main", "--location", "bergen").exit_code == 0
    path = repo / "stock" / "bergen.yaml"
    data = yaml.safe_load(path.read_text())
    data["stock"]["zettle-main"]["CAP"] = 8
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    plan = plan_project(repo, only_targets=["zettle-main"], env=ENV)
    assert [(op.kind, op.item, op.legs[0].change) for op in plan.changes] == [(OpKind.ADJUST, "CAP", 3)]


def test_import_is_repeatable_and_creates_missing_files(repo: Path) -> None:
    (repo / "stock" / "bergen.yaml").unlink()
    assert run(repo, "import", "--target", "zettle-main", "--no-state").exit_code == 0
    first = (repo / "stock" / "bergen.yaml").read_text()
    assert yaml.safe_load(first)["location"] == "bergen"
    assert run(repo, "import", "--target", "zettle-main").exit_code == 0
    assert (repo / "stock" / "bergen.yaml").read_text() == first
    assert not plan_project(repo, only_targets=["zettle-main"], env=ENV).has_changes


def test_sku_in_file_but_not_stocked_live_is_written_as_zero(repo: Path, served: Any) -> None:
    path = repo / "stock" / "bergen.yaml"
    path.write_text(path.read_text() + "  zettle-main:\n    MUG: 6\n")
    result = run(repo, "import", "--target", "zettle-main")
    assert result.exit_code == 0 and "bergen/MUG" in result.output
    assert yaml.safe_load(path.read_text())["stock"]["zettle-main"]["MUG"] == 0
    assert not plan_project(repo, only_targets=["zettle-main"], env=ENV).has_changes


def test_write_only_target_is_a_clear_error_without_requests(repo: Path) -> None:
    from reconciler.cli import main

    with pytest.raises(SystemExit) as info:
        main(["-C", str(repo), "import", "--target", "kaching-dk"])
    assert info.value.code == 1


def test_write_only_target_message(repo: Path) -> None:
    from reconciler.errors import NotSupported
    from reconciler.importer import import_target

    with pytest.raises(NotSupported, match="no API to read stock"):
        import_target(repo, "kaching-dk", env=ENV)


def test_missing_credential_is_an_error_before_any_request(repo: Path, served: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.errors import CredentialsError
    from reconciler.importer import import_target

    sim, _ = served
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(CredentialsError, match=TOKEN_ENV):
        import_target(repo, "zettle-main", env={})
    assert sum(sim.request_counts.values()) == 0


def test_bad_location_and_out_dir_are_clear_errors(repo: Path) -> None:
    from reconciler.errors import ConfigError
    from reconciler.importer import import_target

    with pytest.raises(ConfigError, match="no vendor id for location 'copenhagen'"):
        import_target(repo, "zettle-main", location="copenhagen", env=ENV)
    with pytest.raises(ConfigError, match="outside the stock/ folder"):
        import_target(repo, "zettle-main", out_dir="elsewhere", env=ENV)


def test_settings_become_the_live_ones_and_other_fields_are_kept(repo: Path) -> None:
    path = repo / "stock" / "bergen.yaml"
    path.write_text(path.read_text() + "  zettle-main:\n    TEE-M: {quantity: 3, low_stock_level: 2}\n"
                    "    CAP: {quantity: 1, protect: true}\n    TEE-S: {quantity: 1}\n")
    assert run(repo, "import", "--target", "zettle-main").exit_code == 0
    section = yaml.safe_load(path.read_text())["stock"]["zettle-main"]
    # live TEE-M holds no low-stock level; TEE-S holds 3; CAP keeps its protect flag
    assert section["TEE-M"] == 0 and section["TEE-S"] == {"quantity": 12, "low_stock_level": 3}
    assert section["CAP"] == {"quantity": 5, "protect": True}
    assert not plan_project(repo, only_targets=["zettle-main"], env=ENV).has_changes


# --- the other readable targets: X-Series and the Lightspeed supplier feed ----------------------

OTHER_READABLE = {
    "xseries": ("outlet-1", {"A": "prod-a", "B": "prod-b", "C": "prod-c"},
                [("prod-a", 7, {"reorder_point": 2, "reorder_amount": 10}), ("prod-b", 0, {}), ("prod-c", 4, {})]),
    "lightspeed-supplier": ("warehouse", {"A": "item-a", "B": "item-b", "C": "item-c"},
                            [("item-a", 7, {"tracking": True, "backordering": True}), ("item-b", 0, {}),
                             ("item-c", 4, {"tracking": False})]),
}


@pytest.mark.parametrize("kind", sorted(OTHER_READABLE))
def test_import_then_plan_is_clean_for_every_readable_kind(kind: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.sandbox import simulator_class

    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    location, ids, stock = OTHER_READABLE[kind]
    fixtures = {"locations": [{"id": location}], "items": [{"id": vid} for vid in ids.values()],
                "stock": [{"location": location, "item": vid, "quantity": q, **extra} for vid, q, extra in stock]}
    # the supplier feed reads only through its unverified read path (target option + sandbox switch)
    assumed = kind == "lightspeed-supplier"
    sim = simulator_class(kind)(fixtures=fixtures, **({"read_api": "assumed"} if assumed else {}))
    env = {"TEST_TOKEN": sim.token}
    with ServerThread(sim) as server:
        (tmp_path / "stock").mkdir()
        (tmp_path / "reconciler.yaml").write_text(textwrap.dedent(f"""\
            version: 1
            locations: {{main: {{}}}}
            targets:
              t:
                kind: {kind}
                url: {server.url}
                credentials_env: TEST_TOKEN
                locations: {{main: "{location}"}}
                options: {{{'read_api: assumed' if assumed else ''}}}
            """))
        catalog = {"items": {sku: {"ids": {"t": vid}} for sku, vid in ids.items()}}
        (tmp_path / "stock" / "catalog.yaml").write_text(yaml.safe_dump(catalog))
        _register()
        result = CliRunner().invoke(cli, ["-C", str(tmp_path), "import", "--target", "t"], env=env,
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.output
        section = yaml.safe_load((tmp_path / "stock" / "main.yaml").read_text())["stock"]["t"]
        assert section["A"] == {"quantity": 7, **stock[0][2]}
        plan = plan_project(tmp_path, env=env)
        assert not plan.has_changes, [(op.item, op.kind.value, op.reason) for op in plan.changes]
    sim.close()


def test_import_locks_only_its_target(repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """An apply holding another target does not stop an import; one holding this target (or the
    whole state) does, with exit 5 naming the holder, and nothing is recorded."""
    from reconciler.cli import main
    from reconciler.state import SQLiteStateStore

    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    state = repo / ".reconciler" / "state.db"
    with SQLiteStateStore(state, hostname="ci-7", pid=99) as other:  # another host: never taken over
        other_lock = other.acquire_lock("bob@ci-7", 600, ["kaching-dk"])
    result = run(repo, "import", "--target", "zettle-main")
    assert result.exit_code == 0, result.output
    with SQLiteStateStore(state) as store:
        runs = store.runs()
        assert [r.targets for r in runs] == [("zettle-main",)] and runs[0].outcome == "imported"
        assert [lock.id for lock in store.locks()] == [other_lock.id]  # the import released its own
        store.release_lock(other_lock.id)
    for held in (["zettle-main"], None):
        with SQLiteStateStore(state, hostname="ci-7", pid=99) as other:
            lock = other.acquire_lock("bob@ci-7", 600, held)
        with pytest.raises(SystemExit) as refused:
            main(["-C", str(repo), "import", "--target", "zettle-main"])
        err = capsys.readouterr().err
        assert refused.value.code == 5 and "bob@ci-7" in err and lock.id in err, err
        with SQLiteStateStore(state) as store:
            assert len(store.runs()) == 1  # nothing recorded
            store.release_lock(lock.id)
