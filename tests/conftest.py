"""Fixtures shared by every test folder (this folder is then on sys.path: `import example_repo`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from example_repo import example_root


@pytest.fixture
def example_repo(tmp_path: Path) -> Path:
    """A private copy of the committed example stock repository (never the checkout's stock/)."""
    return example_root(tmp_path / "example")
