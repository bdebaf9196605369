"""When the vendor already holds D, apply records B = D without sending anything (issue 16,
point 5), so a later edit or a switch of strategy adjusts from what the vendor holds."""

from __future__ import annotations

from cli_kit import OSLO, Shop, applied_ops, commit, requests_sent, run_cli, sell, shop_stock, write

from reconciler.planfile import load_plan
from reconciler.state import SQLiteStateStore


def _apply_new_plan(name: str) -> list:
    path = f"plans/{name}.json"
    assert run_cli("plan", "--out", path).code == 0
    done = run_cli("apply", path)
    assert done.code == 0, done.stderr
    return load_plan(path).operations


def _b(shop: Shop, location: str, item: str) -> int:
    with SQLiteStateStore(shop.state) as store:
        return store.load_base().positions[("shop", location, item)].quantity


def test_replace_where_the_vendor_already_holds_d_records_b_and_a_later_merge_edit_adjusts_from_it(shop: Shop) -> None:
    _apply_new_plan("adopt")
    assert _b(shop, "oslo", "CAP") == 4
    # Someone counts 7 caps and sets the shop to 7 by hand; the file says 7 with replace.
    sell(shop.stock, "oslo", "CAP", -3)
    write(shop.root, {"stock/oslo.yaml": "strategy: replace\n" + OSLO.replace("CAP: 4", "CAP: 7")})
    commit(shop.root)
    sent = requests_sent(shop.stock)
    [op] = _apply_new_plan("replace")
    assert op.kind.value == "record" and "nothing sent" in op.reason
    assert requests_sent(shop.stock) == sent  # nothing was sent...
    assert _b(shop, "oslo", "CAP") == 7  # ...but B learnt what the vendor holds
    # Back to merge and one more cap wanted: +1 from 7, not +4 from a stale B of 4.
    write(shop.root, {"stock/oslo.yaml": OSLO.replace("CAP: 4", "CAP: 8")})
    commit(shop.root)
    [adjust] = _apply_new_plan("merge-edit")
    assert adjust.kind.value == "adjust" and adjust.legs[0].change == 1
    assert shop_stock(shop.stock)[("oslo", "CAP")] == 8
    assert run_cli("plan", "--detailed-exitcode").code == 0


def test_an_adopt_where_the_vendor_already_holds_d_sends_nothing(shop: Shop) -> None:
    ops = _apply_new_plan("adopt")
    write(shop.root, {"stock/oslo.yaml": OSLO + "    SOCK: 6\n"})
    commit(shop.root)
    [adopt] = _apply_new_plan("adopt-sock")
    assert adopt.kind.value == "reset"  # the vendor holds 0, not 6: a real write
    before = len(applied_ops(shop.stock))
    write(shop.root, {"stock/bergen.yaml": "location: bergen\nstock:\n  shop:\n    RED-M: 2\n    SOCK: 6\n    CAP: 0\n"})
    commit(shop.root)
    [record] = _apply_new_plan("adopt-cap")  # a readable vendor holding none holds 0 == D
    assert record.kind.value == "record" and len(applied_ops(shop.stock)) == before
    assert _b(shop, "bergen", "CAP") == 0 and len(ops) == 5
