"""The reconciler benchmark: validate, plan, no-op plan and apply at L locations x S SKUs.

    python bench/run.py --locations 200 --skus 5000 --json bench-1m.json --repeat 3

What runs where (docs/performance.md has the reasoning and the results):
- validate, plan and the no-op plan read a generated repository of L x S positions for one
  X-Series target, whose sandbox runs as a real HTTP server in another process (X-Series is
  readable and multi-location, so one target holds a whole chain);
- apply sends --apply-ops adjustments to a Ka-ching sandbox process (it takes batches of 500
  deltas per request), with the journal on, from a saved plan, as `reconciler apply` does.
Everything is measured in this process: wall and CPU seconds (median over --repeat), peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/run.py`: make `bench` and `reconciler` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _repo, _setup  # noqa: E402
from bench._measure import Stage, measure, peak_rss_mb  # noqa: E402
from reconciler.config.loader import load  # noqa: E402
from reconciler.model import OpKind  # noqa: E402
from reconciler.planfile import load_plan, save_plan  # noqa: E402
from reconciler.workflow import apply_saved_plan, plan_project  # noqa: E402

KC_SKUS = 500  # SKUs per location in the apply repository: one Ka-ching request per location


class BenchError(RuntimeError):
    """A stage did not do what the benchmark expects (so its timing would mean nothing)."""


@dataclass
class Bench:
    locations: int
    skus: int
    repeat: int = 3
    apply_ops: int = 10_000
    profile: Path | None = None
    seed: int = 7
    server_pid: int | None = None  # the sandbox serving the stages being timed
    stages: dict[str, Stage] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)

    def stage(self, name: str) -> Stage:
        return self.stages.setdefault(name, Stage(name))

    def timed(self, name: str, fn: Any) -> list[Any]:
        """``repeat`` measured runs of ``fn``, plus one profiled run when --profile is given."""
        results = [measure(self.stage(name), fn, server_pid=self.server_pid) for _ in range(self.repeat)]
        if self.profile is not None:
            measure(self.stage(name), fn, self.profile / f"{name}-{self.locations * self.skus}")
        return results


def run_plan_stages(bench: Bench, work: Path) -> None:
    spec = _repo.RepoSpec(bench.locations, bench.skus, "xseries", bench.seed)
    qty = _repo.quantities(spec)
    with _setup.xseries_sandbox(work, spec, qty) as sandbox:
        root = work / "repo"
        _repo.write_repo(root, spec, sandbox.url)
        bench.server_pid = sandbox.pid
        env, out = _setup.env(), work / "plan.json"

        def validate() -> None:
            loaded = load(root)
            if loaded.problems or len(loaded.desired.positions) != spec.positions:
                raise BenchError(f"validate: {len(loaded.problems)} problem(s), e.g. {loaded.problems[:1]}")

        def plan(expected: int) -> Any:
            made = plan_project(root, env=env)
            save_plan(made, out)
            if len(made.changes) != expected:
                raise BenchError(f"plan: {len(made.changes)} changes, expected {expected}")
            return made

        bench.timed("validate", validate)
        # First plan of a chain: B is empty, so every position is adopted (a reset to D).
        bench.timed("plan", lambda: plan(spec.positions))
        bench.facts["plan_file_mb"] = round(out.stat().st_size / 2**20, 1)
        # As if that plan had been applied: B = D = A, so nothing changes.
        _setup.seed_base(root / ".reconciler" / "state.db", spec, qty)
        bench.timed("noop_plan", lambda: plan(0))
        bench.server_pid = None


def run_apply_stage(bench: Bench, work: Path) -> None:
    skus = min(KC_SKUS, bench.apply_ops)
    spec = _repo.RepoSpec(max(1, bench.apply_ops // skus), skus, "kaching", bench.seed)
    bench.facts["apply_ops"] = spec.positions
    with _setup.kaching_sandbox(work, spec) as sandbox:
        root = work / "apply-repo"
        qty = _repo.write_repo(root, spec, sandbox.url)
        env, out = _setup.env(), work / "apply-plan.json"

        def plan_and_save(kind: OpKind) -> Path:
            made = plan_project(root, env=env)
            if len(made.changes) != spec.positions or any(op.kind is not kind for op in made.changes):
                raise BenchError(f"apply: the plan has {len(made.changes)} changes, not {spec.positions} {kind}s")
            save_plan(made, out)
            return out

        def apply() -> None:
            report = apply_saved_plan(root, load_plan(out), env=env)
            applied = sum(1 for r in report.ops if r.status == "applied")
            if applied != spec.positions:
                raise BenchError(f"apply: {applied} of {spec.positions} operations applied ({report.plan_status})")

        plan_and_save(OpKind.RESET)
        measure(bench.stage("adopt_apply"), apply)  # the first apply: resets; sets B
        for bump in range(1, bench.repeat + 1 + (bench.profile is not None)):
            _repo.rewrite_stock(root, spec, qty, bump)
            plan_and_save(OpKind.ADJUST)
            profile = bench.profile / f"apply-{spec.positions}" if bench.profile and bump > bench.repeat else None
            measure(bench.stage("apply"), apply, profile)


def machine() -> dict[str, Any]:
    model = ""
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor()
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "load_avg_1m": round(os.getloadavg()[0], 2)}


def result(bench: Bench) -> dict[str, Any]:
    positions = bench.locations * bench.skus
    out: dict[str, Any] = {"positions": positions, "locations": bench.locations, "skus": bench.skus,
                           "repeat": bench.repeat}
    for name in ("validate", "plan", "noop_plan", "apply", "adopt_apply"):
        stage = bench.stages.get(name)
        if stage is None or not stage.wall:
            continue
        out[f"{name}_s"] = round(stage.wall_s, 3)
        out[f"{name}_cpu_s"] = round(stage.cpu_s, 3)
        out[f"{name}_peak_rss_mb"] = round(stage.peak_rss_mb, 1)
        if stage.server_cpu_s is not None:
            out[f"{name}_sandbox_cpu_s"] = round(stage.server_cpu_s, 3)
        count = bench.facts.get("apply_ops", 0) if "apply" in name else positions
        out[f"{name}_us_per_position"] = round(stage.wall_s / max(1, count) * 1e6, 2)
    out["apply_ops"] = bench.facts.get("apply_ops", 0)
    out["peak_rss_mb"] = round(max([peak_rss_mb()] + [s.peak_rss_mb for s in bench.stages.values()]), 1)
    out.update({k: v for k, v in bench.facts.items() if k != "apply_ops"})
    out["machine"] = machine()
    out["command"] = " ".join(["python", "bench/run.py", *sys.argv[1:]])
    return out


def render(res: dict[str, Any]) -> str:
    lines = [f"{res['positions']:,} positions ({res['locations']} locations x {res['skus']} SKUs), "
             f"median of {res['repeat']}; apply: {res['apply_ops']:,} adjustments",
             f"{'stage':<12}{'wall s':>9}{'cpu s':>9}{'us/pos':>9}{'peak RSS MB':>13}{'sandbox cpu s':>15}"]
    for name in ("validate", "plan", "noop_plan", "adopt_apply", "apply"):
        if f"{name}_s" in res:
            sandbox = res.get(f"{name}_sandbox_cpu_s")
            lines.append(f"{name:<12}{res[name + '_s']:>9.3f}{res[name + '_cpu_s']:>9.3f}"
                         f"{res[name + '_us_per_position']:>9.2f}{res[name + '_peak_rss_mb']:>13.1f}"
                         f"{'' if sandbox is None else format(sandbox, '.3f'):>15}")
    m = res["machine"]
    lines.append(f"peak RSS {res['peak_rss_mb']} MB; {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, "
                 f"load average {m['load_avg_1m']} at the end")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--locations", type=int, required=True)
    parser.add_argument("--skus", type=int, required=True)
    parser.add_argument("--json", type=Path, help="write the result here")
    parser.add_argument("--repeat", type=int, default=3, help="measured runs per stage (median)")
    parser.add_argument("--apply-ops", type=int, default=10_000, help="adjustments to apply (0: skip)")
    parser.add_argument("--profile", type=Path, help="write a pyinstrument profile per stage to this folder")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.locations < 1 or args.skus < 1 or args.repeat < 1 or args.apply_ops < 0:
        parser.error("--locations, --skus and --repeat must be at least 1, --apply-ops at least 0")
    os.environ.pop("RECONCILER_STATE", None)  # the generated repositories keep their own state
    bench = Bench(args.locations, args.skus, args.repeat, args.apply_ops, args.profile, args.seed)
    with tempfile.TemporaryDirectory(prefix="reconciler-bench-") as tmp:
        run_plan_stages(bench, Path(tmp))
        if args.apply_ops:
            run_apply_stage(bench, Path(tmp))
    res = result(bench)
    print(render(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
