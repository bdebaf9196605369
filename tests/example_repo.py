"""A private copy of the project's example stock repository for tests.

Tests never read the checkout's ``stock/`` as it stands on disk: the quickstart invites a user to
edit ``stock/oslo.yaml``, and that must not change what the tests see. The copy is the committed
version (``git archive HEAD``); outside a git checkout (an unpacked sdist), the files on disk.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_FILES = ("reconciler.yaml", "stock")


def example_root(dest: Path) -> Path:
    """Write the committed example (reconciler.yaml, stock/) into ``dest`` and return it."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", "HEAD", *EXAMPLE_FILES],
                             capture_output=True, timeout=60, check=False)
    if archive.returncode == 0:
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True, timeout=60)
    else:
        for name in EXAMPLE_FILES:
            if (ROOT / name).is_dir():
                shutil.copytree(ROOT / name, dest / name)
            else:
                shutil.copy(ROOT / name, dest / name)
    return dest
