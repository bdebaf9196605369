"""Stock counts (docs/counts.md): ``count start`` snapshots live stock, ``count finish`` writes
the counted quantities, and the planner applies counted - snapshot on live stock."""

from reconciler.counts._run import FinishedCount, StartedCount, count_plan, finish_count, start_count

__all__ = ["FinishedCount", "StartedCount", "count_plan", "finish_count", "start_count"]
