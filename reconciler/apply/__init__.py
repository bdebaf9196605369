"""Apply a saved plan exactly once and settle what an interrupted apply left in doubt."""

from __future__ import annotations

from reconciler.apply._engine import DEFAULT_LOCK_TTL_S, apply_plan
from reconciler.apply._ops import base_updates, request_summary
from reconciler.apply._resolve import raise_for_report, resolve_all_in_doubt, resolve_op
from reconciler.apply.report import ApplyReport, OpReport, ProgressEvent, render_apply_summary

__all__ = [
    "DEFAULT_LOCK_TTL_S",
    "ApplyReport",
    "OpReport",
    "ProgressEvent",
    "apply_plan",
    "base_updates",
    "raise_for_report",
    "render_apply_summary",
    "request_summary",
    "resolve_all_in_doubt",
    "resolve_op",
]
