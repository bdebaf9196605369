"""``reconciler discover`` against the X-Series sandbox over real HTTP: matches, duplicates,
misses, renamed and deleted products, barcodes, more than one page, and --write in place."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import httpx
import pytest
import yaml
from click.testing import CliRunner

from discover_kit import BERGEN, OSLO, XS_TOKEN_ENV, uid, write_xs_repo, xs_fixtures
from reconciler.cli import _register, cli
from reconciler.discover import discover
from reconciler.discover._match import Status
from reconciler.sandbox._core import ServerThread
from reconciler.sandbox.xseries import XSeriesSimulator

_register()


@pytest.fixture
def xs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerThread]:
    sim = XSeriesSimulator(state=tmp_path / "xs.db", fixtures=xs_fixtures(filler=1200), rate_budget=0)
    monkeypatch.setenv(XS_TOKEN_ENV, XSeriesSimulator.default_token)
    with ServerThread(sim) as server:
        # GONE is deleted in the vendor after the catalogue mapped it
        r = httpx.delete(f"{server.url}/api/2.0/products/{uid('p', 'gone')}",
                         headers={"Authorization": f"Bearer {XSeriesSimulator.default_token}"})
        assert r.status_code == 204
        yield server


def rows_by_key(rows):
    return {r.key: r for r in rows}


def test_matches_duplicates_misses_renamed_deleted_over_several_pages(tmp_path: Path, xs: ServerThread) -> None:
    repo = write_xs_repo(tmp_path / "repo", xs.url)
    result = discover(repo, "xs")
    assert result.vendor_items == 7 - 1 + 1200  # the deleted product is not listed; 1,206 > one page of 1,000
    rows = rows_by_key(result.items)
    assert rows["TEE-S"].status is Status.MATCHED and rows["TEE-S"].found == uid("p", "tee-s")
    assert rows["TEE-M"].status is Status.MATCHED
    assert rows["MUG"].status is Status.AMBIGUOUS and rows["MUG"].found is None
    assert uid("p", "dup-1") in rows["MUG"].note and uid("p", "dup-2") in rows["MUG"].note
    assert rows["CAP"].status is Status.ALREADY and "CAP-NEW" in rows["CAP"].note  # renamed: the id still holds
    assert rows["GONE"].status is Status.STALE and "deleted" in rows["GONE"].note
    assert rows["NOWHERE"].status is Status.UNMATCHED
    locs = rows_by_key(result.locations)
    assert locs["oslo"].status is Status.MATCHED and locs["oslo"].found == OSLO
    assert locs["bergen"].found == BERGEN
    assert "ambiguous" in result.summary() and "1 stale" in result.summary()


def test_barcode_match(tmp_path: Path, xs: ServerThread) -> None:
    repo = write_xs_repo(tmp_path / "repo", xs.url)
    catalog = repo / "stock" / "catalog.yaml"
    catalog.write_text("items:\n  '7310000000017': {name: Tee M by EAN}\n  TEE-S: {}\n")
    rows = rows_by_key(discover(repo, "xs", by="barcode").items)
    assert rows["7310000000017"].status is Status.MATCHED and rows["7310000000017"].found == uid("p", "tee-m")
    assert rows["TEE-S"].status is Status.UNMATCHED  # a SKU is not a barcode (the CUSTOM code is not one)


def test_write_keeps_comments_and_validates(tmp_path: Path, xs: ServerThread) -> None:
    repo = write_xs_repo(tmp_path / "repo", xs.url)
    before_cfg = (repo / "reconciler.yaml").read_text()
    out = CliRunner().invoke(cli, ["-C", str(repo), "discover", "xs", "--write"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    catalog = (repo / "stock" / "catalog.yaml").read_text()
    assert "# The catalogue: canonical SKUs (a comment discover must keep)" in catalog
    assert "name: Tee S            # trailing comment" in catalog
    assert "# mapped before the SKU was renamed" in catalog
    data = yaml.safe_load(catalog)["items"]
    assert data["TEE-S"]["ids"]["xs"] == uid("p", "tee-s")
    assert "ids" not in data["MUG"]  # ambiguous: never written
    assert data["GONE"]["ids"]["xs"] == uid("p", "gone")  # stale: left for the merchant
    config = (repo / "reconciler.yaml").read_text()
    assert config.startswith("# My shop (this comment must survive discover --write)")
    assert 'oslo: {description: "Oslo"}     # the flagship' in config
    assert yaml.safe_load(config)["targets"]["xs"]["locations"] == {"oslo": OSLO, "bergen": BERGEN}
    assert before_cfg.splitlines()[:5] == config.splitlines()[:5]
    check = CliRunner().invoke(cli, ["-C", str(repo), "validate"])
    assert check.exit_code == 0, check.output
    # A second run finds everything already mapped and writes nothing.
    again = discover(repo, "xs", write=True)
    assert again.written == [] and {r.status for r in again.items} <= {
        Status.ALREADY, Status.AMBIGUOUS, Status.STALE, Status.UNMATCHED}


def test_add_brings_every_vendor_sku(tmp_path: Path, xs: ServerThread) -> None:
    repo = write_xs_repo(tmp_path / "repo", xs.url, map_outlets=True)
    result = discover(repo, "xs", add=True, write=True)
    added = [r for r in result.items if r.status is Status.ADDED]
    assert len(added) == 1200 + 1  # the fillers and TEE (the family's parent); CAP-NEW is mapped as CAP
    assert "CAP-NEW" not in {r.key for r in added}
    data = yaml.safe_load((repo / "stock" / "catalog.yaml").read_text())["items"]
    assert data["FILL-00042"]["ids"]["xs"] == uid("p", "fill", 42)
    assert CliRunner().invoke(cli, ["-C", str(repo), "validate"]).exit_code == 0
