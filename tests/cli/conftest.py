"""Fixtures of the CLI tests: a committed memory-target stock repository in tmp_path."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
from cli_kit import Shop, make_repo


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("RECONCILER_STATE", "RECONCILER_REPO"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def shop_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Shop]:
    """Makes the repository and works inside it, as a user does: relative paths such as
    ``--out plans/p.json`` are relative to the working directory, not to ``-C``."""

    def make(files: dict[str, str | None] | None = None, **options: object) -> Shop:
        stock = tmp_path / "shop.sqlite"
        shop = Shop(make_repo(tmp_path / "repo", stock, files, **options), stock)
        monkeypatch.chdir(shop.root)
        return shop

    return make


@pytest.fixture
def shop(shop_factory: Callable[..., Shop]) -> Shop:
    return shop_factory()
