"""Operations left pending or in doubt block the plans and applies they could corrupt (issue 16,
point 2): refused before any request, naming the operations, their run and the way out;
`drift` still works and names them."""

from __future__ import annotations

from pathlib import Path

from cli_kit import OSLO, Shop, commit, config, reads_made, requests_sent, run_cli, write

from reconciler.planfile import load_plan


def _saved(name: str, *args: str) -> str:
    path = f"plans/{name}.json"
    made = run_cli("plan", "--out", path, *args)
    assert made.code == 0, made.stderr
    return path


def _in_doubt_cap(shop: Shop) -> str:
    """Adopt, then raise oslo/CAP with an answer that is lost: the adjustment is in doubt."""
    assert run_cli("apply", _saved("adopt")).code == 0
    write(shop.root, {"reconciler.yaml": config(shop.stock, drop_items=["CAP"]),
                      "stock/oslo.yaml": OSLO.replace("CAP: 4", "CAP: 9")})
    commit(shop.root)
    path = _saved("raise-cap")
    assert run_cli("apply", path).code == 4
    [op] = load_plan(path).operations
    return op.id


def test_a_plan_over_an_operation_in_doubt_is_refused_before_any_request(shop: Shop) -> None:
    op_id = _in_doubt_cap(shop)
    write(shop.root, {"stock/oslo.yaml": OSLO.replace("CAP: 4", "CAP: 12")})
    commit(shop.root)
    reads, writes = reads_made(shop.stock), requests_sent(shop.stock)

    refused = run_cli("plan", "--out", "plans/next.json")

    assert refused.code == 4, refused.stderr
    assert op_id in refused.stderr and "in doubt" in refused.stderr and "oslo/CAP" in refused.stderr
    assert f"reconciler resolve {op_id[:12]} --applied" in refused.stderr
    assert (reads_made(shop.stock), requests_sent(shop.stock)) == (reads, writes)  # not even a read
    assert not Path("plans/next.json").exists()


def test_positions_the_operation_does_not_touch_can_still_be_planned(shop: Shop) -> None:
    _in_doubt_cap(shop)
    assert run_cli("plan", "--location", "bergen", "--detailed-exitcode").code == 0


def test_drift_still_works_and_names_the_operation(shop: Shop) -> None:
    op_id = _in_doubt_cap(shop)
    drift = run_cli("drift")
    assert drift.code == 0, drift.stderr
    assert op_id in drift.stdout and "pending or in doubt" in drift.stdout


def test_once_resolved_the_plan_goes_ahead(shop: Shop) -> None:
    op_id = _in_doubt_cap(shop)
    assert run_cli("resolve", op_id, "--applied").code == 0
    write(shop.root, {"stock/oslo.yaml": OSLO.replace("CAP: 4", "CAP: 12")})
    commit(shop.root)
    made = run_cli("plan", "--out", "plans/next.json")
    assert made.code == 0, made.stderr
    [op] = load_plan("plans/next.json").operations
    assert op.kind.value == "adjust" and op.legs[0].change == 3  # 12 - 9: from the resolved B, not 12 - 4
