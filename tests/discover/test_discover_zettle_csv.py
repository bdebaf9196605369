"""discover against the Zettle sandbox's product library (optional and duplicate SKUs and
barcodes, Link-header paging), the supplier sandbox's vendorSku catalogue, and the CSV path."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import yaml
from click.testing import CliRunner

from cli_kit import run_cli
from discover_kit import ZETTLE_TOKEN_ENV, uid
from reconciler.cli import _register, cli
from reconciler.discover import discover
from reconciler.discover._match import Status
from reconciler.sandbox._core import ServerThread
from reconciler.sandbox.zettle import ZettleSimulator

_register()
STORE = uid("zettle", "store")


def zettle_fixtures(filler: int) -> dict[str, Any]:
    def item(p: str, v: str, **codes: Any) -> dict[str, Any]:
        return {"id": {"product": uid("zp", p), "variant": uid("zv", v)}, "name": v, **codes}

    items = [item("tee", "tee-s", sku="TEE-S", barcode="7310000000024"), item("tee", "tee-m", sku="TEE-M"),
             item("mug", "mug-a", sku="MUG"), item("mug2", "mug-b", sku="MUG"),  # the vendor's own example: one SKU twice
             item("nosku", "plain"),  # sku and barcode are optional
             item("cup", "cup", barcode="7310000000031")]
    items += [item(f"f{i}", f"fv{i}", sku=f"FILL-{i:04d}") for i in range(filler)]
    return {"locations": [{"id": STORE}], "items": items,
            "stock": [{"location": STORE, "item": items[0]["id"], "quantity": 3}]}


@pytest.fixture
def zettle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerThread]:
    monkeypatch.setenv(ZETTLE_TOKEN_ENV, ZettleSimulator.default_token)
    with ServerThread(ZettleSimulator(state=tmp_path / "z.db", fixtures=zettle_fixtures(520))) as server:
        yield server


def zettle_repo(root: Path, url: str) -> Path:
    (root / "stock").mkdir(parents=True)
    (root / "reconciler.yaml").write_text(textwrap.dedent(f"""\
        version: 1
        locations:
          bergen: {{}}
        targets:
          zettle-main:
            kind: zettle
            url: {url}
            credentials_env: {ZETTLE_TOKEN_ENV}
            locations:
              bergen: STORE   # found through /v3/inventories
        """))
    (root / "stock" / "catalog.yaml").write_text("items:\n  TEE-S: {}\n  TEE-M: {}\n  MUG: {}\n  '7310000000031': {}\n")
    return root


def test_library_over_pages_with_duplicate_and_missing_skus(tmp_path: Path, zettle: ServerThread) -> None:
    repo = zettle_repo(tmp_path / "repo", zettle.url)
    result = discover(repo, "zettle-main", write=True)
    assert result.vendor_items == 6 + 520  # 526 products: two pages of the 500-product limit
    assert result.unkeyed == 2  # the variants without a SKU
    rows = {r.key: r for r in result.items}
    assert rows["TEE-S"].found == {"product": uid("zp", "tee"), "variant": uid("zv", "tee-s")}
    assert rows["MUG"].status is Status.AMBIGUOUS
    assert rows["7310000000031"].status is Status.UNMATCHED
    assert [r.status for r in result.locations] == [Status.ALREADY]
    ids = yaml.safe_load((repo / "stock" / "catalog.yaml").read_text())["items"]
    assert ids["TEE-M"]["ids"]["zettle-main"] == {"product": uid("zp", "tee"), "variant": uid("zv", "tee-m")}
    assert "{product: " in (repo / "stock" / "catalog.yaml").read_text()  # flow style, as the docs write ids
    assert CliRunner().invoke(cli, ["-C", str(repo), "validate"]).exit_code == 0
    by_barcode = {r.key: r for r in discover(repo, "zettle-main", by="barcode").items}
    assert by_barcode["7310000000031"].found == {"product": uid("zp", "cup"), "variant": uid("zv", "cup")}


def test_library_paging_follows_link_and_refuses_bad_limit(zettle: ServerThread) -> None:
    headers = {"Authorization": f"Bearer {ZettleSimulator.default_token}"}
    first = httpx.get(f"{zettle.url}/organizations/self/library", params={"limit": 500}, headers=headers)
    assert first.status_code == 200 and len(first.json()["products"]) == 500
    nxt = first.links["next"]["url"]
    second = httpx.get(nxt, headers=headers).json()
    assert len(second["products"]) == 525 - 500 and "next" not in httpx.get(nxt, headers=headers).links
    assert httpx.get(f"{zettle.url}/organizations/self/library", params={"limit": 501}, headers=headers).status_code == 400


def kaching_repo(root: Path) -> Path:
    (root / "stock").mkdir(parents=True)
    (root / "reconciler.yaml").write_text(textwrap.dedent("""\
        version: 1
        locations:
          copenhagen: {}
        targets:
          kaching-dk:
            kind: kaching
            url: http://127.0.0.1:9
            credentials_env: TEST_KACHING_KEY
            locations:
              copenhagen: "cph-1"
            options: {account: a, integration: q}
        """))
    (root / "stock" / "catalog.yaml").write_text("# mine\nitems:\n  TEE-S: {}   # small\n  TEE-M: {}\n  HAT: {}\n")
    return root


def test_write_only_target_says_use_csv_and_reads_the_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = kaching_repo(tmp_path / "repo")
    monkeypatch.setenv("TEST_KACHING_KEY", "k")
    out = run_cli("-C", str(repo), "discover", "kaching-dk")
    assert out.code == 1 and "--from-csv" in out.stderr, out
    export = tmp_path / "export.csv"
    export.write_text("Product,Variant,SKU,Name\ntee,s,TEE-S,Tee S\ntee,m,TEE-M,Tee M\nhat,,HAT,Hat\n")
    out = CliRunner().invoke(cli, ["-C", str(repo), "discover", "kaching-dk", "--from-csv", str(export),
                                   "--columns", "product=Product,sku=SKU,name=Name", "--write"])
    assert out.exit_code == 0, out.output
    items = yaml.safe_load((repo / "stock" / "catalog.yaml").read_text())["items"]
    assert items["TEE-S"]["ids"]["kaching-dk"] == {"product": "tee"}
    assert (repo / "stock" / "catalog.yaml").read_text().startswith("# mine\n")
    bad = run_cli("-C", str(repo), "discover", "kaching-dk", "--from-csv", str(export), "--columns", "product=Nope,sku=SKU")
    assert bad.code == 1 and "no column 'Nope'" in bad.stderr and "export.csv:1" in bad.stderr, bad


def test_supplier_catalogue_by_vendor_sku(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.sandbox.lightspeed_supplier import LightspeedSupplierSimulator

    wh = uid("wh")
    fixtures = {"locations": [{"id": wh}], "items": [
        {"id": uid("i", n), "name": n, "vendorSku": f"V-{n}"} for n in ("a", "b")] + [
        {"id": uid("i", "c"), "name": "c", "vendorSku": "V-a"}]}
    sim = LightspeedSupplierSimulator(state=tmp_path / "s.db", fixtures=fixtures, read_api="assumed")
    monkeypatch.setenv("TEST_LS", LightspeedSupplierSimulator.default_token)
    with ServerThread(sim) as server:
        (tmp_path / "repo" / "stock").mkdir(parents=True)
        (tmp_path / "repo" / "reconciler.yaml").write_text(textwrap.dedent(f"""\
            version: 1
            locations: {{warehouse: {{}}}}
            targets:
              ls:
                kind: lightspeed-supplier
                url: {server.url}
                credentials_env: TEST_LS
                locations: {{warehouse: "{wh}"}}
                options: {{read_api: assumed}}
            """))
        (tmp_path / "repo" / "stock" / "catalog.yaml").write_text("items:\n  V-a: {}\n  V-b: {}\n")
        rows = {r.key: r for r in discover(tmp_path / "repo", "ls").items}
    assert rows["V-b"].found == uid("i", "b") and rows["V-a"].status is Status.AMBIGUOUS


def test_library_host_follows_zettle_hosts() -> None:
    from reconciler.connectors._zettle_library import library_url

    assert library_url("https://inventory.izettle.com", {}) == "https://products.izettle.com/organizations/self/library"
    assert library_url("http://127.0.0.1:8703", {}) == "/organizations/self/library"  # the sandbox serves both
    assert library_url("https://inventory.izettle.com", {"products_url": "https://proxy.example/"}) == (
        "https://proxy.example/organizations/self/library")


def test_write_that_would_not_validate_writes_nothing(tmp_path: Path) -> None:
    repo = kaching_repo(tmp_path / "repo")
    before = (repo / "stock" / "catalog.yaml").read_text()
    export = tmp_path / "export.csv"
    export.write_text("Product,SKU\ntee/s,TEE-S\n")  # Ka-ching cannot store an id with a '/'
    out = run_cli("-C", str(repo), "discover", "kaching-dk", "--from-csv", str(export), "--columns",
                  "product=Product,sku=SKU", "--write")
    assert out.code == 1 and "discover wrote nothing" in out.stderr and "stock/catalog.yaml" in out.stderr, out
    assert (repo / "stock" / "catalog.yaml").read_text() == before
