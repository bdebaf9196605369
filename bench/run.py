"""The reconciler benchmark: validate, plan, no-op plan and apply at L locations x S SKUs.

    python bench/run.py --locations 200 --skus 5000 --json bench-1m.json --repeat 3 \
        [--changed 1000] [--multi-apply-ops 100000] [--baseline e404c81 --baseline-dir ../perf-baseline]

What runs where (docs/performance.md has the reasoning and the results):
- validate, plan and the no-op plan read a generated repository of L x S positions for one
  X-Series target, whose sandbox runs as a real HTTP server in another process (X-Series is
  readable and multi-location, so one target holds a whole chain);
- apply sends --apply-ops adjustments to a Ka-ching sandbox process (it takes batches of 500
  deltas per request), with the journal on, from a saved plan, as `reconciler apply` does;
  apply_multi sends --multi-apply-ops across --multi-targets Ka-ching targets (one sandbox each);
- floor does the least work any first plan must do (bench/_floor.py); changed_plan is the no-op
  plan after --changed N live records changed (sales and receipts) since the last read;
- --baseline REF runs REF's own bench/run.py with the same sizes first (bench/_baseline.py).
Everything is measured in this process: wall and CPU seconds (median over --repeat), peak RSS,
and the load average when each stage starts (the machine is shared).
"""

from __future__ import annotations

import argparse
import contextlib
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

from bench import _baseline, _floor, _repo, _setup  # noqa: E402
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
    changed: int = 0
    multi_apply_ops: int = 0
    multi_targets: int = 5
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
            if loaded.problems or loaded.position_count != spec.positions:
                raise BenchError(f"validate: {len(loaded.problems)} problem(s), e.g. {loaded.problems[:1]}")

        def plan(expected: int, *, refresh: bool = True, read: str = "read in full") -> Any:
            # refresh: read live stock in full (the snapshot kept by the previous plan unused)
            made = plan_project(root, env=env, refresh=refresh)
            if not any(read in note for note in made.notes):
                raise BenchError(f"plan: live stock not {read!r}: {made.notes}")
            save_plan(made, out)
            if len(made.changes) != expected:
                raise BenchError(f"plan: {len(made.changes)} changes, expected {expected}")
            return made

        bench.timed("validate", validate)
        floor_out = work / "floor-plan.json"

        def floor() -> None:
            parts = _floor.run_floor(root, sandbox.url, _setup.XS_TOKEN, floor_out)
            if parts["operations"] != spec.positions or parts["records"] != spec.positions:
                raise BenchError(f"floor: {parts['operations']} operations from {parts['records']} records, "
                                 f"expected {spec.positions}")
            bench.facts.setdefault("floor_parts", []).append(parts)

        bench.timed("floor", floor)
        bench.facts["floor_plan_file_mb"] = round(floor_out.stat().st_size / 2**20, 1)
        # First plan of a chain: B is empty, so every position is adopted (a reset to D).
        bench.timed("plan", lambda: plan(spec.positions))
        bench.facts["plan_file_mb"] = round(out.stat().st_size / 2**20, 1)
        # As if that plan had been applied: B = D = A, so nothing changes.
        _setup.seed_base(root / ".reconciler" / "state.db", spec, qty)
        bench.timed("noop_plan", lambda: plan(0))
        # The day-to-day plan: nothing desired changed, N live records did since the last read.
        for round_ in range(bench.repeat if bench.changed else 0):
            _setup.change_records(work / "xseries.db", spec, bench.changed, round_)
            measure(bench.stage("changed_plan"), lambda: plan(0, refresh=False, read="read incrementally"),
                    server_pid=bench.server_pid)
        bench.server_pid = None


def run_apply_stage(bench: Bench, work: Path, ops: int, targets: int = 1, name: str = "apply") -> None:
    """``ops`` adjustments over ``targets`` Ka-ching targets (one sandbox process each), journal on."""
    skus = min(KC_SKUS, ops)
    spec = _repo.RepoSpec(max(1, ops // (skus * targets)), skus, "kaching", bench.seed, targets)
    bench.facts[f"{name}_ops"] = spec.positions
    bench.facts[f"{name}_targets"] = targets
    with contextlib.ExitStack() as stack:
        sandboxes = [stack.enter_context(_setup.kaching_sandbox(work, spec, t)) for t in range(targets)]
        root = work / f"{name}-repo"
        qty = _repo.write_repo(root, spec, [s.url for s in sandboxes])
        env, out = _setup.env(), work / f"{name}-plan.json"

        def plan_and_save(kind: OpKind) -> Path:
            made = plan_project(root, env=env)
            if len(made.changes) != spec.positions or any(op.kind is not kind for op in made.changes):
                raise BenchError(f"{name}: the plan has {len(made.changes)} changes, not {spec.positions} {kind}s")
            save_plan(made, out)
            return out

        def apply() -> None:
            report = apply_saved_plan(root, load_plan(out), env=env)
            applied = sum(1 for r in report.ops if r.status == "applied")
            if applied != spec.positions:
                raise BenchError(f"{name}: {applied} of {spec.positions} operations applied ({report.plan_status})")

        # The Ka-ching sandboxes' CPU is reported apart (sandbox cpu s): it is in the wall time,
        # and on 2 cores several sandboxes compete with the applier, but it is not reconciler's.
        pids = [s.pid for s in sandboxes]
        plan_and_save(OpKind.RESET)
        measure(bench.stage(f"adopt_{name}"), apply, server_pid=pids)  # the first apply: resets; sets B
        for bump in range(1, bench.repeat + 1 + (bench.profile is not None)):
            _repo.rewrite_stock(root, spec, qty, bump)
            plan_and_save(OpKind.ADJUST)
            profile = bench.profile / f"{name}-{spec.positions}" if bench.profile and bump > bench.repeat else None
            measure(bench.stage(name), apply, profile, server_pid=pids)


def machine() -> dict[str, Any]:
    model = ""
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor()
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "load_avg_1m": round(os.getloadavg()[0], 2)}


STAGES = ("validate", "floor", "plan", "noop_plan", "changed_plan", "adopt_apply", "apply",
          "adopt_apply_multi", "apply_multi")


def result(bench: Bench) -> dict[str, Any]:
    positions = bench.locations * bench.skus
    out: dict[str, Any] = {"positions": positions, "locations": bench.locations, "skus": bench.skus,
                           "repeat": bench.repeat, "changed": bench.changed}
    for name in STAGES:
        stage = bench.stages.get(name)
        if stage is None or not stage.wall:
            continue
        out[f"{name}_s"] = round(stage.wall_s, 3)
        out[f"{name}_cpu_s"] = round(stage.cpu_s, 3)
        out[f"{name}_peak_rss_mb"] = round(stage.peak_rss_mb, 1)
        out[f"{name}_load"] = round(max(stage.load), 2)
        if stage.server_cpu_s is not None:
            out[f"{name}_sandbox_cpu_s"] = round(stage.server_cpu_s, 3)
        count = bench.facts.get("apply_multi_ops" if "multi" in name else "apply_ops", 0) if "apply" in name else positions
        out[f"{name}_us_per_position"] = round(stage.wall_s / max(1, count) * 1e6, 2)
    out["apply_ops"] = bench.facts.get("apply_ops", 0)
    out["peak_rss_mb"] = round(max([peak_rss_mb()] + [s.peak_rss_mb for s in bench.stages.values()]), 1)
    parts = bench.facts.pop("floor_parts", [])
    out.update({k: v for k, v in bench.facts.items() if k != "apply_ops"})
    if parts:
        out["floor_parts_s"] = {k: round(sorted(p[k] for p in parts)[len(parts) // 2], 3)
                                for k in ("fetch_s", "parse_s", "plan_write_s")}
        out["floor_yaml_parser"] = parts[0]["yaml_parser"]
    out["ratios"] = _ratios(out)
    out["machine"] = machine()
    out["command"] = " ".join(["python", "bench/run.py", *sys.argv[1:]])
    return out


def _ratios(out: dict[str, Any]) -> dict[str, float]:
    """The issue-22 ratios measured within this run."""
    pairs = {"plan_over_floor": ("plan_s", "floor_s"), "changed_over_noop": ("changed_plan_s", "noop_plan_s"),
             "apply_multi_per_op_over_apply": ("apply_multi_us_per_position", "apply_us_per_position")}
    ratios = {k: round(out[a] / out[b], 3) for k, (a, b) in pairs.items() if out.get(a) and out.get(b)}
    # the same in reconciler's own CPU per operation (all its threads), without the sandboxes'
    if out.get("apply_multi_cpu_s") and out.get("apply_cpu_s") and out.get("apply_multi_ops") and out.get("apply_ops"):
        ratios["apply_multi_cpu_per_op_over_apply"] = round(
            (out["apply_multi_cpu_s"] / out["apply_multi_ops"]) / (out["apply_cpu_s"] / out["apply_ops"]), 3)
    return ratios


def render(res: dict[str, Any]) -> str:
    lines = [f"{res['positions']:,} positions ({res['locations']} locations x {res['skus']} SKUs), "
             f"median of {res['repeat']}; apply: {res['apply_ops']:,} adjustments"
             + (f"; apply_multi: {res['apply_multi_ops']:,} over {res['apply_multi_targets']} targets"
                if res.get("apply_multi_ops") else "")
             + (f"; changed_plan: {res['changed']:,} records changed" if res.get("changed") else ""),
             f"{'stage':<18}{'wall s':>9}{'cpu s':>9}{'us/pos':>9}{'peak RSS MB':>13}{'sandbox cpu s':>15}{'load':>7}"]
    for name in STAGES:
        if f"{name}_s" in res:
            sandbox = res.get(f"{name}_sandbox_cpu_s")
            lines.append(f"{name:<18}{res[name + '_s']:>9.3f}{res[name + '_cpu_s']:>9.3f}"
                         f"{res[name + '_us_per_position']:>9.2f}{res[name + '_peak_rss_mb']:>13.1f}"
                         f"{'' if sandbox is None else format(sandbox, '.3f'):>15}{res[name + '_load']:>7.2f}")
    if "floor_parts_s" in res:
        f = res["floor_parts_s"]
        lines.append(f"floor parts: fetch {f['fetch_s']} s, YAML ({res['floor_yaml_parser']}) {f['parse_s']} s, "
                     f"join + plan write {f['plan_write_s']} s; plan file {res.get('plan_file_mb')} MB vs floor's "
                     f"{res.get('floor_plan_file_mb')} MB")
    if res["ratios"]:
        lines.append("ratios: " + ", ".join(f"{k} {v:.2f}" for k, v in res["ratios"].items()))
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
    parser.add_argument("--multi-apply-ops", type=int, default=0,
                        help="adjustments to apply across --multi-targets Ka-ching targets (0: skip)")
    parser.add_argument("--multi-targets", type=int, default=5)
    parser.add_argument("--changed", type=int, default=0,
                        help="live records changed before each changed_plan run (0: skip the stage)")
    parser.add_argument("--baseline", metavar="REF", help="run REF's bench/run.py with the same sizes first")
    parser.add_argument("--baseline-dir", type=Path, help="its worktree (made if missing; outside this checkout)")
    parser.add_argument("--profile", type=Path, help="write a pyinstrument profile per stage to this folder")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.locations < 1 or args.skus < 1 or args.repeat < 1 or args.apply_ops < 0:
        parser.error("--locations, --skus and --repeat must be at least 1, --apply-ops at least 0")
    if args.changed < 0 or args.multi_apply_ops < 0 or args.multi_targets < 1:
        parser.error("--changed and --multi-apply-ops must be at least 0, --multi-targets at least 1")
    os.environ.pop("RECONCILER_STATE", None)  # the generated repositories keep their own state
    base = None
    if args.baseline:
        same = ["--locations", str(args.locations), "--skus", str(args.skus), "--repeat", str(args.repeat),
                "--apply-ops", str(args.apply_ops), "--seed", str(args.seed)]
        try:
            base = _baseline.run(args.baseline, args.baseline_dir or _baseline.default_dir(args.baseline), same)
        except _baseline.BaselineError as exc:
            print(f"--baseline: {exc}", file=sys.stderr)
            return 2
        print(f"baseline {args.baseline}:\n{base.pop('stdout').rstrip()}\n")
    bench = Bench(args.locations, args.skus, args.repeat, args.apply_ops, args.profile, seed=args.seed,
                  changed=args.changed, multi_apply_ops=args.multi_apply_ops, multi_targets=args.multi_targets)
    with tempfile.TemporaryDirectory(prefix="reconciler-bench-") as tmp:
        run_plan_stages(bench, Path(tmp))
        if args.apply_ops:
            run_apply_stage(bench, Path(tmp), args.apply_ops)
        if args.multi_apply_ops:
            run_apply_stage(bench, Path(tmp), args.multi_apply_ops, args.multi_targets, "apply_multi")
    res = result(bench)
    print(render(res))
    if base is not None:
        table = _baseline.ratios(res, base)
        res["baseline"] = {"result": base, "ratios": table}
        print("\n" + _baseline.render(res, base, table))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
