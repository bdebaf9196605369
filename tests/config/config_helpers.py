"""The small valid repository the stock repository tests start from (see conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

BASE_CONFIG = """\
version: 1
locations:
  oslo: {}
  bergen: {}
targets:
  xs:
    kind: xseries
    url: http://127.0.0.1:8701
    credentials_env: XS_TOKEN
    locations: {oslo: "outlet-oslo", bergen: "outlet-bergen"}
  zt:
    kind: zettle
    url: http://127.0.0.1:8703
    credentials_env: ZT_TOKEN
    locations: {bergen: "store-uuid"}
"""

BASE_CATALOG = """\
items:
  RED-M:
    ids:
      xs: "p-red-m"
      zt: {product: "p1", variant: "v1"}
  BLUE-L:
    ids:
      xs: "p-blue-l"
"""

BASE_OSLO = """\
location: oslo
stock:
  xs:
    RED-M: 5
    BLUE-L: 3
"""

BASE_FILES = {
    "reconciler.yaml": BASE_CONFIG,
    "stock/catalog.yaml": BASE_CATALOG,
    "stock/oslo.yaml": BASE_OSLO,
}

RepoFactory = Callable[..., Path]
"""The config_repo fixture: files to replace (str/bytes) or remove (None) -> repository root."""


def write_repo(root: Path, files: dict[str, str | bytes | None] | None = None) -> Path:
    """The base repository at ``root`` with some files replaced (str/bytes) or removed (None)."""
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
