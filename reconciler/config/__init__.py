"""The stock repository: reconciler.yaml, stock/catalog.yaml and the location files.

``load_project(root)`` reads and checks everything and returns a :class:`Project`, or raises
:class:`~reconciler.errors.ConfigError` holding every problem found (never only the first).
``validate_project(root)`` returns the problems instead. The format is in docs/configuration.md.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.config._stock import CATALOG_FILE, CatalogItem
from reconciler.config.loader import Loaded, combined_digest, load, stock_files
from reconciler.config.project import DEFAULT_STATE, SANDBOX_ENV_FILE, STATE_ENV, Project, read_env_file
from reconciler.config.schema import CONFIG_FILE, RepoConfig, TargetConfig
from reconciler.errors import ConfigError, Problem

__all__ = [
    "CATALOG_FILE",
    "CONFIG_FILE",
    "DEFAULT_STATE",
    "SANDBOX_ENV_FILE",
    "STATE_ENV",
    "CatalogItem",
    "Problem",
    "Project",
    "RepoConfig",
    "TargetConfig",
    "Loaded",
    "combined_digest",
    "load",
    "load_project",
    "read_env_file",
    "stock_files",
    "validate_project",
]


def load_project(root: str | Path, *, stock: bool = True) -> Project:
    """The valid repository at ``root``; raises ConfigError with every problem otherwise.
    ``stock=False``: location files hashed, not read (see :func:`load`)."""
    loaded = load(root, stock=stock)
    if loaded.problems or loaded.config is None:
        raise ConfigError(loaded.problems)
    return Project(
        root=loaded.root,
        config=loaded.config,
        catalog=loaded.catalog,
        desired=loaded.desired,
        stock_files=loaded.stock_files,
        config_data=loaded.config_data,
    )


def validate_project(root: str | Path) -> list[Problem]:
    """Every problem in the repository at ``root``; empty when it is valid."""
    return load(root).problems
