"""The pure planner: D (desired), B (base) and A (actual) in, a reviewable plan out.

No I/O happens here (no HTTP, no SQLite): callers fetch A through connectors and B from the
state store, and pass them in. See DESIGN.md section 3 for the semantics.
"""

from reconciler.planner.core import FORMAT_VERSION, PlanContext, make_plan

__all__ = ["FORMAT_VERSION", "PlanContext", "make_plan"]
