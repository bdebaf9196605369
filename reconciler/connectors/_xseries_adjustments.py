"""X-Series stock adjustments (API 2026-01+): how deltas are written, and found again when in doubt.

``POST /api/{version}/stock_adjustments`` ``{"stock_adjustments": [{product_id, outlet_id,
quantity: "+N"|"-N", reason}]}`` with 1-1000 items a call; 201 ``{"data": [StockAdjustment]}``
(x-series-api.lightspeedhq.com/changelog/2026-05-adjustment-apis-2026-01). There is no
idempotency key, so a call is never re-sent blindly: before each call the connector reads the
listing's version cursor (``GET .../stock_adjustments?after=``, paged by version); when the
answer is lost or unreadable, it lists the adjustments after that cursor and looks for each
operation's (product, outlet, quantity, the token's user). One match: applied; none: not
applied; more than one: in doubt (someone else made the same adjustment meanwhile).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from reconciler.connectors.base import OpResult, Outcome, Verification
from reconciler.errors import ConfigError, Problem, VendorError, VendorRejected
from reconciler.model import Operation

if TYPE_CHECKING:
    from reconciler.connectors._http import VendorHTTP

MAX_PER_CALL = 1000  # documented: 1 to 1000 items a call
PAGE = 1000  # documented maximum page size of the listing
POSITIVE = ("STOCK_FOUND", "SAMPLE_FOR_SALE")
NEGATIVE = ("DAMAGE", "EXPIRY", "INTERNAL_USE", "THEFT", "DONATION")
# Reason values that leave stock_adjustments for a consignment (the docs' "purchase history").
RECEIPT, RETURN = "receipt", "return"
DEFAULT_REASONS = {"increase": "STOCK_FOUND", "decrease": "DAMAGE"}


@dataclass(frozen=True)
class Reason:
    """A vendor reason: an enum name, CUSTOM with its id, or receipt/return (a consignment)."""

    name: str
    custom_id: str | None = None

    def text(self) -> str:
        return f"CUSTOM:{self.custom_id}" if self.custom_id else self.name


@dataclass(frozen=True)
class ReasonPolicy:
    """Reason per sign: by default, per location, per stock file (options ``adjust_reasons``);
    a file's reason wins over its location's, which wins over the default."""

    default: Mapping[str, Reason]
    locations: Mapping[str, Mapping[str, Reason]] = field(default_factory=dict)
    files: Mapping[str, Mapping[str, Reason]] = field(default_factory=dict)

    def for_change(self, location: str, change: int, file: str | None = None) -> Reason:
        sign = "increase" if change > 0 else "decrease"
        by_file = self.files.get(file, {}).get(sign) if file else None
        return by_file or self.locations.get(location, {}).get(sign) or self.default[sign]

    def raw(self) -> dict[str, Any]:
        """The policy as ``adjust_reasons`` would write it (kept in the plan file)."""
        def texts(table: Mapping[str, Mapping[str, Reason]]) -> dict[str, dict[str, str]]:
            return {key: {s: r.text() for s, r in signs.items()} for key, signs in table.items()}

        return {**{s: r.text() for s, r in self.default.items()}, "locations": texts(self.locations),
                "files": texts(self.files)}

    def describe(self, target: str, locations: Sequence[str], files: Sequence[str] = ()) -> str:
        parts = [f"+ {self.default['increase'].text()}", f"- {self.default['decrease'].text()}"]
        for table, keys in ((self.locations, locations), (self.files, files)):
            for key in keys:
                for sign, reason in sorted(table.get(key, {}).items()):
                    parts.append(f"{key}: {'+' if sign == 'increase' else '-'} {reason.text()}")
        return f"{target}: adjustments are recorded with reason " + "; ".join(parts)


def reason_policy(target: str, raw: Any) -> ReasonPolicy:
    """``adjust_reasons: {increase, decrease, locations: {name: {...}}, files: {path: {...}}}``."""
    raw = raw or {}
    where = f"target {target!r}: options.adjust_reasons"
    if not isinstance(raw, Mapping):
        raise ConfigError([Problem(f"{where} must be a mapping (increase, decrease, locations, files)")])
    unknown = set(raw) - {"increase", "decrease", "locations", "files"}
    if unknown:
        raise ConfigError([Problem(f"{where}: unknown key(s) {', '.join(sorted(unknown))}",
                                   hint="Use increase, decrease, locations and files.")])
    default = {sign: _reason(raw.get(sign, DEFAULT_REASONS[sign]), sign, f"{where}.{sign}") for sign in DEFAULT_REASONS}
    return ReasonPolicy(default, _table(raw, "locations", where), _table(raw, "files", where))


def _table(raw: Mapping[str, Any], key: str, where: str) -> dict[str, dict[str, Reason]]:
    table = raw.get(key) or {}
    if not isinstance(table, Mapping):
        raise ConfigError([Problem(f"{where}.{key} must be a mapping of {key[:-1]} -> {{increase, decrease}}")])
    out: dict[str, dict[str, Reason]] = {}
    for name, entry in table.items():
        if not isinstance(entry, Mapping) or set(entry) - set(DEFAULT_REASONS):
            raise ConfigError([Problem(f"{where}.{key}.{name} must be a mapping with increase and/or decrease")])
        out[str(name)] = {s: _reason(v, s, f"{where}.{key}.{name}.{s}") for s, v in entry.items()}
    return out


def reason_from_text(text: Any) -> Reason | None:
    """A reason as ``Reason.text()`` wrote it (the plan file keeps them so)."""
    if not isinstance(text, str):
        return None
    if text.startswith("CUSTOM:") and len(text) > len("CUSTOM:"):
        return Reason("CUSTOM", text.split(":", 1)[1])
    return Reason(text) if text in (*POSITIVE, *NEGATIVE, RECEIPT, RETURN) else None


def _reason(value: Any, sign: str, where: str) -> Reason:
    allowed = POSITIVE if sign == "increase" else NEGATIVE
    special = RECEIPT if sign == "increase" else RETURN
    text = str(value) if isinstance(value, str) else ""
    if text in allowed or text == special:
        return Reason(text)
    if text.startswith("CUSTOM:") and len(text) > len("CUSTOM:"):
        return Reason("CUSTOM", text.split(":", 1)[1])
    raise ConfigError([Problem(
        f"{where} is {value!r}; X-Series takes {', '.join(allowed)} for an {sign}, CUSTOM:<reason id>, "
        f"or {special} ({'a SUPPLIER order' if sign == 'increase' else 'a RETURN order'})",
        hint="The reasons are X-Series' own (stock_adjustments, API 2026-01).")])


@dataclass(frozen=True)
class Planned:
    """One adjustment of a call: the operation and its vendor ids."""

    op: Operation
    product_id: str
    outlet_id: str
    reason: Reason

    def item(self) -> dict[str, Any]:
        item: dict[str, Any] = {"product_id": self.product_id, "outlet_id": self.outlet_id,
                                "quantity": f"{self.op.legs[0].change:+d}", "reason": self.reason.name}
        if self.reason.custom_id:
            item["custom_inventory_adjustment_reason_id"] = self.reason.custom_id
        return item


class AdjustmentWriter:
    def __init__(self, http: VendorHTTP, version: str) -> None:
        self.http = http
        self.path = f"/api/{version}/stock_adjustments"
        self._high: int | None = None  # the listing's cursor, as far as it was read
        self._known = False  # _high was just set from an answer: no read needed before the next call
        self._user: str | None = None
        self.sent: dict[str, tuple[Planned, int]] = {}  # op id -> (what was sent, cursor before)
        self._listed: dict[int, list[dict[str, Any]]] = {}
        # The version the plan's read saw (Connector.mark): a cursor read before any send of
        # this plan's apply, so it survives a crash of the process that sent.
        self.floor: int | None = None

    # --- writing ------------------------------------------------------------------------------

    def send(self, planned: Sequence[Planned]) -> list[OpResult]:
        cursor = self.cursor()
        self._listed.clear()
        self.sent.update({p.op.id: (p, cursor) for p in planned})
        body = {"stock_adjustments": [p.item() for p in planned]}
        try:
            response = self.http.request("POST", self.path, json=body, idempotent=False)
        except VendorRejected as exc:  # a 4xx refuses the whole call: nothing was written
            text = exc.body or ""
            return [OpResult(p.op.id, Outcome.FAILED, text, error=text or exc.message) for p in planned]
        problem = _answer_problem(response, planned)
        if problem is None:
            # The listing's versions are the store's global counter: the highest one of this
            # answer bounds every later adjustment from below, so the next call needs no read.
            created = response.json()["data"]
            versions = [v for a in created if isinstance(v := a.get("version"), int)]
            if versions:
                self._high, self._known = max(cursor, *versions), True
            # Each operation journals its own adjustment, not the whole call's answer (up to
            # 1000 of them: a quarter of a megabyte, a thousand times over).
            return [OpResult(p.op.id, Outcome.APPLIED, json.dumps({"data": a}, separators=(",", ":")))
                    for p, a in zip(planned, created)]
        # A 2xx that is not the documented answer: look at what the vendor holds instead.
        return [self._settle(p, cursor, response.text, problem) for p in planned]

    def _settle(self, p: Planned, cursor: int, text: str, problem: str) -> OpResult:
        verdict = self.verify_sent(p, cursor)
        note = f"the answer {problem} (body verbatim in the response)"
        if verdict is Verification.APPLIED:  # landed, but the vendor's answer said otherwise: a person decides
            return OpResult(p.op.id, Outcome.IN_DOUBT, text, error=f"{note}; the listing shows a matching adjustment")
        if verdict is Verification.NOT_APPLIED:
            return OpResult(p.op.id, Outcome.FAILED, text, error=f"{note}; the listing shows it was not applied")
        return OpResult(p.op.id, Outcome.IN_DOUBT, text, error=f"{note}; the listing cannot tell whether it was applied")

    # --- the version cursor and the listing ------------------------------------------------------

    def cursor(self) -> int:
        """The listing's highest version now (or a lower bound of it from this connector's last
        answer): every adjustment made later has a higher one."""
        if self._known:
            self._known = False
            return self._high or 0
        for page in self._pages(self._high or 0):
            self._high = max([self._high or 0, *(int(a.get("version") or 0) for a in page)])
        return self._high or 0

    def cursor_from(self, floor: int) -> int:
        """The listing's highest version, reading only what lists after ``floor``."""
        high = floor
        for page in self._pages(floor):
            high = max(high, *(int(a.get("version") or 0) for a in page))
        return high

    def _pages(self, after: int) -> Iterator[list[dict[str, Any]]]:
        while True:
            response = self.http.request("GET", self.path, params={"after": after, "page_size": PAGE}, idempotent=True)
            body = self.http.json(response)
            data = body.get("data") if isinstance(body, dict) else body
            if not isinstance(data, list):
                raise self.http.unreadable(response, "is not a page of stock adjustments")
            if not data:
                return
            yield data
            after = max(int(a.get("version") or 0) for a in data)

    def listing(self, cursor: int) -> list[dict[str, Any]]:
        if cursor not in self._listed:
            self._listed[cursor] = [a for page in self._pages(cursor) for a in page]
        return self._listed[cursor]

    def user(self) -> str | None:
        """The token's user (``GET /api/2.0/user``); None when the vendor does not say."""
        if self._user is None:
            body = self.http.json(self.http.request("GET", "/api/2.0/user", idempotent=True))
            data = body.get("data") if isinstance(body, dict) else None
            if isinstance(data, list):  # the spec's example wraps the user in a list
                data = data[0] if data else None
            self._user = str(data["id"]) if isinstance(data, dict) and data.get("id") else ""
        return self._user or None

    # --- verification -------------------------------------------------------------------------

    def verify(self, op: Operation, planned: Planned) -> Verification:
        known = self.sent.get(op.id)
        if known is not None:
            return self.verify_sent(known[0], known[1])
        if self.floor is not None:  # after a crash: the plan's cursor, read before any send
            return self.verify_sent(planned, self.floor)
        # Without the plan's cursor (an old plan file): the whole listing is searched.
        # No match proves it was not applied; a match may be an older, equal adjustment.
        try:
            matches = self._matches(planned, 0)
        except VendorError:
            return Verification.UNKNOWN
        return Verification.NOT_APPLIED if not matches else Verification.UNKNOWN

    def verify_sent(self, planned: Planned, cursor: int) -> Verification:
        try:
            matches = self._matches(planned, cursor)
        except VendorError:
            return Verification.UNKNOWN
        if len(matches) == 1:
            return Verification.APPLIED
        return Verification.NOT_APPLIED if not matches else Verification.UNKNOWN

    def _matches(self, planned: Planned, cursor: int) -> list[dict[str, Any]]:
        user, change = self.user(), planned.op.legs[0].change
        return [
            a for a in self.listing(cursor)
            if a.get("product_id") == planned.product_id and a.get("outlet_id") == planned.outlet_id
            and _number(a.get("quantity")) == change and (user is None or str(a.get("user_id")) == user)
        ]


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _answer_problem(response: Any, planned: Sequence[Planned]) -> str | None:
    """None when the body is the documented success: ``{"data": [...]}`` with one adjustment per
    item sent, same product, outlet and quantity, in order; else what is wrong with it."""
    try:
        body = response.json()
    except ValueError:
        return "is not JSON"
    if isinstance(body, dict) and ("error" in body or "errors" in body):
        return "carries an error"
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list) or len(data) != len(planned):
        return "is not the documented {\"data\": [one adjustment per item]}"
    for got, p in zip(data, planned):
        if not isinstance(got, dict) or got.get("product_id") != p.product_id or got.get("outlet_id") != p.outlet_id \
                or _number(got.get("quantity")) != p.op.legs[0].change:
            return "does not list the adjustments sent"
    return None
