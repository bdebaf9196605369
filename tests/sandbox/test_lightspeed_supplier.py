"""Lightspeed supplier feed simulator: the seed's batch PUT, flags, the assumed read endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from reconciler.errors import ConfigError
from reconciler.sandbox.lightspeed_supplier import MAX_BATCH, LightspeedSupplierSimulator

A = "c5dc1ca6-ef75-4341-a89e-de80c288e292"
B = "e100c6af-25f7-4016-a5a1-a573c6951226"
C = "0f0f0f0f-0000-4000-8000-000000000003"
FIXTURES = {
    "locations": [{"id": "warehouse-1", "name": "Warehouse"}],
    "items": [{"id": A, "name": "Alpha", "vendorSku": "ALPHA"}, {"id": B, "name": "Beta"}, {"id": C}],
    "stock": [{"location": "warehouse-1", "item": C, "quantity": 4, "backordering": True, "tracking": True}],
}


@pytest.fixture
def sim() -> Iterator[LightspeedSupplierSimulator]:
    # Most tests here exercise the assumed read and flag paths too; the strict default (write-only)
    # has its own tests below.
    simulator = LightspeedSupplierSimulator(fixtures=FIXTURES, read_api="assumed")
    yield simulator
    simulator.close()


def strict_client(**switches: str) -> tuple[LightspeedSupplierSimulator, httpx.Client]:
    sim = LightspeedSupplierSimulator(fixtures=FIXTURES, **switches)
    return sim, httpx.Client(transport=sim.wsgi_transport(), base_url="http://sandbox",
                             headers={"Authorization": f"Bearer {sim.default_token}"})


@pytest.fixture
def client(sim: LightspeedSupplierSimulator) -> httpx.Client:
    return httpx.Client(transport=sim.wsgi_transport(), base_url="http://sandbox",
                        headers={"Authorization": f"Bearer {sim.default_token}"})


def stock_of(sim: LightspeedSupplierSimulator) -> dict[str, tuple[int, bool, bool]]:
    return {r["item"]: (r["quantity"], r["backordering"], r["tracking"]) for r in sim.inspect_stock()}


INITIAL = {A: (0, False, False), B: (0, False, False), C: (4, True, True)}


# --- the seed's example (seed 001) ----------------------------------------------------------


def test_seed_batch_put_sets_absolute_quantities(sim: LightspeedSupplierSimulator, client: httpx.Client) -> None:
    body = {"products": [{"id": A, "quantity": 26543}, {"id": B, "quantity": 900}]}
    response = client.put("/inventory", json=body)
    assert response.status_code == 200
    assert response.json() == body  # ASSUMPTION: the undocumented response echoes what was set
    assert stock_of(sim) == {A: (26543, False, False), B: (900, False, False), C: (4, True, True)}
    assert {r["location"] for r in sim.inspect_stock()} == {"warehouse-1"}


@pytest.mark.parametrize("flag_value", [[True], True])
def test_seed_flags_accept_one_element_arrays_and_booleans(sim: LightspeedSupplierSimulator, client: httpx.Client,
                                                           flag_value: Any) -> None:
    body = {"inventory": {"isBackorderingEnabled": flag_value, "isInventoryTrackingEnabled": [False]}}
    response = client.put(f"/products/{A}", json=body)
    assert response.status_code == 200
    assert response.json()["inventory"] == {"isBackorderingEnabled": True, "isInventoryTrackingEnabled": False}
    assert stock_of(sim)[A] == (0, True, False)


def test_flags_default_to_false_and_one_flag_leaves_the_other(sim: LightspeedSupplierSimulator,
                                                              client: httpx.Client) -> None:
    client.put(f"/products/{C}", json={"inventory": {"isInventoryTrackingEnabled": [False]}})
    assert stock_of(sim)[C] == (4, True, False)
    assert stock_of(sim)[B] == (0, False, False)


# --- the assumed read endpoint ---------------------------------------------------------------


def test_products_listing_pages(client: httpx.Client) -> None:
    first = client.get("/products", params={"per_page": 2}).json()
    second = client.get("/products", params={"per_page": 2, "page": 2}).json()
    assert (first["total"], first["pages"], second["page"]) == (3, 2, 2)
    listed = first["products"] + second["products"]
    assert sorted(p["id"] for p in listed) == sorted([A, B, C])
    by_id = {p["id"]: p for p in listed}
    assert by_id[A] == {"id": A, "name": "Alpha", "vendorSku": "ALPHA", "quantity": 0,
                        "inventory": {"isBackorderingEnabled": False, "isInventoryTrackingEnabled": False}}
    assert by_id[C]["inventory"] == {"isBackorderingEnabled": True, "isInventoryTrackingEnabled": True}
    assert client.get("/products", params={"page": 3, "per_page": 2}).json()["products"] == []


@pytest.mark.parametrize("params", [{"page": "0"}, {"per_page": "x"}, {"per_page": "251"}])
def test_products_listing_rejects_bad_paging(client: httpx.Client, params: dict[str, str]) -> None:
    response = client.get("/products", params=params)
    assert response.status_code == 400 and set(response.json()) == {"error"}


def test_single_product_read(client: httpx.Client) -> None:
    assert client.get(f"/products/{C}").json()["quantity"] == 4
    assert client.get("/products/nope").status_code == 404


# --- validation and auth --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"products": [{"id": A, "quantity": 5}, {"id": "unknown-id", "quantity": 1}]}, 404, "unknown-id"),
        ({"products": [{"id": A, "quantity": 5}, {"id": B, "quantity": "9"}]}, 400, "products[1].quantity"),
        ({"products": [{"id": A, "quantity": 5}, {"id": B, "quantity": -1}]}, 400, "negative"),
        ({"products": [{"id": A, "quantity": 5}, {"id": A, "quantity": 6}]}, 400, "more than once"),
        ({"products": [{"quantity": 5}]}, 400, "products[0].id"),
        ({"items": []}, 400, "products"),
        ([], 400, "products"),
    ],
)
def test_bad_batches_change_nothing(sim: LightspeedSupplierSimulator, client: httpx.Client, body: Any, status: int,
                                    fragment: str) -> None:
    response = client.put("/inventory", json=body)
    assert response.status_code == status
    assert fragment in response.json()["error"]
    assert stock_of(sim) == INITIAL


def test_batch_limit_is_1000(sim: LightspeedSupplierSimulator, client: httpx.Client) -> None:
    over = {"products": [{"id": A, "quantity": 1}] * (MAX_BATCH + 1)}
    response = client.put("/inventory", json=over)
    assert response.status_code == 400 and "at most 1000" in response.json()["error"]
    assert stock_of(sim) == INITIAL


def test_batch_of_1000_is_accepted() -> None:
    ids = [f"item-{n:04d}" for n in range(MAX_BATCH)]
    sim = LightspeedSupplierSimulator(fixtures={"items": [{"id": i} for i in ids]})
    client = httpx.Client(transport=sim.wsgi_transport(), base_url="http://sandbox",
                          headers={"Authorization": f"Bearer {sim.default_token}"})
    response = client.put("/inventory", json={"products": [{"id": i, "quantity": n} for n, i in enumerate(ids)]})
    assert response.status_code == 200
    assert sum(r["quantity"] for r in sim.inspect_stock()) == sum(range(MAX_BATCH))
    sim.close()


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"inventory": {"isBackorderingEnabled": [True, False]}}, "true or false"),
        ({"inventory": {"isBackorderingEnabled": "yes"}}, "true or false"),
        ({"inventory": {"isBackordering": [True]}}, "Unknown inventory field"),
        ({"flags": {}}, "inventory"),
    ],
)
def test_bad_flag_updates_change_nothing(sim: LightspeedSupplierSimulator, client: httpx.Client, body: Any,
                                         fragment: str) -> None:
    response = client.put(f"/products/{C}", json=body)
    assert response.status_code == 400 and fragment in response.json()["error"]
    assert stock_of(sim) == INITIAL


@pytest.mark.parametrize("header", [None, "Bearer nope", "Token lightspeed-supplier-sandbox-token"])
def test_bearer_auth(sim: LightspeedSupplierSimulator, header: str | None) -> None:
    client = httpx.Client(transport=sim.wsgi_transport(), base_url="http://sandbox")
    response = client.put("/inventory", json={"products": [{"id": A, "quantity": 1}]},
                          headers={"Authorization": header} if header else {})
    assert response.status_code == 401 and set(response.json()) == {"error"}
    assert client.get("/products", headers={"Authorization": header} if header else {}).status_code == 401
    assert stock_of(sim) == INITIAL


def test_vendor_shaped_faults(sim: LightspeedSupplierSimulator, client: httpx.Client) -> None:
    sim.faults.update({"rate_429": 1.0, "retry_after_s": 2})
    response = client.put("/inventory", json={"products": [{"id": A, "quantity": 1}]})
    assert (response.status_code, response.headers["retry-after"], set(response.json())) == (429, "2", {"error"})
    sim.faults.update({"rate_429": 0.0, "rate_5xx": 1.0})
    response = client.put("/inventory", json={"products": [{"id": A, "quantity": 1}]})
    assert response.status_code >= 500 and set(response.json()) == {"error"}
    assert stock_of(sim) == INITIAL


# --- the strict default: only the documented path exists -----------------------------------------


@pytest.mark.parametrize(("method", "path"), [("GET", "/products"), ("GET", f"/products/{A}"), ("PUT", f"/products/{A}")])
def test_by_default_the_undocumented_paths_do_not_exist(method: str, path: str) -> None:
    """A client that reads (or writes flags) through the paths nobody has seen documented is
    refused by default, as the real host most likely refuses it: the connector's default is
    write-only (tests/connectors/test_lightspeed_supplier.py)."""
    sim, client = strict_client()
    response = client.request(method, path, json={"inventory": {"isBackorderingEnabled": [True]}}
                              if method == "PUT" else None)
    assert response.status_code == 404
    assert stock_of(sim) == INITIAL
    assert client.put("/inventory", json={"products": [{"id": A, "quantity": 3}]}).status_code == 200
    sim.close()


@pytest.mark.parametrize(("method", "body"), [("POST", {"products": [{"id": A, "quantity": 3}]}),
                                              ("PATCH", {"products": [{"id": A, "quantity": 3}]}),
                                              ("PUT", [{"id": A, "quantity": 3}]),
                                              ("PUT", {"products": [{"id": A, "quantity": 3.0}]})])
def test_a_client_that_gets_the_documented_put_wrong_is_refused(method: str, body: Any) -> None:
    sim, client = strict_client()
    response = client.request(method, "/inventory", json=body)
    assert response.status_code in (400, 405)
    assert stock_of(sim) == INITIAL
    sim.close()


def test_put_answer_switch() -> None:
    sim, client = strict_client(put_answer="empty")
    response = client.put("/inventory", json={"products": [{"id": A, "quantity": 3}]})
    assert (response.status_code, response.content) == (204, b"")
    assert stock_of(sim)[A][0] == 3
    sim.close()
    with pytest.raises(ValueError, match="put_answer"):
        LightspeedSupplierSimulator(put_answer="maybe")
    with pytest.raises(ValueError, match="read_api"):
        LightspeedSupplierSimulator(read_api="yes")


# --- sales, fixtures, persistence ---------------------------------------------------------


def test_sell_one(sim: LightspeedSupplierSimulator) -> None:
    assert sim.sell_one() == {"location": "warehouse-1", "item": C, "quantity": 3}
    assert stock_of(sim)[C] == (3, True, True)


def test_fixtures_allow_one_location_only() -> None:
    with pytest.raises(ConfigError, match="one stock location"):
        LightspeedSupplierSimulator(fixtures={"locations": [{"id": "a"}, {"id": "b"}]})


def test_fixture_stock_must_name_a_listed_item() -> None:
    with pytest.raises(ConfigError, match=r"stock\[0\]\.item 'ghost'"):
        LightspeedSupplierSimulator(fixtures={"items": [{"id": A}], "stock": [{"location": "w", "item": "ghost"}]})


def test_state_persists_across_restart(tmp_path: Path) -> None:
    state = tmp_path / "supplier.db"
    first = LightspeedSupplierSimulator(state=state, fixtures=FIXTURES, read_api="assumed")
    client = httpx.Client(transport=first.wsgi_transport(), base_url="http://sandbox",
                          headers={"Authorization": f"Bearer {first.default_token}"})
    client.put("/inventory", json={"products": [{"id": B, "quantity": 12}]})
    client.put(f"/products/{B}", json={"inventory": {"isInventoryTrackingEnabled": [True]}})
    first.close()
    second = LightspeedSupplierSimulator(state=state, fixtures=FIXTURES)
    assert stock_of(second)[B] == (12, False, True)
    assert stock_of(second)[C] == (4, True, True)
    second.close()
