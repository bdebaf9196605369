"""The benchmark at 10k positions, in the suite: the real pipeline against sandbox processes.

Ceilings are generous (about 10x what a loaded 2-core CI machine measures) so the check catches
an accidental slowdown of an order of magnitude (a quadratic loop, a per-position request)
without being flaky; docs/performance.md has the real figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench import run as bench_run
from bench._repo import RepoSpec, write_repo
from reconciler.config._yaml import LineDict, parse_careful, parse_simple

ROOT = Path(__file__).resolve().parents[2]
CEILING_S = {"validate_s": 2.0, "plan_s": 15.0, "noop_plan_s": 10.0, "apply_s": 10.0}


def test_benchmark_at_10k_positions_stays_under_generous_ceilings(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "bench/run.py", "--locations", "10", "--skus", "1000", "--repeat", "1",
         "--apply-ops", "1000", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["positions"] == 10_000 and result["apply_ops"] == 1_000
    for key, ceiling in CEILING_S.items():
        assert 0 < result[key] < ceiling, f"{key} = {result[key]} s (ceiling {ceiling} s)\n{done.stdout}"
    assert 0 < result["peak_rss_mb"] < 1024
    # the sandbox's own CPU time is reported apart: it is in the plan's wall time, not ours
    assert result["plan_sandbox_cpu_s"] > 0 and "sandbox cpu s" in done.stdout
    assert "validate" in done.stdout and "noop_plan" in done.stdout


def test_generated_location_files_take_the_fast_path_and_match_the_careful_parse(tmp_path: Path) -> None:
    write_repo(tmp_path, RepoSpec(2, 300), "http://127.0.0.1:9")
    text = (tmp_path / "stock" / "store-0001.yaml").read_text(encoding="utf-8")

    fast = parse_simple(text)
    careful, problems = parse_careful(text, "stock/store-0001.yaml")

    assert fast is not None and problems == []
    assert _tree(fast) == _tree(careful)


def test_bench_arguments_are_checked(capsys) -> None:  # type: ignore[no-untyped-def]
    try:
        bench_run.main(["--locations", "0", "--skus", "10"])
    except SystemExit as exc:
        assert exc.code == 2
    assert "--locations, --skus and --repeat must be at least 1" in capsys.readouterr().err


def _tree(value: object) -> object:
    if isinstance(value, LineDict):
        return (value.line, dict(value.key_lines), {k: _tree(v) for k, v in value.items()})
    return value
