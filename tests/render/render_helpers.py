"""Plans for renderer tests, made by the real planner so the renderers see realistic plans."""

from __future__ import annotations

from reconciler.model import (
    BaseState,
    Capabilities,
    DesiredPosition,
    DesiredState,
    Guards,
    Plan,
    Policy,
    Record,
    Settings,
    TargetActual,
    TargetPolicy,
)
from reconciler.planner import make_plan

CAPS = Capabilities(readable=True, absolute=True, delta=True, native_move=True, delete=True,
                    settings=frozenset({"reorder_point"}))


def small_plan(**guards: bool) -> Plan:
    d = {
        ("xs", "oslo", "A"): DesiredPosition("xs", "oslo", "A", 5),
        ("xs", "bergen", "A"): DesiredPosition("xs", "bergen", "A", 15),
        ("xs", "oslo", "B"): DesiredPosition("xs", "oslo", "B", 3, settings=Settings(reorder_point=2)),
        ("xs", "oslo", "DRIFTY"): DesiredPosition("xs", "oslo", "DRIFTY", 7),
        ("xs", "bergen", "NEG|PIPE"): DesiredPosition("xs", "bergen", "NEG|PIPE", 1),
    }
    b = {("xs", "oslo", "A"): Record(10), ("xs", "bergen", "A"): Record(10), ("xs", "oslo", "GONE"): Record(4),
         ("xs", "oslo", "DRIFTY"): Record(7), ("xs", "bergen", "NEG|PIPE"): Record(6)}
    a = {("oslo", "A"): Record(8), ("bergen", "A"): Record(9), ("oslo", "DRIFTY"): Record(3),
         ("oslo", "GONE"): Record(4), ("bergen", "NEG|PIPE"): Record(2)}
    policy = Policy(targets={"xs": TargetPolicy(prune=True)}, capabilities={"xs": CAPS},
                    guards=Guards(max_delete_share=1.0, **guards))
    return make_plan(DesiredState(d, digest="dd"), BaseState("lin", 2, b), {"xs": TargetActual(True, a)}, policy,
                     created_at="2026-01-01T00:00:00Z", git_commit="0123456789abcdef")


def huge_plan(n_locations: int, n_items: int) -> Plan:
    d, b = {}, {}
    for i in range(n_locations):
        for j in range(n_items):
            key = ("xs", f"store-{i:04d}", f"SKU-{j:06d}")
            d[key] = DesiredPosition(*key, quantity=(i + j) % 9 + 1)
            b[key] = Record(0)
    policy = Policy(targets={"xs": TargetPolicy(infer_movements=False)}, capabilities={"xs": CAPS}, guards=Guards())
    return make_plan(DesiredState(d), BaseState("lin", 1, b), {"xs": TargetActual(False)}, policy, created_at="t")
