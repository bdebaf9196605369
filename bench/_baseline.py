"""--baseline REF: the same stages on another commit, from a git worktree with its own venv.

The other commit's own ``bench/run.py`` runs with the same sizes, repeats and seed (the stages
validate, plan, noop_plan and apply are defined the same way since round 1), in a subprocess of
that worktree's venv, right before this tree's run; the ratios (this tree / baseline) are printed
from the two results. The worktree and venv are made on first use, outside this checkout (they
are never part of a commit), and reused after that.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
STAGES = ("validate", "plan", "noop_plan", "apply")


class BaselineError(RuntimeError):
    """The baseline worktree could not be made or its benchmark failed."""


def _git(*args: str, cwd: Path = REPO) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BaselineError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def default_dir(ref: str) -> Path:
    """Beside this checkout, never inside it."""
    return REPO.parent / f"{REPO.name}-baseline-{ref.replace('/', '-')[:20]}"


def prepare(ref: str, where: Path) -> Path:
    """A worktree of ``ref`` at ``where`` with a venv holding it (made if missing); returns its python."""
    commit = _git("rev-parse", "--verify", f"{ref}^{{commit}}")
    if where.resolve().is_relative_to(REPO):
        raise BaselineError(f"--baseline-dir {where} is inside this checkout; put it outside (it is never committed)")
    if not where.exists():
        _git("worktree", "add", "--detach", str(where), commit)
    head = _git("rev-parse", "HEAD", cwd=where)
    if head != commit:
        raise BaselineError(f"{where} holds {head[:12]}, not {ref} ({commit[:12]}); remove it or choose another "
                            "--baseline-dir")
    python = where / ".venv" / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(where / ".venv")], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-e", str(where)], check=True)
    return python


def run(ref: str, where: Path, args: list[str]) -> dict[str, Any]:
    """The baseline's result for the same ``args`` (sizes, repeat, apply ops, seed)."""
    python = prepare(ref, where)
    with tempfile.TemporaryDirectory(prefix="reconciler-baseline-") as tmp:
        out = Path(tmp) / "baseline.json"
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        done = subprocess.run([str(python), "bench/run.py", *args, "--json", str(out)], cwd=where, env=env,
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BaselineError(f"the baseline's benchmark failed ({done.returncode}): {done.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    result["ref"], result["commit"] = ref, _git("rev-parse", "HEAD", cwd=where)
    result["stdout"] = done.stdout
    return result


def ratios(ours: dict[str, Any], base: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per stage both ran: this tree's wall, CPU and peak RSS over the baseline's (below 1: better)."""
    out: dict[str, dict[str, float]] = {}
    for stage in STAGES:
        if f"{stage}_s" not in ours or f"{stage}_s" not in base:
            continue
        out[stage] = {
            "wall": ours[f"{stage}_s"] / base[f"{stage}_s"],
            "cpu": ours[f"{stage}_cpu_s"] / base[f"{stage}_cpu_s"],
            "rss": ours[f"{stage}_peak_rss_mb"] / base[f"{stage}_peak_rss_mb"],
            "speedup": base[f"{stage}_s"] / ours[f"{stage}_s"],
        }
    # over the stages both ran (this tree's extra stages, e.g. apply_multi, have peaks of their own)
    common = [stage for stage in out]
    mine = max(ours[f"{stage}_peak_rss_mb"] for stage in common)
    theirs = max(base[f"{stage}_peak_rss_mb"] for stage in common)
    out["whole_run_rss"] = {"rss": mine / theirs, "ours_mb": mine, "base_mb": theirs}
    return out


def render(ours: dict[str, Any], base: dict[str, Any], table: dict[str, dict[str, float]]) -> str:
    lines = [f"baseline {base['ref']} ({base['commit'][:12]}), load average {base['machine']['load_avg_1m']} "
             f"at its end; this tree: {ours['machine']['load_avg_1m']}",
             f"{'stage':<12}{'base wall s':>12}{'wall s':>9}{'speedup':>9}{'cpu ratio':>11}{'RSS ratio':>11}"]
    for stage in STAGES:
        if stage in table:
            r = table[stage]
            lines.append(f"{stage:<12}{base[stage + '_s']:>12.3f}{ours[stage + '_s']:>9.3f}{r['speedup']:>8.2f}x"
                         f"{r['cpu']:>11.2f}{r['rss']:>11.2f}")
    rss = table["whole_run_rss"]
    lines.append(f"peak RSS over these stages: {rss['ours_mb']} MB vs {rss['base_mb']} MB ({rss['rss']:.2f}x)")
    return "\n".join(lines)
