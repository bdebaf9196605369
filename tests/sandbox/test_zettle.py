"""The Zettle Inventory v1/v2 simulator, over real HTTP (in-process WSGI and a loopback uvicorn)."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from deepdiff import DeepDiff

from reconciler.errors import ConfigError
from reconciler.sandbox._core import ServerThread
from reconciler.sandbox.zettle import ZettleSimulator

try:  # tests/sandbox is on sys.path in pytest's default (rootdir-less) import mode
    from conftest_zettle import (  # type: ignore[import-not-found]
        BIN, BULK_PRODUCT, BULK_V1, BULK_V2, EXTRA_PRODUCT, EXTRA_VARIANT, ORGANIZATION, PUT_PRODUCT, PUT_V1,
        PUT_V2, SEED_BULK_REQUEST, SEED_BULK_RESPONSE, SEED_PUT_REQUEST, SEED_PUT_RESPONSE, STORE, auth,
        seed_json_blocks, zettle_client, zettle_fixtures, zettle_seed_fixtures, zettle_server, zettle_sim,
    )
except ImportError:  # tests/sandbox is a package
    from .conftest_zettle import (  # type: ignore[no-redef]
        BIN, BULK_PRODUCT, BULK_V1, BULK_V2, EXTRA_PRODUCT, EXTRA_VARIANT, ORGANIZATION, PUT_PRODUCT, PUT_V1,
        PUT_V2, SEED_BULK_REQUEST, SEED_BULK_RESPONSE, SEED_PUT_REQUEST, SEED_PUT_RESPONSE, STORE, auth,
        seed_json_blocks, zettle_client, zettle_fixtures, zettle_seed_fixtures, zettle_server, zettle_sim,
    )

__all__ = ["zettle_client", "zettle_fixtures", "zettle_server", "zettle_sim"]  # pytest fixtures, used by name

INVENTORY = "/organizations/self/inventory"


def stock_of(sim: ZettleSimulator) -> dict[str, int]:
    return {r["item"]["variant"]: r["quantity"] for r in sim.inspect_stock()}


def move(variant: str, change: Any, source: str = STORE, target: str = BIN, product: str = PUT_PRODUCT) -> dict[str, Any]:
    return {"productUuid": product, "variantUuid": variant, "fromLocationUuid": source, "toLocationUuid": target,
            "change": change}


def location_uuid(client: httpx.Client, kind: str) -> str:
    return next(loc["uuid"] for loc in client.get("/organizations/self/locations").json() if loc["type"] == kind)


# --- seed 002 examples ---------------------------------------------------------------------------


def test_embedded_examples_are_the_seed_documents_examples() -> None:
    blocks = seed_json_blocks()
    if blocks is None:
        pytest.skip("seed 002 is not available here; the examples are embedded in conftest_zettle.py")
    assert blocks == [SEED_PUT_REQUEST, SEED_PUT_RESPONSE, SEED_BULK_REQUEST, SEED_BULK_RESPONSE]


def test_seed_put_example_replays_exactly(zettle_client: httpx.Client, zettle_sim: ZettleSimulator) -> None:
    response = zettle_client.put(INVENTORY, json=SEED_PUT_REQUEST)
    assert response.status_code == 200
    assert response.json() == SEED_PUT_RESPONSE
    assert stock_of(zettle_sim)[PUT_V1] == 196 and stock_of(zettle_sim)[PUT_V2] == 10696


def test_seed_bulk_example_replays_with_the_docs_variant_typo_corrected(
    zettle_client: httpx.Client, zettle_sim: ZettleSimulator
) -> None:
    # The doc's first variantUuid is the location UUID; the simulator answers with the variant moved.
    response = zettle_client.post("/organizations/self/v2/inventory/bulk", json=SEED_BULK_REQUEST)
    assert response.status_code == 200
    diff = DeepDiff(SEED_BULK_RESPONSE, response.json())
    assert diff == {"values_changed": {"root['variants'][0]['variantUuid']": {"new_value": BULK_V1, "old_value": STORE}}}
    tracked = zettle_client.get(f"/organizations/self/inventory/locations/{STORE}").json()["trackedProducts"]
    assert BULK_PRODUCT in tracked
    assert stock_of(zettle_sim)[BULK_V1] == 196 and stock_of(zettle_sim)[BULK_V2] == 10696


# --- reads and writes ----------------------------------------------------------------------------


def test_balances_are_strings_in_reads_and_numbers_in_writes(zettle_client: httpx.Client) -> None:
    read = zettle_client.get(f"/organizations/self/inventory/locations/{STORE}").json()
    assert {v["variantUuid"]: v["balance"] for v in read["variants"]} == {PUT_V1: "238", PUT_V2: "12033"}
    assert read["latest"] == 0 and read["trackedProducts"] == [PUT_PRODUCT, EXTRA_PRODUCT]
    written = zettle_client.put(INVENTORY, json={"changes": [move(PUT_V1, 8)]}).json()
    assert written["variants"][0]["balance"] == 230
    by_product = zettle_client.get(f"/organizations/self/inventory/locations/{STORE}/products/{PUT_PRODUCT}").json()
    assert by_product == {"locationUuid": STORE, "variants": [
        {"locationUuid": STORE, "locationType": "STORE", "productUuid": PUT_PRODUCT, "variantUuid": PUT_V1,
         "balance": "230"},
        {"locationUuid": STORE, "locationType": "STORE", "productUuid": PUT_PRODUCT, "variantUuid": PUT_V2,
         "balance": "12033"},
    ]}


def test_locations_listing_and_reads_by_type(zettle_client: httpx.Client) -> None:
    locations = zettle_client.get("/organizations/self/locations").json()
    assert [(loc["type"], loc["default"]) for loc in locations] == [
        ("STORE", True), ("BIN", False), ("SOLD", False), ("SUPPLIER", False)]
    assert locations[0]["uuid"] == STORE and locations[1]["uuid"] == BIN
    store_read = zettle_client.get("/organizations/self/inventory/locations/?type=STORE").json()
    assert store_read["locationUuid"] == STORE and len(store_read["variants"]) == 2
    sold = zettle_client.get("/organizations/self/inventory/locations?type=SOLD").json()
    assert sold["locationUuid"] == location_uuid(zettle_client, "SOLD") and sold["variants"] == []
    bad = zettle_client.get("/organizations/self/inventory/locations?type=CELLAR")
    assert bad.status_code == 400 and bad.json()["violations"][0]["propertyName"] == "type"


def test_generated_location_uuids_are_stable_and_given_types_are_kept() -> None:
    first = ZettleSimulator(fixtures={"locations": [{"id": STORE}]})
    second = ZettleSimulator(fixtures={"locations": [{"id": STORE}]})
    assert [loc.as_json() for loc in first.store.locations()] == [loc.as_json() for loc in second.store.locations()]
    assert first.store.location_of_type("BIN").uuid != BIN
    with pytest.raises(ConfigError, match="second STORE"):
        ZettleSimulator(fixtures={"locations": [{"id": STORE}, {"id": BIN}]})


def test_read_filter_returns_only_the_requested_products(zettle_client: httpx.Client) -> None:
    body = {"locationType": "STORE", "productUuids": [PUT_PRODUCT, BULK_PRODUCT]}
    read = zettle_client.post(f"{INVENTORY}/products", json=body).json()
    assert read["trackedProducts"] == [PUT_PRODUCT]  # the bulk product is not tracked
    assert {v["productUuid"] for v in read["variants"]} == {PUT_PRODUCT}


def test_inventory_since_lists_only_later_changes(zettle_client: httpx.Client) -> None:
    before = zettle_client.get("/inventory").json()
    assert len(before["variants"]) == 2
    time.sleep(0.01)
    mark = datetime.now(timezone.utc).isoformat()
    time.sleep(0.01)
    zettle_client.put(INVENTORY, json={"changes": [move(PUT_V2, 1)]})
    later = zettle_client.get("/inventory", params={"since": mark}).json()
    assert [v["variantUuid"] for v in later["variants"]] == [PUT_V2]


def test_supplier_raises_store_and_store_may_go_negative(zettle_client: httpx.Client, zettle_sim: ZettleSimulator) -> None:
    supplier = location_uuid(zettle_client, "SUPPLIER")
    up = zettle_client.put(INVENTORY, json={"changes": [move(PUT_V1, 12, source=supplier, target=STORE)]})
    assert up.json()["variants"][0]["balance"] == 250
    sold = location_uuid(zettle_client, "SOLD")
    down = zettle_client.put(INVENTORY, json={"changes": [move(PUT_V1, 300, target=sold)]})
    assert down.status_code == 200 and down.json()["variants"][0]["balance"] == -50
    # a report for a virtual location has no tracked balance
    at_sold = zettle_client.put(INVENTORY, json={"changes": [move(PUT_V2, "1", target=sold)],
                                                 "returnBalanceForLocationUuid": sold}).json()
    assert at_sold["locationUuid"] == sold and at_sold["variants"][0]["locationType"] == "SOLD"
    assert at_sold["variants"][0]["balance"] == 0
    assert stock_of(zettle_sim)[PUT_V2] == 12032  # "1" as a string is accepted, as in Zettle's own guide


PATHS: list[tuple[str, str, Any]] = [
    ("GET", "/organizations/self/locations", None),
    ("GET", f"/organizations/self/inventory/locations/{STORE}", None),
    ("GET", "/organizations/self/inventory/locations", None),
    ("GET", f"/organizations/self/inventory/locations/{STORE}/products/{PUT_PRODUCT}", None),
    ("POST", f"{INVENTORY}/products", {"locationType": "STORE", "productUuids": [PUT_PRODUCT]}),
    ("GET", "/inventory", None),
    ("PUT", INVENTORY, SEED_PUT_REQUEST),
    ("POST", INVENTORY, {"productUuid": BULK_PRODUCT}),
    ("DELETE", f"{INVENTORY}/products/{PUT_PRODUCT}", None),
    ("POST", "/organizations/self/v2/inventory/bulk", SEED_BULK_REQUEST),
    ("PUT", f"/custom-low-stock/locations/{STORE}",
     {"productUuid": PUT_PRODUCT, "variantUuid": PUT_V1, "lowStockLevel": 4, "lowStockAlert": True}),
    ("POST", f"/custom-low-stock/locations/{STORE}",
     {"requests": [{"productUuid": PUT_PRODUCT, "variantUuid": PUT_V1, "lowStockLevel": 4}]}),
    ("GET", f"/custom-low-stock/v2/locations/{STORE}", None),
    ("GET", f"/custom-low-stock/v2/locations/{STORE}/products/{EXTRA_PRODUCT}", None),
    ("GET", f"/custom-low-stock/locations/{STORE}", None),
    ("GET", f"/custom-low-stock/locations/{STORE}/products/{EXTRA_PRODUCT}", None),
    ("POST", f"/custom-low-stock/locations/{STORE}/delete",
     {"requests": [{"productUuid": EXTRA_PRODUCT, "variantUuid": EXTRA_VARIANT}]}),
    ("DELETE", f"/custom-low-stock/locations/{STORE}/products/{EXTRA_PRODUCT}/variants/{EXTRA_VARIANT}", None),
]


@pytest.mark.parametrize(("method", "path", "body"), PATHS, ids=[f"{m} {p}" for m, p, _ in PATHS])
def test_every_path_answers_the_same_with_and_without_trailing_slash(method: str, path: str, body: Any) -> None:
    answers = []
    for variant in (path, path + "/"):
        sim = ZettleSimulator(fixtures=zettle_seed_fixtures())
        with httpx.Client(transport=sim.wsgi_transport(), base_url="http://sandbox", headers=auth(sim)) as client:
            response = client.request(method, variant, json=body)
            answers.append((response.status_code, response.content, sim.inspect_stock()))
        sim.close()
    assert answers[0][0] < 300, answers[0]
    assert answers[0] == answers[1]


# --- tracking ------------------------------------------------------------------------------------


def test_stop_tracking_hides_balances_and_restart_brings_them_back(zettle_client: httpx.Client) -> None:
    assert zettle_client.delete(f"{INVENTORY}/products/{PUT_PRODUCT}").status_code == 204
    read = zettle_client.get(f"/organizations/self/inventory/locations/{STORE}").json()
    assert PUT_PRODUCT not in read["trackedProducts"] and read["variants"] == []
    refused = zettle_client.put(INVENTORY, json={"changes": [move(PUT_V1, 1)]})
    assert refused.status_code == 400 and refused.json()["errorType"] == "PRODUCT_NOT_TRACKED"
    started = zettle_client.post(INVENTORY, json={"productUuid": PUT_PRODUCT}).json()
    assert started["locationUuid"] == STORE
    assert {v["variantUuid"]: v["balance"] for v in started["variants"]} == {PUT_V1: 238, PUT_V2: 12033}
    new = zettle_client.post(INVENTORY, json={"productUuid": EXTRA_PRODUCT})
    assert new.json() == {"locationUuid": STORE, "variants": []}


def test_bulk_tracking_changes(zettle_client: httpx.Client, zettle_sim: ZettleSimulator) -> None:
    body = {"returnBalanceForLocationUuid": STORE, "productChanges": [
        {"productUuid": PUT_PRODUCT, "trackingStatusChange": "STOP_TRACKING", "variantChanges": [
            {"variantUuid": PUT_V1, "fromLocationUuid": STORE, "toLocationUuid": BIN, "change": 8}]},
        {"productUuid": BULK_PRODUCT, "trackingStatusChange": "START_TRACKING"},
    ]}
    answer = zettle_client.post("/organizations/self/v2/inventory/bulk", json=body).json()
    assert answer == {"locationUuid": STORE, "variants": [
        {"productUuid": PUT_PRODUCT, "variantUuid": PUT_V1, "balance": 230}]}
    tracked = zettle_client.get(f"/organizations/self/inventory/locations/{STORE}").json()["trackedProducts"]
    assert tracked == [BULK_PRODUCT, EXTRA_PRODUCT]
    # without returnBalanceForLocationUuid nothing is reported, but the change is applied
    quiet = zettle_client.post("/organizations/self/v2/inventory/bulk", json={"productChanges": [
        {"productUuid": BULK_PRODUCT, "trackingStatusChange": "NO_CHANGE", "variantChanges": [
            {"variantUuid": BULK_V2, "fromLocationUuid": STORE, "toLocationUuid": BIN, "change": 33}]}]})
    assert quiet.json() == {"locationUuid": None, "variants": []}
    assert stock_of(zettle_sim)[BULK_V2] == 12000


# --- externalUuid ----------------------------------------------------------------------------------

EXTERNAL = "947d712a-892d-11ea-bc55-0242ac130003"


def test_external_uuid_is_not_deduplicated_by_default(zettle_client: httpx.Client, zettle_sim: ZettleSimulator) -> None:
    body = {"changes": [move(PUT_V1, 5)], "externalUuid": EXTERNAL}
    first, second = zettle_client.put(INVENTORY, json=body).json(), zettle_client.put(INVENTORY, json=body).json()
    assert (first["variants"][0]["balance"], second["variants"][0]["balance"]) == (233, 228)
    ledger = zettle_client.get("/_sandbox/movements").json()["movements"]
    assert [(m["external_uuid"], m["change"], m["source"]) for m in ledger] == [(EXTERNAL, 5, "PUT")] * 2


def test_external_uuid_deduplicated_only_with_the_option() -> None:
    sim = ZettleSimulator(fixtures={**zettle_seed_fixtures(), "options": {"dedupe_external_uuid": True}})
    with httpx.Client(transport=sim.wsgi_transport(), base_url="http://sandbox", headers=auth(sim)) as client:
        body = {"changes": [move(PUT_V1, 5)], "externalUuid": EXTERNAL}
        first, second = client.put(INVENTORY, json=body).json(), client.put(INVENTORY, json=body).json()
        assert first == second and first["variants"][0]["balance"] == 233
        bulk = {**SEED_BULK_REQUEST, "externalUuid": "11111111-2222-4333-8444-555555555555"}
        assert client.post("/organizations/self/v2/inventory/bulk", json=bulk).json() == client.post(
            "/organizations/self/v2/inventory/bulk", json=bulk).json()
    assert stock_of(sim)[PUT_V1] == 233 and stock_of(sim)[BULK_V1] == 196
    assert len(sim.movements()) == 3


# --- validation ------------------------------------------------------------------------------------

UNKNOWN = "deadbeef-0000-4000-8000-000000000000"
INVALID_PUTS: list[tuple[str, dict[str, Any], int, str | None, list[str]]] = [
    ("missing changes", {}, 400, None, ["changes"]),
    ("empty changes", {"changes": []}, 400, None, ["changes"]),
    ("missing fields", {"changes": [{"change": 1}]}, 400, None,
     ["changes[0].productUuid", "changes[0].variantUuid", "changes[0].fromLocationUuid", "changes[0].toLocationUuid"]),
    ("negative change", {"changes": [move(PUT_V1, 1), move(PUT_V2, -3)]}, 400, None, ["changes[1].change"]),
    ("zero change", {"changes": [move(PUT_V1, 0)]}, 400, None, ["changes[0].change"]),
    ("fractional change", {"changes": [move(PUT_V1, 1.5)]}, 400, None, ["changes[0].change"]),
    ("boolean change", {"changes": [move(PUT_V1, True)]}, 400, None, ["changes[0].change"]),
    ("same location", {"changes": [move(PUT_V1, 1, target=STORE)]}, 400, None, ["changes[0].toLocationUuid"]),
    ("not a uuid", {"changes": [move("v-1", 1)]}, 400, None, ["changes[0].variantUuid"]),
    ("unknown location", {"changes": [move(PUT_V1, 1), move(PUT_V2, 1, target=UNKNOWN)]}, 404, "ENTITY_NOT_FOUND", []),
    ("unknown product", {"changes": [move(PUT_V1, 1), move(PUT_V1, 1, product=UNKNOWN)]}, 404, "ENTITY_NOT_FOUND", []),
    ("variant of another product", {"changes": [move(BULK_V1, 1)]}, 404, "ENTITY_NOT_FOUND", []),
    ("unknown report location", {"changes": [move(PUT_V1, 1)], "returnBalanceForLocationUuid": UNKNOWN}, 404,
     "ENTITY_NOT_FOUND", []),
    ("untracked product", {"changes": [move(PUT_V1, 1), move(BULK_V1, 1, product=BULK_PRODUCT)]}, 400,
     "PRODUCT_NOT_TRACKED", []),
]


@pytest.mark.parametrize(("name", "body", "status", "error_type", "props"), INVALID_PUTS, ids=[c[0] for c in INVALID_PUTS])
def test_invalid_put_is_refused_with_zettles_body_and_changes_nothing(
    zettle_client: httpx.Client, zettle_sim: ZettleSimulator, name: str, body: dict[str, Any], status: int,
    error_type: str | None, props: list[str],
) -> None:
    before = zettle_sim.inspect_stock()
    response = zettle_client.put(INVENTORY, json=body)
    assert response.status_code == status
    answer = response.json()
    assert isinstance(answer["developerMessage"], str) and answer["developerMessage"]
    assert answer.get("errorType") == error_type
    assert [v["propertyName"] for v in answer.get("violations", [])] == props
    assert all(set(v) == {"propertyName", "developerMessage", "constraintType"} for v in answer.get("violations", []))
    assert zettle_sim.inspect_stock() == before and zettle_sim.movements() == []


def test_invalid_bulk_changes_nothing(zettle_client: httpx.Client, zettle_sim: ZettleSimulator) -> None:
    before = zettle_sim.inspect_stock()
    body = {"returnBalanceForLocationUuid": STORE, "productChanges": [
        {"productUuid": BULK_PRODUCT, "trackingStatusChange": "START_TRACKING", "variantChanges": [
            {"variantUuid": BULK_V1, "fromLocationUuid": STORE, "toLocationUuid": BIN, "change": 1}]},
        {"productUuid": PUT_PRODUCT, "trackingStatusChange": "MAYBE"}]}
    response = zettle_client.post("/organizations/self/v2/inventory/bulk", json=body)
    assert response.status_code == 400
    assert response.json()["violations"][0]["propertyName"] == "productChanges[1].trackingStatusChange"
    unknown = {"productChanges": [{"productUuid": UNKNOWN, "trackingStatusChange": "START_TRACKING"}]}
    assert zettle_client.post("/organizations/self/v2/inventory/bulk", json=unknown).status_code == 404
    malformed = zettle_client.post("/organizations/self/v2/inventory/bulk", content=b"{not json")
    assert malformed.status_code == 400 and "Malformed JSON" in malformed.json()["developerMessage"]
    assert zettle_sim.inspect_stock() == before and zettle_sim.movements() == []


# --- auth and organizations ------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", "Basic emV0dGxl", "Bearer"])
def test_bad_or_missing_token_gets_zettles_401(zettle_sim: ZettleSimulator, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    with httpx.Client(transport=zettle_sim.wsgi_transport(), base_url="http://sandbox") as client:
        response = client.put(INVENTORY, json=SEED_PUT_REQUEST, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_request", error_description="ACCESS_TOKEN_EXPIRED"'
    assert response.json()["errorType"] == "ACCESS_TOKEN_EXPIRED" and response.json()["developerMessage"]
    assert zettle_sim.token not in response.text and zettle_sim.movements() == []


def test_organization_uuid_works_in_place_of_self() -> None:
    sim = ZettleSimulator(fixtures=zettle_seed_fixtures(), token="t0ken", options={"organization_uuid": ORGANIZATION})
    with httpx.Client(transport=sim.wsgi_transport(), base_url="http://sandbox", headers=auth(sim)) as client:
        assert client.get(f"/organizations/{ORGANIZATION}/locations").json()[0]["uuid"] == STORE
        assert client.get(f"/organizations/{ORGANIZATION.upper()}/locations/").status_code == 200
        assert client.put(f"/organizations/{ORGANIZATION}/inventory", json=SEED_PUT_REQUEST).json() == SEED_PUT_RESPONSE
        other = client.get(f"/organizations/{UNKNOWN}/locations")
        assert other.status_code == 403 and other.json()["developerMessage"]
    with pytest.raises(ConfigError, match="unknown zettle sandbox option"):
        ZettleSimulator(options={"dedupe": True})


# --- low stock ---------------------------------------------------------------------------------------


def test_low_stock_levels_with_etags(zettle_client: httpx.Client, zettle_sim: ZettleSimulator) -> None:
    path = f"/custom-low-stock/v2/locations/{STORE}"
    first = zettle_client.get(path)
    assert first.json()["customLowStockLevelsForProducts"] == [{"productUuid": EXTRA_PRODUCT,
        "customLowStockLevelForVariants": [{"variantUuid": EXTRA_VARIANT, "customLowStockLevel": 3.0,
                                            "lowStockAlert": False}]}]
    etag = first.headers["ETag"]
    cached = zettle_client.get(path, headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b""
    one = {"productUuid": PUT_PRODUCT, "variantUuid": PUT_V1, "lowStockLevel": 10, "lowStockAlert": True}
    assert zettle_client.put(f"/custom-low-stock/locations/{STORE}", json=one).status_code == 204
    many = {"requests": [{"productUuid": PUT_PRODUCT, "variantUuid": PUT_V2, "lowStockLevel": 8}]}
    assert zettle_client.post(f"/custom-low-stock/locations/{STORE}", json=many).status_code == 204
    changed = zettle_client.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    product = zettle_client.get(f"{path}/products/{PUT_PRODUCT}").json()
    assert product == {"productUuid": PUT_PRODUCT, "customLowStockLevelForVariants": [
        {"variantUuid": PUT_V1, "customLowStockLevel": 10.0, "lowStockAlert": True},
        {"variantUuid": PUT_V2, "customLowStockLevel": 8.0, "lowStockAlert": False}]}
    levels = {r["item"]["variant"]: r.get("low_stock_level") for r in zettle_sim.inspect_stock()}
    assert levels[PUT_V1] == 10 and levels[PUT_V2] == 8


def test_invalid_low_stock_changes_nothing(zettle_client: httpx.Client, zettle_sim: ZettleSimulator) -> None:
    before = zettle_sim.inspect_stock()
    bad = {"requests": [{"productUuid": PUT_PRODUCT, "variantUuid": PUT_V1, "lowStockLevel": 2},
                        {"productUuid": PUT_PRODUCT, "variantUuid": PUT_V2, "lowStockLevel": -1}]}
    response = zettle_client.post(f"/custom-low-stock/locations/{STORE}", json=bad)
    assert response.status_code == 400 and response.json()["violations"][0]["propertyName"] == "requests[1].lowStockLevel"
    at_bin = zettle_client.put(f"/custom-low-stock/locations/{BIN}", json=bad["requests"][0])
    assert at_bin.status_code == 400
    unknown = zettle_client.put(f"/custom-low-stock/locations/{UNKNOWN}", json=bad["requests"][0])
    assert unknown.status_code == 404 and unknown.json()["errorType"] == "ENTITY_NOT_FOUND"
    assert zettle_sim.inspect_stock() == before


# --- fault switches over a real server -------------------------------------------------------------


def test_latency_switch_delays_answers(zettle_server: tuple[ZettleSimulator, httpx.Client]) -> None:
    sim, client = zettle_server
    client.put("/_sandbox/faults", json={"latency_ms": 200})
    started = time.monotonic()
    assert client.get("/organizations/self/locations").status_code == 200
    assert time.monotonic() - started >= 0.2


def test_429_has_zettles_body_and_no_retry_after_unless_asked(zettle_server: tuple[ZettleSimulator, httpx.Client]) -> None:
    sim, client = zettle_server
    client.put("/_sandbox/faults", json={"rate_429": 1.0, "retry_after_s": 7})
    limited = client.put(INVENTORY, json=SEED_PUT_REQUEST)
    assert limited.status_code == 429
    assert limited.json() == {"developerMessage": "Too many requests", "errorType": "TOO_MANY_REQUESTS"}
    assert "Retry-After" not in limited.headers and sim.movements() == []
    sim.store.update_options({"retry_after": True})
    assert client.get("/organizations/self/locations").headers["Retry-After"] == "7"


def test_5xx_switch(zettle_server: tuple[ZettleSimulator, httpx.Client]) -> None:
    sim, client = zettle_server
    client.put("/_sandbox/faults", json={"rate_5xx": 1.0})
    failed = client.put(INVENTORY, json=SEED_PUT_REQUEST)
    assert failed.status_code == 503 and failed.json()["developerMessage"]
    assert stock_of(sim)[PUT_V1] == 238


def test_dropped_connection_after_a_committed_write(zettle_server: tuple[ZettleSimulator, httpx.Client]) -> None:
    sim, client = zettle_server
    client.put("/_sandbox/faults", json={"drop_next_writes": 1})
    with pytest.raises(httpx.TransportError):
        client.put(INVENTORY, json=SEED_PUT_REQUEST)
    assert stock_of(sim)[PUT_V1] == 196  # committed although the client saw no answer
    read = client.get(f"/organizations/self/inventory/locations/{STORE}").json()
    assert {v["variantUuid"]: v["balance"] for v in read["variants"]}[PUT_V1] == "196"


def test_sales_generator_moves_store_stock_to_sold(zettle_server: tuple[ZettleSimulator, httpx.Client]) -> None:
    sim, client = zettle_server
    total_before = sum(stock_of(sim).values())
    client.put("/_sandbox/sales", json={"rate": 200})
    deadline = time.monotonic() + 5
    while len(sim.movements()) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    client.put("/_sandbox/sales", json={"rate": 0})
    sales = [m for m in sim.movements() if m["source"] == "SALE"]
    assert len(sales) >= 5
    sold = location_uuid(client, "SOLD")
    assert all(m["from_uuid"] == STORE and m["to_uuid"] == sold and m["change"] == 1 for m in sales)
    assert all(m["variant_uuid"] in (PUT_V1, PUT_V2) for m in sales)  # untracked products are not sold
    assert sum(stock_of(sim).values()) == total_before - len(sales)
    once = client.post("/_sandbox/sell", json={"count": 1}).json()["sold"]
    assert once[0]["location"] == STORE and once[0]["quantity"] == 1


def test_sell_one_returns_none_without_stock() -> None:
    sim = ZettleSimulator(fixtures={"locations": [{"id": STORE}], "stock": [
        {"location": STORE, "item": {"product": PUT_PRODUCT, "variant": PUT_V1}, "quantity": 0}]})
    assert sim.sell_one() is None and sim.movements() == []


# --- persistence -------------------------------------------------------------------------------------


def test_state_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "zettle.sqlite"
    sim = ZettleSimulator(state=state, fixtures=zettle_seed_fixtures(), options={"organization_uuid": ORGANIZATION})
    with ServerThread(sim) as server, httpx.Client(base_url=server.url, headers=auth(sim)) as client:
        assert client.put(INVENTORY, json={**SEED_PUT_REQUEST, "externalUuid": EXTERNAL}).status_code == 200
        client.delete(f"{INVENTORY}/products/{PUT_PRODUCT}")
    sim.close()
    again = ZettleSimulator(state=state)
    with ServerThread(again) as server, httpx.Client(base_url=server.url, headers=auth(again)) as client:
        assert client.get(f"/organizations/{ORGANIZATION}/locations").json()[0]["uuid"] == STORE
        restarted = client.post(f"/organizations/{ORGANIZATION}/inventory", json={"productUuid": PUT_PRODUCT}).json()
        assert {v["variantUuid"]: v["balance"] for v in restarted["variants"]} == {PUT_V1: 196, PUT_V2: 10696}
    assert [m["external_uuid"] for m in again.movements()] == [EXTERNAL, EXTERNAL]
    again.close()
