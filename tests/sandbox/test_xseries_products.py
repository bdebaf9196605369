"""The X-Series sandbox's catalogue: product codes, families, ?sku= by any code, deletes, paging."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "discover"))
from discover_kit import uid, xs_fixtures  # noqa: E402
from reconciler.errors import ConfigError  # noqa: E402
from reconciler.sandbox._core import ServerThread  # noqa: E402
from reconciler.sandbox.xseries import XSeriesSimulator  # noqa: E402

AUTH = {"Authorization": f"Bearer {XSeriesSimulator.default_token}"}


@pytest.fixture
def xs() -> Iterator[str]:
    with ServerThread(XSeriesSimulator(fixtures=xs_fixtures(3), rate_budget=0)) as server:
        yield server.url


def test_products_carry_codes_and_family_fields(xs: str) -> None:
    body = httpx.get(f"{xs}/api/2.0/products", params={"after": 0, "page_size": 4}, headers=AUTH).json()
    assert len(body["data"]) == 4 and body["version"]["max"] == body["data"][-1]["version"]
    by_id = {p["id"]: p for p in httpx.get(f"{xs}/api/2.0/products", headers=AUTH).json()["data"]}
    tee_m = by_id[uid("p", "tee-m")]
    assert {(c["type"], c["code"]) for c in tee_m["product_codes"]} == {("CUSTOM", "TEE-M"), ("EAN", "7310000000017")}
    assert tee_m["variant_parent_id"] == uid("p", "tee") and tee_m["has_variants"] is True
    assert by_id[uid("p", "tee")]["variant_count"] == 2 and by_id[uid("p", "cap")]["has_variants"] is False


def test_sku_lookup_matches_any_code_and_deletes_leave_the_list(xs: str) -> None:
    found = httpx.get(f"{xs}/api/2.0/products", params={"sku": "7310000000017", "after": 999999}, headers=AUTH).json()
    assert [p["id"] for p in found["data"]] == [uid("p", "tee-m")]  # other parameters are ignored with sku
    assert len(httpx.get(f"{xs}/api/2.0/products", params={"sku": "MUG"}, headers=AUTH).json()["data"]) == 2
    assert httpx.delete(f"{xs}/api/2.0/products/{uid('p', 'cap')}", headers=AUTH).status_code == 204
    live = {p["id"] for p in httpx.get(f"{xs}/api/2.0/products", headers=AUTH).json()["data"]}
    everything = httpx.get(f"{xs}/api/2.0/products", params={"deleted": "true"}, headers=AUTH).json()["data"]
    assert uid("p", "cap") not in live
    assert [p["deleted_at"] is not None for p in everything if p["id"] == uid("p", "cap")] == [True]
    assert httpx.get(f"{xs}/api/2.0/products/{uid('p', 'cap')}", headers=AUTH).status_code == 404


def test_a_barcode_cannot_be_shared_between_products() -> None:
    fixtures = {"items": [{"id": uid("a"), "sku": "A", "barcodes": ["123"]}, {"id": uid("b"), "sku": "B", "barcodes": ["123"]}]}
    with pytest.raises(ConfigError, match="cannot be shared"):
        XSeriesSimulator(fixtures=fixtures, rate_budget=0)
