"""Quiet surprises made loud (issue 21, points 5 and 7): a new or missing state is announced,
`--state` works on every command that opens one, `import` will not write a local state that CI
never reads, `targets --compare-with` guards endpoints, and text output follows the terminal
width (never wrapping a table row) or gives plain lines without a terminal."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from cli_kit import OSLO, Shop, commit, run_cli, shop_stock, write

NEW_STATE = "no state at {}: a new, empty state was created and every position will be adopted"


def cli(shop: Shop, *args: str):  # type: ignore[no-untyped-def]
    return run_cli("-C", str(shop.root), *args)


def test_a_missing_or_empty_state_is_announced_once_something_is_applied_no_more(shop: Shop) -> None:
    first = cli(shop, "plan")
    assert first.code == 0 and "warning: " + NEW_STATE.format(shop.state) in first.stdout
    second = cli(shop, "plan", "--format", "markdown", "--out", "plans/p.json")  # the PR comment says it too
    assert f"the state at {shop.state} is new (nothing applied yet): every position will be adopted" in second.stdout
    assert cli(shop, "apply", "plans/p.json").code == 0
    after = cli(shop, "plan")
    assert "every position will be adopted" not in after.stdout and after.stdout.startswith("Plan: no changes")


def test_state_option_on_plan_apply_drift_and_history(shop: Shop, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.db"
    made = cli(shop, "plan", "--state", str(other), "--out", "plans/p.json")
    assert made.code == 0 and f"no state at {other}" in made.stdout
    assert other.exists() and not (shop.root / ".reconciler" / "state.db").exists()

    # the default state is missing: a saved plan is refused, nothing sent, nothing created
    refused = cli(shop, "apply", "plans/p.json")
    assert refused.code == 1 and f"no state at {shop.state}, but plan" in refused.stderr
    assert shop_stock(shop.stock) == {} and not (shop.root / ".reconciler" / "state.db").exists()

    applied = cli(shop, "apply", "plans/p.json", "--state", str(other))
    assert applied.code == 0, applied.stderr
    assert cli(shop, "history", "--state", str(other)).stdout.count("\n") >= 2
    assert cli(shop, "plan", "--state", str(other), "--detailed-exitcode").code == 0

    # drift reads B from the state named, and never creates one where there is none
    assert cli(shop, "drift", "--state", str(other), "--detailed-exitcode").code == 0
    nothing = cli(shop, "drift", "--detailed-exitcode")
    assert nothing.code == 0 and f"note: no state at {shop.state}: nothing was applied" in nothing.stderr
    assert not (shop.root / ".reconciler" / "state.db").exists()


CI_WORKFLOW = "jobs:\n  apply:\n    steps:\n      - run: bash .github/scripts/reconciler-state.sh claim\n"


def test_import_refuses_a_local_state_where_ci_keeps_the_state_on_its_branch(shop: Shop) -> None:
    assert cli(shop, "plan", "--out", "plans/p.json").code == 0 and cli(shop, "apply", "plans/p.json").code == 0
    shutil.rmtree(shop.root / ".reconciler")  # a fresh clone: the state is on the branch, not here
    write(shop.root, {".github/workflows/reconciler-apply.yml": CI_WORKFLOW})
    commit(shop.root, "the GitOps workflows")
    before = (shop.root / "stock" / "oslo.yaml").read_text(encoding="utf-8")

    refused = cli(shop, "import", "--target", "shop")
    assert refused.code == 1
    assert (f"refusing to record the import in the local state {shop.state}: this repository's CI keeps its "
            "state elsewhere (.github/workflows/reconciler-apply.yml runs reconciler-state.sh") in refused.stderr
    assert "--no-state" in refused.stderr and "--local-state" in refused.stderr
    assert (shop.root / "stock" / "oslo.yaml").read_text(encoding="utf-8") == before  # nothing written
    assert not (shop.root / ".reconciler" / "state.db").exists()

    yaml_only = cli(shop, "import", "--target", "shop", "--no-state")
    assert yaml_only.code == 0 and "Recorded" not in yaml_only.stdout
    assert not (shop.root / ".reconciler" / "state.db").exists()
    told = cli(shop, "import", "--target", "shop", "--local-state")
    assert told.code == 0 and "Recorded" in told.stdout and (shop.root / ".reconciler" / "state.db").exists()


def test_targets_compare_with_names_a_moved_or_new_endpoint(shop: Shop, tmp_path: Path) -> None:
    base = tmp_path / "base"
    shutil.copytree(shop.root, base)
    same = cli(shop, "targets", "--compare-with", str(base))
    assert same.code == 0 and same.stdout.startswith("shop: memory - credentials_env - (readable)")
    text = (shop.root / "reconciler.yaml").read_text(encoding="utf-8")
    write(shop.root, {"reconciler.yaml": text.replace("kind: memory", "kind: memory\n    url: http://127.0.0.1:9")})
    moved = cli(shop, "targets", "--compare-with", str(base))
    assert moved.code == 1 and "target shop: url None -> http://127.0.0.1:9" in moved.stderr
    # pacing and locations are harmless; options (where a kind may read a host from) are not
    write(shop.root, {"reconciler.yaml": text.replace("max_batch: 1", "max_batch: 1, token_url: http://x.test")
                      .replace("kind: memory", "kind: memory\n    rate_limit: 5")})
    options = cli(shop, "targets", "--compare-with", str(base))
    assert options.code == 1 and "1 target endpoint(s) differ" in options.stderr and "target shop: options" in options.stderr


# --- text output and the terminal ----------------------------------------------------------------

LONG_REASON = "adopt: first time this tool manages it"


def _long_names(shop: Shop) -> None:
    write(shop.root, {"stock/oslo.yaml": OSLO.replace("CAP: 4", "CAP: 4\n    SOCK: 1")})


@pytest.mark.parametrize("columns", [80, 100])
def test_text_follows_columns_and_never_wraps_a_table_row(shop: Shop, monkeypatch: pytest.MonkeyPatch,
                                                          columns: int) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    out = cli(shop, "plan").stdout
    rows = [line for line in out.splitlines() if line.startswith("\u2502")]
    assert rows and all(len(line) <= columns for line in out.splitlines()), out
    # one line per operation: every row names its item and its kind
    assert sorted(re.findall(r"^\u2502 (\w+)\s+\u2502 ([\w-]+)", out, re.M)) == sorted(
        [("reset", "BLUE-L"), ("reset", "CAP"), ("reset", "RED-M"), ("reset", "RED-M"), ("reset", "SOCK")])


def test_a_wide_terminal_gets_whole_reasons_and_a_log_gets_plain_lines(shop: Shop,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "220")
    wide = cli(shop, "plan").stdout
    assert LONG_REASON in wide and "Reasons are cut" not in wide
    monkeypatch.delenv("COLUMNS")
    log = cli(shop, "plan").stdout  # standard output is not a terminal: no table, no width
    assert "\u2502" not in log and "\u2500" not in log
    lines = [line for line in log.splitlines() if line.startswith("  reset ")]
    assert len(lines) == 5 and all(LONG_REASON in line for line in lines)
    assert "  reset RED-M at oslo: A 0, B \u2014, D 5, change +5, expected 5; adopt" in log
