"""Timing one stage: wall and CPU seconds, and the peak RSS of this process during it."""

from __future__ import annotations

import gc
import resource
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def _reset_peak() -> bool:
    """Reset the kernel's high-water mark of our RSS (Linux: write 5 to clear_refs)."""
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """VmHWM of this process in MB; getrusage's lifetime peak where /proc is not available."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Stage:
    """Every repeat of one stage; medians are what the report shows."""

    name: str
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)

    @property
    def wall_s(self) -> float:
        return statistics.median(self.wall)

    @property
    def cpu_s(self) -> float:
        return statistics.median(self.cpu)

    @property
    def peak_rss_mb(self) -> float:
        return max(self.rss)


def measure(stage: Stage, fn: Callable[[], Any], profile_to: Path | None = None) -> Any:
    """Run ``fn`` once, adding its wall/CPU time and peak RSS to ``stage``; with ``profile_to``
    it runs under pyinstrument and writes ``<profile_to>.txt`` and ``.html``."""
    gc.collect()  # garbage of the previous stage is not this stage's memory or time
    per_stage = _reset_peak()
    profiler = None
    if profile_to is not None:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.005)
        profiler.start()
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if profiler is not None:
        profiler.stop()
        profile_to.parent.mkdir(parents=True, exist_ok=True)
        profile_to.with_suffix(".txt").write_text(profiler.output_text(unicode=False, color=False), encoding="utf-8")
        profile_to.with_suffix(".html").write_text(profiler.output_html(), encoding="utf-8")
    else:  # profiled runs are slower; they do not count
        stage.wall.append(wall)
        stage.cpu.append(cpu)
    stage.rss.append(peak_rss_mb() if per_stage else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return result
