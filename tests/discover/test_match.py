"""The pure matcher: every status, ambiguity never guessed, ids never replaced."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reconciler.connectors.base import CatalogueItem, VendorLocation
from reconciler.discover._match import Status, match_items, match_locations, slug


def item(i: str, sku: str | None, *barcodes: str) -> CatalogueItem:
    return CatalogueItem(i, sku, tuple(barcodes), f"name {i}")


VENDOR = [item("1", "A"), item("2", "B"), item("3", "B"), item("4", "C-NEW", "590"), item("5", None, "591"),
          item("6", "D"), item("6", "D")]  # 6 listed twice (a page repeated): still one item


def test_every_status() -> None:
    rows = {r.key: r for r in match_items(
        {"A": None, "B": None, "C": "4", "D": "6", "E": None, "F": "99", "G": "1"}, VENDOR)}
    # A's item is held by G (renamed A in the vendor): two SKUs on one item would be a guess
    assert rows["A"].status is Status.AMBIGUOUS and "already mapped to 'G'" in rows["A"].note
    assert rows["B"].status is Status.AMBIGUOUS and rows["B"].found is None
    assert rows["C"].status is Status.ALREADY and "C-NEW" in rows["C"].note  # renamed in the vendor
    assert rows["D"].status is Status.ALREADY  # the duplicate listing of one item is not ambiguity
    assert rows["E"].status is Status.UNMATCHED
    assert rows["F"].status is Status.STALE  # mapped to an id the vendor no longer lists
    assert rows["G"].status is Status.ALREADY and rows["G"].note == "the vendor's sku is now 'A' (renamed?)"


def test_a_plain_match() -> None:
    rows = {r.key: r for r in match_items({"A": None}, VENDOR)}
    assert rows["A"].status is Status.MATCHED and rows["A"].found == "1"


def test_mapped_elsewhere_is_different_and_kept() -> None:
    rows = {r.key: r for r in match_items({"A": "6"}, VENDOR)}
    assert rows["A"].status is Status.DIFFERENT and rows["A"].found == "1" and rows["A"].current == "6"


def test_barcode_and_add() -> None:
    rows = {r.key: r for r in match_items({"590": None, "591": None}, VENDOR, by="barcode")}
    assert rows["590"].found == "4" and rows["591"].found == "5"
    added = {r.key: r for r in match_items({"A": None}, VENDOR, add=True) if r.key != "A"}
    assert added["C-NEW"].status is Status.ADDED and added["D"].status is Status.ADDED
    assert added["B"].status is Status.AMBIGUOUS  # two vendor items share B: not added
    assert None not in added  # an item without a SKU is never added


def test_locations_by_name_description_and_add() -> None:
    vendor = [VendorLocation("o1", "Oslo Flagship"), VendorLocation("b1", "Bergen"), VendorLocation("b2", "bergen"),
              VendorLocation("t1", "Trondheim")]
    rows = {r.key: r for r in match_locations({"oslo": None, "bergen": None, "x": "gone"}, vendor, add=True,
                                              descriptions={"oslo": "Oslo flagship"})}
    assert rows["oslo"].found == "o1" and rows["bergen"].status is Status.AMBIGUOUS and rows["x"].status is Status.STALE
    assert rows["trondheim"].status is Status.ADDED and rows["trondheim"].found == "t1"
    assert "oslo-flagship" not in rows  # claimed by oslo


@given(st.dictionaries(st.sampled_from("abcdef"), st.sampled_from(["A", "B", "C", None])),
       st.dictionaries(st.sampled_from(["A", "B", "C", "Z"]), st.sampled_from([None, "a", "b", "q"])))
def test_never_guesses_never_replaces(by_id: dict[str, str | None], catalog: dict[str, str | None]) -> None:
    listed = list(by_id.items())  # each vendor item has one SKU (or none)
    items = [CatalogueItem(i, sku) for i, sku in listed]
    owners = {sku: {i for i, s in listed if s == sku} for _, sku in listed if sku}
    for row in match_items(catalog, items, add=True):
        if row.status in (Status.MATCHED, Status.ADDED):
            assert owners[row.key] == {row.found}  # exactly one vendor item has the key
            assert catalog.get(row.key) is None  # only SKUs without an id get one
            assert row.found not in {v for k, v in catalog.items() if k != row.key}  # no item on two SKUs
        if row.key in catalog and catalog[row.key] is not None:
            assert row.status not in (Status.MATCHED, Status.ADDED)


def test_slug() -> None:
    assert slug("Oslo Flagship!") == "oslo-flagship" and slug("  ") == "location"
