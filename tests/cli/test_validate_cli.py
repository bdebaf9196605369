"""`reconciler validate` (issue 2, point 3): one case per problem class the issue lists, each
through the CLI, each reported as ``file:line: what is wrong. what to do`` with exit 1; then all
of them at once in one repository, every one reported in a single run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pytest
from cli_kit import BERGEN, CATALOG, OSLO, run_cli, write
from cli_kit import Shop

HEAD = "location: oslo\nstock:\n  shop:\n"

# (problem class, files replaced, expected "file:line: " prefix, phrase of the message, phrase of the advice)
CASES = [
    ("yaml-syntax", {"stock/oslo.yaml": HEAD + "    RED-M: [5\n    CAP: 4\n"}, "stock/oslo.yaml:5: ",
     "YAML syntax error", "indentation"),
    ("duplicate-key", {"stock/oslo.yaml": OSLO + "    CAP: 9\n"}, "stock/oslo.yaml:7: ",
     "duplicate key 'CAP' (first at line 6)", "silently keep only the last"),
    ("unknown-field", {"stock/oslo.yaml": OSLO.replace("stock:", "stokc: {}\nstock:")}, "stock/oslo.yaml:2: ",
     "unknown field 'stokc' in a location file", "Did you mean 'stock'?"),
    ("not-an-integer", {"stock/oslo.yaml": OSLO.replace("CAP: 4", "CAP: 4.5")}, "stock/oslo.yaml:6: ",
     "must be a whole number, not 4.5", "plain integer"),
    ("quoted-number", {"stock/oslo.yaml": OSLO.replace("CAP: 4", 'CAP: "4"')}, "stock/oslo.yaml:6: ",
     "must be a whole number, not the text '4'", "Remove the quotes"),
    ("negative", {"stock/oslo.yaml": OSLO.replace("CAP: 4", "CAP: -4")}, "stock/oslo.yaml:6: ",
     "is negative (-4)", "write 0 or more"),
    ("absurdly-large", {"stock/oslo.yaml": OSLO.replace("CAP: 4", "CAP: 5701234567890")}, "stock/oslo.yaml:6: ",
     "above the maximum of 1000000", "typo"),
    ("position-twice-across-files", {"stock/oslo-extra.yaml": HEAD + "    CAP: 1\n"}, "stock/oslo",
     "position shop/oslo/CAP is declared twice", "delete the other"),
    ("unknown-target", {"stock/oslo.yaml": OSLO.replace("  shop:", "  shoop:")}, "stock/oslo.yaml:3: ",
     "unknown target 'shoop'", "Did you mean 'shop'?"),
    ("unknown-location", {"stock/oslo.yaml": OSLO.replace("location: oslo", "location: olso")}, "stock/oslo.yaml:1: ",
     "unknown location 'olso'", "Did you mean 'oslo'?"),
    ("unknown-sku", {"stock/oslo.yaml": OSLO.replace("CAP: 4", "CAPP: 4")}, "stock/oslo.yaml:6: ",
     "unknown SKU 'CAPP'", "Did you mean 'CAP'?"),
    ("sku-without-id", {"stock/catalog.yaml": CATALOG.replace('CAP: {ids: {shop: "CAP"}}', "CAP: {ids: {}}")},
     "stock/oslo.yaml:6: ", "SKU 'CAP' has no id for target 'shop'", "stock/catalog.yaml"),
    ("empty-file", {"stock/bergen.yaml": ""}, "stock/bergen.yaml:1: ", "the file is empty", "delete the file"),
    ("comments-only-file", {"stock/bergen.yaml": "# bergen opens in May\n"}, "stock/bergen.yaml:1: ",
     "the file is empty (or holds only comments)", "delete the file"),
]


def _not_utf8(shop: Shop) -> None:
    (shop.root / "stock" / "bergen.yaml").write_bytes(BERGEN.encode() + b"# K\xf8benhavn\n")


def _unreadable(shop: Shop) -> None:
    os.symlink(shop.root / "stock" / "gone.yaml", shop.root / "stock" / "trondheim.yaml")


BYTE_CASES: list[tuple[str, Callable[[Shop], None], str, str]] = [
    ("not-utf8", _not_utf8, "stock/bergen.yaml:6: the file is not valid UTF-8 (byte 0xf8", "as UTF-8"),
    ("unreadable", _unreadable, "stock/trondheim.yaml: cannot read the file", ""),
]


def validate(shop: Shop):  # type: ignore[no-untyped-def]
    return run_cli("-C", str(shop.root), "validate")


@pytest.mark.parametrize(("files", "where", "message", "advice"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_problem_class_is_reported_with_file_line_and_advice(
        shop: Shop, files: dict[str, str], where: str, message: str, advice: str) -> None:
    write(shop.root, files)

    result = validate(shop)

    assert result.code == 1 and result.stderr == ""
    *problems, total = result.stdout.splitlines()
    [line] = [p for p in problems if message in p]
    assert line.startswith(where) and advice in line.split(message, 1)[1]
    assert total == f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found; nothing is valid until all are fixed."


@pytest.mark.parametrize(("damage", "prefix", "advice"), [c[1:] for c in BYTE_CASES], ids=[c[0] for c in BYTE_CASES])
def test_unreadable_and_non_utf8_files_are_reported(shop: Shop, damage: Callable[[Shop], None], prefix: str,
                                                    advice: str) -> None:
    damage(shop)

    result = validate(shop)

    assert result.code == 1
    assert result.stdout.splitlines()[0].startswith(prefix) and advice in result.stdout


def test_every_problem_is_reported_in_one_run(shop: Shop) -> None:
    write(shop.root, {
        "stock/oslo.yaml": HEAD + "    RED-M: 2.5\n    BLUE-L: -1\n    CAPP: 3\n    CAP: 1\n    CAP: 2\n",
        "stock/bergen.yaml": "location: bergen\nstock:\n  shoop:\n    RED-M: 1\n  shop:\n    SOCK: 99999999\n",
        "stock/empty.yaml": "",
    })
    _not_utf8_elsewhere = shop.root / "stock" / "tromso.yaml"
    _not_utf8_elsewhere.write_bytes(b"location: tromso\n# \xff\n")

    result = validate(shop)

    lines = result.stdout.splitlines()
    assert result.code == 1
    assert lines[-1] == f"{len(lines) - 1} problems found; nothing is valid until all are fixed."
    found = {line.split(": ", 1)[0] for line in lines[:-1]}
    assert {"stock/oslo.yaml:4", "stock/oslo.yaml:5", "stock/oslo.yaml:6", "stock/oslo.yaml:8", "stock/bergen.yaml:3",
            "stock/bergen.yaml:6", "stock/empty.yaml:1", "stock/tromso.yaml:2"} <= found


def test_a_valid_repository_exits_0(shop: Shop) -> None:
    result = validate(shop)

    assert (result.code, result.stdout) == (0, "valid: 5 positions in 2 files across 1 targets\n")


def test_plan_and_apply_stop_on_the_same_problems_before_any_request(shop: Shop) -> None:
    from cli_kit import requests_sent

    write(shop.root, {"stock/oslo.yaml": OSLO.replace("CAP: 4", "CAP: -4")})

    for command in (["plan"], ["apply", "--auto-approve"]):
        result = run_cli("-C", str(shop.root), *command)
        assert result.code == 1 and "stock/oslo.yaml:6: quantity of 'CAP' in target 'shop' is negative" in result.stderr
    assert requests_sent(shop.stock) == 0 and not Path(shop.state).exists()
