"""The Project API: desired positions, strategy precedence, digests, policy, credentials."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from config_helpers import BASE_CATALOG, BASE_CONFIG, RepoFactory

from reconciler.config import load_project
from reconciler.errors import ConfigError, CredentialsError
from reconciler.model import Capabilities, Guards, Settings, SourceRef

CAPS = Capabilities(readable=True, absolute=True, delta=True, native_move=True, delete=True)


def test_positions_carry_quantity_settings_strategy_and_source(config_repo: RepoFactory) -> None:
    root = config_repo({
        "reconciler.yaml": BASE_CONFIG.replace("    locations: {bergen: \"store-uuid\"}",
                                               "    locations: {bergen: \"store-uuid\"}\n    strategy: replace"),
        "stock/catalog.yaml": BASE_CATALOG.replace("  BLUE-L:\n", "  BLUE-L:\n    protect: true\n"),
        "stock/oslo.yaml": "location: oslo\nstock:\n  xs:\n    RED-M: {quantity: 5, reorder_point: 2}\n    BLUE-L: 3\n",
        "stock/bergen.yaml": "location: bergen\nstock:\n  zt:\n    RED-M: {quantity: 4, low_stock_level: 1, protect: true}\n  xs:\n",
    })

    project = load_project(root)

    red = project.positions[("xs", "oslo", "RED-M")]
    assert (red.quantity, red.settings, red.strategy, red.protect) == (5, Settings(reorder_point=2), "merge", False)
    assert red.source == SourceRef("stock/oslo.yaml", 4)
    blue = project.positions[("xs", "oslo", "BLUE-L")]
    assert (blue.quantity, blue.protect, blue.source) == (3, True, SourceRef("stock/oslo.yaml", 5))
    zettle = project.positions[("zt", "bergen", "RED-M")]
    assert (zettle.strategy, zettle.protect, zettle.settings) == ("replace", True, Settings(low_stock_level=1))
    # an empty target section still declares the location (for the missing-location guard)
    assert project.declared_locations == {
        ("xs", "oslo"): "stock/oslo.yaml",
        ("zt", "bergen"): "stock/bergen.yaml",
        ("xs", "bergen"): "stock/bergen.yaml",
    }
    assert len(project.positions) == 3


@pytest.mark.parametrize(
    ("defaults", "target", "file", "expected"),
    [
        ("merge", None, None, "merge"),
        ("replace", None, None, "replace"),
        ("merge", "replace", None, "replace"),
        ("replace", "merge", None, "merge"),
        ("merge", "merge", "replace", "replace"),
        ("replace", "replace", "merge", "merge"),
    ],
)
def test_strategy_precedence_is_file_then_target_then_defaults(
    config_repo: RepoFactory, defaults: str, target: str | None, file: str | None, expected: str
) -> None:
    config = BASE_CONFIG.replace("version: 1\n", f"version: 1\ndefaults: {{strategy: {defaults}}}\n")
    if target:
        config = config.replace("    credentials_env: XS_TOKEN\n", f"    credentials_env: XS_TOKEN\n    strategy: {target}\n")
    oslo = "location: oslo\n" + (f"strategy: {file}\n" if file else "") + "stock:\n  xs:\n    RED-M: 1\n"

    project = load_project(config_repo({"reconciler.yaml": config, "stock/oslo.yaml": oslo}))

    assert project.positions[("xs", "oslo", "RED-M")].strategy == expected


def test_digests_cover_every_file_and_change_with_any_byte(config_repo: RepoFactory) -> None:
    root = config_repo({"stock/sub/bergen.yml": "location: bergen\nstock: {zt: {RED-M: 2}}\n"})
    project = load_project(root)

    files = ["reconciler.yaml", "stock/catalog.yaml", "stock/oslo.yaml", "stock/sub/bergen.yml"]
    assert sorted(project.file_digests) == files
    for rel in files:
        assert project.file_digests[rel] == hashlib.sha256((root / rel).read_bytes()).hexdigest()
    expected = hashlib.sha256("".join(f"{rel}\0{project.file_digests[rel]}\n" for rel in files).encode()).hexdigest()
    assert project.digest == expected == project.desired.digest

    (root / "stock/oslo.yaml").write_text((root / "stock/oslo.yaml").read_text() + "# a comment\n")
    assert load_project(root).digest != project.digest


def test_policy_merges_defaults_targets_guards_and_overrides(config_repo: RepoFactory) -> None:
    config = BASE_CONFIG.replace("version: 1\n", "version: 1\ndefaults: {prune: true, infer_movements: false}\n"
                                 "guards: {max_delete_share: 0.5, allow_mass_delete: true}\n")
    config = config.replace("    credentials_env: ZT_TOKEN\n", "    credentials_env: ZT_TOKEN\n    prune: false\n")
    catalog = BASE_CATALOG.replace("  BLUE-L:\n", "  BLUE-L:\n    protect: true\n")
    project = load_project(config_repo({"reconciler.yaml": config, "stock/catalog.yaml": catalog}))

    policy = project.policy({"xs": CAPS}, only_targets=["xs"], allow_negative=True, allow_protected=None,
                            allow_mass_delete=False)

    assert policy.targets["xs"].prune is True and policy.targets["xs"].infer_movements is False
    assert policy.targets["zt"].prune is False
    # flags only grant: allow_mass_delete stays on from reconciler.yaml although the flag is off
    assert policy.guards == Guards(max_delete_share=0.5, allow_negative=True, allow_mass_delete=True)
    assert policy.protected_items == frozenset({"BLUE-L"})
    assert policy.only_targets == frozenset({"xs"}) and policy.only_locations is None
    assert policy.capabilities == {"xs": CAPS}


def test_policy_rejects_unknown_scope(config_repo: RepoFactory) -> None:
    project = load_project(config_repo())

    with pytest.raises(ConfigError) as info:
        project.policy({}, only_locations=["olso"])

    assert info.value.problems[0].message == "unknown location 'olso'"
    assert "Did you mean 'oslo'?" in (info.value.problems[0].hint or "")


def test_target_context_reads_the_credential_from_the_environment(config_repo: RepoFactory) -> None:
    project = load_project(config_repo())

    ctx = project.target_context("zt", env={"ZT_TOKEN": "s3cret-value"})

    assert ctx.credential.reveal() == "s3cret-value"
    assert "s3cret" not in repr(ctx)
    assert (ctx.kind, ctx.base_url, dict(ctx.location_ids)) == ("zettle", "http://127.0.0.1:8703", {"bergen": "store-uuid"})
    # only items with an id in this target
    assert dict(ctx.item_ids) == {"RED-M": {"product": "p1", "variant": "v1"}}
    assert (ctx.concurrency, ctx.timeout_s, ctx.rate_limit) == (4, 30.0, None)


def test_missing_credential_names_variable_target_and_line(config_repo: RepoFactory) -> None:
    project = load_project(config_repo())

    with pytest.raises(CredentialsError) as info:
        project.target_context("xs", env={})

    (problem,) = info.value.problems
    assert (problem.file, problem.line) == ("reconciler.yaml", 9)
    assert problem.message == "target 'xs' needs its credential in the environment variable XS_TOKEN, which is not set"
    assert "export XS_TOKEN=" in (problem.hint or "") and ".reconciler/sandbox.env" in (problem.hint or "")


def test_sandbox_env_file_is_a_fallback_and_the_environment_wins(config_repo: RepoFactory) -> None:
    root = config_repo({".reconciler/sandbox.env": "# written by reconciler sandbox\nexport XS_TOKEN='from-file'\nZT_TOKEN=zt-file\n"})
    project = load_project(root)

    assert project.target_context("xs", env={}).credential.reveal() == "from-file"
    assert project.target_context("zt", env={"ZT_TOKEN": "from-env"}).credential.reveal() == "from-env"
    (root / ".reconciler/sandbox.env").unlink()
    with pytest.raises(CredentialsError):
        project.target_context("xs", env={"XS_TOKEN": ""})


def test_unknown_target_context(config_repo: RepoFactory) -> None:
    with pytest.raises(ConfigError, match="unknown target 'xz'"):
        load_project(config_repo()).target_context("xz", env={})


def test_state_path_default_config_and_environment(config_repo: RepoFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    root = config_repo()
    assert load_project(root).state_path == root / ".reconciler/state.db"

    root = config_repo({"reconciler.yaml": BASE_CONFIG + "state: db/custom.db\n"})
    assert load_project(root).state_path == root / "db/custom.db"

    monkeypatch.setenv("RECONCILER_STATE", "/tmp/elsewhere.db")
    assert load_project(root).state_path == Path("/tmp/elsewhere.db")


def test_kaching_string_id_is_normalised_and_options_are_required(config_repo: RepoFactory) -> None:
    config = BASE_CONFIG + (
        "  kc:\n    kind: kaching\n    url: http://127.0.0.1:8704\n    credentials_env: KC_KEY\n"
        "    locations: {oslo: \"cph\"}\n    options: {account: acc}\n"
    )
    catalog = BASE_CATALOG.replace('      xs: "p-blue-l"\n', '      xs: "p-blue-l"\n      kc: "prod-1"\n')
    oslo = "location: oslo\nstock:\n  kc:\n    BLUE-L: 2\n"

    with pytest.raises(ConfigError) as info:
        load_project(config_repo({"reconciler.yaml": config, "stock/catalog.yaml": catalog, "stock/oslo.yaml": oslo}))
    assert [(p.line, p.message) for p in info.value.problems] == [(21, "target 'kc' (kaching) needs options.integration (or integration= in its url's query)")]

    fixed = config.replace("{account: acc}", "{account: acc, integration: q1}")
    project = load_project(config_repo({"reconciler.yaml": fixed, "stock/catalog.yaml": catalog}))
    assert project.target_context("kc", env={"KC_KEY": "k"}).item_ids == {"BLUE-L": {"product": "prod-1"}}
    assert project.target_context("kc", env={"KC_KEY": "k"}).options == {"account": "acc", "integration": "q1"}


@pytest.mark.parametrize(
    ("ids", "ok"),
    [
        ('{upc: "849632048260"}', True),
        ('{sku: ZOOT-SUIT, size: "34", width: D}', True),
        ('{sku: ZOOT-SUIT, size: "34"}', False),
        ("{upc: 849632048260}", False),
        ('{upc: "1", sku: X}', False),
    ],
)
def test_runfree_id_shapes(config_repo: RepoFactory, ids: str, ok: bool) -> None:
    config = BASE_CONFIG + "  rf:\n    kind: runfree\n    url: http://127.0.0.1:8705\n    credentials_env: RF\n    locations: {oslo: \"3\"}\n"
    catalog = BASE_CATALOG + f"  SHOE:\n    ids:\n      rf: {ids}\n"
    oslo = "location: oslo\nstock:\n  rf:\n    SHOE: 1\n"
    from reconciler.config import validate_project

    problems = validate_project(config_repo({"reconciler.yaml": config, "stock/catalog.yaml": catalog, "stock/oslo.yaml": oslo}))

    assert [(p.file, p.line) for p in problems] == ([] if ok else [("stock/catalog.yaml", 11)])
