"""Fixtures for the stock repository tests: small repositories written into tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
from config_helpers import RepoFactory, write_repo


@pytest.fixture
def config_repo(tmp_path: Path) -> RepoFactory:
    """Write the base repository with some files replaced (str/bytes) or removed (None)."""

    def make(files: dict[str, str | bytes | None] | None = None) -> Path:
        return write_repo(tmp_path / "repo", files)

    return make
