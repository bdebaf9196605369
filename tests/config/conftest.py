"""Fixtures for the stock repository tests: small repositories written into tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
from config_helpers import BASE_FILES, RepoFactory


@pytest.fixture
def config_repo(tmp_path: Path) -> RepoFactory:
    """Write the base repository with some files replaced (str/bytes) or removed (None)."""

    def make(files: dict[str, str | bytes | None] | None = None) -> Path:
        root = tmp_path / "repo"
        merged: dict[str, str | bytes | None] = {**BASE_FILES, **(files or {})}
        for rel, content in merged.items():
            if content is None:
                continue
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        root.mkdir(parents=True, exist_ok=True)
        return root

    return make
