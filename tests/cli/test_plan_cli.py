"""`reconciler plan` and `reconciler show` as a user runs them (issue 2, points 6 and 7).

Every option of `plan`, `--detailed-exitcode` 0/1/2, the saved plan's contents, every guard
flag, and the refusal of corrupt, foreign-version and tampered plan files by `show` and `apply`.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from cli_kit import OSLO, commit, git, requests_sent, run_cli, sell, write
from cli_kit import Shop

from reconciler.planfile import dump_plan, load_plan

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def plan(shop: Shop, *args: str):  # type: ignore[no-untyped-def]
    return run_cli("-C", str(shop.root), "plan", *args)


def applied(shop: Shop) -> None:
    """Plan and apply the example, so later plans have a base B to diff against."""
    assert plan(shop, "--out", "plans/adopt.json").code == 0
    done = run_cli("-C", str(shop.root), "apply", "plans/adopt.json")
    assert done.code == 0, done.stderr


def test_detailed_exitcode_is_2_with_changes_0_without_and_1_on_error(shop: Shop) -> None:
    first = plan(shop, "--detailed-exitcode")
    assert first.code == 2 and "Plan: 5 resets" in first.stdout
    assert plan(shop).code == 0  # without the flag changes are not an exit code
    applied(shop)

    again = plan(shop, "--detailed-exitcode")
    assert (again.code, again.stdout.splitlines()[0]) == (0, "Plan: no changes")

    write(shop.root, {"stock/oslo.yaml": OSLO.replace("RED-M: 5", "RED-M: -5")})
    broken = plan(shop, "--detailed-exitcode")
    assert broken.code == 1 and "stock/oslo.yaml:4: quantity of 'RED-M' in target 'shop' is negative" in broken.stderr


def test_drift_alone_is_not_a_change_for_detailed_exitcode(shop: Shop) -> None:
    applied(shop)
    sell(shop.stock, "oslo", "CAP", 1)  # a sale: A != B, D == B

    result = plan(shop, "--detailed-exitcode")

    assert result.code == 0
    assert "drift" in result.stdout and "CAP" in result.stdout


def test_out_writes_a_complete_saved_plan(shop: Shop) -> None:
    result = plan(shop, "--out", "plans/p.json")

    assert result.code == 0
    saved = load_plan(shop.root / "plans" / "p.json")
    doc = json.loads((shop.root / "plans" / "p.json").read_text(encoding="utf-8"))
    assert doc["format_version"] == 1 and len(doc["digest"]) == 64
    assert f"Saved plan {saved.plan_id} to plans/p.json. Apply it with: reconciler apply plans/p.json" in result.stderr
    assert saved.plan_id in result.stdout  # the printed plan is the saved one
    assert saved.git_commit == git(shop.root, "rev-parse", "HEAD") and saved.git_dirty is False
    assert set(saved.desired_files) == {"reconciler.yaml", "stock/catalog.yaml", "stock/oslo.yaml", "stock/bergen.yaml"}
    assert saved.serial == 0 and saved.lineage
    ops = {(op.location, op.item): op for op in saved.operations}
    assert {k: (op.kind.value, op.legs[0].actual, op.legs[0].base, op.legs[0].desired, op.legs[0].change,
                op.legs[0].expected) for k, op in ops.items()} == {
        ("oslo", "RED-M"): ("reset", 0, None, 5, 5, 5), ("oslo", "BLUE-L"): ("reset", 0, None, 3, 3, 3),
        ("oslo", "CAP"): ("reset", 0, None, 4, 4, 4), ("bergen", "RED-M"): ("reset", 0, None, 2, 2, 2),
        ("bergen", "SOCK"): ("reset", 0, None, 6, 6, 6),
    }
    assert all(op.reason and len(op.id) >= 12 for op in saved.operations)
    # ids are deterministic: the same inputs give the same operation ids
    plan(shop, "--out", "plans/q.json")
    assert [op.id for op in load_plan(shop.root / "plans" / "q.json").operations] == [op.id for op in saved.operations]


def test_uncommitted_desired_files_are_recorded_in_the_plan(shop: Shop) -> None:
    write(shop.root, {"stock/oslo.yaml": OSLO.replace("CAP: 4", "CAP: 7")})

    assert plan(shop, "--out", "plans/dirty.json").code == 0

    assert load_plan(shop.root / "plans" / "dirty.json").git_dirty is True


def test_formats_text_markdown_json(shop: Shop) -> None:
    text = plan(shop, "--format", "text")
    markdown = plan(shop, "--format", "markdown")
    as_json = plan(shop, "--format", "json", "--out", "plans/p.json")

    assert text.stdout.startswith("Plan: 5 resets") and "\x1b[" not in text.stdout  # not a terminal: no colour
    body = markdown.stdout
    assert body.startswith("<!-- reconciler-plan -->\n**Plan: 5 resets")
    summary_at, details_at = body.index("| target | location |"), body.index("<details>")
    assert summary_at < details_at  # summary table first, details folded
    assert "| shop | oslo | 3 |" in body and "| shop | bergen | 2 |" in body
    assert len(body) < 65_536
    assert json.loads(as_json.stdout) == json.loads((shop.root / "plans" / "p.json").read_text(encoding="utf-8"))


def test_color_is_forced_or_refused_by_flag(shop: Shop) -> None:
    plan(shop)  # creates the state: both runs below then announce the same (new, empty) state
    coloured = plan(shop, "--color")
    plain = plan(shop, "--no-color")

    assert "\x1b[" in coloured.stdout and "\x1b[" not in plain.stdout
    assert ANSI.sub("", coloured.stdout).split() == plain.stdout.split()


def test_target_and_location_restrict_the_plan(shop: Shop) -> None:
    result = plan(shop, "--location", "bergen", "--target", "shop", "--out", "plans/bergen.json")

    saved = load_plan(shop.root / "plans" / "bergen.json")
    assert result.code == 0
    assert sorted((op.location, op.item) for op in saved.operations) == [("bergen", "RED-M"), ("bergen", "SOCK")]
    assert saved.scope == {"targets": ["shop"], "locations": ["bergen"]}


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--target", "shopp", "unknown target(s): shopp"),
    ("--location", "osloo", "unknown location 'osloo'"),
])
def test_unknown_scope_is_an_error(shop: Shop, option: str, value: str, message: str) -> None:
    result = plan(shop, option, value)

    assert result.code == 1 and message in result.stderr and requests_sent(shop.stock) == 0


GUARD_CASES = [
    # (guard flag, files that trip it after the adopt plan was applied, phrase of the violation)
    ("--allow-negative", {"stock/oslo.yaml": OSLO.replace("CAP: 4", "CAP: 1")}, "adjusting live stock 0 by -3 would leave -3"),
    ("--allow-missing-location", {"stock/bergen.yaml": None}, "shop/bergen: state holds 2 position(s)"),
    ("--allow-mass-delete", {"stock/oslo.yaml": OSLO.replace("RED-M: 5", "RED-M: 0").replace("BLUE-L: 3", "BLUE-L: 0")},
     "deletes or zeroes 2 of 3 managed positions"),
    ("--allow-protected", {"stock/catalog.yaml": "items:\n  RED-M: {ids: {shop: RED-M}}\n  BLUE-L: {ids: {shop: BLUE-L}}\n"
                           "  CAP: {ids: {shop: CAP}, protect: true}\n  SOCK: {ids: {shop: SOCK}}\n",
                           "stock/oslo.yaml": OSLO.replace("CAP: 4", "CAP: 9")}, "shop/oslo/CAP is protected"),
]


@pytest.mark.parametrize(("flag", "files", "phrase"), GUARD_CASES, ids=[c[0] for c in GUARD_CASES])
def test_each_guard_stops_the_plan_unless_its_flag_is_given(shop: Shop, flag: str, files: dict, phrase: str) -> None:
    applied(shop)
    sell(shop.stock, "oslo", "CAP", 4)  # CAP sold out: lowering D by 3 would go negative
    write(shop.root, files)
    commit(shop.root)

    stopped = plan(shop, "--out", "plans/stopped.json")
    allowed = plan(shop, flag, "--out", "plans/allowed.json")

    assert stopped.code == 1 and phrase in stopped.stderr and f"override with {flag}" in stopped.stderr
    assert not (shop.root / "plans" / "stopped.json").exists()
    assert allowed.code == 0, allowed.stderr
    saved = load_plan(shop.root / "plans" / "allowed.json")
    assert any(f"guard overridden ({flag})" in w for w in saved.warnings)  # the plan says so
    assert f"guard overridden ({flag})" in allowed.stdout
    assert any(op.overridden_guards for op in saved.operations)


def test_a_guard_allowed_in_reconciler_yaml_needs_no_flag(shop: Shop) -> None:
    applied(shop)
    sell(shop.stock, "oslo", "CAP", 4)
    config = (shop.root / "reconciler.yaml").read_text(encoding="utf-8")
    write(shop.root, {"stock/oslo.yaml": OSLO.replace("CAP: 4", "CAP: 1"),
                      "reconciler.yaml": config.replace("max_delete_share: 0.5", "max_delete_share: 0.5\n  allow_negative: true")})
    commit(shop.root)

    result = plan(shop, "--out", "plans/p.json")

    assert result.code == 0 and "guard overridden (--allow-negative)" in result.stdout


# --- show, and plan files that must be refused -----------------------------------------------


@pytest.fixture
def saved(shop: Shop) -> Path:
    assert plan(shop, "--out", "plans/p.json").code == 0
    return shop.root / "plans" / "p.json"


def test_show_renders_a_saved_plan_in_every_format(shop: Shop) -> None:
    made = plan(shop, "--out", "plans/p.json", "--no-color")
    markdown_made = plan(shop, "--out", "plans/m.json", "--format", "markdown")
    path = str(shop.root / "plans" / "p.json")

    text = run_cli("show", path)
    markdown = run_cli("show", str(shop.root / "plans" / "m.json"), "--format", "markdown")
    as_json = run_cli("show", path, "--format", "json")

    assert text.code == markdown.code == as_json.code == 0
    assert text.stdout == made.stdout  # the saved plan renders exactly as the plan it was made from
    assert markdown.stdout == markdown_made.stdout
    assert json.loads(as_json.stdout) == json.loads(Path(path).read_text(encoding="utf-8"))


def _tampered(saved: Path) -> str:
    return saved.read_text(encoding="utf-8").replace('"desired": 5', '"desired": 50', 1)


def _foreign_version(saved: Path) -> str:
    return saved.read_text(encoding="utf-8").replace('"format_version": 1', '"format_version": 2', 1)


def _truncated(saved: Path) -> str:
    text = saved.read_text(encoding="utf-8")
    return text[: len(text) // 2]


BAD_PLANS = [
    ("tampered", _tampered, "the plan was edited after it was written (digest mismatch)"),
    ("foreign-version", _foreign_version, "plan format_version 2 is not supported"),
    ("truncated", _truncated, "not a plan file: invalid JSON"),
]


@pytest.mark.parametrize(("edit", "message"), [c[1:] for c in BAD_PLANS], ids=[c[0] for c in BAD_PLANS])
def test_bad_plan_files_are_refused_by_show_and_apply(shop: Shop, saved: Path, edit, message: str) -> None:
    bad = saved.with_name("bad.json")
    bad.write_text(edit(saved), encoding="utf-8")
    assert bad.read_text(encoding="utf-8") != saved.read_text(encoding="utf-8")

    shown = run_cli("show", str(bad))
    applying = run_cli("-C", str(shop.root), "apply", str(bad))

    for result in (shown, applying):
        assert result.code == 1 and result.stdout == ""
        assert result.stderr.startswith(f"Error: {bad}") and message in result.stderr
        assert "make a new plan with `reconciler plan --out`" in result.stderr
        assert "Traceback" not in result.stderr
    assert requests_sent(shop.stock) == 0
    assert not (shop.root / ".reconciler" / "state.db").exists() or _no_runs(shop)


def _no_runs(shop: Shop) -> bool:
    return "No apply has run" in run_cli("-C", str(shop.root), "history").stdout


def test_a_plan_rewritten_with_a_fresh_digest_is_still_checked(shop: Shop, saved: Path) -> None:
    # Someone recomputes the digest after editing: the file is "valid", so what protects the
    # stock is the apply-time checks (desired files digest), not the plan file's digest.
    forged = dump_plan(dataclasses.replace(load_plan(saved), desired_digest="0" * 64))
    saved.write_text(forged, encoding="utf-8")

    result = run_cli("-C", str(shop.root), "apply", str(saved))

    assert result.code == 1 and "they changed since the plan was made" in result.stderr
    assert requests_sent(shop.stock) == 0
