"""Planning from the changes alone (reconciler/_plan_memo.py): after random sales, receipts,
deletions, records changed twice, stock file edits and applies, the plan made from the memo is
the plan a full load and a full read make (on a copy of the state, so the memo chain under test
is not disturbed). Real HTTP to the X-Series sandbox on loopback and a real SQLite state.

RECONCILER_MEMO_SEEDS=200 runs more seeds (default 10).
"""

from __future__ import annotations

import os
import random
import sqlite3
import textwrap
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from reconciler.sandbox._core import ServerThread
from reconciler.sandbox.xseries import XSeriesSimulator
from tests.connectors.test_xseries_incremental import server  # noqa: F401  (over this module's sim)

TOKEN = "xs-memo-token-51c"
ENV = {"XS_TOKEN": TOKEN}
PRODUCTS = {"TEE": "prod-tee", "CAP": "prod-cap", "MUG": "prod-mug", "HAT": "prod-hat", "BAG": "prod-bag"}
OUTLETS = {"oslo": "outlet-oslo", "bergen": "outlet-bergen"}
SEEDS = int(os.environ.get("RECONCILER_MEMO_SEEDS", "10"))
MEMO_STEPS: dict[int, tuple[int, int]] = {}  # seed -> (steps planned from the memo, steps)


def fixtures() -> dict[str, Any]:
    return {
        "locations": [{"id": o} for o in (*OUTLETS.values(), "outlet-unmapped")],
        "items": [{"id": p} for p in [*PRODUCTS.values(), "prod-unmapped"]],
        "stock": [{"location": o, "item": p, "quantity": 6} for o in (*OUTLETS.values(), "outlet-unmapped")
                  for p in (*PRODUCTS.values(), "prod-unmapped")],
    }


def write_repo(root: Path, url: str, version: str) -> Path:
    (root / "stock").mkdir(parents=True, exist_ok=True)
    (root / "reconciler.yaml").write_text(textwrap.dedent(f"""\
        version: 1
        locations: {{oslo: {{}}, bergen: {{}}}}
        targets:
          xs:
            kind: xseries
            url: {url}
            credentials_env: XS_TOKEN
            locations: {{oslo: outlet-oslo, bergen: outlet-bergen}}
            options: {{inventory_api_version: "{version}", page_size: 3}}
        """))
    (root / "stock" / "catalog.yaml").write_text(
        "items:\n" + "".join(f"  {sku}: {{ids: {{xs: {pid}}}}}\n" for sku, pid in PRODUCTS.items()))
    return root


def write_stock(root: Path, rng: random.Random) -> None:
    """Merge positions (calm when applied), a replace one and one with reorder settings (tracked)."""
    for name in OUTLETS:
        items: dict[str, Any] = {sku: rng.randint(3, 9) for sku in ("TEE", "CAP", "MUG", "HAT")}
        data: dict[str, Any] = {"location": name, "stock": {"xs": items}}
        if name == "bergen":
            items["BAG"] = {"quantity": rng.randint(3, 9), "reorder_point": rng.randint(1, 3)}
        (root / "stock" / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    replaced = {"location": "oslo", "strategy": "replace", "stock": {"xs": {"BAG": rng.randint(3, 9)}}}
    (root / "stock" / "oslo-replace.yaml").write_text(yaml.safe_dump(replaced, sort_keys=False))


@pytest.fixture
def sim() -> Iterator[XSeriesSimulator]:
    s = XSeriesSimulator(token=TOKEN, fixtures=fixtures(), rate_budget=0)
    yield s
    s.close()


def plan(repo: Path, **kw: Any) -> Any:
    from reconciler.workflow import plan_project

    return plan_project(repo, env=ENV, **kw)


def full_plan_on_a_copy(repo: Path, tmp: Path, **kw: Any) -> Any:
    """The full plan (full load, full read) against a copy of the state: the memo stays."""
    copy = tmp / "state-copy.db"
    copy.unlink(missing_ok=True)
    src, dst = sqlite3.connect(repo / ".reconciler" / "state.db"), sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    dst.close()
    return outcome(lambda: plan(repo, refresh=True, state=str(copy), **kw))


def outcome(make: Any) -> tuple[Any, ...]:
    from reconciler.errors import ReconcilerError

    try:
        p = make()
    except ReconcilerError as exc:
        return ("refused", type(exc).__name__, str(exc)), False
    ops = [(op.id, op.kind.value, op.location, op.item, repr(op.legs), op.reason) for op in p.operations]
    memo = any("planned from the last full plan's memo" in n for n in p.notes)
    return (p.plan_id, ops, p.warnings, p.strategy_note, p.marks, p.desired_digest, p.serial), memo


def change_vendor(sim: XSeriesSimulator, rng: random.Random) -> None:
    outlet = rng.choice([*OUTLETS.values(), "outlet-unmapped"])
    product = rng.choice([*PRODUCTS.values(), "prod-unmapped"])
    action = rng.choice(["sale", "receipt", "twice", "delete", "sell_one"])
    with sim.db.transaction() as conn:
        if action == "delete":
            conn.execute("UPDATE xs_inventory SET deleted_at = ?, version = ? WHERE product_id = ? AND outlet_id = ?",
                         (sim.now(), sim.version_step(conn), product, outlet))
        elif action == "sell_one":
            pass
        else:
            sim.adjust_stock(conn, product, outlet, rng.choice([-2, -1]) if action == "sale" else rng.randint(1, 4))
            if action == "twice":
                sim.adjust_stock(conn, product, outlet, rng.randint(-1, 3))
    if action == "sell_one":
        sim.sell_one()


def apply_current(repo: Path) -> None:
    from reconciler.errors import ReconcilerError
    from reconciler.workflow import apply_saved_plan

    try:
        made = plan(repo)
        apply_saved_plan(repo, made, env=ENV)
    except ReconcilerError:
        pass  # a guard or a refused write: the comparison after it still holds


@pytest.mark.parametrize("seed", range(SEEDS))
def test_the_plan_from_the_memo_is_the_full_plan(tmp_path: Path, server: ServerThread, sim: XSeriesSimulator,
                                                 seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    rng = random.Random(seed)
    repo = write_repo(tmp_path / "repo", server.url, "2026-04" if seed % 2 else "2026-01")
    write_stock(repo, rng)
    apply_current(repo)  # adopt: serial 1, B = D
    scope = {"only_targets": ["xs"]} if seed % 3 == 0 else {}  # `plan --target xs`: a memo of its own
    from_memo = 0
    for _ in range(8):
        roll = rng.random()
        if roll < 0.1:
            write_stock(repo, rng)  # D changes: a full plan, and a new memo
        elif roll < 0.2:
            apply_current(repo)  # B and the serial change: a full plan, and a new memo
        else:
            for _ in range(rng.randint(0, 3)):
                change_vendor(sim, rng)
        fast, memo = outcome(lambda: plan(repo, **scope))
        full, _ = full_plan_on_a_copy(repo, tmp_path, **scope)
        assert fast == full
        from_memo += memo
    MEMO_STEPS[seed] = (from_memo, 8)


def test_the_random_steps_were_mostly_planned_from_the_memo() -> None:
    """Most steps change only the vendor: a seed may see guards refuse every plan (no memo is
    left by a refused plan), but over the seeds most steps must have taken the memo's path."""
    if not MEMO_STEPS:
        pytest.skip("the random seeds did not run in this session")
    hits, steps = (sum(v) for v in zip(*MEMO_STEPS.values()))
    assert hits >= steps // 3, MEMO_STEPS


def test_a_plan_from_the_memo_reads_only_the_changes(tmp_path: Path, server: ServerThread, sim: XSeriesSimulator,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    repo = write_repo(tmp_path / "repo", server.url, "2026-01")
    write_stock(repo, random.Random(1))
    apply_current(repo)
    plan(repo)  # full (the apply moved the serial): leaves the memo
    sim.sell_one()
    before = httpx.get(server.url + "/_sandbox/requests").json()
    made = plan(repo)
    after = httpx.get(server.url + "/_sandbox/requests").json()
    [note] = [n for n in made.notes if n.startswith("xs: live stock read")]
    assert "read incrementally: 1 record(s) changed" in note and "memo" in note and "of 10 positions" in note
    plan(repo, refresh=True)
    full = httpx.get(server.url + "/_sandbox/requests").json()

    def feed(now: dict[str, int], then: dict[str, int]) -> int:
        return sum(n - then.get(p, 0) for p, n in now.items() if "/inventory" in p)

    # the product of the newest record, and the pages after the cursor; not the whole feed
    assert feed(after, before) < feed(full, after)


def test_refresh_a_changed_file_and_an_apply_each_plan_in_full(tmp_path: Path, server: ServerThread,
                                                               sim: XSeriesSimulator,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    repo = write_repo(tmp_path / "repo", server.url, "2026-01")
    rng = random.Random(2)
    write_stock(repo, rng)
    apply_current(repo)
    plan(repo)

    def from_memo(**kw: Any) -> bool:
        return any("memo" in n for n in plan(repo, **kw).notes)

    assert from_memo()
    assert not from_memo(refresh=True)
    write_stock(repo, rng)
    assert not from_memo()  # a stock file changed: D's digest is not the memo's
    assert from_memo()
    apply_current(repo)
    assert not from_memo()  # the serial moved
    assert not from_memo(only_locations=["oslo"])  # a scoped plan is always made in full


def test_a_memo_of_another_version_or_unreadable_is_ignored(tmp_path: Path, server: ServerThread,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    repo = write_repo(tmp_path / "repo", server.url, "2026-01")
    write_stock(repo, random.Random(3))
    apply_current(repo)
    expected, _ = outcome(lambda: plan(repo))
    db = sqlite3.connect(repo / ".reconciler" / "state.db")
    with db:
        db.execute("UPDATE plan_memos SET body = ?", (b"not a memo",))
    db.close()
    got, memo = outcome(lambda: plan(repo))
    assert not memo and got[1:] == expected[1:]


def test_guards_of_a_plan_from_the_memo_count_every_position(tmp_path: Path, server: ServerThread,
                                                             sim: XSeriesSimulator,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A pending zeroing of most of a location, let through by an override: the warning counts
    the location's managed positions, which a plan of the changed positions alone does not hold."""
    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    repo = write_repo(tmp_path / "repo", server.url, "2026-01")
    write_stock(repo, random.Random(4))
    apply_current(repo)
    data = yaml.safe_load((repo / "stock" / "oslo.yaml").read_text())
    data["stock"]["xs"].update({"TEE": 0, "CAP": 0, "MUG": 0})
    (repo / "stock" / "oslo.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    allow = {"allow_mass_delete": True}
    plan(repo, guard_overrides=allow)  # full: D changed; leaves the memo
    sim.sell_one()
    fast, memo = outcome(lambda: plan(repo, guard_overrides=allow))
    full, _ = full_plan_on_a_copy(repo, tmp_path, guard_overrides=allow)
    assert memo and fast == full
    assert any("of 5 managed positions" in w for w in fast[2])
    refused, memo = outcome(lambda: plan(repo))  # another override: not this memo's plan
    assert not memo and refused[0] == "refused" and "max_delete_share" in refused[2]


def test_an_unsettled_operation_stops_a_plan_from_the_memo_before_any_read(
        tmp_path: Path, server: ServerThread, sim: XSeriesSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    from reconciler.errors import UnsettledOperations

    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    repo = write_repo(tmp_path / "repo", server.url, "2026-01")
    write_stock(repo, random.Random(5))
    apply_current(repo)
    plan(repo)  # leaves the memo
    assert any("memo" in n for n in plan(repo).notes)
    db = sqlite3.connect(repo / ".reconciler" / "state.db")
    with db:
        # positions not journalled: it counts as touching every position of the target
        db.execute("INSERT INTO journal (plan_id, op_id, target, kind, status, updated_at) "
                   "VALUES ('p-left', 'op-left', 'xs', 'adjust', 'pending', '2026-01-01T00:00:00Z')")
    db.close()
    before = httpx.get(server.url + "/_sandbox/requests").json()
    with pytest.raises(UnsettledOperations):
        plan(repo)
    assert httpx.get(server.url + "/_sandbox/requests").json() == before
