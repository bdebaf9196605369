"""The planner's working records: one per operation to be, before ids and expected values.

Intents are plain slotted objects (not pydantic, not the frozen model types) because a large
chain produces up to a million of them and they are amended in place by movement inference and
the guards before being frozen into :class:`~reconciler.model.Operation`.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.model import Capabilities, OpKind, Record, Settings, SourceRef, TargetPolicy

NO_GUARDS: frozenset[str] = frozenset()


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
    # Overridden guards. Replaced (``it.guards = it.guards | {name}``), never mutated: almost
    # every intent has none, and a set of its own each would be 200 bytes a position.
    guards: frozenset[str] = NO_GUARDS
    protect: bool = False
    # Where the desired position was declared, for guard messages (formatted only when shown).
    source: SourceRef | None = None


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
