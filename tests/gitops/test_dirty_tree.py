"""A plan made from a working tree with uncommitted changes: made, said so, and applied only on
request (issue 6, point 4). Real git repository, real sandboxes, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitops_kit import Sandboxes, cli, example_root, git, reconciler, write_example

pytestmark = pytest.mark.timeout(120)
SENTENCE = "made from a working tree with uncommitted changes to the desired files"


def test_dirty_plan_is_marked_and_needs_allow_dirty(tmp_path: Path) -> None:
    with Sandboxes(example_root(tmp_path / "example")) as sandboxes:
        repo = tmp_path / "stock-repo"
        write_example(repo, sandboxes)
        git(repo, "init", "--quiet", "--initial-branch=main")
        git(repo, "add", ".")
        git(repo, "commit", "--quiet", "-m", "stock repository")
        commit = git(repo, "rev-parse", "HEAD")
        (repo / "plans" / "notes.txt").write_text("not a desired file\n")  # untracked, outside stock/
        clean = cli(repo, "plan", "--out", str(repo / "plans" / "clean.json"), env=sandboxes.env)
        assert clean.exit_code == 0 and "uncommitted" not in clean.output
        assert json.loads((repo / "plans" / "clean.json").read_text())["git_dirty"] is False

        oslo = repo / "stock" / "oslo.yaml"
        oslo.write_text(oslo.read_text().replace("CAP-BLACK: 20", "CAP-BLACK: 21"))
        text = cli(repo, "plan", "--out", str(repo / "plans" / "dirty.json"), env=sandboxes.env)
        unwrapped = " ".join(text.output.split())  # rich wraps the header line at the terminal width
        assert text.exit_code == 0
        assert f"from {commit} (made from a working tree with uncommitted changes to the desired files)" in unwrapped
        saved = json.loads((repo / "plans" / "dirty.json").read_text())
        assert saved["git_dirty"] is True and saved["git_commit"] == commit
        markdown = cli(repo, "show", str(repo / "plans" / "dirty.json"), "--format", "markdown", env=sandboxes.env)
        assert SENTENCE in markdown.output and "--allow-dirty" in markdown.output

        before = sandboxes.writes()
        refused = reconciler(repo, "apply", "plans/dirty.json", "--no-progress", env=sandboxes.env)
        assert refused.returncode == 1 and SENTENCE in refused.stderr and "--allow-dirty" in refused.stderr
        assert sandboxes.writes() == before  # refused before any request
        allowed = reconciler(repo, "apply", "plans/dirty.json", "--allow-dirty", "--no-progress", env=sandboxes.env)
        assert allowed.returncode == 0, allowed.stdout + allowed.stderr
        assert sum(sandboxes.writes().values()) > sum(before.values())
