"""The floor: the least work any implementation of the first plan must do, measured in the same run.

Fetch every inventory page raw over HTTP (one keep-alive client, the version cursor), decode it
with orjson, parse the stock files with the fastest YAML parser available as a wheel, join
desired and live by position, and write a plan of the same operations (one per position, with a
sha256 id) with orjson, in chunks. No validation, no state, no error locations: what is left of
reconciler's plan once everything that is not strictly required is taken away. The full plan is
measured against it (issue 22: full plan <= 3x the floor).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any, Callable

import httpx
import orjson

from reconciler.connectors.xseries import INVENTORY


def yaml_parser() -> tuple[str, Callable[[bytes], Any]]:
    """The fastest YAML parser installed: yaml-rs (Rust) if present, else PyYAML's libyaml loader."""
    try:
        import yaml_rs

        return "yaml-rs", lambda data: yaml_rs.loads(data.decode("utf-8"))
    except ImportError:  # pragma: no cover - the bench's extra installs it
        import yaml

        return "pyyaml-libyaml", lambda data: yaml.load(data, Loader=yaml.CSafeLoader)


def fetch_live(url: str, token: str, page_size: int = 10_000) -> dict[tuple[str, str], Any]:
    """Every inventory record's amount by (outlet id, product id), page after page."""
    live: dict[tuple[str, str], Any] = {}
    after = 0
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        while True:
            response = client.get(INVENTORY, params={"after": after, "page_size": page_size})
            response.raise_for_status()
            body = orjson.loads(response.content)
            data = body.get("data") or []
            if not data:
                return live
            live.update({(r["outlet_id"], r["product_id"]): r["current_amount"] for r in data})
            after = int(body["version"]["max"])


def run_floor(root: Path, url: str, token: str, out: Path) -> dict[str, float | int | str]:
    """The floor of a first plan of the repository at ``root``; returns the operations written
    and the seconds of each part."""
    parser_name, parse = yaml_parser()
    t0 = time.perf_counter()
    live = fetch_live(url, token)
    t1 = time.perf_counter()
    config = parse((root / "reconciler.yaml").read_bytes())
    catalog = parse((root / "stock" / "catalog.yaml").read_bytes())["items"]
    files = [parse(p.read_bytes()) for p in sorted((root / "stock").glob("*.yaml")) if p.name != "catalog.yaml"]
    t2 = time.perf_counter()
    ops = _write(out, config, catalog, files, live)
    t3 = time.perf_counter()
    return {"operations": ops, "fetch_s": t1 - t0, "parse_s": t2 - t1, "plan_write_s": t3 - t2,
            "records": len(live), "yaml_parser": parser_name}


def _write(out: Path, config: dict[str, Any], catalog: dict[str, Any], files: list[dict[str, Any]],
           live: dict[tuple[str, str], Any]) -> int:
    """Join desired and live per position and write one adopting operation each, chunk by chunk."""
    targets = config["targets"]
    count = 0
    with out.open("wb") as fh:
        fh.write(b'{"format_version":0,"operations":[')
        for doc in files:
            location = doc["location"]
            for target, stock in doc["stock"].items():
                outlet = targets[target]["locations"][location]
                ops = []
                for sku, desired in stock.items():
                    product = catalog[sku]["ids"][target]
                    actual = live.get((outlet, product))
                    text = f"record|{target}|{sku}|{location}:0:{desired}:None|||bench|0"
                    ops.append({"id": hashlib.sha256(text.encode()).hexdigest()[:16], "item": sku, "kind": "record",
                                "legs": [{"actual": actual, "base": None, "change": 0, "desired": desired,
                                          "expected": actual, "location": location}],
                                "overridden_guards": [], "reason": "adopt", "settings_after": None,
                                "settings_before": None, "target": target, "write_mode": "adjust"})
                if ops:
                    fh.write((b"," if count else b"") + orjson.dumps(ops)[1:-1])
                    count += len(ops)
        fh.write(b"]}\n")
    return count
