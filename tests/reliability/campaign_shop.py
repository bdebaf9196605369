"""One vendor's shop for the reliability campaign: a real sandbox process, a real stock repository
in git, and the reconciler CLI driven as a user drives it.

The sandbox runs as ``reconciler sandbox serve`` on a free port; the test talks to its vendor
paths only through reconciler, and to its ``/_sandbox/`` control paths (faults, stock, sales,
requests) to inject faults and to learn the truth.
"""

from __future__ import annotations

import io
import json
import signal
import sqlite3
import subprocess
import sys
import uuid
from contextlib import closing, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import httpx
import yaml

from reconciler.cli import main
from reconciler.sandbox import simulator_class
from reconciler.sandbox._fixtures import build_fixtures
from reconciler.sandbox._process import SandboxProcess

TARGET = "shop"
TOKEN_ENV = "RECONCILER_CAMPAIGN_TOKEN"
NS = uuid.UUID("6c1f4a8e-3b7d-5e2a-9f10-2d8c4b6a0e11")
Position = tuple[str, str]  # (canonical location, SKU)


def _uid(*parts: object) -> str:
    return str(uuid.uuid5(NS, "/".join(map(str, parts))))


@dataclass(frozen=True)
class VendorSpec:
    """How the campaign lays out one vendor: how many locations and items, which ids."""

    kind: str
    locations: int
    items: int
    moves: bool  # the planner infers movements (several locations, a delta API)
    readable: bool
    verifiable: bool  # the vendor can tell whether an in-flight delta landed (X-Series: by reference)
    sandbox_options: Mapping[str, str] = field(default_factory=dict)
    target_options: Mapping[str, Any] = field(default_factory=dict)

    def location_id(self, n: int) -> str:
        if self.kind == "kaching":
            return f"stockloc-{n}"
        if self.kind == "runfree":
            return str(3 + 4 * n)  # store codes
        return _uid(self.kind, "location", n)

    def item_id(self, n: int) -> str | dict[str, str]:
        if self.kind in ("xseries", "lightspeed-supplier"):
            return _uid(self.kind, "item", n)
        if self.kind == "zettle":  # two variants per product
            return {"product": _uid("zettle-product", n // 2), "variant": _uid("zettle-variant", n)}
        if self.kind == "kaching":  # half with variants, half plain products
            return {"product": f"prod-{n // 2}", "variant": f"var-{n % 2}"} if n % 4 < 2 else {"product": f"plain-{n}"}
        return {"upc": str(849632000000 + n)}


SPECS = {
    "xseries": VendorSpec("xseries", 3, 140, moves=True, readable=True, verifiable=True,
                          sandbox_options={"rate_budget": "100000000"}),
    # the feed reads only through its unverified read path (`read_api: assumed`, target and sandbox)
    "lightspeed-supplier": VendorSpec("lightspeed-supplier", 1, 240, moves=False, readable=True, verifiable=False,
                                      sandbox_options={"read_api": "assumed"}, target_options={"read_api": "assumed"}),
    "zettle": VendorSpec("zettle", 1, 240, moves=False, readable=True, verifiable=False,
                         sandbox_options={"retry_after": "true"}),
    "kaching": VendorSpec("kaching", 3, 120, moves=True, readable=False, verifiable=False,
                          sandbox_options={"account": "acct", "integration": "queue", "delay": "0.01"},
                          target_options={"account": "acct", "integration": "queue"}),
    "runfree": VendorSpec("runfree", 2, 140, moves=False, readable=False, verifiable=False),
}


def _key(item: Any) -> str:
    return json.dumps(item, sort_keys=True) if isinstance(item, dict) else str(item)


@dataclass
class CliResult:
    code: int
    out: str
    err: str


class Shop:
    """A stock repository with one target, its sandbox process, and the CLI."""

    def __init__(self, spec: VendorSpec, root: Path, starting: Mapping[Position, int], scale: int = 1) -> None:
        self.spec, self.root = spec, root
        self.locations = [f"loc{n}" for n in range(spec.locations)]
        self.skus = [f"SKU-{n:04d}" for n in range(spec.items * scale)]
        self.loc_ids = {loc: spec.location_id(n) for n, loc in enumerate(self.locations)}
        self.item_ids = {sku: spec.item_id(n) for n, sku in enumerate(self.skus)}
        self._loc_of = {v: k for k, v in self.loc_ids.items()}
        self._sku_of = {_key(v): k for k, v in self.item_ids.items()}
        self.plans = root / "plans"
        self.plans.mkdir(parents=True)
        fixtures = build_fixtures(
            spec.kind, list(self.loc_ids.values()), list(self.item_ids.values()),
            lambda loc, item: starting[(self._loc_of[loc], self._sku_of[_key(item)])],
        )
        (root / "fixtures.json").write_text(json.dumps(fixtures), encoding="utf-8")
        self.sandbox = SandboxProcess(spec.kind, state=root / "sandbox.db", fixtures_path=root / "fixtures.json",
                                      seed=7, options=dict(spec.sandbox_options))
        self.http: httpx.Client | None = None
        self.n_plans = 0
        self._runs = 0

    # --- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> Shop:
        self.sandbox.__enter__()
        # No keep-alive: uvicorn closes idle connections after 5 s, and a request racing that close
        # fails with "Server disconnected" (the control client is the test's, not reconciler's).
        self.http = httpx.Client(base_url=self.sandbox.url, timeout=30,
                                 limits=httpx.Limits(max_keepalive_connections=0))
        self._write_repo()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.http:
            self.http.close()
        self.sandbox.__exit__(*exc)

    def _write_repo(self) -> None:
        token = simulator_class(self.spec.kind).default_token
        config = {
            "version": 1,
            "defaults": {"strategy": "merge", "prune": False, "infer_movements": True},
            # The campaign changes most positions at once and lets sales run into negatives.
            "guards": {"max_delete_share": 1.0, "allow_negative": True, "allow_missing_location": True,
                       "allow_mass_delete": True},
            "locations": {loc: {} for loc in self.locations},
            "targets": {TARGET: {"kind": self.spec.kind, "url": self.sandbox.url, "credentials_env": TOKEN_ENV,
                                 "locations": dict(self.loc_ids), **({"options": dict(self.spec.target_options)}
                                                                      if self.spec.target_options else {})}},
        }
        (self.root / "reconciler.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        (self.root / "stock").mkdir()
        catalog = {"items": {sku: {"ids": {TARGET: ids}} for sku, ids in self.item_ids.items()}}
        (self.root / "stock" / "catalog.yaml").write_text(yaml.safe_dump(catalog), encoding="utf-8")
        (self.root / ".reconciler").mkdir()
        # The credentials fallback `sandbox up` writes; the sandbox's default token is no secret.
        (self.root / ".reconciler" / "sandbox.env").write_text(f"{TOKEN_ENV}={token}\n", encoding="utf-8")
        (self.root / ".gitignore").write_text(".reconciler/\nplans/\nsandbox.db*\nfixtures.json\napply-*\n", encoding="utf-8")
        self._git("init", "-q")
        self._commit("catalog and targets")

    def _git(self, *args: str) -> None:
        subprocess.run(["git", "-c", "user.name=campaign", "-c", "user.email=campaign@example.invalid", *args],
                       cwd=self.root, check=True, capture_output=True)

    def _commit(self, message: str) -> None:
        self._git("add", "-A")
        self._git("commit", "-q", "--allow-empty", "-m", message)

    # --- desired state and the CLI -------------------------------------------------------------

    def write_desired(self, desired: Mapping[Position, int]) -> None:
        for loc in self.locations:
            items = {sku: qty for (l, sku), qty in sorted(desired.items()) if l == loc}
            doc = {"location": loc, "stock": {TARGET: items}}
            (self.root / "stock" / f"{loc}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        self._commit(f"desired stock {self.n_plans}")

    def cli(self, *args: str) -> CliResult:
        """The real entry point in this process (exit codes as a user sees them)."""
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            try:
                main(["-C", str(self.root), *args])
                code = 0
            except SystemExit as done:
                code = int(done.code or 0)
        return CliResult(code, out.getvalue(), err.getvalue())

    def plan(self) -> tuple[Path, dict[str, Any]]:
        self.n_plans += 1
        path = self.plans / f"plan-{self.n_plans:03d}.json"
        done = self.cli("plan", "--out", str(path))
        assert done.code == 0, done.err
        return path, json.loads(path.read_text(encoding="utf-8"))

    def apply_cmd(self, plan_path: Path) -> list[str]:
        return [sys.executable, "-m", "reconciler", "-C", str(self.root), "apply", str(plan_path), "--no-progress"]

    def start_apply(self, plan_path: Path) -> subprocess.Popen[bytes]:
        """`reconciler apply PLAN` as a process; its output goes to files (a pipe could fill up
        while the test polls), read back with :meth:`output`."""
        self._runs += 1
        logs = [open(self.root / f"apply-{self._runs}.{name}", "wb") for name in ("out", "err")]
        try:
            return subprocess.Popen(self.apply_cmd(plan_path), stdout=logs[0], stderr=logs[1], cwd=self.root)
        finally:
            for log in logs:
                log.close()

    def output(self) -> tuple[str, str]:
        """stdout and stderr of the last :meth:`start_apply`."""
        return tuple(  # type: ignore[return-value]
            (self.root / f"apply-{self._runs}.{name}").read_text(encoding="utf-8") for name in ("out", "err")
        )

    @staticmethod
    def kill(proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    # --- state (read only) ---------------------------------------------------------------------

    @property
    def state_path(self) -> Path:
        return self.root / ".reconciler" / "state.db"

    def journal(self, plan_id: str) -> dict[str, str]:
        """op id -> journal status of one plan (read-only SQL: it is polled while an apply runs).

        The connection is closed before this returns (``with sqlite3.connect()`` alone only
        commits; the connection lived on until the garbage collector ran). A connection of the
        test's kept open across a kill keeps SQLite from rebuilding the WAL index, so a commit the
        killed apply had written but not yet indexed (its ``finish_run``) stayed invisible to the
        next plan and surfaced only later: the plan was then refused as stale (serial + 1)."""
        if not self.state_path.exists():
            return {}
        try:
            with closing(sqlite3.connect(f"file:{self.state_path}?mode=ro", uri=True, timeout=10)) as conn:
                rows = conn.execute("SELECT op_id, status FROM journal WHERE plan_id = ?", (plan_id,)).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return {}  # the first apply has not created the journal yet
            raise  # anything else would read as "the journal changed" (or "not applied"): never guess
        return {op: status for op, status in rows}

    # --- the sandbox's truth (test-only control paths) -----------------------------------------

    def control(self, method: str, path: str, body: Any = None) -> Any:
        assert self.http is not None
        response = self.http.request(method, f"/_sandbox/{path}", json=body)
        response.raise_for_status()
        return response.json()

    def faults(self, **switches: Any) -> dict[str, Any]:
        return self.control("PUT", "faults", switches)

    def stock(self) -> dict[Position, int]:
        out: dict[Position, int] = {}
        for rec in self.control("GET", "stock")["stock"]:
            if rec.get("tracked") is False:
                continue
            out[(self._loc_of[rec["location"]], self._sku_of[_key(rec["item"])])] = int(rec["quantity"])
        return out

    def requests_served(self) -> int:
        return sum(self.control("GET", "requests").values())

    def sales(self) -> list[Position]:
        """Every unit sold so far, as the position it was sold from (each record is one unit)."""
        sold = self.control("GET", "sales")["sold"]
        return [(self._loc_of[s["location"]], self._sku_of[_key(s["item"])]) for s in sold]
