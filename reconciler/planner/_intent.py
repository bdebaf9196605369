"""The planner's working records: one per operation to be, before ids and expected values.

Intents are plain slotted objects (not pydantic, not the frozen model types) because a large
chain produces up to a million of them and they are amended in place by movement inference and
the guards before being frozen into :class:`~reconciler.model.Operation`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.model import Capabilities, OpKind, Record, Settings, TargetPolicy


@dataclass(slots=True)
class LegIn:
    """One position an intent touches.

    ``amount`` depends on the kind: the target quantity for a reset, the signed delta for an
    adjust or a move leg, and 0 for everything else.
    """

    location: str
    actual: int | None
    base: int | None
    desired: int | None
    amount: int


@dataclass(slots=True)
class Intent:
    kind: OpKind
    target: str
    item: str
    legs: list[LegIn]
    reason: str
    write_mode: str = ""
    settings_before: Settings | None = None
    settings_after: Settings | None = None
    guards: set[str] = field(default_factory=set)
    protect: bool = False
    source: str = ""  # "file:line" of the desired position, for guard messages


@dataclass(slots=True)
class TargetCtx:
    """Per-target facts looked up once, not once per position."""

    name: str
    caps: Capabilities
    policy: TargetPolicy
    readable: bool
    actual: dict[tuple[str, str], Record]


def signed(n: int) -> str:
    return f"+{n}" if n > 0 else str(n)
