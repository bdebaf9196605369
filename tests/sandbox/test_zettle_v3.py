"""The Zettle simulator's inventory API v3: each documented rule a client can get wrong, with a
wrong client being refused, and each switch for behaviour Zettle does not document.

Documented (developer.zettle.com/docs/api/inventory): /v3/inventories rows; /v3/stock rows with a
numeric balance, paged by a Link header the client follows as given; POST /v3/movements answered
204 No Content only; tracking answered 204. Everything else here is marked assumed in
docs/sandboxes/zettle.md.
"""

from __future__ import annotations

from typing import Any, Iterator

import httpx
import pytest

from reconciler.errors import ConfigError
from reconciler.sandbox._core import ServerThread
from reconciler.sandbox.zettle import ZettleSimulator

try:  # tests/sandbox is on sys.path in pytest's default (rootdir-less) import mode
    from conftest_zettle import (  # type: ignore[import-not-found]
        BULK_PRODUCT, BULK_V1, EXTRA_PRODUCT, EXTRA_VARIANT, PUT_PRODUCT, PUT_V1, PUT_V2, STORE, auth,
        zettle_seed_fixtures,
    )
except ImportError:  # tests/sandbox is a package
    from .conftest_zettle import (  # type: ignore[no-redef]
        BULK_PRODUCT, BULK_V1, EXTRA_PRODUCT, EXTRA_VARIANT, PUT_PRODUCT, PUT_V1, PUT_V2, STORE, auth,
        zettle_seed_fixtures,
    )


def make(**options: Any) -> tuple[ZettleSimulator, httpx.Client]:
    sim = ZettleSimulator(fixtures=zettle_seed_fixtures(), options=options or None)
    return sim, httpx.Client(transport=sim.wsgi_transport(), base_url="http://sandbox", headers=auth(sim))


@pytest.fixture
def v3() -> Iterator[tuple[ZettleSimulator, httpx.Client]]:
    sim, client = make()
    yield sim, client
    client.close()
    sim.close()


def inventories(client: httpx.Client) -> dict[str, str]:
    return {row["inventoryType"]: row["inventoryUuid"] for row in client.get("/v3/inventories").json()}


def balances(sim: ZettleSimulator) -> dict[str, int]:
    return {r["item"]["variant"]: r["quantity"] for r in sim.inspect_stock()}


def movement(inv: dict[str, str], variant: str = PUT_V1, change: Any = 2, product: str = PUT_PRODUCT,
             src: str = "SUPPLIER", dst: str = "STORE") -> dict[str, Any]:
    return {"productUuid": product, "variantUuid": variant, "change": change, "from": inv[src], "to": inv[dst]}


# --- inventories ------------------------------------------------------------------------------------


def test_inventories_list_the_four_with_the_store_as_default(v3: tuple[ZettleSimulator, httpx.Client]) -> None:
    _, client = v3
    rows = client.get("/v3/inventories").json()
    assert {r["inventoryType"] for r in rows} == {"STORE", "BIN", "SOLD", "SUPPLIER"}
    assert all(set(r) == {"inventoryUuid", "inventoryType", "name", "description", "defaultInventory"} for r in rows)
    assert [r["inventoryUuid"] for r in rows if r["defaultInventory"]] == [STORE]
    assert client.get(f"/v3/inventories/{STORE}").json()["inventoryType"] == "STORE"
    missing = client.get("/v3/inventories/5a3c4d2e-0000-4000-8000-00000000dead")
    assert missing.status_code == 404 and missing.json()["errorType"] == "ENTITY_NOT_FOUND"


def test_v3_needs_the_bearer_token(v3: tuple[ZettleSimulator, httpx.Client]) -> None:
    sim, _ = v3
    with httpx.Client(transport=sim.wsgi_transport(), base_url="http://sandbox") as anonymous:
        answer = anonymous.get("/v3/inventories")
    assert answer.status_code == 401 and "ACCESS_TOKEN_EXPIRED" in answer.headers["WWW-Authenticate"]


# --- stock paging -----------------------------------------------------------------------------------


def test_stock_rows_have_the_documented_fields_and_numeric_balances(v3: tuple[ZettleSimulator, httpx.Client]) -> None:
    _, client = v3
    rows = client.get(f"/v3/stock/{STORE}").json()
    assert {r["variantUuid"]: r["balance"] for r in rows} == {PUT_V1: 238, PUT_V2: 12033, EXTRA_VARIANT: 0}
    assert all(isinstance(r["balance"], int) for r in rows)  # numbers, unlike the v1/v2 reads
    fields = {"organizationUuid", "inventoryUuid", "productUuid", "variantUuid", "balance", "lowStockLevel",
              "lowStockAlert", "updated", "checksum"}
    assert all(set(r) == fields for r in rows)
    assert next(r for r in rows if r["variantUuid"] == EXTRA_VARIANT)["lowStockLevel"] == 3
    assert BULK_V1 not in {r["variantUuid"] for r in rows}  # untracked products are not listed


def test_following_the_link_header_reads_every_row_once_and_a_first_page_reader_misses_rows() -> None:
    sim, client = make(page_size=1)
    first = client.get(f"/v3/stock/{STORE}")
    assert len(first.json()) == 1 and first.links["next"]["url"].startswith("http://sandbox/v3/stock/")
    seen, url = [], f"/v3/stock/{STORE}"
    while url:
        page = client.get(url)
        seen += [r["variantUuid"] for r in page.json()]
        url = page.links.get("next", {}).get("url")
    assert sorted(seen) == sorted([PUT_V1, PUT_V2, EXTRA_VARIANT])  # all of them, each once
    # a client that ignores the Link header (reads one page) gets one of three rows
    assert len(client.get("/v3/stock").json()) == 1


@pytest.mark.parametrize("query", ["cursor=" + PUT_V1, "cursor=5a3c4d2e-0000-4000-8000-000000000000", "cursor=2"])
def test_a_cursor_the_client_made_up_is_refused(query: str) -> None:
    _, client = make(page_size=1)
    answer = client.get(f"/v3/stock/{STORE}?{query}&limit=1")
    assert answer.status_code == 400 and answer.json()["errorType"] == "INVALID_CURSOR"


def test_a_cursor_is_valid_only_for_the_listing_that_issued_it() -> None:
    _, client = make(page_size=1)
    cursor = client.get("/v3/stock").links["next"]["url"].split("cursor=")[1].split("&")[0]
    assert client.get(f"/v3/stock/{STORE}?cursor={cursor}").status_code == 400


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "ten"])
def test_a_page_size_outside_1_to_1000_is_refused(v3: tuple[ZettleSimulator, httpx.Client], limit: str) -> None:
    _, client = v3
    answer = client.get(f"/v3/stock?limit={limit}")
    assert answer.status_code == 400 and answer.json()["violations"][0]["propertyName"] == "limit"


def test_zero_balances_omitted_switch() -> None:
    _, client = make(v3_zero_balances="omitted")
    assert EXTRA_VARIANT not in {r["variantUuid"] for r in client.get("/v3/stock").json()}


# --- movements --------------------------------------------------------------------------------------


def test_movement_is_answered_204_with_no_body_and_no_balances(v3: tuple[ZettleSimulator, httpx.Client]) -> None:
    sim, client = v3
    inv = inventories(client)
    answer = client.post("/v3/movements", json={"movements": [movement(inv), movement(inv, PUT_V2, 5, src="STORE",
                                                                                         dst="BIN")]})
    # a client that reads balances from the answer (as v1/v2 bulk allowed) finds none
    assert answer.status_code == 204 and answer.content == b""
    assert balances(sim)[PUT_V1] == 240 and balances(sim)[PUT_V2] == 12028
    assert [(m["variant_uuid"], m["change"], m["source"]) for m in sim.movements()] == [
        (PUT_V1, 2, "V3"), (PUT_V2, 5, "V3")]


def test_the_identifier_a_public_client_sends_is_accepted_and_kept(v3: tuple[ZettleSimulator, httpx.Client]) -> None:
    sim, client = v3
    ident = "0b8e6a4e-1d2c-4f7a-9f3e-2a1b3c4d5e99"
    assert client.post("/v3/movements", json={"identifier": ident, "movements": [movement(inventories(client))]}
                       ).status_code == 204
    assert sim.movements()[-1]["external_uuid"] == ident


def _refused(sim: ZettleSimulator, client: httpx.Client, body: Any, status: int = 400) -> dict[str, Any]:
    before = (balances(sim), len(sim.movements()))
    answer = client.post("/v3/movements", json=body)
    assert answer.status_code == status, answer.text
    assert (balances(sim), len(sim.movements())) == before  # nothing written
    return dict(answer.json())


def test_a_v1_v2_shaped_body_is_refused(v3: tuple[ZettleSimulator, httpx.Client]) -> None:
    sim, client = v3
    inv = inventories(client)
    v2_move = {"productUuid": PUT_PRODUCT, "variantUuid": PUT_V1, "fromLocationUuid": inv["SUPPLIER"],
               "toLocationUuid": inv["STORE"], "change": 2}
    body = _refused(sim, client, {"changes": [v2_move]})
    assert body["violations"][0]["propertyName"] == "movements"
    body = _refused(sim, client, {"movements": [v2_move]})
    props = {v["propertyName"] for v in body["violations"]}
    assert {"movements[0].fromLocationUuid", "movements[0].from", "movements[0].to"} <= props


@pytest.mark.parametrize(("change", "constraint"), [(0, "Positive"), (-3, "Positive"), (1.5, "Integer"), (None, "NotNull")])
def test_change_must_be_a_positive_whole_count(v3: tuple[ZettleSimulator, httpx.Client], change: Any, constraint: str) -> None:
    sim, client = v3
    body = _refused(sim, client, {"movements": [movement(inventories(client), change=change)]})
    assert body["violations"][0]["constraintType"] == constraint


def test_from_and_to_must_differ_and_exist(v3: tuple[ZettleSimulator, httpx.Client]) -> None:
    sim, client = v3
    inv = inventories(client)
    body = _refused(sim, client, {"movements": [movement(inv, src="STORE", dst="STORE")]})
    assert body["violations"][0]["constraintType"] == "DifferentInventories"
    ghost = dict(inv, SUPPLIER="5a3c4d2e-0000-4000-8000-00000000dead")
    assert _refused(sim, client, {"movements": [movement(ghost)]}, 404)["errorType"] == "ENTITY_NOT_FOUND"


def test_a_variant_of_another_product_and_an_empty_request_are_refused(v3: tuple[ZettleSimulator, httpx.Client]) -> None:
    sim, client = v3
    inv = inventories(client)
    assert _refused(sim, client, {"movements": [movement(inv, EXTRA_VARIANT)]}, 404)["errorType"] == "ENTITY_NOT_FOUND"
    assert _refused(sim, client, {"movements": []})["violations"][0]["constraintType"] == "NotEmpty"


def test_one_bad_movement_refuses_the_whole_request(v3: tuple[ZettleSimulator, httpx.Client]) -> None:
    sim, client = v3
    inv = inventories(client)
    _refused(sim, client, {"movements": [movement(inv), movement(inv, change=-1)]})


def test_moving_an_untracked_product_is_refused_until_tracking_is_enabled(v3: tuple[ZettleSimulator, httpx.Client]) -> None:
    sim, client = v3
    inv = inventories(client)
    untracked = movement(inv, BULK_V1, 1, BULK_PRODUCT)
    assert _refused(sim, client, {"movements": [untracked]})["errorType"] == "PRODUCT_NOT_TRACKED"
    assert client.post("/v3/products", json=[{"productUuid": BULK_PRODUCT, "tracking": "enable"}]).status_code == 204
    # balances kept while untracked come back
    assert {r["variantUuid"]: r["balance"] for r in client.get("/v3/stock").json()}[BULK_V1] == 238
    assert client.post("/v3/movements", json={"movements": [untracked]}).status_code == 204


# --- tracking -----------------------------------------------------------------------------------------


def test_disable_tracking_hides_the_product_and_keeps_its_balances(v3: tuple[ZettleSimulator, httpx.Client]) -> None:
    sim, client = v3
    assert client.post("/v3/products", json=[{"productUuid": PUT_PRODUCT, "tracking": "disable"}]).status_code == 204
    assert {r["productUuid"] for r in client.get("/v3/stock").json()} == {EXTRA_PRODUCT}
    assert balances(sim)[PUT_V1] == 238


@pytest.mark.parametrize(("body", "status"), [
    ({"productUuid": PUT_PRODUCT, "tracking": "enable"}, 400),  # an object, not a list
    ([], 400),
    ([{"productUuid": PUT_PRODUCT, "tracking": "on"}], 400),
    ([{"productUuid": PUT_PRODUCT, "trackingStatusChange": "START_TRACKING"}], 400),  # the v1/v2 bulk word
    ([{"productUuid": "5a3c4d2e-0000-4000-8000-00000000dead", "tracking": "enable"}], 404),
])
def test_wrong_tracking_requests_are_refused(v3: tuple[ZettleSimulator, httpx.Client], body: Any, status: int) -> None:
    sim, client = v3
    before = sim.inspect_stock()
    assert client.post("/v3/products", json=body).status_code == status
    assert sim.inspect_stock() == before


# --- switches for what Zettle does not document, and faults ------------------------------------------


def test_untracked_moves_switch_accepts_what_the_default_refuses() -> None:
    sim, client = make(v3_untracked_moves="accept")
    inv = inventories(client)
    assert client.post("/v3/movements", json={"movements": [movement(inv, BULK_V1, 1, BULK_PRODUCT)]}).status_code == 204
    assert balances(sim)[BULK_V1] == 239


def test_lenient_relaxes_only_the_undocumented_rules() -> None:
    sim, client = make(lenient=True, page_size=1)
    assert client.get(f"/v3/stock/{STORE}?cursor={PUT_V1}").status_code == 200  # starts over
    assert client.get("/v3/stock?limit=5000").status_code == 200  # clamped
    inv = inventories(client)
    assert client.post("/v3/movements", json={"movements": [movement(inv, BULK_V1, 1, BULK_PRODUCT)]}).status_code == 204
    # documented rules stay strict
    assert client.post("/v3/movements", json={"movements": [movement(inv, change=0)]}).status_code == 400
    assert client.post("/v3/movements", json={"changes": []}).status_code == 400


def test_movements_answer_switch() -> None:
    sim, client = make(movements_answer="200-body")
    inv = inventories(client)
    answer = client.post("/v3/movements", json={"movements": [movement(inv)]})
    assert answer.status_code == 200 and answer.json() and balances(sim)[PUT_V1] == 240
    sim, client = make(movements_answer="200-error")
    answer = client.post("/v3/movements", json={"movements": [movement(inv)]})
    assert answer.status_code == 200 and "developerMessage" in answer.json() and balances(sim)[PUT_V1] == 238


def test_v1v2_gone_switch_answers_404_on_the_old_paths_only() -> None:
    _, client = make(v1v2="gone")
    old = client.get("/organizations/self/locations")
    assert old.status_code == 404 and "v3" in old.json()["developerMessage"]
    assert client.get("/v3/inventories").status_code == 200


@pytest.mark.parametrize("options", [{"page_size": 0}, {"v3_zero_balances": "sometimes"}, {"movements_answer": "202"}, {"v3_untracked_moves": "no"}, {"lenient": "yes"},
                                     {"v1v2": "maybe"}])
def test_bad_v3_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        ZettleSimulator(options=options)


@pytest.mark.parametrize("status", [502, 504])
def test_gateway_error_after_a_committed_movement(status: int) -> None:
    sim = ZettleSimulator(fixtures=zettle_seed_fixtures())
    with ServerThread(sim) as server, httpx.Client(base_url=server.url, headers=auth(sim)) as client:
        sim.faults.update({"error_next_writes": 1, "error_after_write_status": status})
        answer = client.post("/v3/movements", json={"movements": [movement(inventories(client))]})
        assert answer.status_code == status
    assert balances(sim)[PUT_V1] == 240  # committed once, whatever the answer said
