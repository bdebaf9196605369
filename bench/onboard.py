"""Benchmark of onboarding a chain from its live account (issue 19): ``init --from`` and ``discover``.

    python bench/onboard.py --locations 50 --skus 20000 [--json onboard.json]

An X-Series sandbox process (real HTTP on loopback, request budget off, seeded straight into its
SQLite file as bench/run.py does) holds L outlets x S products with stock at every position.
Timed, in this process, through the library calls the CLI makes:
- ``init``: ``init --from xseries`` into a new folder: outlets, the product catalogue (paged by
  version), every live position (pages of 10,000), the files, and B recorded for every position;
- ``discover``: ``discover`` of a repository whose catalogue lists the S SKUs with no ids yet
  (read, match, report), and ``discover_write``: the same with ``--write`` (the in-place edit);
- ``noop_plan``: the first ``plan`` of the new repository (it must show no changes).
docs/performance.md, "Onboarding", has the figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _repo, _setup  # noqa: E402
from bench._measure import peak_rss_mb  # noqa: E402
from reconciler.discover import discover  # noqa: E402
from reconciler.discover._init import init_from  # noqa: E402
from reconciler.discover._match import Status  # noqa: E402
from reconciler.workflow import plan_project  # noqa: E402


def timed(name: str, fn: Callable[[], Any], out: dict[str, Any]) -> Any:
    started = time.perf_counter()
    value = fn()
    out[name] = round(time.perf_counter() - started, 2)
    print(f"{name}: {out[name]:.2f} s", file=sys.stderr)
    return value


def unmapped_copy(shop: Path, into: Path) -> Path:
    """The new repository with its ids taken out: SKUs and locations by name only."""
    shutil.copytree(shop, into, ignore=shutil.ignore_patterns(".reconciler", "stock"))
    (into / "stock").mkdir()
    skus = [line[2:-1] for line in (shop / "stock" / "catalog.yaml").read_text().splitlines()
            if line.startswith("  ") and not line.startswith("   ") and line.endswith(":")]
    (into / "stock" / "catalog.yaml").write_text("# the chain's SKUs, ids to be discovered\nitems:\n"
                                                  + "".join(f"  {sku}: {{}}\n" for sku in skus))
    config = (into / "reconciler.yaml").read_text()
    (into / "reconciler.yaml").write_text(config.split("    locations:")[0] + "    locations: {}\n")
    return into


def run(locations: int, skus: int) -> dict[str, Any]:
    spec = _repo.RepoSpec(locations, skus, "xseries")
    qty = _repo.quantities(spec)
    res: dict[str, Any] = {"locations": locations, "skus": skus, "positions": spec.positions}
    with tempfile.TemporaryDirectory() as tmp, _setup.xseries_sandbox(Path(tmp), spec, qty) as sandbox:
        env, shop = _setup.env(), Path(tmp) / "shop"
        stages: dict[str, float] = {}
        clock = [time.perf_counter()]

        def stage(what: str, _units: int) -> None:  # where init's time goes, stage by stage
            now = time.perf_counter()
            stages[what.split(" ")[0] + " " + what.split(" ")[-1]] = round(now - clock[0], 2)
            clock[0] = now

        made = timed("init", lambda: init_from(shop, "xseries", sandbox.url, name=_repo.XS_TARGET,
                                               credentials_env=_repo.XS_TOKEN_ENV, options={"page_size": 10000},
                                               env=env, progress=stage), res)
        res["init_stages"] = stages
        assert made.imported is not None and made.imported.recorded == spec.positions, made.summary()
        bare = unmapped_copy(shop, Path(tmp) / "bare")
        found = timed("discover", lambda: discover(bare, _repo.XS_TARGET, env=env), res)
        assert sum(r.status is Status.MATCHED for r in found.items) == skus, found.summary()
        timed("discover_write", lambda: discover(bare, _repo.XS_TARGET, write=True, env=env), res)
        plan = timed("noop_plan", lambda: plan_project(shop, env=env), res)
        assert not plan.changes, f"{len(plan.changes)} changes in the first plan"
    res["peak_rss_mb"] = round(peak_rss_mb(), 0)
    return res


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--locations", type=int, default=50)
    parser.add_argument("--skus", type=int, default=20_000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    res = run(args.locations, args.skus)
    print(json.dumps(res, indent=2))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
