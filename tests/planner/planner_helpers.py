"""Builders for planner tests: D, B, A and policies from small literal tables."""

from __future__ import annotations

from typing import Mapping

from reconciler.model import (
    Capabilities,
    BaseState,
    DesiredPosition,
    DesiredState,
    Guards,
    OpKind,
    Plan,
    Policy,
    Record,
    TargetActual,
    TargetPolicy,
)
from reconciler.planner import make_plan

FULL = Capabilities(readable=True, absolute=True, delta=True, native_move=True, delete=True,
                    settings=frozenset({"reorder_point", "reorder_amount"}))
WRITE_ONLY = Capabilities(readable=False, absolute=True, delta=True, native_move=False, delete=True)
ABSOLUTE_ONLY = Capabilities(readable=False, absolute=True, delta=False, native_move=False, delete=False)
NO_NATIVE_MOVE = Capabilities(readable=True, absolute=False, delta=True, native_move=False, delete=True)

Key = tuple[str, str, str]


def desired(entries: Mapping[Key, int | DesiredPosition], declared: Mapping[tuple[str, str], str] | None = None) -> DesiredState:
    positions = {}
    for key, value in entries.items():
        positions[key] = value if isinstance(value, DesiredPosition) else DesiredPosition(*key, quantity=value)
    declared = dict(declared) if declared is not None else {k[:2]: f"stock/{k[1]}.yaml" for k in positions}
    return DesiredState(positions=positions, declared_locations=declared, file_digests={"stock/x.yaml": "ab"}, digest="d1")


def base(entries: Mapping[Key, int | Record], serial: int = 7) -> BaseState:
    return BaseState(
        lineage="lin-1",
        serial=serial,
        positions={k: v if isinstance(v, Record) else Record(v) for k, v in entries.items()},
    )


def actual(entries: Mapping[Key, int | Record], unreadable: tuple[str, ...] = ()) -> dict[str, TargetActual]:
    out: dict[str, TargetActual] = {t: TargetActual(readable=False) for t in unreadable}
    for (t, loc, item), v in entries.items():
        out.setdefault(t, TargetActual(readable=True)).positions[(loc, item)] = v if isinstance(v, Record) else Record(v)
    return out


def policy(
    caps: Mapping[str, Capabilities] | None = None,
    *,
    prune: bool = False,
    moves: bool = True,
    guards: Guards | None = None,
    **kw: object,
) -> Policy:
    caps = dict(caps or {"x": FULL})
    return Policy(
        targets={t: TargetPolicy(prune=prune, infer_movements=moves) for t in caps},
        capabilities=caps,
        guards=guards or Guards(max_delete_share=1.0),
        **kw,  # type: ignore[arg-type]
    )


def plan(d: DesiredState, b: BaseState, a: dict[str, TargetActual], p: Policy | None = None) -> Plan:
    return make_plan(d, b, a, p or policy(), created_at="2026-01-01T00:00:00Z")


def kinds(p: Plan) -> list[OpKind]:
    return [op.kind for op in p.operations]

