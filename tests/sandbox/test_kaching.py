"""Ka-ching simulator: the seed's examples, the asynchronous queue, deltas, DELETE, auth."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from reconciler.sandbox.kaching import KachingSimulator

FIXTURES = {
    "locations": [{"id": "stock_location_id", "name": "Main"}, {"id": "oslo"}],
    "items": [{"id": "product1"}, {"id": {"product": "product3", "variant": "variant1"}}],
    "stock": [{"location": "oslo", "item": "product1", "quantity": 10}],
}
AUTH = {"account": "shop", "integration": "queue-1", "apikey": "key-1"}


def make(delay: float = 0.0, state: Path | None = None) -> KachingSimulator:
    return KachingSimulator(fixtures=FIXTURES, account="shop", integration="queue-1", token="key-1",
                            delay=delay, state=state)


@pytest.fixture
def sim() -> Iterator[KachingSimulator]:
    simulator = make()
    yield simulator
    simulator.close()


def client_for(sim: KachingSimulator) -> httpx.Client:
    return httpx.Client(transport=sim.wsgi_transport(), base_url="http://sandbox")


def stock_of(sim: KachingSimulator) -> dict[tuple[str, str, str], int]:
    return {(r["location"], r["item"]["product"], r["item"].get("variant", "")): r["quantity"]
            for r in sim.inspect_stock()}


def wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the import queue did not finish in time"
        time.sleep(0.01)


# --- the seed's examples (seed 003) ---------------------------------------------------------


SEED_WITHOUT_VARIANTS = {"stock_location_id": {"product1": 7, "product2": 7}}
SEED_WITH_VARIANTS = {"stock_location_id": {"product1": 7, "product2": 7, "product3": {"variant1": 7, "variant2": 7}}}


def test_seed_example_without_variants(sim: KachingSimulator) -> None:
    response = client_for(sim).post("/imports/stock", params=AUTH, json=SEED_WITHOUT_VARIANTS)
    assert response.status_code == 200
    assert response.json() == {"status": "OK", "message": "Import of 2 stock value(s) initiated"}
    # product2 is not in the catalog or stocked anywhere: accepted all the same
    assert stock_of(sim) == {("oslo", "product1", ""): 10, ("stock_location_id", "product1", ""): 7,
                             ("stock_location_id", "product2", ""): 7}
    assert [e["type"] for e in sim.events()] == ["external_reset", "external_reset"]


def test_seed_example_with_variants_counts_every_value(sim: KachingSimulator) -> None:
    response = client_for(sim).post("/imports/stock", params=AUTH, json=SEED_WITH_VARIANTS)
    assert response.json() == {"status": "OK", "message": "Import of 4 stock value(s) initiated"}
    assert stock_of(sim)[("stock_location_id", "product3", "variant2")] == 7


def test_seed_delete_example_stops_tracking(sim: KachingSimulator) -> None:
    client = client_for(sim)
    client.post("/imports/stock", params=AUTH, json=SEED_WITH_VARIANTS)
    body = {"stock_location_id": {"product1": 0, "product2": 0, "product3": {"variant1": 0, "variant2": 0}}}
    response = client.request("DELETE", "/imports/stock", params=AUTH, json=body)
    assert response.json() == {"status": "OK", "message": "Import of 4 stock value(s) initiated"}
    # removed, which is not the same as a stock of 0; other locations keep theirs
    assert stock_of(sim) == {("oslo", "product1", ""): 10}
    assert [e["type"] for e in sim.events()][-4:] == ["stock_removed"] * 4


# --- the asynchronous queue (the quirk) ------------------------------------------------------


def test_values_are_applied_after_the_response() -> None:
    sim = make(delay=0.3)
    try:
        response = client_for(sim).post("/imports/stock", params=AUTH, json={"oslo": {"product1": 3}})
        assert response.json()["message"] == "Import of 1 stock value(s) initiated"
        assert stock_of(sim) == {("oslo", "product1", ""): 10}  # initiated, not applied
        assert sim.pending() == 1 and sim.events() == []
        wait_for(lambda: sim.pending() == 0)
        assert stock_of(sim) == {("oslo", "product1", ""): 3}
        [event] = sim.events()
        assert (event["log"], event["type"], event["value"], event["quantity"]) == ("success", "external_reset", 3, 3)
    finally:
        sim.close()


def test_queued_values_survive_a_restart(tmp_path: Path) -> None:
    first = make(delay=0.5, state=tmp_path / "kc.db")
    client_for(first).post("/imports/stock", params=AUTH, json={"oslo": {"product1": 4}})
    first.close()  # stopped before its worker got to the value
    second = make(delay=0.5, state=tmp_path / "kc.db")
    try:
        assert stock_of(second) == {("oslo", "product1", ""): 10}
        wait_for(lambda: second.pending() == 0)
        assert stock_of(second) == {("oslo", "product1", ""): 4}
    finally:
        second.close()


def test_adjustment_true_applies_deltas(sim: KachingSimulator) -> None:
    client = client_for(sim)
    body = {"oslo": {"product1": -3, "product3": {"variant1": 2}}}
    response = client.post("/imports/stock", params={**AUTH, "adjustment": "true"}, json=body)
    assert response.json() == {"status": "OK", "message": "Import of 2 stock value(s) initiated"}
    assert stock_of(sim) == {("oslo", "product1", ""): 7, ("oslo", "product3", "variant1"): 2}
    assert {e["type"] for e in sim.events()} == {"external_adjustment"}
    # deltas are not idempotent: the same request again moves stock again
    client.post("/imports/stock", params={**AUTH, "adjustment": "true"}, json=body)
    assert stock_of(sim)[("oslo", "product1", "")] == 4


def test_delete_of_an_untracked_product_lands_in_the_failure_log(sim: KachingSimulator) -> None:
    response = client_for(sim).request("DELETE", "/imports/stock", params=AUTH, json={"oslo": {"nothing": 0}})
    assert response.status_code == 200  # the endpoint cannot report per-item results
    [event] = sim.events()
    assert (event["log"], event["item"]) == ("failure", {"product": "nothing"})


def test_events_listing_is_test_only_and_needs_no_credential(sim: KachingSimulator) -> None:
    client = client_for(sim)
    client.post("/imports/stock", params=AUTH, json={"oslo": {"product1": 1}})
    listing = client.get("/_sandbox/kaching/events").json()
    assert listing["test_only"] is True
    assert [(e["type"], e["item"], e["quantity"]) for e in listing["events"]] == [
        ("external_reset", {"product": "product1"}, 1)]


# --- validation and auth --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"nowhere": {"product1": 1}, "oslo": {"product1": 1}}, 400, "Unknown stock location: nowhere"),
        ({"oslo": {"product1": "7"}}, 400, "Stock location oslo, product product1: the stock value must be an integer"),
        ({"oslo": {"product1": 1, "product3": {"variant1": 1.5}}}, 400,
         "Stock location oslo, product product3 variant variant1: the stock value must be an integer"),
        ({"oslo": [1, 2]}, 400, "Stock location oslo: value must be an object of products"),
        ([{"oslo": {}}], 400, None),
        # ids are database keys that cannot hold . / # $ * [ ] (a client that does not check is refused)
        ({"oslo": {"product1": 1, "tee.red": 2}}, 400, "Invalid key(s) tee.red: ids cannot contain . / # $ * [ ]"),
        ({"oslo": {"product3": {"s/m": 1, "l[1]": 1}}}, 400,
         "Invalid key(s) l[1], s/m: ids cannot contain . / # $ * [ ]"),
        ({"os#lo": {"product1": 1}}, 400, "Invalid key(s) os#lo: ids cannot contain . / # $ * [ ]"),
    ],
)
def test_bad_imports_are_rejected_and_change_nothing(sim: KachingSimulator, body: Any, status: int,
                                                     message: str | None) -> None:
    response = client_for(sim).post("/imports/stock", params=AUTH, json=body)
    assert response.status_code == status
    assert response.json()["status"] == "ERROR"
    if message:
        assert response.json()["message"] == message
    assert stock_of(sim) == {("oslo", "product1", ""): 10}
    assert sim.events() == [] and sim.pending() == 0


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({}, 401),
        ({"account": "shop", "integration": "queue-1"}, 401),
        ({**AUTH, "apikey": "wrong"}, 403),
        ({**AUTH, "account": "other-shop"}, 403),
        ({**AUTH, "integration": "other-queue"}, 403),
    ],
)
def test_auth_is_by_query_parameters(sim: KachingSimulator, params: dict[str, str], status: int) -> None:
    # a bearer header is not how Ka-ching authenticates and does not help
    response = client_for(sim).post("/imports/stock", params=params, json={"oslo": {"product1": 1}},
                                    headers={"Authorization": "Bearer key-1"})
    assert response.status_code == status
    assert response.json()["status"] == "ERROR" and response.json()["message"]
    assert stock_of(sim) == {("oslo", "product1", ""): 10}


def test_default_credentials_are_documented_values() -> None:
    sim = KachingSimulator(fixtures=FIXTURES, delay=0)
    params = {"account": "sandbox-account", "integration": "sandbox-stock-queue", "apikey": sim.default_token}
    assert client_for(sim).post("/imports/stock/", params=params, json={"oslo": {"product1": 2}}).status_code == 200
    assert stock_of(sim)[("oslo", "product1", "")] == 2
    sim.close()


def test_vendor_shaped_faults(sim: KachingSimulator) -> None:
    sim.faults.update({"rate_429": 1.0})
    response = client_for(sim).post("/imports/stock", params=AUTH, json={"oslo": {"product1": 1}})
    assert response.status_code == 429 and response.json()["status"] == "ERROR"
    assert "retry-after" in response.headers
    sim.faults.update({"rate_429": 0.0, "rate_5xx": 1.0})
    response = client_for(sim).post("/imports/stock", params=AUTH, json={"oslo": {"product1": 1}})
    assert response.status_code >= 500 and response.json()["status"] == "ERROR"
    assert stock_of(sim) == {("oslo", "product1", ""): 10}


def test_sell_one_records_a_sale_event(sim: KachingSimulator) -> None:
    sold = sim.sell_one()
    assert sold == {"location": "oslo", "item": {"product": "product1"}, "quantity": 9}
    assert stock_of(sim) == {("oslo", "product1", ""): 9}
    assert [(e["type"], e["value"]) for e in sim.events()] == [("sale", -1)]


def test_stock_persists_across_restart(tmp_path: Path) -> None:
    first = make(state=tmp_path / "kc.db")
    client_for(first).post("/imports/stock", params=AUTH, json={"oslo": {"product1": 25}})
    first.close()
    second = make(state=tmp_path / "kc.db")
    assert stock_of(second) == {("oslo", "product1", ""): 25}
    assert len(second.events()) == 1
    second.close()
