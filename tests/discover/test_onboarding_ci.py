"""docs/onboarding.md end to end: init --from an X-Series sandbox, push to a (bare) remote, seed
the state branch with the adopted state, and CI's own state step + plan find nothing to change."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from discover_kit import XS_TOKEN_ENV, xs_fixtures
from gitops_kit import STATE_SCRIPT, ci_env, clone, git, reconciler, run_state
from reconciler.sandbox._core import ServerThread
from reconciler.sandbox.xseries import XSeriesSimulator


def test_init_push_seed_then_ci_plans_no_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {XS_TOKEN_ENV: XSeriesSimulator.default_token}
    with ServerThread(XSeriesSimulator(fixtures=xs_fixtures(5), rate_budget=0)) as xs:
        shop = tmp_path / "shop"
        done = reconciler(tmp_path, "init", str(shop), "--from", "xseries", "--url", xs.url, "--name", "xs",
                          "--credentials-env", XS_TOKEN_ENV, env=env)
        assert done.returncode == 0, done.stderr
        remote = tmp_path / "remote.git"
        git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(remote))
        git(shop, "init", "--quiet", "--initial-branch=main")
        git(shop, "add", ".")
        assert ".reconciler/state.db" not in git(shop, "status", "--short")  # .gitignore keeps the state out
        git(shop, "commit", "--quiet", "-m", "stock repository from init --from")
        git(shop, "remote", "add", "origin", str(remote))
        git(shop, "push", "--quiet", "origin", "main")
        seeded = subprocess.run(["bash", STATE_SCRIPT, "seed"], cwd=shop, capture_output=True, text=True,
                                env=ci_env(tmp_path), timeout=60)
        assert seeded.returncode == 0, seeded.stderr
        again = subprocess.run(["bash", STATE_SCRIPT, "seed"], cwd=shop, capture_output=True, text=True,
                               env=ci_env(tmp_path), timeout=60)
        assert again.returncode == 1 and "exists already" in again.stderr
        ci = clone(remote, tmp_path / "ci")
        restored, _ = run_state("read", ci, tmp_path)
        assert restored.returncode == 0, restored.stderr
        plan = reconciler(ci, "plan", "--state", ".reconciler/state.db", "--detailed-exitcode", env=env)
        assert plan.returncode == 0, plan.stdout + plan.stderr  # CI's first plan: no changes
