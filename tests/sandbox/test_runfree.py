"""Run Free simulator: the seed's examples, lookups, validation, auth, persistence."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import httpx
import pytest

from reconciler.errors import ConfigError
from reconciler.sandbox.runfree import RunFreeSimulator

ZOOT = {"upc": "849632048260", "sku": "ZOOT-SUIT", "size": "34", "width": "D"}
OTHER = {"upc": "000000000017", "sku": "ZOOT-SUIT", "size": "36", "width": "D"}
FIXTURES = {
    "locations": [{"id": "3", "name": "Store 3"}, {"id": "7"}],
    "items": [{"id": ZOOT, "name": "Zoot suit 34 D"}, {"id": OTHER}],
    "stock": [{"location": "3", "item": {"upc": OTHER["upc"]}, "quantity": 5}],
}


# Run Free documents no status for its errors: every error test runs with the strict default
# (errors answered 200 with {"error": ...}) and with the assumed 4xx codes.
@pytest.fixture(params=["200", "4xx"])
def sim(request: pytest.FixtureRequest) -> Iterator[RunFreeSimulator]:
    simulator = RunFreeSimulator(fixtures=FIXTURES, error_status=request.param)
    yield simulator
    simulator.close()


def code(sim: RunFreeSimulator, assumed: int) -> int:
    """The status an error is answered with under the simulator's error_status switch."""
    return 200 if sim.error_status == "200" else assumed


@pytest.fixture
def client(sim: RunFreeSimulator) -> httpx.Client:
    return httpx.Client(transport=sim.wsgi_transport(), base_url="http://sandbox",
                        headers={"Authorization": f"Bearer {sim.default_token}"})


def stock_of(sim: RunFreeSimulator) -> dict[tuple[str, str], int]:
    return {(r["location"], r["item"]["upc"]): r["quantity"] for r in sim.inspect_stock()}


# --- the seed's examples (seed 004) -----------------------------------------------------------


def test_seed_upc_example_sets_absolute_quantity(sim: RunFreeSimulator, client: httpx.Client) -> None:
    response = client.post("/api/product/inventory", json={"upc": "849632048260", "store": "3", "quantity": 12})
    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert stock_of(sim)[("3", "849632048260")] == 12


def test_seed_sku_size_width_example(sim: RunFreeSimulator, client: httpx.Client) -> None:
    body = {"sku": "ZOOT-SUIT", "size": "34", "width": "D", "store": "3", "quantity": 44}
    response = client.post("/api/product/inventory", json=body)
    assert response.status_code == 200
    assert stock_of(sim)[("3", "849632048260")] == 44
    # the other size of the same sku is a different product and keeps its stock
    assert stock_of(sim)[("3", OTHER["upc"])] == 5


def test_seed_missing_sku_error_body(sim: RunFreeSimulator, client: httpx.Client) -> None:
    response = client.post("/api/product/inventory", json={"size": "34", "width": "D", "store": "3", "quantity": 44})
    assert response.status_code == code(sim, 400)
    assert response.json() == {"error": "Missing required field: sku"}
    assert stock_of(sim) == {("3", OTHER["upc"]): 5}


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ({"upc": "849632048260", "quantity": 1}, "store"),
        ({"upc": "849632048260", "store": "3"}, "quantity"),
        ({"sku": "ZOOT-SUIT", "width": "D", "store": "3", "quantity": 1}, "size"),
        ({"sku": "ZOOT-SUIT", "size": "34", "store": "3", "quantity": 1}, "width"),
    ],
)
def test_each_missing_field_is_named(sim: RunFreeSimulator, client: httpx.Client, body: dict[str, object],
                                     missing: str) -> None:
    response = client.post("/api/product/inventory", json=body)
    assert (response.status_code, response.json()) == (code(sim, 400), {"error": f"Missing required field: {missing}"})


# --- validation and auth --------------------------------------------------------------------


def test_one_item_per_request_a_list_is_rejected(sim: RunFreeSimulator, client: httpx.Client) -> None:
    body = [{"upc": "849632048260", "store": "3", "quantity": 1}, {"upc": OTHER["upc"], "store": "3", "quantity": 2}]
    response = client.post("/api/product/inventory", json=body)
    assert response.status_code == code(sim, 400)
    assert "one item per request" in response.json()["error"].lower()
    assert stock_of(sim) == {("3", OTHER["upc"]): 5}


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"upc": "999", "store": "3", "quantity": 1}, 404, "Product not found"),
        ({"sku": "ZOOT-SUIT", "size": "99", "width": "D", "store": "3", "quantity": 1}, 404, "Product not found"),
        ({"upc": "849632048260", "store": "42", "quantity": 1}, 404, "Store not found: 42"),
        ({"upc": "849632048260", "store": "3", "quantity": "12"}, 400, "quantity must be an integer"),
        ({"upc": "849632048260", "store": "3", "quantity": True}, 400, "quantity must be an integer"),
        ({"upc": "849632048260", "store": "3", "quantity": -1}, 400, "must not be negative"),
    ],
)
def test_bad_requests_change_nothing(sim: RunFreeSimulator, client: httpx.Client, body: dict[str, object],
                                     status: int, fragment: str) -> None:
    response = client.post("/api/product/inventory", json=body)
    assert response.status_code == code(sim, status)
    assert fragment in response.json()["error"]
    assert stock_of(sim) == {("3", OTHER["upc"]): 5}


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic runfree-sandbox-token"])
def test_bad_or_missing_token_is_refused(sim: RunFreeSimulator, header: str | None) -> None:
    client = httpx.Client(transport=sim.wsgi_transport(), base_url="http://sandbox")
    headers = {"Authorization": header} if header else {}
    response = client.post("/api/product/inventory", json={"upc": "849632048260", "store": "3", "quantity": 1},
                           headers=headers)
    assert response.status_code == code(sim, 401)
    assert set(response.json()) == {"error"}
    assert stock_of(sim) == {("3", OTHER["upc"]): 5}


def test_custom_token_replaces_the_default() -> None:
    sim = RunFreeSimulator(fixtures=FIXTURES, token="s3cret")
    client = httpx.Client(transport=sim.wsgi_transport(), base_url="http://sandbox")
    body = {"upc": "849632048260", "store": "7", "quantity": 3}
    refused = client.post("/api/product/inventory", json=body, headers={"Authorization": f"Bearer {sim.default_token}"})
    assert refused.json() == {"error": "Invalid or missing Bearer token"}
    assert stock_of(sim) == {("3", OTHER["upc"]): 5}
    assert client.post("/api/product/inventory/", json=body, headers={"Authorization": "Bearer s3cret"}).json() == {"success": True}
    assert stock_of(sim)[("7", "849632048260")] == 3
    sim.close()


def test_vendor_shaped_faults(sim: RunFreeSimulator, client: httpx.Client) -> None:
    sim.faults.update({"rate_429": 1.0, "retry_after_s": 3})
    response = client.post("/api/product/inventory", json={"upc": "849632048260", "store": "3", "quantity": 1})
    assert (response.status_code, response.headers["retry-after"]) == (429, "3")
    assert set(response.json()) == {"error"}
    sim.faults.update({"rate_429": 0.0, "rate_5xx": 1.0})
    response = client.post("/api/product/inventory", json={"upc": "849632048260", "store": "3", "quantity": 1})
    assert response.status_code >= 500 and set(response.json()) == {"error"}
    assert stock_of(sim) == {("3", OTHER["upc"]): 5}


# --- the strict default: an error answered 200, and the plausible success bodies -----------------


def test_by_default_an_error_comes_back_with_200_and_a_status_only_client_is_fooled() -> None:
    """The strict default: a client that trusts the status (as ours did) sees 200 for a write
    Run Free refused; only the body tells. tests/connectors/test_runfree.py shows ours reads it."""
    sim = RunFreeSimulator(fixtures=FIXTURES)
    client = httpx.Client(transport=sim.wsgi_transport(), base_url="http://sandbox",
                          headers={"Authorization": f"Bearer {sim.default_token}"})
    response = client.post("/api/product/inventory", json={"upc": "849632048260", "quantity": 4})
    assert response.is_success and response.json() == {"error": "Missing required field: store"}
    assert stock_of(sim) == {("3", OTHER["upc"]): 5}
    sim.close()


@pytest.mark.parametrize(("success_body", "status", "text"),
                         [("relay", 200, '{"success":true}'), ("empty", 200, ""), ("unknown", 200, '{"status":"queued"}')])
def test_success_body_switch(success_body: str, status: int, text: str) -> None:
    sim = RunFreeSimulator(fixtures=FIXTURES, success_body=success_body)
    client = httpx.Client(transport=sim.wsgi_transport(), base_url="http://sandbox",
                          headers={"Authorization": f"Bearer {sim.default_token}"})
    response = client.post("/api/product/inventory", json={"upc": "849632048260", "store": "3", "quantity": 4})
    assert (response.status_code, response.text) == (status, text)
    assert stock_of(sim)[("3", "849632048260")] == 4
    sim.close()


@pytest.mark.parametrize(("empty_width", "answer", "quantity"),
                         [("refuse", {"error": "Missing required field: width"}, None), ("accept", {"success": True}, 6)])
def test_empty_width_switch(empty_width: str, answer: dict[str, object], quantity: int | None) -> None:
    tee = {"upc": "000000000099", "sku": "TEE", "size": "M", "width": ""}
    sim = RunFreeSimulator(fixtures={**FIXTURES, "items": [*FIXTURES["items"], {"id": tee}]}, empty_width=empty_width)
    client = httpx.Client(transport=sim.wsgi_transport(), base_url="http://sandbox",
                          headers={"Authorization": f"Bearer {sim.default_token}"})
    response = client.post("/api/product/inventory", json={"sku": "TEE", "size": "M", "width": "", "store": "3",
                                                           "quantity": 6})
    assert response.json() == answer
    assert stock_of(sim).get(("3", tee["upc"])) == quantity
    sim.close()


def test_unknown_switch_values_are_refused() -> None:
    with pytest.raises(ValueError, match="error_status"):
        RunFreeSimulator(error_status="500")
    with pytest.raises(ValueError, match="success_body"):
        RunFreeSimulator(success_body="maybe")
    with pytest.raises(ValueError, match="empty_width"):
        RunFreeSimulator(empty_width="maybe")


# --- sales, fixtures, persistence ---------------------------------------------------------


def test_sell_one_decrements_an_in_stock_position(sim: RunFreeSimulator) -> None:
    sold = sim.sell_one()
    assert sold == {"location": "3", "item": {"upc": OTHER["upc"]}, "quantity": 4}
    assert stock_of(sim) == {("3", OTHER["upc"]): 4}
    for _ in range(4):
        sim.sell_one()
    assert sim.sell_one() is None  # nothing left to sell
    assert stock_of(sim) == {("3", OTHER["upc"]): 0}


def test_fixture_items_need_all_four_ids() -> None:
    with pytest.raises(ConfigError, match=r"items\[0\]\.id"):
        RunFreeSimulator(fixtures={"locations": [{"id": "3"}], "items": [{"id": {"upc": "1"}}]})


def test_stock_persists_across_restart(tmp_path: Path) -> None:
    state = tmp_path / "runfree.db"
    first = RunFreeSimulator(state=state, fixtures=FIXTURES)
    client = httpx.Client(transport=first.wsgi_transport(), base_url="http://sandbox",
                          headers={"Authorization": f"Bearer {first.default_token}"})
    assert client.post("/api/product/inventory", json={"upc": OTHER["upc"], "store": "3", "quantity": 21}).status_code == 200
    first.close()
    # restarting with the same fixtures keeps what the sandbox recorded (fixtures only fill gaps)
    second = RunFreeSimulator(state=state, fixtures=FIXTURES)
    assert stock_of(second) == {("3", OTHER["upc"]): 21}
    second.close()
