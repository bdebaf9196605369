"""Every kind of bad input gets a Problem naming the file, the line and what to do."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.config import load_project, validate_project
from reconciler.errors import ConfigError

from config_helpers import BASE_CATALOG, BASE_CONFIG, RepoFactory

OSLO_HEAD = "location: oslo\nstock:\n  xs:\n"


def oslo(body: str) -> dict[str, str]:
    return {"stock/oslo.yaml": OSLO_HEAD + body}


# (case id, files to replace, expected [(file, line, message)], a phrase the first hint contains)
CASES = [
    ("yaml-syntax", oslo("    RED-M: [5\n    BLUE-L: 3\n"),
     [("stock/oslo.yaml", 5, "YAML syntax error: did not find expected ',' or ']' (while parsing a flow sequence started at line 4)")],
     "check the indentation"),
    ("yaml-tab", {"stock/oslo.yaml": "location: oslo\nstock:\n\txs: {}\n"},
     [("stock/oslo.yaml", 3, "YAML syntax error: found character that cannot start any token (while scanning for the next token)")],
     "replace the tab"),
    ("duplicate-sku", oslo("    RED-M: 5\n    RED-M: 6\n"),
     [("stock/oslo.yaml", 5, "duplicate key 'RED-M' (first at line 4)")], "silently keep only the last"),
    ("duplicate-config-key", {"reconciler.yaml": BASE_CONFIG + "locations: {}\n"},
     [("reconciler.yaml", 16, "duplicate key 'locations' (first at line 2)")], "Remove or rename"),
    ("unknown-file-field", {"stock/oslo.yaml": "location: oslo\nstrategey: replace\nstock:\n  xs:\n    RED-M: 5\n"},
     [("stock/oslo.yaml", 2, "unknown field 'strategey' in a location file")], "Did you mean 'strategy'?"),
    ("unknown-position-field", oslo("    RED-M: {quantiy: 5}\n"),
     [("stock/oslo.yaml", 4, "unknown field 'quantiy' in the entry for 'RED-M'"),
      ("stock/oslo.yaml", 4, "the entry for 'RED-M' has no quantity")], "Did you mean 'quantity'?"),
    ("unknown-config-field", {"reconciler.yaml": BASE_CONFIG.replace("    credentials_env: ZT_TOKEN", "    credential_env: ZT_TOKEN")},
     [("reconciler.yaml", 14, "unknown field 'credential_env' in targets.zt")], "Did you mean 'credentials_env'?"),
    ("unknown-catalog-field", {"stock/catalog.yaml": BASE_CATALOG.replace("  BLUE-L:\n", "  BLUE-L:\n    protected: true\n")},
     [("stock/catalog.yaml", 7, "unknown field 'protected' in catalog entry 'BLUE-L'")], "Did you mean 'protect'?"),
    ("float-quantity", oslo("    RED-M: 2.5\n"),
     [("stock/oslo.yaml", 4, "quantity of 'RED-M' in target 'xs' must be a whole number, not 2.5")], "no decimals"),
    ("string-quantity", oslo('    RED-M: "12"\n'),
     [("stock/oslo.yaml", 4, "quantity of 'RED-M' in target 'xs' must be a whole number, not the text '12'")], "Remove the quotes"),
    ("boolean-quantity", oslo("    RED-M: yes\n"),
     [("stock/oslo.yaml", 4, "quantity of 'RED-M' in target 'xs' must be a whole number, not the boolean true")], "not true/false"),
    ("empty-quantity", oslo("    RED-M:\n"),
     [("stock/oslo.yaml", 4, "quantity of 'RED-M' in target 'xs' must be a whole number, not nothing")], "plain integer"),
    ("float-in-mapping", oslo("    RED-M: {quantity: 1.0, reorder_point: 2}\n"),
     [("stock/oslo.yaml", 4, "quantity of 'RED-M' in target 'xs' must be a whole number, not 1.0")], "plain integer"),
    ("negative-quantity", oslo("    RED-M: -1\n"),
     [("stock/oslo.yaml", 4, "quantity of 'RED-M' in target 'xs' is negative (-1)")], "write 0 or more"),
    ("absurd-quantity", oslo("    RED-M: 7310865000123\n"),
     [("stock/oslo.yaml", 4, "quantity of 'RED-M' in target 'xs' is 7310865000123, above the maximum of 1000000")], "typo"),
    ("position-twice-across-files", {"stock/more/oslo-extra.yaml": OSLO_HEAD + "    BLUE-L: 4\n"},
     [("stock/oslo.yaml", 5, "position xs/oslo/BLUE-L is declared twice: here and at stock/more/oslo-extra.yaml:4")],
     "delete the other"),
    ("unknown-target", {"stock/oslo.yaml": "location: oslo\nstock:\n  xss:\n    RED-M: 5\n"},
     [("stock/oslo.yaml", 3, "unknown target 'xss'")], "Did you mean 'xs'?"),
    ("unknown-location", {"stock/oslo.yaml": "location: olso\nstock:\n  xs:\n    RED-M: 5\n"},
     [("stock/oslo.yaml", 1, "unknown location 'olso'")], "Did you mean 'oslo'?"),
    ("unknown-sku", oslo("    RED-MM: 5\n"),
     [("stock/oslo.yaml", 4, "unknown SKU 'RED-MM'")], "Did you mean 'RED-M'?"),
    ("unknown-target-in-catalog", {"stock/catalog.yaml": BASE_CATALOG + "  CAP:\n    ids: {zz: \"c1\"}\n"},
     [("stock/catalog.yaml", 10, "unknown target 'zz' in the ids of 'CAP'")], "Targets are defined under targets:"),
    ("sku-without-id", {"stock/bergen.yaml": "location: bergen\nstock:\n  zt:\n    BLUE-L: 5\n"},
     [("stock/bergen.yaml", 4, "SKU 'BLUE-L' has no id for target 'zt'")], "stock/catalog.yaml (line 6)"),
    ("zettle-id-shape", {"stock/catalog.yaml": BASE_CATALOG.replace('zt: {product: "p1", variant: "v1"}', 'zt: "p1"')},
     [("stock/catalog.yaml", 5, "the id of 'RED-M' in target 'zt' must be a mapping {product: <uuid>, variant: <uuid>} "
       "of quoted strings (zettle ids), not the text 'p1'")], "Item ids by kind"),
    ("zettle-id-missing-variant", {"stock/catalog.yaml": BASE_CATALOG.replace(', variant: "v1"', "")},
     [("stock/catalog.yaml", 5, "the id of 'RED-M' in target 'zt' must be a mapping {product: <uuid>, variant: <uuid>} "
       "of quoted strings (zettle ids), not a mapping")], "Item ids by kind"),
    ("xseries-id-shape", {"stock/catalog.yaml": BASE_CATALOG.replace('xs: "p-blue-l"', 'xs: {product: "p"}')},
     [("stock/catalog.yaml", 8, "the id of 'BLUE-L' in target 'xs' must be a non-empty quoted string (xseries ids), not a mapping")],
     "Item ids by kind"),
    ("xseries-id-unquoted-number", {"stock/catalog.yaml": BASE_CATALOG.replace('xs: "p-blue-l"', "xs: 12345")},
     [("stock/catalog.yaml", 8, "the id of 'BLUE-L' in target 'xs' must be a non-empty quoted string (xseries ids), not 12345")],
     "Item ids by kind"),
    ("location-without-vendor-id", {"stock/oslo.yaml": "location: oslo\nstock:\n  zt:\n    RED-M: 5\n"},
     [("stock/oslo.yaml", 3, "target 'zt' has no vendor id for location 'oslo'")], "targets.zt.locations"),
    ("empty-vendor-id-in-config", {"reconciler.yaml": BASE_CONFIG.replace('bergen: "outlet-bergen"', 'bergen: ""')},
     [("reconciler.yaml", 10, "target 'xs' has no vendor id for location 'bergen'")], "location id"),
    ("empty-file", {"stock/bergen.yaml": ""},
     [("stock/bergen.yaml", 1, "the file is empty (or holds only comments)")], "delete the file"),
    ("comments-only-file", {"stock/bergen.yaml": "# nothing yet\n\n# really\n"},
     [("stock/bergen.yaml", 1, "the file is empty (or holds only comments)")], "delete the file"),
    ("not-utf8", {"stock/bergen.yaml": b"location: bergen\nstock: {xs: {RED-M: 1}} # \xe6\n"},
     [("stock/bergen.yaml", 2, "the file is not valid UTF-8 (byte 0xe6 at byte offset 43)")], "as UTF-8"),
    ("missing-config", {"reconciler.yaml": None},
     [("reconciler.yaml", None, "reconciler.yaml not found (the repository's configuration)")], "Create reconciler.yaml"),
    ("missing-catalog", {"stock/catalog.yaml": None},
     [("stock/catalog.yaml", None, "stock/catalog.yaml not found (the catalog of SKUs)")], "Create stock/catalog.yaml"),
    ("setting-not-for-xseries", oslo("    RED-M: {quantity: 5, low_stock_level: 2}\n"),
     [("stock/oslo.yaml", 4, "setting 'low_stock_level' is not supported by target 'xs' (kind xseries)")],
     "only zettle targets hold low_stock_level"),
    ("settings-not-for-zettle", {"stock/bergen.yaml": "location: bergen\nstock:\n  zt:\n    RED-M: {quantity: 5, reorder_point: 2, tracking: true}\n"},
     [("stock/bergen.yaml", 4, "setting 'reorder_point' is not supported by target 'zt' (kind zettle)"),
      ("stock/bergen.yaml", 4, "setting 'tracking' is not supported by target 'zt' (kind zettle)")],
     "only xseries targets hold reorder_point"),
    ("setting-wrong-type", oslo("    RED-M: {quantity: 5, reorder_point: -2}\n"),
     [("stock/oslo.yaml", 4, "reorder_point of 'RED-M' must be a whole number of 0 or more, not -2")], "plain integer"),
    ("credentials-env-is-a-token", {"reconciler.yaml": BASE_CONFIG.replace("credentials_env: ZT_TOKEN", "credentials_env: zt_live_9f8e7d6c5b4a39281706")},
     [("reconciler.yaml", 14, "credentials_env of target 'zt' looks like a literal token, not the name of an environment variable")],
     "Never commit tokens"),
    ("unknown-kind", {"reconciler.yaml": BASE_CONFIG.replace("kind: zettle", "kind: zetle")},
     [("reconciler.yaml", 12, "targets.zt.kind: Input should be 'xseries', 'lightspeed-supplier', 'zettle', 'kaching', "
       "'runfree' or 'memory' (got 'zetle')")], "docs/configuration.md"),
    ("wrong-type-in-config", {"reconciler.yaml": BASE_CONFIG + "    concurrency: \"4\"\n"},
     [("reconciler.yaml", 16, "targets.zt.concurrency: Input should be a valid integer (got '4')")], "docs/configuration.md"),
    ("unquoted-vendor-location-id", {"reconciler.yaml": BASE_CONFIG.replace('{bergen: "store-uuid"}', "{bergen: 3}")},
     [("reconciler.yaml", 15, "targets.zt.locations.bergen: Input should be a valid string (got 3)")], 'Quote it ("3")'),
    ("missing-version", {"reconciler.yaml": BASE_CONFIG.replace("version: 1\n", "")},
     [("reconciler.yaml", 1, "missing required field 'version'")], "Add version:"),
    ("plain-http-to-remote-host", {"reconciler.yaml": BASE_CONFIG.replace("http://127.0.0.1:8703", "http://zettle.example.com")},
     [("reconciler.yaml", 13, "url of target 'zt' uses plain http to a non-loopback host")], "Use https://"),
    ("unsupported-yaml-tag", oslo("    RED-M: !!python/object:os.system 5\n"),
     [("stock/oslo.yaml", 4, "unsupported YAML tag 'tag:yaml.org,2002:python/object:os.system'"),
      ("stock/oslo.yaml", 4, "quantity of 'RED-M' in target 'xs' must be a whole number, not the text '5'")], "Remove the tag"),
]


@pytest.mark.parametrize(("files", "expected", "hint"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_reported_with_file_line_and_advice(
    config_repo: RepoFactory, files: dict, expected: list, hint: str
) -> None:
    problems = validate_project(config_repo(files))

    assert [(p.file, p.line, p.message) for p in problems] == expected
    assert hint in (problems[0].hint or "")
    assert all(p.hint for p in problems), "every problem says what to do"


def test_valid_base_repository_has_no_problems(config_repo: RepoFactory) -> None:
    assert validate_project(config_repo()) == []


def test_a_token_in_credentials_env_is_never_echoed(config_repo: RepoFactory) -> None:
    token = "zt_live_9f8e7d6c5b4a39281706"
    root = config_repo({"reconciler.yaml": BASE_CONFIG.replace("credentials_env: ZT_TOKEN", f"credentials_env: {token}")})

    with pytest.raises(ConfigError) as info:
        load_project(root)

    assert token not in str(info.value)
    assert all(token not in str(p) for p in info.value.problems)


def test_every_problem_is_reported_at_once(config_repo: RepoFactory) -> None:
    root = config_repo({
        "reconciler.yaml": BASE_CONFIG.replace("    credentials_env: ZT_TOKEN", "    credential_env: ZT_TOKEN"),
        "stock/catalog.yaml": BASE_CATALOG + "  RED-M:\n    ids: {xs: \"dup\"}\n",
        "stock/oslo.yaml": OSLO_HEAD + "    RED-M: 2.5\n    BLUE-L: -3\n    NOPE: 1\n",
        "stock/bergen.yaml": "",
        "stock/copenhagen.yaml": "location: copenhagen\nstock: {}\n",
    })

    with pytest.raises(ConfigError) as info:
        load_project(root)

    found = {(p.file, p.line, p.message) for p in info.value.problems}
    assert found == {
        ("reconciler.yaml", 14, "unknown field 'credential_env' in targets.zt"),
        ("stock/catalog.yaml", 9, "duplicate key 'RED-M' (first at line 2)"),
        ("stock/bergen.yaml", 1, "the file is empty (or holds only comments)"),
        ("stock/copenhagen.yaml", 1, "unknown location 'copenhagen'"),
        ("stock/oslo.yaml", 4, "quantity of 'RED-M' in target 'xs' must be a whole number, not 2.5"),
        ("stock/oslo.yaml", 5, "quantity of 'BLUE-L' in target 'xs' is negative (-3)"),
        ("stock/oslo.yaml", 6, "unknown SKU 'NOPE'"),
    }
    assert str(info.value).startswith("7 problems in the stock repository:")


def test_broken_dangling_file_is_reported_as_unreadable(config_repo: RepoFactory) -> None:
    root = config_repo()
    (root / "stock" / "gone.yaml").symlink_to(root / "stock" / "nowhere.yaml")

    problems = validate_project(root)

    assert [(p.file, p.line, p.message) for p in problems] == [
        ("stock/gone.yaml", None, "cannot read the file: No such file or directory")
    ]
    assert "permissions" in (problems[0].hint or "")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can read any file")
def test_file_without_read_permission_is_reported(config_repo: RepoFactory) -> None:
    root = config_repo({"stock/bergen.yaml": "location: bergen\nstock: {}\n"})
    (root / "stock" / "bergen.yaml").chmod(0)
    try:
        problems = validate_project(root)
    finally:
        (root / "stock" / "bergen.yaml").chmod(0o644)

    assert [(p.file, p.message) for p in problems] == [("stock/bergen.yaml", "cannot read the file: Permission denied")]


def test_missing_repository_folder(tmp_path: Path) -> None:
    problems = validate_project(tmp_path / "nope")

    assert len(problems) == 1
    assert "does not exist" in problems[0].message
