"""What the Zettle connector needs from either API version (v3 by default, v1/v2 behind
``api_version: v2``): the shared data, the answer classification and the parsing helpers.

Each version module (``_zettle_v3.py``, ``_zettle_v2.py``) implements :class:`ZettleApi`; the
connector (``zettle.py``) plans the movements, sends them through it, and settles every answer that
does not prove success by re-reading the balances the write touched.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

import httpx

from reconciler.config._kinds import ZETTLE_STORE_WORD, zettle_target_problems
from reconciler.connectors.base import TargetContext
from reconciler.errors import ConfigError, Problem, VendorRejected
from reconciler.model import Operation

STORE_WORD = ZETTLE_STORE_WORD


@dataclass
class Live:
    """The STORE as read: balances and (v3) last-change stamps by variant, tracked products, and
    (v3, where the stock rows carry them) low-stock levels."""

    balances: dict[str, int] = field(default_factory=dict)
    updated: dict[str, str] = field(default_factory=dict)
    tracked: set[str] = field(default_factory=set)
    levels: dict[str, int] | None = None
    started: set[str] = field(default_factory=set)  # tracking started by this batch


@dataclass
class Step:
    """What one operation contributes to the write."""

    op: Operation
    product: str
    variant: str
    change: int = 0  # signed STORE change
    note: str = ""
    error: str | None = None


@dataclass(frozen=True)
class Move:
    """One movement of ``count`` > 0 units; ``up`` = SUPPLIER -> STORE, else STORE -> BIN."""

    product: str
    variant: str
    count: int
    up: bool


class Answer(enum.Enum):
    CONFIRMED = "confirmed"  # the documented success shape
    AMBIGUOUS = "ambiguous"  # 5xx/timeout after sending, an unknown 2xx shape, or a 2xx carrying an error


@dataclass
class WriteAnswer:
    state: Answer
    text: str  # the answer verbatim (or what happened), for the journal
    balances: dict[str, int] | None = None  # STORE balances the answer reported (v1/v2 bulk)
    reason: str = ""


class ZettleApi(Protocol):
    version: str

    def system(self) -> dict[str, str]: ...
    def read_live(self) -> Live: ...
    def start_tracking(self, products: list[str], live: Live) -> None: ...
    def send(self, moves: list[Move], stop: list[str], ext: str) -> WriteAnswer: ...
    def stop_tracking(self, products: list[str]) -> WriteAnswer: ...
    def read_low_stock(self) -> dict[str, int]: ...


def error_carrying(body: Any) -> bool:
    """Zettle's error body (``developerMessage``/``errorType``/``violations``), or an ``error`` key."""
    return isinstance(body, Mapping) and bool({"developerMessage", "errorType", "violations", "error"} & set(body))


def store_choice(ctx: TargetContext) -> str:
    """The configured STORE: the word STORE (discover it) or an inventory id (checked against
    the vendor's listing by pick_store)."""
    if len(ctx.location_ids) != 1:
        raise ConfigError([Problem(
            f"target {ctx.name!r} (zettle) maps {len(ctx.location_ids)} locations", "reconciler.yaml",
            hint="A Zettle organisation has one STORE: map exactly one canonical location to it (write STORE).",
        )])
    check_options(ctx)
    value = str(next(iter(ctx.location_ids.values()))).strip()
    return STORE_WORD if value.upper() == STORE_WORD else value.lower()


def check_options(ctx: TargetContext) -> None:
    """The validate-time checks again (a context need not come from a validated repository)."""
    problems = zettle_target_problems(ctx.options, ctx.location_ids)
    if problems:
        raise ConfigError([Problem(f"target {ctx.name!r}: {message}", "reconciler.yaml", hint=hint)
                           for _, message, hint in problems])


def pick_store(ctx: TargetContext, listed: list[tuple[str, str, bool]], where: str) -> str:
    """The STORE among ``(uuid, type, default)`` rows, as configured."""
    wanted = store_choice(ctx)
    stores = [(u, d) for u, t, d in listed if t == "STORE"]
    if wanted == STORE_WORD:
        chosen = [u for u, d in stores if d] or ([stores[0][0]] if len(stores) == 1 else [])
        if len(chosen) != 1:
            raise VendorRejected(
                f"{ctx.name}: {where} lists {len(stores)} STORE inventories and no single default one",
                hint="Write the UUID of the STORE inventory to use instead of STORE under the target's locations.",
            )
        return chosen[0]
    if wanted not in {u for u, _ in stores}:
        raise ConfigError([Problem(
            f"target {ctx.name!r}: {wanted} is not a STORE inventory of this organisation ({where} lists "
            f"{', '.join(u for u, _ in stores) or 'none'})", "reconciler.yaml",
            hint="Write STORE to use the default STORE inventory.",
        )])
    return wanted


def json_body(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError as exc:
        raise VendorRejected(
            f"Zettle answered {response.request.method} {response.request.url.path} with a body that is not JSON",
            status=response.status_code, body=response.text,
        ) from exc


def loose_json(response: httpx.Response) -> Any:
    """The body as JSON, or None when it is not JSON (an unknown answer is judged, not raised)."""
    try:
        return response.json() if response.content else None
    except ValueError:
        return None


def balances_of(entries: Any, target: str) -> dict[str, int]:
    """variant uuid -> balance from a Zettle ``variants`` list or v3 stock rows."""
    out: dict[str, int] = {}
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("variantUuid"):
            out[str(entry["variantUuid"]).lower()] = as_int(entry.get("balance"), target)
    return out


def as_int(value: Any, target: str) -> int:
    """A balance as Zettle sends it: a number, or (v1/v2 reads) a string holding one."""
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise VendorRejected(f"{target}: Zettle sent the balance {value!r}, which is not a number",
                             body=json.dumps(value)) from exc
    return int(number)
