"""The data every part of reconciler shares: positions, the three states, operations, plans.

Per-position records are slotted dataclasses rather than pydantic models: a chain with 200
stores and 5,000 SKUs has a million of them, and validation happens once, at the YAML boundary.
Pydantic is used for the configuration file and for the plan file envelope. The hot paths build
them through the ``new_*`` constructors at the end of this module (same objects, a third of the
cost of the frozen dataclass ``__init__``).

Vocabulary (DESIGN.md section 2):
- target: one account in one vendor system
- location: a canonical location name, mapped to an id per target
- item: a canonical SKU, mapped to ids per target
- position: (target, location, item)
- D = desired (YAML), B = base (last applied, from state), A = actual (live)
"""

from __future__ import annotations

import enum
import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any, Callable, Literal, Mapping

PositionKey = tuple[str, str, str]
"""(target, location, item)"""

Strategy = Literal["merge", "replace"]

# A desired quantity above this is almost certainly a typo (an EAN pasted as a quantity).
MAX_QUANTITY = 1_000_000


@dataclass(frozen=True, slots=True)
class Settings:
    """Per-position attributes some vendors hold. ``None`` means "not managed / unknown"."""

    reorder_point: int | None = None  # X-Series
    reorder_amount: int | None = None  # X-Series
    tracking: bool | None = None  # Lightspeed supplier isInventoryTrackingEnabled
    backordering: bool | None = None  # Lightspeed supplier isBackorderingEnabled
    low_stock_level: int | None = None  # Zettle custom low stock

    def as_dict(self) -> dict[str, int | bool]:
        """Only the managed (non-None) settings."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, int | bool] | None) -> Settings:
        return cls(**dict(data or {}))

    def is_empty(self) -> bool:
        return not self.as_dict()

    def overlay(self, managed: Settings) -> Settings:
        """This settings record with every field that ``managed`` sets replaced."""
        return replace(self, **managed.as_dict())


SETTING_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Settings))
NO_SETTINGS = Settings()


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where a value came from, for error messages and plan reasons."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class DesiredPosition:
    target: str
    location: str
    item: str
    quantity: int
    settings: Settings = NO_SETTINGS
    strategy: Strategy = "merge"
    protect: bool = False
    source: SourceRef | None = None

    @property
    def key(self) -> PositionKey:
        return (self.target, self.location, self.item)


@dataclass(slots=True)
class DesiredState:
    """Everything the YAML says, validated."""

    positions: dict[PositionKey, DesiredPosition]
    # (target, location) pairs that some stock file declares, even with no items (the
    # "missing or empty location file" guard needs to tell "declared empty" from "absent").
    declared_locations: dict[tuple[str, str], str] = field(default_factory=dict)
    # relative path -> sha256 of the bytes, for the plan's staleness check
    file_digests: dict[str, str] = field(default_factory=dict)
    digest: str = ""


@dataclass(frozen=True, slots=True)
class Record:
    """A quantity and settings as held by the state (B) or a vendor (A)."""

    quantity: int
    settings: Settings = NO_SETTINGS


@dataclass(slots=True)
class BaseState:
    """What this tool last applied (B), with the state's lineage and serial."""

    lineage: str
    serial: int
    positions: dict[PositionKey, Record] = field(default_factory=dict)


@dataclass(slots=True)
class TargetActual:
    """Live stock of one target. ``readable`` is False for write-only APIs, whose A is unknown."""

    readable: bool
    positions: dict[tuple[str, str], Record] = field(default_factory=dict)  # (location, item)


ActualState = dict[str, TargetActual]
"""target -> live stock"""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a connector (vendor API) can do; the planner compiles operations with it."""

    readable: bool  # has a read API for live stock
    absolute: bool  # can set a quantity (reset)
    delta: bool  # takes deltas natively (adjust)
    native_move: bool  # has a transfer between locations
    delete: bool  # can stop tracking a position
    settings: frozenset[str] = frozenset()  # which Settings fields it can write
    verifiable_deltas: bool = False  # an in-flight delta can be looked up after a crash
    max_batch: int = 1  # operations per request


class OpKind(str, enum.Enum):
    RESET = "reset"
    ADJUST = "adjust"
    MOVE = "move"
    DELETE = "delete"
    RELEASE = "release"
    RECORD = "record"  # state only: the vendor already holds D, so B := D and nothing is sent
    SETTINGS = "settings"
    DRIFT = "drift"  # a note, never executed

    def __str__(self) -> str:
        return self.value


EXECUTABLE_KINDS = frozenset({OpKind.RESET, OpKind.ADJUST, OpKind.MOVE, OpKind.DELETE, OpKind.SETTINGS})
"""Kinds that send requests. RELEASE and RECORD only change state; DRIFT is a note."""

STATE_ONLY_KINDS = frozenset({OpKind.RELEASE, OpKind.RECORD})
"""Kinds that apply journals and records in B without sending anything."""


@dataclass(frozen=True, slots=True)
class Leg:
    """One position touched by an operation. A move has two legs (from, to); others one."""

    location: str
    actual: int | None  # A at plan time (None: unknown, write-only target)
    base: int | None  # B
    desired: int | None  # D (None for delete/release)
    change: int  # signed units this leg changes by (for a reset: expected - actual)
    expected: int | None  # the quantity the vendor should hold after this operation


@dataclass(frozen=True, slots=True)
class Operation:
    id: str  # deterministic: same inputs, same id
    kind: OpKind
    target: str
    item: str
    legs: tuple[Leg, ...]
    reason: str
    settings_before: Settings | None = None
    settings_after: Settings | None = None
    overridden_guards: tuple[str, ...] = ()
    # "delta" or "absolute": how the connector will write it (from Capabilities)
    write_mode: str = ""

    @property
    def location(self) -> str:
        return self.legs[0].location

    @property
    def keys(self) -> tuple[PositionKey, ...]:
        return tuple((self.target, leg.location, self.item) for leg in self.legs)

    @property
    def units(self) -> int:
        """Units moved by a move; absolute change otherwise."""
        if self.kind is OpKind.MOVE:
            return self.legs[1].change
        return abs(self.legs[0].change)


@dataclass(slots=True)
class Plan:
    """A reviewable list of operations and the facts they were made against."""

    format_version: int
    plan_id: str
    created_at: str  # ISO 8601, UTC
    git_commit: str | None
    git_dirty: bool
    desired_digest: str
    desired_files: dict[str, str]
    lineage: str
    serial: int
    strategy_note: str
    operations: list[Operation]
    warnings: list[str] = field(default_factory=list)
    unreadable_targets: list[str] = field(default_factory=list)
    scope: dict[str, list[str]] = field(default_factory=dict)  # {"targets": [...], "locations": [...]}
    # what the connectors say about applying it: requests and time per target, reasons recorded
    notes: list[str] = field(default_factory=list)
    # target -> the connector's mark of the vendor's state at plan time (Connector.mark)
    marks: dict[str, str] = field(default_factory=dict)
    # one block of text per stock count the plan applies (reconciler/planner/_counts.py)
    counts: list[str] = field(default_factory=list)

    @property
    def changes(self) -> list[Operation]:
        """Operations that change something (everything but drift notes)."""
        return [op for op in self.operations if op.kind is not OpKind.DRIFT]

    @property
    def has_changes(self) -> bool:
        return any(op.kind is not OpKind.DRIFT for op in self.operations)


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """Per-target planning policy from reconciler.yaml."""

    prune: bool = False  # D absent, B present: delete (True) or release (False)
    infer_movements: bool = True


@dataclass(frozen=True, slots=True)
class Guards:
    """Guard thresholds and explicit overrides. Each guard is an error unless overridden."""

    # share (0..1) of a location's managed positions that one plan may delete or zero
    max_delete_share: float = 0.25
    allow_negative: bool = False  # adjustments whose result A + (D - B) < 0
    allow_missing_location: bool = False  # state holds positions for a location no file declares, or its file is empty
    allow_mass_delete: bool = False  # more than max_delete_share deleted/zeroed
    allow_protected: bool = False  # changes to items flagged protect: true


@dataclass(frozen=True, slots=True)
class Policy:
    """Everything besides D, B and A that decides the plan."""

    targets: Mapping[str, TargetPolicy]
    capabilities: Mapping[str, Capabilities]
    guards: Guards = Guards()
    protected_items: frozenset[str] = frozenset()
    # restrict the plan to these targets/locations (None: everything)
    only_targets: frozenset[str] | None = None
    only_locations: frozenset[str] | None = None


# --- fast constructors ---------------------------------------------------------------------------


def fast_constructor(cls: type[Any]) -> Callable[..., Any]:
    """``cls(*values)`` for a frozen slotted dataclass, at about a third of the cost.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__`` (~2 us for
    an 8-field record; a million positions are built per plan). Writing the slots through their
    descriptors builds an identical object (same fields, equality, hash). The returned function
    takes every field positionally, without defaults, and runs no ``__post_init__``; a class not
    of that plain shape gets its real constructor back.
    """
    names = [f.name for f in fields(cls)]
    plain = getattr(cls, "__slots__", None) == tuple(names) and not hasattr(cls, "__post_init__")
    if not plain or any(f.default_factory is not MISSING or not f.init for f in fields(cls)):
        return cls
    # Unrolled source, as dataclasses itself generates __init__: a loop would cost what it saves.
    args = ", ".join(f"v{i}" for i in range(len(names)))
    body = "".join(f"    s{i}(obj, v{i})\n" for i in range(len(names)))
    scope: dict[str, Any] = {f"s{i}": getattr(cls, name).__set__ for i, name in enumerate(names)}
    scope.update(new=object.__new__, cls=cls)
    exec(f"def new_{cls.__name__}({args}):\n    obj = new(cls)\n{body}    return obj\n", scope)  # noqa: S102 - fixed text
    return scope[f"new_{cls.__name__}"]  # type: ignore[no-any-return]


# Every field, positionally, in declaration order (no defaults).
new_source_ref: Callable[[str, int], SourceRef] = fast_constructor(SourceRef)
new_desired_position: Callable[..., DesiredPosition] = fast_constructor(DesiredPosition)
# Not on a hot path (records are shared per quantity), so the descriptor constructor is enough.
new_record: Callable[[int, Settings], Record] = fast_constructor(Record)


def _sourced_position_constructor() -> Callable[..., DesiredPosition]:
    """``new_desired_position(..., new_source_ref(file, line))`` in one call, at ~40% of its cost.

    Validate builds a million of these; ten descriptor ``__set__`` calls were ~0.9 us of each.
    Here each object is made as an instance of a plain twin class with the same ``__slots__``
    (so the same memory layout), filled by ordinary attribute stores (which CPython 3.11
    specialises for slots), then given its real class: ``__class__`` assignment between
    layout-compatible classes is documented Python. The result is an ordinary frozen
    DesiredPosition/SourceRef. Should a change to either class make the twins incompatible, the
    probe below fails and the descriptor-based constructors are used instead.
    """
    names = [f.name for f in fields(DesiredPosition)]
    if names[-1] != "source" or [f.name for f in fields(SourceRef)] != ["file", "line"]:
        return _sourced_position_slow
    scope: dict[str, Any] = {
        "P": DesiredPosition, "S": SourceRef,
        "PT": type("_DesiredPositionTwin", (), {"__slots__": DesiredPosition.__slots__}),
        "ST": type("_SourceRefTwin", (), {"__slots__": SourceRef.__slots__}),
    }
    stores = "".join(f"    obj.{name} = {name}\n" for name in names[:-1])
    exec(f"def new_sourced_position({', '.join(names[:-1])}, file, line):\n"  # noqa: S102 - fixed text
         "    src = ST()\n    src.file = file\n    src.line = line\n    src.__class__ = S\n"
         f"    obj = PT()\n{stores}    obj.source = src\n    obj.__class__ = P\n    return obj\n", scope)
    fast = scope["new_sourced_position"]
    probe = ("t", "l", "i", 1, NO_SETTINGS, "replace", True, "f", 2)
    try:
        ok = fast(*probe) == _sourced_position_slow(*probe) and type(fast(*probe)) is DesiredPosition
    except TypeError:  # "__class__ assignment: ... object layout differs"
        ok = False
    return fast if ok else _sourced_position_slow  # type: ignore[no-any-return]


def _sourced_position_slow(target: str, location: str, item: str, quantity: int, settings: Settings,
                           strategy: Strategy, protect: bool, file: str, line: int) -> DesiredPosition:
    return new_desired_position(target, location, item, quantity, settings, strategy, protect, new_source_ref(file, line))


# (target, location, item, quantity, settings, strategy, protect, file, line): a DesiredPosition
# whose source is SourceRef(file, line).
new_sourced_position: Callable[..., DesiredPosition] = _sourced_position_constructor()


def twin_constructor(cls: type[Any]) -> Callable[..., Any]:
    """``fast_constructor(cls)`` by the twin-class route of ``new_sourced_position``: ~0.25 us
    instead of ~0.55 us for a 6-field ``Leg``.

    The object is made as an instance of a plain class with the same ``__slots__``, filled by
    ordinary attribute stores, then given its real class. A probe at import compares it with the
    descriptor constructor and falls back to that one should the twin ever stop matching.
    """
    slow = fast_constructor(cls)
    if slow is cls:
        return slow
    names = [f.name for f in fields(cls)]
    scope: dict[str, Any] = {"C": cls, "T": type(f"_{cls.__name__}Twin", (), {"__slots__": cls.__slots__})}
    stores = "".join(f"    obj.{name} = {name}\n" for name in names)
    exec(f"def new_{cls.__name__}({', '.join(names)}):\n    obj = T()\n{stores}"  # noqa: S102 - fixed text
         "    obj.__class__ = C\n    return obj\n", scope)
    fast = scope[f"new_{cls.__name__}"]
    probe = tuple(f"v{i}" for i in range(len(names)))
    try:
        made = fast(*probe)
        ok = type(made) is cls and made == slow(*probe) and all(getattr(made, n) == v for n, v in zip(names, probe))
    except TypeError:  # "__class__ assignment: ... object layout differs"
        ok = False
    return fast if ok else slow  # type: ignore[no-any-return]


new_leg: Callable[[str, int | None, int | None, int | None, int, int | None], Leg] = twin_constructor(Leg)
new_operation: Callable[..., Operation] = twin_constructor(Operation)


_gc_pause = threading.Lock()
_gc_pausers = 0  # blocks inside gc_paused, in every thread
_gc_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block; the previous setting is restored.

    Loading, reading live stock and planning each allocate up to millions of small acyclic
    records that stay alive; the collector would rescan them (and everything already loaded)
    again and again without finding garbage: a quarter to a third of those stages' time at a
    million positions. Reference counting still frees everything that is dropped.

    The collector is one per process and ``plan`` reads live stock and state at the same time
    on two threads, so pauses are counted: it is switched back on when the last one ends.
    """
    global _gc_pausers, _gc_was_enabled
    with _gc_pause:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_pause:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                gc.enable()
