"""Zettle (iZettle / PayPal) inventory connector: API v3 by default, v1/v2 with ``api_version: v2``
(VENDORS.md section 3, research/auth_and_discovery.md B2/B3, docs/connectors/zettle.md).

Zettle holds one STORE balance per variant and cannot set it: every change is a movement between
inventories. Stock goes up SUPPLIER->STORE and down STORE->BIN (as SwagPayPal does), so:

- adjust d: one movement of |d|;
- reset N: re-read the live balance just before writing and move |N - live|, so the result is N
  even if stock was sold since the plan (a move past the tolerance is reported in the response);
- delete: stop tracking the PRODUCT (Zettle tracks per product: every variant stops);
- settings: the custom low-stock level.

The STORE is found by the API (``GET /v3/inventories``), so reconciler.yaml says ``STORE``
rather than a UUID typed by hand. All movements of a batch go in one request. v3 answers a
movement with ``204 No Content`` and no balances, so the balances it touched are read again. An
answer that does not prove success (a 500/502/504 or timeout after sending, a 2xx of unknown shape
or carrying an error) is settled by that same re-read against the balances before and the ones
expected after: all as expected (and, in v3, changed since) is applied; all as before and unchanged
is not applied; anything else is in doubt. A movement is never re-sent blindly.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import httpx

from reconciler.auth import bearer_auth
from reconciler.connectors._http import VendorHTTP
from reconciler.connectors._zettle_api import Answer, Live, Move, Step, WriteAnswer, ZettleApi, check_options, store_choice
from reconciler.connectors._zettle_v2 import V2Api
from reconciler.connectors._zettle_v3 import V3Api
from reconciler.connectors import _zettle_library
from reconciler.connectors.base import CatalogueItem, Connector, VendorLocation, OpResult, Outcome, TargetContext, Verification
from reconciler.errors import ConfigError, NotSupported, Problem, VendorError
from reconciler.model import Capabilities, OpKind, Operation, Record, Settings

# Namespace of the v1/v2 externalUuid values: fixed, so the same operation always gets the same uuid.
EXTERNAL_NAMESPACE = uuid.UUID("0f5c8e52-7a0e-5d1b-9a41-5d3f3b2f6c10")
BATCH_SIZE = 100  # undocumented by Zettle: our assumption (docs/connectors/zettle.md)
FRESH_FOR_S = 2.0  # how long a re-read may stand in for the next batch's read
# How often a request proven not applied by the re-read is sent (a blind resend: never).
RESENDS_AFTER_PROOF = 4
STOCK_KINDS = frozenset({OpKind.RESET, OpKind.ADJUST, OpKind.DELETE})
API_VERSIONS = {"v3": V3Api, "v2": V2Api}


def external_uuid(op_id: str) -> str:
    """The externalUuid a v1/v2 request starting with operation ``op_id`` carries."""
    return str(uuid.uuid5(EXTERNAL_NAMESPACE, op_id))


@dataclass
class _Settled:
    """What the movements of one request came to."""

    outcome: Outcome
    after: dict[str, int] = field(default_factory=dict)
    note: str = ""


class ZettleConnector(Connector):
    kind = "zettle"
    capabilities = Capabilities(
        readable=True,
        absolute=False,
        delta=True,
        native_move=False,
        delete=True,
        settings=frozenset({"low_stock_level"}),
        verifiable_deltas=False,
        max_batch=BATCH_SIZE,
    )

    def __init__(self, ctx: TargetContext, *, transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(ctx, transport=transport)
        self.tolerance = _tolerance(ctx)
        self.http = VendorHTTP(ctx, transport, auth=bearer_auth(ctx, self._auth))
        self.api: ZettleApi = API_VERSIONS[_api_version(ctx)](ctx, self.http)
        # The re-read after one batch's write, reused as the next batch's read if still fresh: it
        # halves the listing pages an apply reads (docs/connectors/zettle.md, "Costs").
        self._fresh: tuple[float, Live] | None = None
        self._fresh_lock = threading.Lock()

    # --- plumbing ----------------------------------------------------------------------------

    def _auth(self, request: httpx.Request) -> None:
        app_id = self.ctx.options.get("application_id")
        if app_id:
            request.headers["X-iZettle-Application-Id"] = str(app_id)

    def close(self) -> None:
        self.http.close()

    def catalogue(self) -> list[CatalogueItem]:
        return _zettle_library.catalogue(self.http, self.ctx.name,
                                         _zettle_library.library_url(self.ctx.base_url, self.ctx.options))

    def locations(self) -> list[VendorLocation]:
        return _zettle_library.locations()

    def _location_name(self) -> str:
        return next(iter(self.ctx.location_ids))

    def system_locations(self) -> dict[str, str]:
        """type -> uuid of STORE, SUPPLIER and BIN (read once per connector)."""
        return self.api.system()

    def _ids(self, item: str) -> tuple[str, str]:
        raw = self.ctx.item_ids.get(item)
        if not isinstance(raw, Mapping) or "product" not in raw or "variant" not in raw:
            raise ConfigError([Problem(
                f"item {item!r} has no Zettle product and variant UUIDs in target {self.ctx.name!r}",
                "stock/catalog.yaml",
                hint=f'Write its id as {{product: "<uuid>", variant: "<uuid>"}} under ids: {self.ctx.name}.',
            )])
        return str(raw["product"]).lower(), str(raw["variant"]).lower()

    # --- read ----------------------------------------------------------------------------------

    def read_stock(self) -> dict[tuple[str, str], Record]:
        """Every mapped variant of a tracked product. A tracked variant Zettle does not list holds
        0; untracked products are not stocked at all."""
        live = self.api.read_live()
        levels = live.levels if live.levels is not None else self.api.read_low_stock()
        location = self._location_name()
        out: dict[tuple[str, str], Record] = {}
        for sku in self.ctx.item_ids:
            try:
                product, variant = self._ids(sku)
            except ConfigError:
                continue  # not a Zettle id: the config validator reports it
            if product not in live.tracked:
                continue
            level = levels.get(variant)
            settings = Settings(low_stock_level=level) if level is not None else Settings()
            out[(location, sku)] = Record(live.balances.get(variant, 0), settings)
        return out

    # --- write ---------------------------------------------------------------------------------

    def batches(self, ops: Sequence[Operation]) -> list[list[Operation]]:
        """Settings and stock changes go to different endpoints: never in one batch, so a failed
        request is only ever recorded against the operations it carried."""
        out: list[list[Operation]] = []
        stock = [o for o in ops if o.kind in STOCK_KINDS]
        settings = [o for o in ops if o.kind is OpKind.SETTINGS]
        other = [o for o in ops if o.kind not in STOCK_KINDS and o.kind is not OpKind.SETTINGS]
        for group in (stock, settings, other):
            out += [group[i : i + BATCH_SIZE] for i in range(0, len(group), BATCH_SIZE)]
        return out

    def execute(self, batch: Sequence[Operation]) -> list[OpResult]:
        if not batch:
            return []
        if all(op.kind is OpKind.SETTINGS for op in batch):
            return self._execute_settings(batch)
        unsupported = [op for op in batch if op.kind not in STOCK_KINDS]
        if unsupported:
            raise NotSupported(
                f"{self.ctx.name}: a Zettle batch mixes {unsupported[0].kind} with stock changes.",
                hint="Group operations with ZettleConnector.batches().",
            )
        return self._execute_stock(batch)

    def _steps(self, batch: Sequence[Operation], live: Live) -> list[Step]:
        running = dict(live.balances)
        steps: list[Step] = []
        for op in batch:
            product, variant = self._ids(op.item)
            step = Step(op, product, variant)
            now = running.get(variant, 0)
            if op.kind is OpKind.RESET:
                target = op.legs[0].expected
                assert target is not None  # a reset always has its quantity
                step.change = target - now
                planned = op.legs[0].actual
                if planned is not None and abs(now - planned) > self.tolerance:
                    step.note = (
                        f"live stock moved by {now - planned:+d} since the plan (plan saw {planned}, read {now} "
                        f"just before writing); reset to {target} anyway"
                    )
            elif op.kind is OpKind.ADJUST:
                step.change = op.legs[0].change
            running[variant] = now + step.change
            steps.append(step)
        _check_deletes(steps)
        return steps

    def _read_before(self, batch: Sequence[Operation]) -> Live:
        with self._fresh_lock:
            fresh, self._fresh = self._fresh, None
        resets = any(op.kind is OpKind.RESET for op in batch)
        if fresh is not None and not resets and time.monotonic() - fresh[0] <= FRESH_FOR_S:
            # Deltas do not depend on it; it only sets what the re-read is compared with, and a sale
            # since it changes the stamps, so no "not applied" proof is claimed: it is in doubt.
            # A reset moves the difference from it, so a reset always reads anew.
            return fresh[1]
        return self.api.read_live()

    def _execute_stock(self, batch: Sequence[Operation], attempt: int = 1) -> list[OpResult]:
        live = self._read_before(batch)
        written = {self._ids(op.item)[0] for op in batch if op.kind is not OpKind.DELETE}
        self.api.start_tracking(sorted(written - live.tracked), live)
        steps = self._steps(batch, live)
        moving = [s for s in steps if not s.error and s.op.kind is not OpKind.DELETE and s.change]
        moves = [Move(s.product, s.variant, abs(s.change), s.change > 0) for s in moving]
        # v3 disables tracking whatever the read says: it may not list a tracked product holding 0.
        stop = sorted({s.product for s in steps if s.op.kind is OpKind.DELETE and not s.error
                       and (self.api.version == "v3" or s.product in live.tracked)})
        ext = external_uuid(batch[0].id) if self.api.version == "v2" else ""
        stopped: WriteAnswer | None = None
        if stop and self.api.version == "v3":
            stopped = self._stop_tracking(stop)
        if moves or (stop and self.api.version == "v2"):
            answer = self.api.send(moves, stop if self.api.version == "v2" else [], ext)
            stopped = stopped or answer
        else:
            answer = WriteAnswer(Answer.CONFIRMED, "nothing to send: already as planned")
        settled = self._settle(answer, moving, live)
        if settled.outcome is Outcome.FAILED and attempt < RESENDS_AFTER_PROOF:
            # Proven not applied (balances and change stamps as before): sending it again cannot
            # double it. Steps are planned again from a fresh read (a reset's difference may differ).
            return self._execute_stock(batch, attempt + 1)
        deleted = self._settle_stop(stopped, stop) if stop else set()
        carried = ", ".join(s.op.id for s in steps if not s.error)
        tag = f"{self.api.version} request carried operations {carried}" + (f"; externalUuid {ext}" if ext else "")
        return [self._result(step, live, settled, deleted, answer, tag) for step in steps]

    def _stop_tracking(self, products: list[str]) -> WriteAnswer:
        try:
            return self.api.stop_tracking(products)
        except VendorError as exc:
            return WriteAnswer(Answer.AMBIGUOUS, exc.body or "", reason=str(exc))

    def _settle_stop(self, answer: WriteAnswer | None, products: list[str]) -> set[str]:
        """The products whose tracking is known to be stopped."""
        if answer is not None and answer.state is Answer.CONFIRMED:
            return set(products)
        try:
            tracked = self.api.read_live().tracked
        except VendorError:
            return set()
        return {p for p in products if p not in tracked}

    def _settle(self, answer: WriteAnswer, moving: list[Step], live: Live) -> _Settled:
        """Judge the movements of one request; a re-read settles what the answer does not."""
        expected: dict[str, int] = {}
        for step in moving:
            expected[step.variant] = expected.get(step.variant, live.balances.get(step.variant, 0)) + step.change
        if not expected:
            return _Settled(Outcome.APPLIED)
        if answer.state is Answer.CONFIRMED and answer.balances is not None:
            return _Settled(Outcome.APPLIED, answer.balances)
        try:
            now = self.api.read_live()
            with self._fresh_lock:
                self._fresh = (time.monotonic(), now)
        except VendorError as exc:
            if answer.state is Answer.CONFIRMED:
                return _Settled(Outcome.APPLIED, note=f"the balances could not be read again ({exc})")
            return _Settled(Outcome.IN_DOUBT, note=f"{answer.reason}; re-reading the balances failed ({exc})")
        after = {v: now.balances.get(v, 0) for v in expected}
        figures = ", ".join(f"{v}: before {live.balances.get(v, 0)}, expected {expected[v]}, now {after[v]}"
                            for v in expected)
        if answer.state is Answer.CONFIRMED:
            off = [v for v in expected if after[v] != expected[v]]
            note = f"re-read after the 204 differs from the expected balance (a sale meanwhile?): {figures}" if off else ""
            return _Settled(Outcome.APPLIED, after, note)
        if all(after[v] == expected[v] and _changed(live, now, v) is not False for v in expected):
            return _Settled(Outcome.APPLIED, after, f"{answer.reason}; verified applied by re-reading: {figures}")
        if all(after[v] == live.balances.get(v, 0) and _changed(live, now, v) is False for v in expected):
            return _Settled(Outcome.FAILED, note=f"{answer.reason}; verified NOT applied by re-reading "
                                                 f"(balances and last-change times as before): {figures}")
        return _Settled(Outcome.IN_DOUBT, note=f"{answer.reason}; re-reading cannot tell whether it was applied: {figures}")

    def _result(self, step: Step, live: Live, settled: _Settled, deleted: set[str], answer: WriteAnswer,
                tag: str) -> OpResult:
        if step.error:
            return OpResult(step.op.id, Outcome.FAILED, response="", error=step.error)
        note = f"note: {step.note}\n" if step.note else ""
        if step.product in live.started:
            note += f"note: started tracking Zettle product {step.product} (it was untracked)\n"
        text = f"{note}{tag}\n{answer.text}"
        if step.op.kind is OpKind.DELETE:
            if step.product in deleted or step.product not in live.tracked and self.api.version == "v2":
                return OpResult(step.op.id, Outcome.APPLIED, response=text)
            return OpResult(step.op.id, Outcome.FAILED, response=text,
                            error=f"stopping tracking of product {step.product} was not confirmed; it is absolute, "
                                  "so the next apply sends it again")
        if not step.change or settled.outcome is Outcome.APPLIED:
            after = {self._location_name(): settled.after[step.variant]} if step.variant in settled.after else {}
            text += f"\nnote: {settled.note}" if settled.note and step.change else ""
            return OpResult(step.op.id, Outcome.APPLIED, response=text, actual_after=after)
        if settled.outcome is Outcome.IN_DOUBT and step.op.kind is OpKind.RESET:
            # A reset re-reads live stock before it moves anything, so sending it again is safe.
            return OpResult(step.op.id, Outcome.FAILED, response=text,
                            error=f"{settled.note}; a reset re-reads live stock, so the next apply simply sends it again")
        return OpResult(step.op.id, settled.outcome, response=text, error=settled.note)

    def _execute_settings(self, batch: Sequence[Operation]) -> list[OpResult]:
        wanted: dict[str, int] = {}
        requests: list[dict[str, Any]] = []
        for op in batch:
            product, variant = self._ids(op.item)
            level = op.settings_after.low_stock_level if op.settings_after else None
            if level is not None:  # never send a null: only managed settings are written
                wanted[op.id] = level
                requests.append({"productUuid": product, "variantUuid": variant, "lowStockLevel": level})
        if not requests:
            return [OpResult(op.id, Outcome.APPLIED, response="nothing to send: no low_stock_level managed") for op in batch]
        path = f"/custom-low-stock/locations/{self.api.system()['STORE']}"
        response = self.http.request("POST", path, json={"requests": requests}, idempotent=True)
        text = response.text or f"HTTP {response.status_code}"
        if response.status_code == 204:  # documented: 204, no body
            return [OpResult(op.id, Outcome.APPLIED, response=text) for op in batch]
        levels = self.api.read_low_stock()  # any other 2xx: believe only what reads back
        results = []
        for op in batch:
            held = levels.get(self._ids(op.item)[1])
            if op.id not in wanted or held == wanted[op.id]:
                results.append(OpResult(op.id, Outcome.APPLIED, response=text))
            else:
                results.append(OpResult(op.id, Outcome.FAILED, response=text, error=(
                    f"the low-stock write was answered HTTP {response.status_code}, not the documented 204, and the "
                    f"level reads {held}, not {wanted[op.id]}; it is absolute, so the next apply sends it again")))
        return results

    # --- after a crash ----------------------------------------------------------------------

    def verify(self, op: Operation) -> Verification:
        """Adjustments: UNKNOWN (Zettle keeps no id of a movement, and the balance before it is
        not known to a later process). Resets, deletes and settings are absolute: the live state
        tells whether they landed (a sale right after a reset can make it look not applied:
        re-sending it is harmless)."""
        product, variant = self._ids(op.item)
        if op.kind is OpKind.DELETE:
            return Verification.NOT_APPLIED if product in self.api.read_live().tracked else Verification.APPLIED
        if op.kind is OpKind.RESET:
            live = self.api.read_live()
            held = live.balances.get(variant, 0) if product in live.tracked else None
            return Verification.APPLIED if held == op.legs[0].expected else Verification.NOT_APPLIED
        if op.kind is OpKind.SETTINGS and op.settings_after is not None:
            wanted = op.settings_after.low_stock_level
            if wanted is None:
                return Verification.APPLIED  # nothing was to be written
            return Verification.APPLIED if self.api.read_low_stock().get(variant) == wanted else Verification.NOT_APPLIED
        return Verification.UNKNOWN


def _check_deletes(steps: list[Step]) -> None:
    """Stop tracking is per product: refuse it when the same request writes another variant."""
    writes = {s.product: s.op.item for s in steps if s.op.kind is not OpKind.DELETE}
    for step in steps:
        if step.op.kind is OpKind.DELETE and step.product in writes:
            step.error = (
                f"cannot stop tracking {step.op.item}: Zettle tracks whole products, and product "
                f"{step.product} also holds {writes[step.product]}, which this apply writes; "
                "keep the position in the stock file or delete every variant of the product"
            )


def _changed(before: Live, now: Live, variant: str) -> bool | None:
    """Whether the variant's v3 last-change stamp moved; None when the API gives none (v1/v2)."""
    if not before.updated and not now.updated:
        return None
    return before.updated.get(variant) != now.updated.get(variant)


def _api_version(ctx: TargetContext) -> str:
    if ctx.location_ids:
        store_choice(ctx)  # checks the options and the location id
    else:
        check_options(ctx)  # made only to list the catalogue (init --from): no location mapped yet
    return str(ctx.options.get("api_version", "v3")).strip().lower()


def _tolerance(ctx: TargetContext) -> int:
    value = ctx.options.get("reset_tolerance", 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError([Problem(
            f"target {ctx.name!r}: options.reset_tolerance must be a whole number of 0 or more, not {value!r}",
            "reconciler.yaml", hint="It is how many units live stock may move between plan and apply unreported.",
        )])
    return value


CONNECTOR = ZettleConnector
