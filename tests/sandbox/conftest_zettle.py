"""Fixtures and seed examples for the Zettle simulator tests (imported by test_zettle.py).

The seed 002 examples are copied here verbatim (the repository must not depend on /work/shared);
test_zettle.py checks the copies against the seed document whenever it is present.

Reading of the seed: the PUT example moves 42 and 1337 units from 89ac1e4a... to 92646e02... and its
response reports 89ac1e4a... as locationType STORE with balances 196 and 10696. So 89ac1e4a... is
the STORE, 92646e02... is a virtual location receiving stock (we make it the BIN, as SwagPayPal
lowers stock with STORE->BIN), and the STORE held 196+42 = 238 and 10696+1337 = 12033 before.
The bulk example uses the same two locations, so its variants are seeded with the same numbers,
and its product untracked (it starts tracking it; Zettle keeps balances while untracked).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from reconciler.sandbox._core import ServerThread
from reconciler.sandbox.zettle import ZettleSimulator

SEED_GLOB = "002_*.txt"
SEED_DIR = Path("/work/shared/seeds")

STORE = "89ac1e4a-5f0f-11ec-bf63-0242ac130002"
BIN = "92646e02-5f0f-11ec-bf63-0242ac130002"
PUT_PRODUCT = "65314d7e-5f0f-11ec-bf63-0242ac130002"
PUT_V1 = "78194842-5f0f-11ec-bf63-0242ac130002"
PUT_V2 = "7c6be742-5f0f-11ec-bf63-0242ac130002"
BULK_PRODUCT = "3cc3b9f6-623b-11ec-90d6-0242ac120003"
BULK_V1 = "4066f6cc-623b-11ec-90d6-0242ac120003"
BULK_V2 = "45900c4c-623b-11ec-90d6-0242ac120003"
# a product of our own, for tests beyond the seed examples
EXTRA_PRODUCT = "0b8e6a4e-1d2c-4f7a-9f3e-2a1b3c4d5e60"
EXTRA_VARIANT = "0b8e6a4e-1d2c-4f7a-9f3e-2a1b3c4d5e61"
ORGANIZATION = "123e4567-e89b-12d3-a456-426614174000"


def _move(product: str, variant: str, change: int) -> dict[str, Any]:
    return {"productUuid": product, "variantUuid": variant, "fromLocationUuid": STORE, "toLocationUuid": BIN,
            "change": change}


def _reported(product: str, variant: str, balance: int) -> dict[str, Any]:
    return {"locationUuid": STORE, "locationType": "STORE", "productUuid": product, "variantUuid": variant,
            "balance": balance}


SEED_PUT_REQUEST = {"changes": [_move(PUT_PRODUCT, PUT_V1, 42), _move(PUT_PRODUCT, PUT_V2, 1337)]}
SEED_PUT_RESPONSE = {
    "locationUuid": STORE,
    "variants": [_reported(PUT_PRODUCT, PUT_V1, 196), _reported(PUT_PRODUCT, PUT_V2, 10696)],
}
SEED_BULK_REQUEST = {
    "returnBalanceForLocationUuid": STORE,
    "productChanges": [
        {
            "productUuid": BULK_PRODUCT,
            "trackingStatusChange": "START_TRACKING",
            "variantChanges": [
                {"variantUuid": BULK_V1, "fromLocationUuid": STORE, "toLocationUuid": BIN, "change": 42},
                {"variantUuid": BULK_V2, "fromLocationUuid": STORE, "toLocationUuid": BIN, "change": 1337},
            ],
        }
    ],
}
# Literal copy, including the doc's typo: the first variantUuid is the location UUID.
SEED_BULK_RESPONSE = {
    "locationUuid": STORE,
    "variants": [
        {"productUuid": BULK_PRODUCT, "variantUuid": STORE, "balance": 196},
        {"productUuid": BULK_PRODUCT, "variantUuid": BULK_V2, "balance": 10696},
    ],
}


def seed_json_blocks() -> list[Any] | None:
    """Every JSON value in the seed document that parses (placeholders like <UUID> do not)."""
    found = sorted(SEED_DIR.glob(SEED_GLOB)) if SEED_DIR.is_dir() else []
    if not found:
        return None
    text = found[0].read_text()
    decoder = json.JSONDecoder()
    blocks = []
    for match in re.finditer(r"^\{", text, flags=re.MULTILINE):
        try:
            blocks.append(decoder.raw_decode(text, match.start())[0])
        except ValueError:
            continue
    return blocks


def zettle_seed_fixtures() -> dict[str, Any]:
    def record(product: str, variant: str, quantity: int, **extra: Any) -> dict[str, Any]:
        return {"location": STORE, "item": {"product": product, "variant": variant}, "quantity": quantity, **extra}

    return {
        "locations": [{"id": STORE, "name": "Shop"}, {"id": BIN, "type": "BIN"}],
        "items": [
            {"id": {"product": PUT_PRODUCT, "variant": PUT_V1}, "name": "Seed tee S"},
            {"id": {"product": PUT_PRODUCT, "variant": PUT_V2}, "name": "Seed tee M"},
        ],
        "stock": [
            record(PUT_PRODUCT, PUT_V1, 238),
            record(PUT_PRODUCT, PUT_V2, 12033),
            record(BULK_PRODUCT, BULK_V1, 238, tracked=False),
            record(BULK_PRODUCT, BULK_V2, 12033, tracked=False),
            record(EXTRA_PRODUCT, EXTRA_VARIANT, 0, low_stock_level=3),
        ],
    }


def auth(sim: ZettleSimulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {sim.token}"}


@pytest.fixture
def zettle_fixtures() -> dict[str, Any]:
    return zettle_seed_fixtures()


@pytest.fixture
def zettle_sim(zettle_fixtures: dict[str, Any]) -> Iterator[ZettleSimulator]:
    sim = ZettleSimulator(fixtures=zettle_fixtures)
    yield sim
    sim.close()


@pytest.fixture
def zettle_client(zettle_sim: ZettleSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(transport=zettle_sim.wsgi_transport(), base_url="http://sandbox", headers=auth(zettle_sim)) as c:
        yield c


@pytest.fixture
def zettle_server(zettle_sim: ZettleSimulator) -> Iterator[tuple[ZettleSimulator, httpx.Client]]:
    """The simulator behind a real uvicorn server on loopback, with an authenticated client."""
    with ServerThread(zettle_sim) as server:
        with httpx.Client(base_url=server.url, headers=auth(zettle_sim), timeout=10) as client:
            yield zettle_sim, client
