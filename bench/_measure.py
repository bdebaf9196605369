"""Timing one stage: wall and CPU seconds, and the peak RSS of this process during it."""

from __future__ import annotations

import gc
import os
import resource
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

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
    # CPU seconds of the sandbox process serving the stage's requests (another process: it
    # counts in this stage's wall time, not in its CPU time)
    server_cpu: list[float] = field(default_factory=list)
    load: list[float] = field(default_factory=list)  # 1-minute load average as each run starts

    @property
    def wall_s(self) -> float:
        return statistics.median(self.wall)

    @property
    def cpu_s(self) -> float:
        return statistics.median(self.cpu)

    @property
    def peak_rss_mb(self) -> float:
        return max(self.rss)

    @property
    def server_cpu_s(self) -> float | None:
        return statistics.median(self.server_cpu) if self.server_cpu else None


def process_cpu_s(pid: int) -> float | None:
    """utime + stime of another process (Linux /proc), or None where that cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # fields[0] is the state (field 3 of stat(5)); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def servers_cpu_s(pids: Sequence[int]) -> float | None:
    """The CPU time of several sandbox processes together (None if one cannot be read)."""
    times = [process_cpu_s(pid) for pid in pids]
    return None if any(t is None for t in times) else sum(t for t in times if t is not None)


def measure(stage: Stage, fn: Callable[[], Any], profile_to: Path | None = None,
            server_pid: int | Sequence[int] | None = None) -> Any:
    """Run ``fn`` once, adding its wall/CPU time and peak RSS to ``stage``; with ``profile_to``
    it runs under pyinstrument and writes ``<profile_to>.txt`` and ``.html``; with
    ``server_pid`` the CPU time that process (or those processes) spent meanwhile is recorded too."""
    pids = [] if server_pid is None else [server_pid] if isinstance(server_pid, int) else list(server_pid)
    gc.collect()  # garbage of the previous stage is not this stage's memory or time
    per_stage = _reset_peak()
    profiler = None
    if profile_to is not None:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.005)
        profiler.start()
    server = servers_cpu_s(pids) if pids else None
    load = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    server_after = servers_cpu_s(pids) if pids else None
    if profiler is not None:
        profiler.stop()
        profile_to.parent.mkdir(parents=True, exist_ok=True)
        profile_to.with_suffix(".txt").write_text(profiler.output_text(unicode=False, color=False), encoding="utf-8")
        profile_to.with_suffix(".html").write_text(profiler.output_html(), encoding="utf-8")
    else:  # profiled runs are slower; they do not count
        stage.wall.append(wall)
        stage.cpu.append(cpu)
        stage.load.append(load)
        if server is not None and server_after is not None:
            stage.server_cpu.append(server_after - server)
        # a profiled run keeps the profiler's frames in memory too: its peak does not count either
        stage.rss.append(peak_rss_mb() if per_stage else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return result
