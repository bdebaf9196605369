"""A stock repository in a real git repo whose target is the file-backed memory connector, and
the console script's own ``main`` run in-process (exit-code mapping and error printing included).

The memory target keeps its stock, every applied operation (``ops``) and every batch it received
(``requests``) in a SQLite file, so a test sees exactly what reached the "vendor".
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from click.testing import CliRunner

CATALOG = """\
items:
  RED-M: {ids: {shop: "RED-M"}}
  BLUE-L: {ids: {shop: "BLUE-L"}}
  CAP: {ids: {shop: "CAP"}}
  SOCK: {ids: {shop: "SOCK"}}
"""

OSLO = """\
location: oslo
stock:
  shop:
    RED-M: 5
    BLUE-L: 3
    CAP: 4
"""

BERGEN = """\
location: bergen
stock:
  shop:
    RED-M: 2
    SOCK: 6
"""



@dataclass(frozen=True)
class Shop:
    root: Path  # the stock repository (a git repo)
    stock: Path  # the memory target's SQLite file

    @property
    def state(self) -> Path:
        return self.root / ".reconciler" / "state.db"


def config(stock: Path, **options: object) -> str:
    extra = "".join(f", {k}: {_yaml(v)}" for k, v in options.items())
    return f"""\
version: 1
locations:
  oslo: {{}}
  bergen: {{}}
guards:
  max_delete_share: 0.5
targets:
  shop:
    kind: memory
    locations: {{oslo: "oslo", bergen: "bergen"}}
    options: {{path: "{stock}", max_batch: 1{extra}}}
"""


def _yaml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args],
        cwd=root, capture_output=True, text=True, check=True,
    )
    return done.stdout.strip()


def write(root: Path, files: Mapping[str, str | None]) -> None:
    for rel, text in files.items():
        path = root / rel
        if text is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def commit(root: Path, message: str = "change stock") -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


def make_repo(root: Path, stock: Path, files: Mapping[str, str | None] | None = None, **options: object) -> Path:
    """A committed stock repository with one memory target ``shop`` (oslo, bergen)."""
    root.mkdir(parents=True)
    write(root, {
        "reconciler.yaml": config(stock, **options), "stock/catalog.yaml": CATALOG,
        "stock/oslo.yaml": OSLO, "stock/bergen.yaml": BERGEN, ".gitignore": ".reconciler/\nplans/\n",
        **(files or {}),
    })
    git(root, "init", "-q")
    commit(root, "initial stock")
    return root


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str


def run_cli(*argv: str, input: str | None = None) -> Run:
    """``reconciler ARGV`` through ``reconciler.cli.main`` with click's test streams: stdin is the
    given text (never a terminal), stdout and stderr are kept apart."""
    from reconciler.cli import main

    runner = CliRunner()
    with runner.isolation(input=input) as (out, err, _):
        try:
            main(list(argv))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return Run(code, out.getvalue().decode(), err.getvalue().decode())


def run_process(root: Path, *argv: str, **kw: object) -> subprocess.CompletedProcess[str]:
    """``python -m reconciler -C ROOT ARGV`` in a real process."""
    return subprocess.run([sys.executable, "-m", "reconciler", "-C", str(root), *argv],
                          capture_output=True, text=True, timeout=120, **kw)  # type: ignore[call-overload]


# --- what the memory target saw ---------------------------------------------------------------


def _query(stock: Path, sql: str) -> list[tuple]:
    if not stock.exists():
        return []
    with closing(sqlite3.connect(stock)) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"stock", "ops", "requests"} <= tables:
            return []
        return conn.execute(sql).fetchall()


def shop_stock(stock: Path) -> dict[tuple[str, str], int]:
    return {(r[0], r[1]): int(r[2]) for r in _query(stock, "SELECT location, item, quantity FROM stock")}


def requests_sent(stock: Path) -> int:
    """Batches the target received: rejected ones included."""
    rows = _query(stock, "SELECT count(*) FROM requests")
    return int(rows[0][0]) if rows else 0


def reads_made(stock: Path) -> int:
    """Reads of the live stock the target answered."""
    rows = _query(stock, "SELECT count(*) FROM reads") if "reads" in _tables(stock) else []
    return int(rows[0][0]) if rows else 0


def _tables(stock: Path) -> set[str]:
    if not stock.exists():
        return set()
    with closing(sqlite3.connect(stock)) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def applied_ops(stock: Path) -> list[str]:
    return [r[0] for r in _query(stock, "SELECT op_id FROM ops ORDER BY seq")]


def sell(stock: Path, location: str, item: str, units: int) -> None:
    """A sale at the vendor, made outside reconciler."""
    with closing(sqlite3.connect(stock)) as conn, conn:  # commits, then closes
        conn.execute("UPDATE stock SET quantity = quantity - ? WHERE location = ? AND item = ?", [units, location, item])


DESIRED = {("oslo", "RED-M"): 5, ("oslo", "BLUE-L"): 3, ("oslo", "CAP"): 4, ("bergen", "RED-M"): 2, ("bergen", "SOCK"): 6}
