"""Ka-ching stock import connector (VENDORS.md section 4, seed 003).

Write-only: Ka-ching has no documented way to read stock, so the planner plans against B.

- reset N:  POST /imports/stock                    {"<location>": {"<product>": N | {"<variant>": N}}}
- adjust d: POST /imports/stock?adjustment=true    same shape, d as a delta
- move q:   ONE adjustment=true POST holding -q at the source and +q at the destination, so
            both halves are accepted or refused together
- delete:   DELETE /imports/stock                  same shape; the values are ignored

Auth is the query parameters ``account`` and ``integration`` and ``apikey`` (the credential, from
the environment only). The target's ``url`` may be the import URL pasted from Ka-ching's Back
Office, query and all (``_kaching_url.py``): its ``account``, ``integration`` and any other
parameters are kept; ``options.account`` / ``options.integration`` are the other way to give them.
The http layer redacts the key from every message; this module never formats a URL into a message.

Ka-ching imports asynchronously: "Import of N stock value(s) initiated" only means the queue
accepted N values, so an operation reported applied here means "accepted by Ka-ching's queue".
The answer is read, not trusted (only the 200 ``{"status": "OK", "message": "Import of N stock
value(s) initiated"}`` is documented, developers.ka-ching.dk/stock-import-integration):
- N equal to the values sent: applied;
- another N: the batch is failed (absolute writes, safe to re-send) or in doubt (adjustments, which
  must not be sent twice blindly);
- ``{"status": "ERROR", ...}`` or an ``error`` key, whatever the status: failed, with the message;
- any other body: in doubt, verbatim.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from typing import Any, Mapping, Sequence

import httpx

from reconciler.connectors._answers import error_message, parse_json
from reconciler.auth import api_key
from reconciler.connectors._http import VendorHTTP, redact_url
from reconciler.connectors._kaching_url import ID_PARAMS, parse_url
from reconciler.connectors.base import Connector, OpResult, Outcome, TargetContext
from reconciler.errors import ConfigError, NotSupported, Problem
from reconciler.model import Capabilities, OpKind, Operation, Record

PATH = "/imports/stock"
# Undocumented by Ka-ching: our assumption of a safe request size, counted in values
# (a move holds two). See docs/connectors/kaching.md.
MAX_VALUES = 500
INITIATED = re.compile(r"Import of (\d+) stock value\(s\) initiated")

# (stock location id, product id, variant id or "") -> value
Values = dict[tuple[str, str, str], int]


class _RedactURLs(logging.Filter):
    """httpx logs every request URL at INFO, and Ka-ching's apikey is in the URL: mask it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) for a in record.args):
            record.args = tuple(redact_url(a) if isinstance(a, httpx.URL) else a for a in record.args)
        return True


def _install_log_redaction() -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactURLs) for f in logger.filters):
        logger.addFilter(_RedactURLs())


def _mode(op: Operation) -> str:
    """Which request an operation belongs to: 'reset', 'adjustment' or 'delete'."""
    if op.kind is OpKind.DELETE:
        return "delete"
    if op.kind is OpKind.RESET or (op.kind is OpKind.ADJUST and op.write_mode == "absolute"):
        return "reset"
    if op.kind in (OpKind.ADJUST, OpKind.MOVE):
        return "adjustment"
    raise NotSupported(f"Ka-ching cannot execute a {op.kind} operation ({op.id})")


class KachingConnector(Connector):
    kind = "kaching"
    capabilities = Capabilities(
        readable=False,
        absolute=True,
        delta=True,
        native_move=True,
        delete=True,
        settings=frozenset(),
        verifiable_deltas=False,
        max_batch=MAX_VALUES,
    )

    def __init__(self, ctx: TargetContext, *, transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(ctx, transport=transport)
        url = parse_url(ctx.base_url)
        self.params = query_params(ctx.name, url.params, ctx.options, url.problems)
        _install_log_redaction()
        self.http = VendorHTTP(replace(ctx, base_url=url.base), transport, auth=self._auth)

    def _auth(self, request: httpx.Request) -> None:
        request.url = request.url.copy_merge_params({**self.params, "apikey": api_key(self.ctx)})

    def close(self) -> None:
        self.http.close()

    def read_stock(self) -> dict[tuple[str, str], Record]:
        raise NotSupported(
            f"{self.ctx.name}: Ka-ching has no API to read stock levels (write-only).",
            hint="Plans for this target are made against what reconciler last applied.",
        )

    # --- ids ---------------------------------------------------------------------------------

    def _location(self, name: str) -> str:
        try:
            return str(self.ctx.location_ids[name])
        except KeyError:
            raise ConfigError([Problem(
                f"location {name!r} has no Ka-ching stock_location_id in target {self.ctx.name!r}",
                "reconciler.yaml", hint=f"Map it under targets: {self.ctx.name}: locations:.",
            )]) from None

    def _item(self, sku: str) -> tuple[str, str]:
        raw = self.ctx.item_ids.get(sku)
        if isinstance(raw, str) and raw:
            return raw, ""
        if isinstance(raw, Mapping) and raw.get("product"):
            return str(raw["product"]), str(raw.get("variant") or "")
        raise ConfigError([Problem(
            f"item {sku!r} has no Ka-ching product id in target {self.ctx.name!r}", "stock/catalog.yaml",
            hint=f"Write its id as {{product: <id>}} or {{product: <id>, variant: <id>}} under ids: {self.ctx.name}.",
        )])

    def _values(self, op: Operation) -> Values:
        product, variant = self._item(op.item)
        out: Values = {}
        for leg in op.legs:
            key = (self._location(leg.location), product, variant)
            if op.kind is OpKind.DELETE:
                out[key] = 0  # required by the body shape, ignored by Ka-ching
            elif _mode(op) == "reset":
                assert leg.expected is not None  # a reset always has its quantity
                out[key] = leg.expected
            else:
                out[key] = leg.change
        return out

    # --- batching and writing -------------------------------------------------------------------

    def batches(self, ops: Sequence[Operation]) -> list[list[Operation]]:
        """One request per batch: one mode (reset / adjustment / delete), at most MAX_VALUES
        values, and each (location, product, variant) at most once, since a JSON object cannot
        hold a key twice. A product written without a variant and with variants is split too."""
        out: list[list[Operation]] = []
        open_: dict[str, tuple[list[Operation], set[tuple[str, str, str]], dict[tuple[str, str], bool]]] = {}
        for op in ops:
            mode = _mode(op)
            values = self._values(op)
            current = open_.get(mode)
            if current is None or not _fits(current[1], current[2], values):
                current = ([], set(), {})
                open_[mode] = current
                out.append(current[0])
            batch, keys, shapes = current
            batch.append(op)
            keys.update(values)
            for loc, product, variant in values:
                shapes[(loc, product)] = bool(variant)
        return out

    def execute(self, batch: Sequence[Operation]) -> list[OpResult]:
        if not batch:
            return []
        modes = {_mode(op) for op in batch}
        if len(modes) != 1:
            raise NotSupported(
                f"{self.ctx.name}: a Ka-ching batch mixes {', '.join(sorted(modes))} operations.",
                hint="Group operations with KachingConnector.batches().",
            )
        mode = modes.pop()
        values: Values = {}
        for op in batch:
            values.update(self._values(op))
        body = _body(values)
        method = "DELETE" if mode == "delete" else "POST"
        params = {"adjustment": "true"} if mode == "adjustment" else None
        # Adjustments are not idempotent: a blind retry after a dropped connection could count twice.
        response = self.http.request(method, PATH, json=body, params=params, idempotent=mode != "adjustment")
        return self._results(batch, mode, len(values), response)

    def _results(self, batch: Sequence[Operation], mode: str, sent: int, response: httpx.Response) -> list[OpResult]:
        text = self.http.scrub(response.text)
        refused = _refusal(text)
        if refused is not None:
            error = f"Ka-ching answered HTTP {response.status_code} with an error: {refused}"
            return [OpResult(op.id, Outcome.FAILED, response=text, error=error) for op in batch]
        accepted = _initiated(text)
        if accepted == sent:
            note = f"accepted by Ka-ching's import queue ({sent} value(s)); Ka-ching applies it asynchronously"
            return [OpResult(op.id, Outcome.APPLIED, response=f"{note}\n{text}") for op in batch]
        if accepted is None:
            error = (f"Ka-ching answered HTTP {response.status_code} with a body of no known shape, so whether the "
                     f"{sent} value(s) were imported is unknown: {text!r}. Check the import queue's log with Ka-ching, "
                     "then settle it with `reconciler resolve`.")
            return [OpResult(op.id, Outcome.IN_DOUBT, response=text, error=error) for op in batch]
        error = (
            f"Ka-ching answered {accepted} value(s) initiated, but {sent} were sent in this request; "
            "some values may not have been imported. Ka-ching's answer: " + text
        )
        # Re-sending an absolute import or a delete is safe; an adjustment might count twice.
        outcome = Outcome.IN_DOUBT if mode == "adjustment" else Outcome.FAILED
        return [OpResult(op.id, outcome, response=text, error=error) for op in batch]


def query_params(target: str, from_url: Mapping[str, str], options: Mapping[str, Any],
                 problems: Sequence[str] = ()) -> dict[str, str]:
    """Every query parameter but the apikey: the url's, with account and integration from the url
    or the options (one of them, or both agreeing). ConfigError when they cannot be had."""
    found = [f"the url of target {target!r} (kaching): {p}" for p in problems]
    params = dict(from_url)
    for name in ID_PARAMS:
        option = options.get(name)
        if option not in (None, "") and params.get(name) not in (None, "", str(option)):
            found.append(f"target {target!r} (kaching): options.{name} ({option}) differs from {name} in the url "
                         f"({params[name]})")
        params[name] = params.get(name) or ("" if option is None else str(option))
    missing = [name for name in ID_PARAMS if not params[name]]
    if missing:
        found.append(f"target {target!r} (kaching) needs {' and '.join(missing)}")
    if found:
        raise ConfigError([Problem(text, "reconciler.yaml", hint=(
            "Paste the stock import URL from Ka-ching's Back Office (Advanced Options -> Import Integrations) as "
            "url: without its &apikey=..., or write options: {account: <id>, integration: <queue id>}; the apikey "
            "goes in the environment variable named by credentials_env.")) for text in found])
    return params


def _fits(keys: set[tuple[str, str, str]], shapes: dict[tuple[str, str], bool], values: Values) -> bool:
    if len(keys) + len(values) > MAX_VALUES:
        return False
    for key in values:
        loc, product, variant = key
        if key in keys or shapes.get((loc, product), bool(variant)) != bool(variant):
            return False
    return True


def _body(values: Values) -> dict[str, dict[str, Any]]:
    body: dict[str, dict[str, Any]] = {}
    for (loc, product, variant), value in values.items():
        products = body.setdefault(loc, {})
        if variant:
            products.setdefault(product, {})[variant] = value
        else:
            products[product] = value
    return body


def _initiated(text: str) -> int | None:
    """N from "Import of N stock value(s) initiated", or None when the answer does not say."""
    data = parse_json(text)
    message = data.get("message") if isinstance(data, dict) else None
    if not isinstance(message, str) or (data.get("status") not in (None, "OK")):
        return None
    found = INITIATED.search(message)
    return int(found.group(1)) if found else None


def _refusal(text: str) -> str | None:
    """What an answer that says it failed says: ``{"status": <not OK>, "message"}`` (the shape of
    Ka-ching's error answers is ASSUMED) or an ``error`` key; None for anything else."""
    data = parse_json(text)
    if isinstance(data, dict) and isinstance(data.get("status"), str) and data["status"].upper() != "OK":
        return str(data.get("message") or data["status"])
    return error_message(text)


CONNECTOR = KachingConnector
