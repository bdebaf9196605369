"""The shared sandbox core over a real loopback server (ServerThread): fault switches, the sales
generator, control paths; plus discovery and fixture building."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from reconciler.errors import ConfigError, ReconcilerError
from reconciler.sandbox import ServerThread, known_kinds, simulator_class
from reconciler.sandbox._fixtures import build_fixtures, position_quantity, read_fixtures
from reconciler.sandbox.kaching import KachingSimulator
from reconciler.sandbox.lightspeed_supplier import LightspeedSupplierSimulator
from reconciler.sandbox.runfree import RunFreeSimulator

ITEM = {"upc": "111", "sku": "S", "size": "9", "width": "D"}
FIXTURES = {"locations": [{"id": "3"}], "items": [{"id": ITEM}], "stock": [{"location": "3", "item": {"upc": "111"}, "quantity": 50}]}
WRITE = {"upc": "111", "store": "3", "quantity": 7}


@pytest.fixture
def server() -> Iterator[tuple[RunFreeSimulator, httpx.Client]]:
    sim = RunFreeSimulator(fixtures=FIXTURES, seed=1)
    with ServerThread(sim) as running:
        with httpx.Client(base_url=running.url, headers={"Authorization": f"Bearer {sim.default_token}"},
                          timeout=5) as client:
            yield sim, client
    sim.close()


def quantity(client: httpx.Client) -> int:
    [record] = client.get("/_sandbox/stock").json()["stock"]
    return int(record["quantity"])


def test_latency_switch_delays_vendor_paths_only(server: tuple[RunFreeSimulator, httpx.Client]) -> None:
    _, client = server
    client.put("/_sandbox/faults", json={"latency_ms": 300})
    started = time.monotonic()
    assert client.post("/api/product/inventory", json=WRITE).status_code == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    client.get("/_sandbox/stock")
    assert time.monotonic() - started < 0.3


def test_429_switch(server: tuple[RunFreeSimulator, httpx.Client]) -> None:
    _, client = server
    client.put("/_sandbox/faults", json={"rate_429": 1.0, "retry_after_s": 4})
    response = client.post("/api/product/inventory", json=WRITE)
    assert (response.status_code, response.headers["retry-after"]) == (429, "4")
    assert quantity(client) == 50
    client.put("/_sandbox/faults", json={"rate_429": 0})
    assert client.post("/api/product/inventory", json=WRITE).status_code == 200
    assert quantity(client) == 7


def test_error_after_write_spares_a_refusal_answered_200(server: tuple[RunFreeSimulator, httpx.Client]) -> None:
    _, client = server
    client.put("/_sandbox/faults", json={"error_next_writes": 1})
    assert client.post("/api/product/inventory", json={"store": "3", "quantity": 1}).status_code == 200
    assert client.get("/_sandbox/faults").json()["error_next_writes"] == 1  # not spent on a refusal
    assert client.post("/api/product/inventory", json=WRITE).status_code == 502
    assert quantity(client) == 7


def test_error_after_write_commits_then_answers_the_gateway_status(server: tuple[RunFreeSimulator, httpx.Client]) -> None:
    _, client = server
    client.put("/_sandbox/faults", json={"error_next_writes": 2, "error_after_write_status": 504})
    assert client.post("/api/product/inventory", json=WRITE).status_code == 504
    assert quantity(client) == 7  # committed, although the answer says the gateway gave up
    assert client.post("/api/product/inventory", json={**WRITE, "quantity": 8}).status_code == 504
    assert quantity(client) == 8 and client.get("/_sandbox/faults").json()["error_next_writes"] == 0
    assert client.post("/api/product/inventory", json={**WRITE, "quantity": 9}).status_code == 200


def test_5xx_switch_at_half_rate_fails_some(server: tuple[RunFreeSimulator, httpx.Client]) -> None:
    _, client = server
    client.put("/_sandbox/faults", json={"rate_5xx": 0.5})
    statuses = [client.post("/api/product/inventory", json={**WRITE, "quantity": n}).status_code for n in range(40)]
    assert set(statuses) == {200, 500}
    assert client.get("/_sandbox/requests").json()["POST /api/product/inventory"] == 40


def test_drop_after_write_commits_then_cuts_the_connection(server: tuple[RunFreeSimulator, httpx.Client]) -> None:
    _, client = server
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("uvicorn.error").addHandler(handler)
    try:
        client.put("/_sandbox/faults", json={"drop_next_writes": 1})
        with pytest.raises(httpx.HTTPError):
            client.post("/api/product/inventory", json=WRITE)
        assert quantity(client) == 7  # the write happened although the client saw no answer
        assert client.get("/_sandbox/faults").json()["drop_next_writes"] == 0
        assert client.post("/api/product/inventory", json={**WRITE, "quantity": 8}).status_code == 200
    finally:
        logging.getLogger("uvicorn.error").removeHandler(handler)
    # the intentional drop is not logged as an application crash with a traceback
    assert not [r for r in records if r.exc_info]


def test_drop_after_write_spares_rejected_writes(server: tuple[RunFreeSimulator, httpx.Client]) -> None:
    _, client = server
    client.put("/_sandbox/faults", json={"drop_after_write": 1.0})
    response = client.post("/api/product/inventory", json={"store": "3", "quantity": 1})
    # nothing was written, so nothing to hide: Run Free refuses with 200 {"error"} by default
    assert response.json() == {"error": "Missing required field: sku"}
    with pytest.raises(httpx.HTTPError):
        client.post("/api/product/inventory", json=WRITE)


def test_sales_generator_sells_until_stopped(server: tuple[RunFreeSimulator, httpx.Client]) -> None:
    _, client = server
    client.put("/_sandbox/sales", json={"rate": 100})
    deadline = time.monotonic() + 5
    while quantity(client) > 45:
        assert time.monotonic() < deadline, "the sales generator sold nothing"
        time.sleep(0.02)
    stopped = client.put("/_sandbox/sales", json={"rate": 0}).json()
    left = quantity(client)
    time.sleep(0.1)
    assert quantity(client) == left
    assert stopped["rate"] == 0 and len(stopped["sold"]) == 50 - left
    assert all(s["item"] == {"upc": "111"} for s in stopped["sold"])


def test_sell_control_path(server: tuple[RunFreeSimulator, httpx.Client]) -> None:
    _, client = server
    sold = client.post("/_sandbox/sell", json={"count": 3}).json()["sold"]
    assert [s["quantity"] for s in sold] == [49, 48, 47]
    assert quantity(client) == 47


def test_unknown_fault_switch_is_rejected(server: tuple[RunFreeSimulator, httpx.Client]) -> None:
    _, client = server
    response = client.put("/_sandbox/faults", json={"rate_42": 1})
    assert response.status_code == 400 and "rate_42" in response.json()["error"]


def test_seed_switch_replays_the_same_sales() -> None:
    # two positions so a sale has a random choice to make
    fixtures = {"locations": [{"id": "3"}, {"id": "4"}], "items": [{"id": ITEM}],
                "stock": [{"location": loc, "item": {"upc": "111"}, "quantity": 50} for loc in ("3", "4")]}
    runs = []
    for start_seed in (1, 2):  # started differently, reseeded the same: the same sales
        sim = RunFreeSimulator(fixtures=fixtures, seed=start_seed)
        with ServerThread(sim) as running, httpx.Client(base_url=running.url, timeout=5) as client:
            answer = client.put("/_sandbox/faults", json={"seed": 42})
            assert answer.status_code == 200 and answer.json()["seed"] == 42
            runs.append([s["location"] for s in client.post("/_sandbox/sell", json={"count": 20}).json()["sold"]])
        sim.close()
    assert runs[0] == runs[1] and set(runs[0]) == {"3", "4"}


def test_seed_switch_in_process_and_back_to_none() -> None:
    sim = RunFreeSimulator(fixtures=FIXTURES)
    sim.faults.update({"seed": 7})  # was a TypeError: the default None has no usable type
    assert sim.faults.seed == 7 and sim.rng.random() == __import__("random").Random(7).random()
    sim.faults.update({"seed": None})
    assert sim.faults.seed is None
    sim.close()


@pytest.mark.parametrize("bad", [{"rate_429": 2}, {"rate_5xx": "often"}, {"latency_ms": -1},
                                 {"drop_next_writes": True}, {"seed": [1]}, {"error_after_write_status": 418},
                                 {"error_after_write": 1.5}])
def test_bad_fault_values_are_400_and_change_nothing(server: tuple[RunFreeSimulator, httpx.Client],
                                                     bad: dict[str, object]) -> None:
    _, client = server
    before = client.get("/_sandbox/faults").json()
    response = client.put("/_sandbox/faults", json={"retry_after_s": 9, **bad})
    assert response.status_code == 400 and next(iter(bad)) in response.json()["error"]
    assert client.get("/_sandbox/faults").json() == before


def test_health(server: tuple[RunFreeSimulator, httpx.Client]) -> None:
    _, client = server
    assert client.get("/_sandbox/health").json() == {"kind": "runfree", "status": "ok"}


# --- discovery --------------------------------------------------------------------------------


def test_discovery_finds_kinds_by_module_name() -> None:
    kinds = known_kinds()
    assert {"kaching", "lightspeed-supplier", "runfree"} <= set(kinds)
    assert not [k for k in kinds if k.startswith("_") or "_" in k]
    assert simulator_class("lightspeed-supplier") is LightspeedSupplierSimulator
    assert simulator_class("kaching") is KachingSimulator


def test_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(ReconcilerError, match="no sandbox for target kind 'shopify'") as caught:
        simulator_class("shopify")
    assert "runfree" in str(caught.value)


# --- fixtures ---------------------------------------------------------------------------------


def test_position_quantity_is_deterministic_and_in_range() -> None:
    values = [position_quantity("t", "loc", f"item-{n}") for n in range(300)]
    assert values == [position_quantity("t", "loc", f"item-{n}") for n in range(300)]
    assert min(values) >= 0 and max(values) <= 30 and len(set(values)) > 20


@pytest.mark.parametrize(
    ("kind", "locations", "items"),
    [
        ("lightspeed-supplier", ["wh"], ["uuid-1", "uuid-2"]),
        ("kaching", ["oslo", "bergen"], [{"product": "p1"}, {"product": "p2", "variant": "v2"}, "p3"]),
        ("runfree", ["3"], [{"upc": "849632048260"}, {"sku": "ZOOT", "size": "34", "width": "D"}]),
    ],
)
def test_built_fixtures_load_into_the_simulator(kind: str, locations: list[str], items: list[object]) -> None:
    def qty(location: str, item: object) -> int:
        return position_quantity(kind, location, item)

    fixtures = build_fixtures(kind, locations, items, qty)  # type: ignore[arg-type]
    sim = simulator_class(kind)(fixtures=fixtures)
    try:
        stock = sim.inspect_stock()
        assert len(stock) == len(locations) * len(items)
        expected = sorted(qty(loc, item) for loc in locations for item in items)
        assert sorted(r["quantity"] for r in stock) == expected
    finally:
        sim.close()


def test_runfree_fixture_ids_are_completed_for_both_lookups() -> None:
    fixtures = build_fixtures("runfree", ["3"], [{"sku": "ZOOT", "size": "34", "width": "D"}], lambda *_: 1)
    [item] = fixtures["items"]
    assert set(item["id"]) == {"upc", "sku", "size", "width"} and len(item["id"]["upc"]) == 12
    assert fixtures["stock"] == [{"location": "3", "item": {"upc": item["id"]["upc"]}, "quantity": 1}]


def test_read_fixtures_yaml_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "f.yaml"
    good.write_text("locations:\n  - id: '3'\nitems: []\nstock: []\n", encoding="utf-8")
    assert read_fixtures(good)["locations"] == [{"id": "3"}]
    broken = tmp_path / "broken.yaml"
    broken.write_text("locations:\n  - id: '3'\n items: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken\.yaml:\d+: not valid YAML"):
        read_fixtures(broken)
    odd = tmp_path / "odd.json"
    odd.write_text('{"locations": [{"name": "x"}], "stocks": []}', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        read_fixtures(odd)
    assert "locations[0] lacks id" in str(caught.value) and "unknown section 'stocks'" in str(caught.value)
    with pytest.raises(ConfigError, match="cannot read"):
        read_fixtures(tmp_path / "missing.yaml")


def test_in_process_drop_is_an_httpx_transport_error() -> None:
    sim = RunFreeSimulator(fixtures=FIXTURES)
    sim.faults.update({"drop_next_writes": 1})
    client = httpx.Client(transport=sim.wsgi_transport(), base_url="http://sandbox",
                          headers={"Authorization": f"Bearer {sim.default_token}"})
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/api/product/inventory", json=WRITE)
    assert sim.inspect_stock()[0]["quantity"] == 7  # committed before the cut
    sim.close()
