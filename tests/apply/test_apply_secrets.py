"""A credential that a vendor echoes back never reaches the state file, the report or logs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import httpx
import pytest
from applykit import make_plan, reset

from reconciler.apply import apply_plan, render_apply_summary
from reconciler.connectors._http import VendorHTTP
from reconciler.connectors.base import Connector, OpResult, Outcome, Secret, TargetContext
from reconciler.model import Capabilities, Operation
from reconciler.state import SQLiteStateStore

TOKEN = "sk_live_9e8d7c6b5a4f3e2d"


class EchoConnector(Connector):
    """Talks to a vendor that repeats the credential in every answer, good or bad."""

    kind = "echo"
    capabilities = Capabilities(readable=False, absolute=True, delta=False, native_move=False, delete=False)

    def __init__(self, ctx: TargetContext, *, transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(ctx, transport=transport)
        self.http = VendorHTTP(ctx, transport, auth=lambda r: r.headers.__setitem__("X-Api-Key", ctx.credential.reveal()))

    def read_stock(self):  # pragma: no cover - write-only
        raise NotImplementedError

    def execute(self, batch: Sequence[Operation]) -> list[OpResult]:
        op = batch[0]
        response = self.http.request("POST", "/stock", idempotent=False, params={"token": TOKEN}, json={"item": op.item})
        return [OpResult(op.id, Outcome.APPLIED, response=self.http.scrub(response.text))]


def _vendor(request: httpx.Request) -> httpx.Response:
    item = request.read().decode()
    key = request.headers["X-Api-Key"]
    if "BAD" in item:
        return httpx.Response(403, text=f'{{"error": "key {key} may not write {item}"}}')
    return httpx.Response(200, text=f'{{"ok": true, "echo_key": "{key}"}}')


def test_token_never_reaches_state_report_or_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    ctx = TargetContext(name="echo", kind="echo", base_url="https://vendor.example", credential=Secret(TOKEN),
                        location_ids={}, item_ids={})
    conn = EchoConnector(ctx, transport=httpx.MockTransport(_vendor))
    path = tmp_path / "state.db"
    with SQLiteStateStore(path) as store:
        plan = make_plan([reset("echo", "oslo", "GOOD", None, 1), reset("echo", "oslo", "BAD", None, 1)],
                         lineage=store.lineage(), serial=0)
        report = apply_plan(plan, store, {"echo": conn}, desired_digest=None, holder="t@h")
        journal = store.journal(plan.plan_id)
    assert report.counts["applied"] == 1 and report.counts["failed"] == 1
    assert "may not write" in journal[plan.operations[1].id].response  # the vendor's words survive
    files = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("state.db"))
    assert TOKEN.encode() not in files
    assert TOKEN not in render_apply_summary(report) and TOKEN not in repr(report) and TOKEN not in caplog.text
