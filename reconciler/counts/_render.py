"""What ``count start`` and ``count finish`` print (strings; only the CLI prints)."""

from __future__ import annotations

from typing import Any


def render_started(s: Any) -> str:
    where = ", ".join(s.targets) if s.targets else "no readable target (write-only targets are reset at apply)"
    return (f"Started count {s.count_id} at {s.location} ({s.started_at}): {len(s.items)} item(s), "
            f"{s.snapshots} live quantities snapshotted from {where}.\n"
            f"Count sheet: {s.sheet_yaml}\nScanner sheet: {s.sheet_csv}\n"
            f"When counted: reconciler count finish {s.count_id} --sheet {s.sheet_yaml}\n")


def render_finished(f: Any) -> str:
    return (f"Finished count {f.count_id} at {f.location}: {len(f.counted)} item(s) counted.\n"
            f"Changed: {', '.join(f.desired_files)}\nRecorded: {f.record}\n"
            "Commit both and open a pull request; the plan applies counted - snapshot on live stock.\n")
