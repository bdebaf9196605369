"""The state store interface: lineage/serial, base positions (B), plans, runs, journal, locks.

Kept narrow and free of storage types: SQLite (:mod:`.sqlite`) and PostgreSQL
(:mod:`.postgres`) implement it with the same tables. Every method that changes more than one row does it in one
transaction; :meth:`StateStore.record_outcome` in particular writes the journal row and the
base positions it implies together, so a crash never leaves one without the other.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Collection, Iterable, Mapping, Sequence

from reconciler.model import BaseState, Operation, Plan, PositionKey, Settings

# Vendor bodies can be large (HTML error pages); the journal keeps enough to diagnose.
MAX_RESPONSE_CHARS = 64 * 1024

# The lock key that stands for the whole state: it excludes, and is excluded by, every target.
ALL_TARGETS = "*"

# What `state migrate` copies, in copy order, with the columns both backends share. Locks are
# not copied: they belong to running processes, not to the state.
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "meta": ("key", "value"),
    "base": ("target", "location", "item", "quantity", "settings"),
    "plans": ("plan_id", "lineage", "serial_before", "serial_after", "status", "op_count", "created_at", "updated_at"),
    "plan_parts": ("plan_id", "target", "op_count", "status", "run_id", "updated_at"),
    "runs": ("run_id", "plan_id", "git_commit", "who", "started_at", "finished_at", "outcome", "counts", "targets"),
    "journal": ("plan_id", "op_id", "run_id", "target", "kind", "status", "request", "response", "error",
                "base_updates", "updated_at"),
    # stock counts (schema version 5, reconciler/counts)
    "counts": ("count_id", "location", "started_at", "started_by", "note", "items", "finished_at"),
    "count_snapshots": ("count_id", "target", "item", "quantity", "cost"),
}


class JournalStatus(str, enum.Enum):
    PENDING = "pending"
    APPLIED = "applied"
    FAILED = "failed"
    IN_DOUBT = "in_doubt"
    NOT_APPLIED = "not_applied"

    def __str__(self) -> str:
        return self.value


class PlanStatus(str, enum.Enum):
    APPLYING = "applying"
    APPLIED = "applied"
    PARTIAL = "partial"

    def __str__(self) -> str:
        return self.value


class PartStatus(str, enum.Enum):
    """The state of one target's part of a plan (``apply --target`` applies one part)."""

    PENDING = "pending"  # no run has started it yet
    APPLYING = "applying"  # a run started it and has not finished (or was killed)
    APPLIED = "applied"
    PARTIAL = "partial"  # a run finished with operations failed or in doubt

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class BaseUpdate:
    """A change to one base position. ``None`` fields keep what B holds."""

    key: PositionKey
    quantity: int | None = None
    settings: Settings | None = None
    remove: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "key": list(self.key),
            "quantity": self.quantity,
            "settings": None if self.settings is None else self.settings.as_dict(),
            "remove": self.remove,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BaseUpdate:
        settings = data.get("settings")
        target, location, item = data["key"]
        return cls(
            key=(target, location, item),
            quantity=data.get("quantity"),
            settings=None if settings is None else Settings.from_dict(settings),
            remove=bool(data.get("remove")),
        )


@dataclass(frozen=True, slots=True)
class ApplyTicket:
    """Permission to apply a plan, handed out by :meth:`StateStore.begin_apply`."""

    plan_id: str
    run_id: str
    lineage: str
    serial_before: int
    resumed: bool  # True: this plan was started before and is being resumed


@dataclass(frozen=True, slots=True)
class JournalEntry:
    plan_id: str
    op_id: str
    run_id: str
    target: str
    kind: str
    status: JournalStatus
    request: str  # JSON summary of the operation, no secrets
    response: str  # the vendor's body, verbatim (truncated to MAX_RESPONSE_CHARS)
    error: str | None
    updated_at: str
    base_updates: tuple[BaseUpdate, ...] = ()


@dataclass(frozen=True, slots=True)
class RunRecord:
    run_id: str
    plan_id: str
    git_commit: str | None
    who: str
    started_at: str
    finished_at: str | None
    outcome: str | None
    counts: Mapping[str, int] = field(default_factory=dict)
    targets: tuple[str, ...] = ()  # the parts this run applied; () = the whole plan


@dataclass(frozen=True, slots=True)
class PlanRecord:
    plan_id: str
    lineage: str
    serial_before: int
    serial_after: int | None
    status: PlanStatus
    op_count: int


@dataclass(frozen=True, slots=True)
class PartRecord:
    plan_id: str
    target: str
    op_count: int
    applied: int
    status: PartStatus
    run_id: str | None  # the run that last worked on it



@dataclass(frozen=True, slots=True)
class LockInfo:
    id: str
    holder: str  # user@host of whoever runs the apply
    host: str
    pid: int
    acquired_at: str  # ISO 8601 UTC
    expires_at: str  # "" where the lock lives as long as its holder's connection (PostgreSQL)
    targets: tuple[str, ...] = (ALL_TARGETS,)  # what it locks; ALL_TARGETS: the whole state
    backend_pid: int | None = None  # PostgreSQL: the server process of the holder's lock session


@dataclass(frozen=True, slots=True)
class Outcome:
    """What :meth:`StateStore.record_outcome` writes for one operation."""

    op_id: str
    status: JournalStatus
    response: str = ""
    error: str | None = None


class StateStore(ABC):
    """Where reconciler keeps what it applied. One instance per process; thread-safe."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def describe(self) -> str:
        """Where this state lives, fit to print (never a password)."""

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- identity ---------------------------------------------------------------------------
    @abstractmethod
    def lineage(self) -> str:
        """A uuid made when the state was created; plans from another lineage are refused."""

    @abstractmethod
    def serial(self) -> int:
        """Moves whenever B may have changed; plans made against an older serial are stale."""

    # --- base positions ---------------------------------------------------------------------
    @abstractmethod
    def load_base(self, targets: Iterable[str] | None = None) -> BaseState: ...

    # --- apply --------------------------------------------------------------------------------
    @abstractmethod
    def begin_apply(
        self,
        plan: Plan,
        *,
        op_count: int,
        who: str,
        run_id: str | None = None,
        parts: Mapping[str, int] | None = None,
        targets: Collection[str] | None = None,
    ) -> ApplyTicket:
        """Check the plan against lineage/serial/history, record it and start a run.

        ``parts`` (target -> operation count) is recorded with a new plan; ``targets`` are the
        parts this run applies (None: all). Starting any run moves the serial, so a plan made
        before it is stale; a part of a plan already started is a resume, allowed as long as no
        newer plan was started since. Raises StalePlanError if the plan is of another lineage,
        older than the state (and not a resume), or every requested part is applied in full.
        """

    @abstractmethod
    def record_pending(self, plan_id: str, run_id: str, ops: Sequence[tuple[Operation, str, Sequence[BaseUpdate]]]) -> None:
        """Journal ``ops`` (operation, request summary, B updates if applied) as pending."""

    @abstractmethod
    def record_outcome(self, plan_id: str, outcome: Outcome, base_updates: Sequence[BaseUpdate] = ()) -> None:
        """The journal row and the base positions it implies, in one transaction."""

    def record_outcomes(self, plan_id: str, outcomes: Sequence[tuple[Outcome, Sequence[BaseUpdate]]]) -> None:
        """Several outcomes (one batch's) with their base positions; stores override this to
        use one transaction, so a batch costs one durable commit instead of one per operation."""
        for outcome, updates in outcomes:
            self.record_outcome(plan_id, outcome, updates)

    def record_adopted(self, plan_id: str, run_id: str, adopted: Sequence[tuple[Operation, str, BaseUpdate]],
                       response: str) -> None:
        """An import's operations (operation, request summary, the base position it adopts with
        quantity and settings given), journaled straight as applied: no vendor is written, so
        nothing is ever in flight. Stores override this with a bulk write: ``init --from``
        adopts a chain's million positions at once."""
        self.record_pending(plan_id, run_id, [(op, request, [update]) for op, request, update in adopted])
        self.record_outcomes(plan_id, [(Outcome(op.id, JournalStatus.APPLIED, response=response), [update])
                                       for op, _, update in adopted])

    @abstractmethod
    def journal(self, plan_id: str) -> dict[str, JournalEntry]: ...

    @abstractmethod
    def find_journal(self, op_id: str, statuses: Iterable[JournalStatus] | None = None) -> list[JournalEntry]:
        """Journal rows (of any plan) whose op id equals or starts with ``op_id``."""

    @abstractmethod
    def unsettled(self, targets: Iterable[str] | None = None) -> list[JournalEntry]:
        """Operations (of any plan) left ``pending`` or ``in_doubt``, optionally of ``targets``
        only, oldest first: until they are settled, B of their positions may not be what the
        vendor holds."""

    @abstractmethod
    def resolve(self, plan_id: str, op_id: str, applied: bool, base_updates: Sequence[BaseUpdate] | None = None) -> JournalEntry:
        """Settle an in-doubt (or pending) operation by the user's word. ``None``: the B updates
        journaled with the operation."""

    @abstractmethod
    def finish_run(self, run_id: str, outcome: str, counts: Mapping[str, int]) -> PlanRecord:
        """Close a run; the plan becomes ``applied`` when every operation is, else ``partial``."""

    @abstractmethod
    def plan_record(self, plan_id: str) -> PlanRecord | None: ...

    @abstractmethod
    def plan_parts(self, plan_id: str) -> list[PartRecord]:
        """The per-target parts of a plan, by target name."""

    @abstractmethod
    def runs(self, limit: int | None = None) -> list[RunRecord]:
        """Newest first."""

    @abstractmethod
    def run(self, run_id: str) -> RunRecord | None: ...

    # --- locks ------------------------------------------------------------------------------
    @abstractmethod
    def acquire_lock(self, holder: str, ttl_s: float, targets: Iterable[str] | None = None) -> LockInfo:
        """Lock ``targets`` (None or empty: the whole state) or raise LockHeld naming the holder.

        Locks of disjoint targets coexist; the whole-state lock excludes every other."""

    @abstractmethod
    def renew_lock(self, lock_id: str, ttl_s: float) -> LockInfo:
        """Push a held lock's expiry; raises LockHeld if it was taken over meanwhile."""

    @abstractmethod
    def release_lock(self, lock_id: str) -> bool:
        """Remove the lock if its id matches; False if there was no such lock."""

    @abstractmethod
    def locks(self) -> list[LockInfo]:
        """Every lock held now, oldest first."""

    def current_lock(self) -> LockInfo | None:
        """The oldest lock held, if any."""
        held = self.locks()
        return held[0] if held else None

    # --- copying a whole state (`reconciler state migrate`) ---------------------------------
    @abstractmethod
    def export_rows(self, table: str) -> list[dict[str, Any]]:
        """Rows of a table of TABLE_COLUMNS, in a stable order (insertion order for runs and
        journal, the primary key otherwise)."""

    @abstractmethod
    def replace_all(self, tables: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
        """Replace the content of every table of TABLE_COLUMNS by ``tables``, in one transaction."""

    def is_empty(self) -> bool:
        """True when nothing was ever planned, applied or imported into this state."""
        return self.serial() == 0 and not any(self.export_rows(t) for t in ("base", "plans", "runs", "journal"))
