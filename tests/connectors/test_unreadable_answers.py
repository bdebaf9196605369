"""A 2xx answer that is not what the vendor's API documents (a proxy's login page, a truncated
body): before a write it is a clear VendorRejected naming the request; after a write that may
have landed it is in doubt, so the applier verifies instead of re-sending a delta."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import httpx
import pytest

from connectors.test_lightspeed_supplier import context as feed_context
from connectors.test_xseries import E2E_ENV, e2e_repo, qty, write_locations
from connectors.test_xseries import sim  # noqa: F401  (the simulator fixture)
from reconciler.connectors.lightspeed_supplier import LightspeedSupplierConnector
from reconciler.errors import VendorRejected
from reconciler.sandbox.xseries import XSeriesSimulator
from reconciler.workflow import apply_saved_plan, plan_project

LOGIN_PAGE = b"<html><body>Please sign in to the corporate proxy</body></html>"


class Tampering(httpx.BaseTransport):
    """The simulator's transport; answers matching ``hit`` are replaced by a proxy's login page
    after the simulator has handled the request (so a write has landed all the same)."""

    def __init__(self, inner: httpx.BaseTransport, hit: Callable[[httpx.Request], bool], times: int = 1) -> None:
        self.inner, self.hit, self.left = inner, hit, times

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if self.left and self.hit(request):
            self.left -= 1
            response.read()
            return httpx.Response(200, headers={"content-type": "text/html"}, content=LOGIN_PAGE, request=request)
        return response


def test_an_unreadable_answer_to_a_consignment_is_verified_not_resent(
    tmp_path: Path, sim: XSeriesSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    repo = e2e_repo(tmp_path / "repo", "https://xs.example.test")
    config = repo / "reconciler.yaml"  # the consignment path (stock adjustments: tests/connectors/test_xseries_adjust.py)
    config.write_text(config.read_text() + "    options: {adjust_via: consignments}\n")
    plain = {"xs": sim.wsgi_transport()}
    assert apply_saved_plan(repo, plan_project(repo, env=E2E_ENV, transports=plain), env=E2E_ENV, transports=plain).ok
    write_locations(repo, {"TEE": 13, "CAP": 3}, {"TEE": 4, "MUG": 2})  # +3 TEE at oslo: a SUPPLIER consignment
    edit = plan_project(repo, env=E2E_ENV, transports=plain)
    created = Tampering(sim.wsgi_transport(), lambda r: r.method == "POST" and r.url.path == "/api/2.0/consignments")
    first = apply_saved_plan(repo, edit, env=E2E_ENV, transports={"xs": created})
    assert created.left == 0, "the consignment was created, its answer replaced"
    [report] = [r for r in first.ops if r.item == "TEE"]
    # Not a plain failure to re-send blindly: the vendor was asked (the half-made consignment
    # was found by its reference and cancelled), so the next apply sends it once more.
    assert report.status == "failed" and "not applied" in (report.error or "")
    assert "is not JSON" in (report.error or "") and "corporate proxy" in (report.error or "")
    assert qty(sim, "outlet-oslo", "prod-tee") == 10
    second = apply_saved_plan(repo, edit, env=E2E_ENV, transports=plain)
    assert second.ok and qty(sim, "outlet-oslo", "prod-tee") == 13  # once, not twice


def test_an_unreadable_page_of_the_supplier_feed_is_a_clear_error_not_empty_stock() -> None:
    def proxy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/html"}, content=LOGIN_PAGE, request=request)

    conn = LightspeedSupplierConnector(feed_context(read_api="assumed"), transport=httpx.MockTransport(proxy))
    with pytest.raises(VendorRejected) as info:
        conn.read_stock()
    text = str(info.value)
    assert "GET http://127.0.0.1/products" in text and "is not JSON" in text and "corporate proxy" in text
    assert "check the target's url in reconciler.yaml" in text
    conn.close()


def test_a_json_answer_of_another_shape_is_not_read_as_no_stock() -> None:
    def elsewhere(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": [{"id": "item-001", "quantity": 4}]}, request=request)

    conn = LightspeedSupplierConnector(feed_context(read_api="assumed"), transport=httpx.MockTransport(elsewhere))
    with pytest.raises(VendorRejected, match="is not a page of products"):
        conn.read_stock()
    conn.close()
