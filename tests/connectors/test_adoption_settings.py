"""Adoption records settings in B: plan -> apply -> plan is empty for every vendor with settings.

Each vendor that holds per-position settings (X-Series reorder fields, the Lightspeed supplier
flags, Zettle's low-stock level) gets a sandbox in its own process and a repository whose
positions are adopted (no B yet) with settings that the vendor either already holds (no settings
operation is needed, but B must still learn them) or does not hold yet (a settings operation).
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import yaml

from reconciler.sandbox._process import SandboxProcess

ENV_NAME = "E2E_SETTINGS_TOKEN"
Z_STORE = "5a3c4d2e-0000-4000-8000-000000000001"
Z_IDS = {sku: {"product": f"5a3c4d2e-0000-4000-8000-0000000001{n}0", "variant": f"5a3c4d2e-0000-4000-8000-0000000001{n}1"}
         for n, sku in enumerate(("HELD", "NEW", "PLAIN"))}


@dataclass(frozen=True)
class Case:
    """One vendor: its kind, token, vendor ids, starting stock and the desired settings."""

    kind: str
    token: str
    location_id: str
    item_ids: dict[str, Any]
    # (sku -> starting quantity and the vendor's settings)
    start: dict[str, dict[str, Any]]
    # sku -> desired quantity and settings; HELD's settings equal the vendor's, NEW's differ
    desired: dict[str, dict[str, Any]]


CASES = [
    Case(
        "xseries", "xs-settings-token", "outlet-oslo",
        {"HELD": "prod-held", "NEW": "prod-new", "PLAIN": "prod-plain"},
        {"HELD": {"quantity": 7, "reorder_point": 5, "reorder_amount": 20},
         "NEW": {"quantity": 3, "reorder_point": 1},
         "PLAIN": {"quantity": 2}},
        {"HELD": {"quantity": 9, "reorder_point": 5, "reorder_amount": 20},
         "NEW": {"quantity": 3, "reorder_point": 4, "reorder_amount": 12},
         "PLAIN": 2},
    ),
    Case(
        "lightspeed-supplier", "ls-settings-token", "warehouse",
        {"HELD": "item-held", "NEW": "item-new", "PLAIN": "item-plain"},
        {"HELD": {"quantity": 7, "tracking": True, "backordering": True},
         "NEW": {"quantity": 3, "tracking": True, "backordering": False},
         "PLAIN": {"quantity": 2}},
        {"HELD": {"quantity": 9, "tracking": True, "backordering": True},
         "NEW": {"quantity": 3, "backordering": True},
         "PLAIN": 2},
    ),
    Case(
        "zettle", "zettle-settings-token", Z_STORE, Z_IDS,
        {"HELD": {"quantity": 7, "low_stock_level": 2}, "NEW": {"quantity": 3, "low_stock_level": 1},
         "PLAIN": {"quantity": 2}},
        {"HELD": {"quantity": 9, "low_stock_level": 2}, "NEW": {"quantity": 3, "low_stock_level": 4}, "PLAIN": 2},
    ),
]


def fixtures(case: Case) -> dict[str, Any]:
    items = [{"id": vid} for vid in case.item_ids.values()]
    stock = [{"location": case.location_id, "item": case.item_ids[sku], **values} for sku, values in case.start.items()]
    out: dict[str, Any] = {"locations": [{"id": case.location_id}], "stock": stock}
    if case.kind != "zettle":  # Zettle's catalogue is the products its stock records name
        out["items"] = items
    return out


# The supplier feed reads (and holds settings) only through its unverified read path: the target
# option and the sandbox switch of the same name turn it on.
OPTIONS = {"lightspeed-supplier": {"read_api": "assumed"}}


def write_repo(root: Path, case: Case, url: str) -> Path:
    (root / "stock").mkdir(parents=True)
    (root / "reconciler.yaml").write_text(textwrap.dedent(f"""\
        version: 1
        locations: {{main: {{}}}}
        targets:
          t:
            kind: {case.kind}
            url: {url}
            credentials_env: {ENV_NAME}
            locations: {{main: "{case.location_id}"}}
            options: {json.dumps(OPTIONS.get(case.kind, {}))}
        """))
    catalog = {"items": {sku: {"ids": {"t": vid}} for sku, vid in case.item_ids.items()}}
    (root / "stock" / "catalog.yaml").write_text(yaml.safe_dump(catalog))
    doc = {"location": "main", "stock": {"t": case.desired}}
    (root / "stock" / "main.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return root


@pytest.fixture(params=CASES, ids=[c.kind for c in CASES])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Case, SandboxProcess]]:
    case: Case = request.param
    fx = tmp_path / "fixtures.json"
    fx.write_text(json.dumps(fixtures(case)))
    with SandboxProcess(case.kind, state=tmp_path / "sb.db", fixtures_path=fx, token=case.token,
                        options=OPTIONS.get(case.kind)) as sb:
        yield case, sb


def vendor_settings(sb: SandboxProcess, case: Case) -> dict[str, dict[str, Any]]:
    """TEST-ONLY inspection: sku -> the vendor's record."""
    by_id = {json.dumps(vid, sort_keys=True): sku for sku, vid in case.item_ids.items()}
    rows = httpx.get(sb.url + "/_sandbox/stock").json()["stock"]
    return {by_id[json.dumps(r["item"], sort_keys=True)]: r for r in rows if json.dumps(r["item"], sort_keys=True) in by_id}


def test_adoption_with_settings_then_plan_again_is_empty(tmp_path: Path, served: tuple[Case, SandboxProcess],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.workflow import apply_saved_plan, plan_project

    case, sb = served
    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    env = {ENV_NAME: case.token}
    repo = write_repo(tmp_path / "repo", case, sb.url)
    first = plan_project(repo, env=env)
    kinds = sorted((op.item, op.kind.value) for op in first.changes)
    # HELD: the vendor already holds its settings, so only the adoption reset; NEW and PLAIN: the
    # vendor already holds the quantity (a state-only record), NEW not its settings (a change)
    assert kinds == [("HELD", "reset"), ("NEW", "record"), ("NEW", "settings"), ("PLAIN", "record")]
    assert apply_saved_plan(repo, first, env=env).ok

    second = plan_project(repo, env=env)
    assert not second.has_changes, [(op.item, op.kind.value, op.reason) for op in second.changes]
    # the adoption of HELD carried the settings the vendor already held, so B learnt them
    [held] = [op for op in first.changes if op.item == "HELD"]
    wanted = {k: v for k, v in case.desired["HELD"].items() if k != "quantity"}
    assert held.settings_after is not None and held.settings_after.as_dict() == wanted
    live = vendor_settings(sb, case)
    for sku in ("HELD", "NEW"):
        want = case.desired[sku]
        assert {k: live[sku].get(k) for k in want} == want, sku

    # B holds the adopted settings (B is what this tool last applied; merge compares D with B)
    from reconciler.config import load_project
    from reconciler.workflow import open_store

    with open_store(load_project(repo)) as store:
        base = store.load_base().positions
    for sku in ("HELD", "NEW"):
        want = {k: v for k, v in case.desired[sku].items() if k != "quantity"}
        assert {k: v for k, v in base[("t", "main", sku)].settings.as_dict().items() if k in want} == want, sku
