"""The connector interface: the only way reconciler talks to a vendor.

A connector reads the live stock of one target (or says it cannot: write-only APIs), declares
its :class:`~reconciler.model.Capabilities`, groups operations into the batches its API takes,
executes a batch, and, after a crash, verifies whether an operation left in flight was applied.

Connectors are found by kind: ``reconciler.connectors.<kind with - as _>`` must define a
subclass of :class:`Connector` named ``CONNECTOR`` at module level. Adding a vendor is adding one
module here and one simulator module in ``reconciler.sandbox``; nothing else changes.
"""

from __future__ import annotations

import enum
import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Collection, Mapping, Sequence

import httpx

from reconciler.errors import ConfigError, NotSupported, Problem
from reconciler.model import Capabilities, Operation, Record


class Secret:
    """A credential. Its repr and str never show the value, so it cannot leak into logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class TargetContext:
    """Everything a connector needs to know about its target, resolved from reconciler.yaml."""

    name: str
    kind: str
    base_url: str
    credential: Secret
    # canonical location name -> the vendor's location id (outlet_id, location UUID, store code)
    location_ids: Mapping[str, str]
    # canonical SKU -> the vendor's ids; a string or a mapping of fields (Zettle: product and
    # variant UUIDs; Ka-ching: product and optional variant; Run Free: upc or sku/size/width)
    item_ids: Mapping[str, str | Mapping[str, str]]
    # vendor-specific settings from reconciler.yaml (e.g. Ka-ching account and integration)
    options: Mapping[str, Any] = field(default_factory=dict)
    # requests per second and concurrent requests allowed against this target
    rate_limit: float | None = None
    rate_burst: int = 1
    concurrency: int = 4
    timeout_s: float = 30.0
    # where the Authorization header comes from (reconciler.auth); None: ``credential`` as a bearer
    token_source: Any = None

    def location_of(self, vendor_id: str) -> str | None:
        for name, vid in self.location_ids.items():
            if vid == vendor_id:
                return name
        return None


class Outcome(str, enum.Enum):
    APPLIED = "applied"
    FAILED = "failed"
    IN_DOUBT = "in_doubt"


@dataclass(frozen=True)
class OpResult:
    """What happened to one operation. ``response`` is the vendor's body, verbatim."""

    op_id: str
    outcome: Outcome
    response: str = ""
    error: str | None = None
    # the quantity per leg location the vendor reported after the write, when it says
    actual_after: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Estimate:
    """What an apply of some operations will cost a target: requests, and the seconds the rate
    budget (the vendor's and ``rate_limit``) makes them take at least; ``notes`` say how the
    operations will be written where the plan should show it (e.g. the reasons recorded)."""

    requests: int
    seconds: float
    notes: tuple[str, ...] = ()

    def describe(self, target: str) -> str:
        return f"{target}: the apply needs about {self.requests:,} request{'s' if self.requests != 1 else ''}" + (
            f", at least {_duration(self.seconds)} within the rate budget" if self.seconds >= 1
            else ", within the rate budget without waiting")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass(frozen=True)
class CatalogueItem:
    """One sellable item as a vendor's catalogue lists it (``reconciler discover``): ``id`` is
    what catalog.yaml holds under ``ids:`` for this target (a string or a mapping of id fields);
    ``sku`` and ``barcodes`` are the vendor's own, optional and not necessarily unique."""

    id: str | Mapping[str, str]
    sku: str | None
    barcodes: tuple[str, ...] = ()
    name: str = ""


@dataclass(frozen=True)
class VendorLocation:
    """One stock location as the vendor lists it: the id reconciler.yaml maps a location to."""

    id: str
    name: str


class Verification(str, enum.Enum):
    APPLIED = "applied"
    NOT_APPLIED = "not_applied"
    UNKNOWN = "unknown"


class Connector(ABC):
    """One vendor API. Subclasses set ``kind`` and ``capabilities``."""

    kind: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    def __init__(self, ctx: TargetContext, *, transport: httpx.BaseTransport | None = None) -> None:
        self.ctx = ctx
        self.transport = transport

    @classmethod
    def reads_with(cls, options: Mapping[str, Any]) -> bool:
        """Whether a target of this kind with these options has a read side. Asked before any
        connector is made (a plan never contacts a write-only target, so needs no credential
        for it); kinds whose options change it override this."""
        return cls.capabilities.readable

    @abstractmethod
    def read_stock(self) -> dict[tuple[str, str], Record]:
        """Live stock of every mapped (location, item). Raises NotSupported if write-only."""

    def batches(self, ops: Sequence[Operation]) -> list[list[Operation]]:
        """Group operations into requests, up to the API's documented batch limit."""
        size = max(1, self.capabilities.max_batch)
        return [list(ops[i : i + size]) for i in range(0, len(ops), size)]

    @abstractmethod
    def execute(self, batch: Sequence[Operation]) -> list[OpResult]:
        """Send one batch. Returns one result per operation, in order.

        Raises VendorUnavailable (retryable) or VendorRejected for failures of the whole
        request; the applier records them against every operation of the batch.
        """

    def verify(self, op: Operation) -> Verification:
        """After a crash: was this in-flight operation applied? Default: cannot tell."""
        return Verification.UNKNOWN

    def estimate(self, ops: Sequence[Operation]) -> Estimate:
        """Requests an apply of ``ops`` (this target's executable operations) needs, and the
        seconds ``rate_limit`` makes them take. Default: one request per batch."""
        requests = len(self.batches(ops)) if ops else 0
        seconds = requests / self.ctx.rate_limit if self.ctx.rate_limit else 0.0
        return Estimate(requests, seconds)

    def unit_costs(self, location: str) -> dict[str, float]:
        """item -> unit cost at ``location``, for a stock count's variance value (docs/counts.md).
        Default: none (the vendor gives no cost, or it is not read)."""
        return {}

    def plan_problems(self, ops: Sequence[Operation], kept: Collection[tuple[str, str]]) -> list[Problem]:
        """Plan-time errors only the vendor can tell (it may read, never write). ``kept``: the
        (location, item) positions of this target still managed after the plan, computed only
        when ``ops`` hold a delete (empty otherwise). Default: none."""
        return []

    def mark(self, ops: Sequence[Operation], sources: Mapping[str, str]) -> str | None:
        """At plan time, after read_stock: what the plan keeps for this target and hands back
        before the apply (``resume_from``): e.g. a version cursor from which an in-flight write
        can be looked up after a crash, or per-operation choices the plan shows. ``ops``: this
        target's executable operations; ``sources``: adjustment op id -> the stock file of its
        desired position. Default: none."""
        return None

    def resume_from(self, mark: str | None) -> None:
        """Before executing a saved plan: the ``mark`` this target's connector gave at plan time."""

    def catalogue(self) -> list[CatalogueItem]:
        """Every item the vendor sells, for ``reconciler discover`` and ``init --from``. A vendor
        with no catalogue read says NotSupported: its ids come from the merchant's export file."""
        raise NotSupported(f"{self.kind} has no API to list its catalogue",
                           hint="Export the catalogue from the vendor and pass it with --from-csv FILE --columns ...")

    def locations(self) -> list[VendorLocation]:
        """Every stock location the vendor lists. NotSupported where the vendor has no such read."""
        raise NotSupported(f"{self.kind} has no API to list its stock locations",
                           hint="Write the location ids in reconciler.yaml by hand (docs/configuration.md).")

    def close(self) -> None:
        """Release HTTP connections."""


def module_name(kind: str) -> str:
    return kind.replace("-", "_")


def connector_class(kind: str) -> type[Connector]:
    """The connector class for a target kind, by convention of module name."""
    try:
        module = importlib.import_module(f"reconciler.connectors.{module_name(kind)}")
    except ModuleNotFoundError as exc:
        raise ConfigError(
            [Problem(f"unknown target kind {kind!r}", hint="Use one of: " + ", ".join(known_kinds()) + ".")]
        ) from exc
    cls = getattr(module, "CONNECTOR", None)
    if cls is None:
        raise NotSupported(f"connector module for {kind!r} defines no CONNECTOR")
    return cls


def known_kinds() -> list[str]:
    """Every kind with a connector module in this package (discovered, not listed)."""
    import pkgutil

    import reconciler.connectors as package

    return sorted(
        info.name.replace("_", "-")
        for info in pkgutil.iter_modules(package.__path__)
        if not info.name.startswith("_") and info.name != "base"
    )
