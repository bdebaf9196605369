"""The fast paths behind the 1M-position figures give exactly what the plain code gives.

Each fast path is compared with a straightforward reference: the plan file writer with the JSON
encoders over ``_op_out`` dicts, the X-Series record mapping with ``_record``, the common-case
position loop with the careful per-position checks, the model's fast constructors with the dataclass
``__init__``. The huge-plan text report is checked for its shape.
"""

from __future__ import annotations

import gc
import gzip
import hashlib
import io
import json
import pickle
import random
import weakref
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.config._stock import StockCollector, TargetInfo, parse_catalog
from reconciler.config._kinds import KINDS
from reconciler.config._yaml import parse
from reconciler.connectors.xseries import _record, _RecordMaker
from reconciler import model, planfile
from reconciler.model import (
    NO_SETTINGS,
    DesiredPosition,
    Leg,
    OpKind,
    Operation,
    Plan,
    Record,
    Settings,
    SourceRef,
    new_desired_position,
    new_leg,
    new_operation,
    new_record,
    new_source_ref,
    new_sourced_position,
)
from reconciler.errors import PlanFileError
from reconciler.planfile import _op_out, dump_plan, load_plan, loads_plan, plan_document, save_plan
from reconciler.render.text import render_text

# --- plan file writer ------------------------------------------------------------------------------


def _reference_dump(plan: Plan, pretty: bool = True) -> str:
    """The plan file as it was written before the streaming writer: dicts through the encoders.
    Not ``pretty``: each operation's line is its canonical text (a compressed plan's lines)."""
    canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
    line = json.JSONEncoder(sort_keys=True, ensure_ascii=False).encode if pretty else canonical
    doc = plan_document(plan)
    ops = doc.pop("operations")
    digest = hashlib.sha256(canonical({**doc, "operations": ops}).encode()).hexdigest()
    head = {"format_version": doc["format_version"], "digest": digest}
    head.update((k, v) for k, v in sorted(doc.items()) if k != "format_version")
    lines = json.dumps(head, indent=2, ensure_ascii=False, sort_keys=False)[:-2]
    body = ",\n".join(["    " + text for text in map(line, ops)])
    ops_text = f'  "operations": [\n{body}\n  ]' if ops else '  "operations": []'
    return f"{lines},\n{ops_text}\n}}\n"


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)  # any text UTF-8 can hold
_QTY = st.none() | st.integers(-(2**62), 2**62)
_SETTINGS = st.none() | st.builds(Settings, reorder_point=st.none() | st.integers(0, 99),
                                  reorder_amount=st.none() | st.integers(0, 99),
                                  tracking=st.none() | st.booleans(), backordering=st.none() | st.booleans(),
                                  low_stock_level=st.none() | st.integers(0, 99))
_LEG = st.builds(Leg, _TEXT, _QTY, _QTY, _QTY, st.integers(-(2**62), 2**62), _QTY)
_OP = st.builds(Operation, _TEXT, st.sampled_from(list(OpKind)), _TEXT, _TEXT,
                st.lists(_LEG, min_size=1, max_size=2).map(tuple), _TEXT, _SETTINGS, _SETTINGS,
                st.lists(_TEXT, max_size=2).map(tuple), _TEXT)


def _plan(ops: list[Operation], **kw: object) -> Plan:
    fields = dict(format_version=1, plan_id="p1", created_at="2026-01-01T00:00:00Z", git_commit=None,
                  git_dirty=False, desired_digest="dd", desired_files={"stock/a.yaml": "ab"}, lineage="lin",
                  serial=3, strategy_note="merge", operations=ops, warnings=["w \u2014 \"quoted\""],
                  unreadable_targets=[], scope={"targets": ["xs"]})
    fields.update(kw)
    return Plan(**fields)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.lists(_OP, max_size=6), _TEXT)
def test_plan_file_is_what_the_json_encoders_write(ops: list[Operation], note: str) -> None:
    plan = _plan(ops, strategy_note=note)
    assert dump_plan(plan) == _reference_dump(plan)
    buf = io.BytesIO()
    planfile.write_compressed_plan(plan, buf)
    assert gzip.decompress(buf.getvalue()).decode() == _reference_dump(plan, pretty=False)


def test_plan_file_of_many_chunks_round_trips(tmp_path: Path) -> None:
    # More operations than one write chunk (10,000), so the digest spans chunk boundaries.
    ops = [Operation(f"{i:016x}", OpKind.RESET, "xs", f"SKU-{i:06d}", (Leg("oslo", i % 7, None, 5, 5 - i % 7, 5),),
                     f"adopt: reset to 5 (vendor holds {i % 7})", write_mode="absolute") for i in range(25_001)]
    plan = _plan(ops)
    path = tmp_path / "plan.json"
    save_plan(plan, path)
    data = path.read_bytes()
    assert data[:2] == b"\x1f\x8b"  # 25,001 operations >= COMPRESS_FROM: saved compressed
    text = gzip.decompress(data).decode("utf-8")
    # Compressed, each operation's line is its canonical text: the same JSON document, digest included.
    assert text == _reference_dump(plan, pretty=False)
    assert json.loads(text) == json.loads(dump_plan(plan))
    assert loads_plan(text).operations == ops
    assert load_plan(path).operations == ops
    assert len(data) < len(text) / 5
    assert dump_plan(_plan([])) == _reference_dump(_plan([]))


def _many(count: int) -> list[Operation]:
    return [Operation(f"{i:016x}", OpKind.ADJUST, "kc", f"SKU-{i:06d}", (Leg("oslo", i % 5, 3, 4, 1, 3 + i % 5),),
                      "desired 3 -> 4") for i in range(count)]


def test_plans_below_the_threshold_stay_plain_text(tmp_path: Path) -> None:
    small, large = _plan(_many(planfile.COMPRESS_FROM - 1)), _plan(_many(planfile.COMPRESS_FROM))
    save_plan(small, tmp_path / "small.json")
    save_plan(large, tmp_path / "large.json")

    assert (tmp_path / "small.json").read_text(encoding="utf-8") == dump_plan(small)
    assert json.loads(gzip.decompress((tmp_path / "large.json").read_bytes())) == json.loads(dump_plan(large))
    assert load_plan(tmp_path / "large.json") == large


def test_a_compressed_plan_that_is_truncated_or_edited_is_refused(tmp_path: Path) -> None:
    plan = _plan(_many(planfile.COMPRESS_FROM))
    path = tmp_path / "plan.json"
    save_plan(plan, path)
    data = path.read_bytes()

    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(PlanFileError, match="gzip-compressed but its data is truncated or corrupt"):
        load_plan(path)
    edited = gzip.decompress(data).replace(b'"desired":4', b'"desired":5', 1)
    assert edited != gzip.decompress(data)
    path.write_bytes(gzip.compress(edited))
    with pytest.raises(PlanFileError, match="digest mismatch"):
        load_plan(path)


def test_a_failed_write_while_compressing_leaves_no_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = _plan(_many(planfile.COMPRESS_FROM * 3))

    def broken(*args: object, **kwargs: object) -> object:
        raise zlib.error("out of memory")

    monkeypatch.setattr(planfile.zlib, "compressobj", broken)
    with pytest.raises(zlib.error):
        save_plan(plan, tmp_path / "plan.json")
    assert list(tmp_path.iterdir()) == []


def test_plan_file_of_repeating_texts_is_what_the_json_encoders_write(monkeypatch: pytest.MonkeyPatch) -> None:
    # The single-leg formatting reuses the previous operation's kind, target, write mode and
    # location texts, and keeps escaped SKUs and reasons (a bounded cache): vary each between
    # operations, by value and by identity, and put other operations in between.
    monkeypatch.setattr(planfile, "_ESCAPED_MAX", 3)
    rng = random.Random(5)
    names = ["xs", "x\"s", "".join(["x", "s"]), "\u00e9\n", "oslo", "berg\\en"]
    ops = []
    for i in range(400):
        legs = (Leg(rng.choice(names), rng.choice([None, 0, -3, 2**62]), rng.choice([None, 4]),
                    rng.choice([None, 7]), rng.randrange(-9, 9), rng.choice([None, 5])),)
        if i % 7 == 0:
            legs += (Leg("bergen", 1, 1, 2, 1, 2),)
        ops.append(Operation(f"{i:016x}", rng.choice(list(OpKind)), rng.choice(names), rng.choice(names), legs,
                             rng.choice(names + ["adopt: reset to 5"]),
                             Settings(reorder_point=1) if i % 11 == 0 else None,
                             None, ("negative",) if i % 13 == 0 else (), rng.choice(["", "delta", "absolute", "x\"y"])))
    plan = _plan(ops)
    assert dump_plan(plan) == _reference_dump(plan)


def test_op_out_is_still_the_documented_shape() -> None:
    op = Operation("a1", OpKind.MOVE, "xs", "SKU", (Leg("oslo", 5, 5, 2, -3, 2), Leg("bergen", 0, 0, 3, 3, 3)), "move")
    assert list(_op_out(op)) == ["id", "kind", "target", "item", "legs", "reason", "settings_before",
                                 "settings_after", "overridden_guards", "write_mode"]


# --- model fast constructors --------------------------------------------------------------------------


def test_fast_constructors_build_equal_objects() -> None:
    src = new_source_ref("stock/a.yaml", 4)
    assert src == SourceRef("stock/a.yaml", 4) and str(src) == "stock/a.yaml:4"
    dp = new_desired_position("xs", "oslo", "A", 3, NO_SETTINGS, "replace", True, src)
    assert dp == DesiredPosition("xs", "oslo", "A", 3, NO_SETTINGS, "replace", True, src)
    assert hash(dp) == hash(DesiredPosition("xs", "oslo", "A", 3, NO_SETTINGS, "replace", True, src))
    assert new_record(4, NO_SETTINGS) == Record(4)
    leg = new_leg("oslo", 1, 2, 3, 4, 5)
    assert leg == Leg("oslo", 1, 2, 3, 4, 5)
    op = new_operation("i", OpKind.ADJUST, "xs", "A", (leg,), "r", None, None, (), "delta")
    assert op == Operation("i", OpKind.ADJUST, "xs", "A", (leg,), "r", write_mode="delta")
    with pytest.raises(AttributeError):
        dp.quantity = 4  # type: ignore[misc]  # still frozen
    both = new_sourced_position("xs", "oslo", "A", 3, NO_SETTINGS, "replace", True, "stock/a.yaml", 4)
    assert both == dp and hash(both) == hash(dp) and type(both.source) is SourceRef and str(both.source) == "stock/a.yaml:4"
    # the class-swap constructor is in use on this Python (its probe passed), and the fallback agrees
    assert new_sourced_position is not model._sourced_position_slow
    assert model._sourced_position_slow("xs", "oslo", "A", 3, NO_SETTINGS, "replace", True, "stock/a.yaml", 4) == both
    with pytest.raises(AttributeError):
        both.source.line = 5  # type: ignore[misc]  # still frozen


def test_twin_constructors_build_the_frozen_objects() -> None:
    # new_leg and new_operation are made by the class swap on this Python (their probes passed)
    assert new_leg is not model.fast_constructor(Leg) and new_operation is not model.fast_constructor(Operation)
    leg = new_leg("oslo", None, 2, 3, 4, None)
    assert type(leg) is Leg and leg == Leg("oslo", None, 2, 3, 4, None) and hash(leg) == hash(Leg("oslo", None, 2, 3, 4, None))
    op = new_operation("i", OpKind.RESET, "xs", "A", (leg,), "r", None, Settings(tracking=True), ("protected",), "absolute")
    assert type(op) is Operation
    assert op == Operation("i", OpKind.RESET, "xs", "A", (leg,), "r", None, Settings(tracking=True), ("protected",), "absolute")
    assert pickle.loads(pickle.dumps(op)) == op and replace(op, reason="s").reason == "s"
    with pytest.raises(AttributeError):
        leg.change = 5  # type: ignore[misc]  # still frozen
    with pytest.raises(AttributeError):
        op.reason = "s"  # type: ignore[misc]


def test_twin_constructor_falls_back_when_the_twin_cannot_stand_in() -> None:
    class Base:
        __slots__ = ("z",)

    @dataclass(frozen=True, slots=True)
    class Child(Base):  # its base's slot comes first: a plain twin of its own __slots__ has another layout
        a: int

    made = model.twin_constructor(Child)
    assert made is not Child and made(1) == Child(1) and type(made(1)) is Child  # the descriptor constructor


# --- X-Series records ---------------------------------------------------------------------------------

_VALUE = st.none() | st.just("") | st.booleans() | st.integers(-5, 50) | st.floats(-5, 50, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({}, optional={"current_amount": _VALUE, "inventory_level": _VALUE,
                                           "reorder_point": _VALUE, "reorder_amount": _VALUE}))
def test_xseries_record_maker_matches_record(rec: dict) -> None:  # type: ignore[type-arg]
    make = _RecordMaker()
    assert make(rec) == _record(rec)
    assert make(dict(rec)) == _record(rec)  # and again from its cache


def test_xseries_plain_records_are_shared() -> None:
    make = _RecordMaker()
    a = make({"current_amount": 3, "reorder_point": None, "reorder_amount": ""})
    assert a is make({"current_amount": 3}) and a == Record(3)
    assert make({"current_amount": 3, "reorder_point": 2}) == Record(3, Settings(reorder_point=2))


# --- location files: the common case -------------------------------------------------------------------------

_CATALOG = "items:\n  A: {ids: {xs: \"p-a\"}, protect: true}\n  B: {ids: {xs: \"p-b\"}}\n  C: {ids: {xs: \"p-c\"}}\n"


def _collect(files: list[str], fast: bool) -> StockCollector:
    catalog_tree, problems = parse(_CATALOG, "stock/catalog.yaml")
    info = TargetInfo("xs", "xseries", KINDS["xseries"], {"oslo": "o1", "bergen": "o2"})
    catalog, problems = parse_catalog(catalog_tree, {"xs": info})
    assert not problems
    collector = StockCollector({"xs": info}, {"oslo": {}, "bergen": {}}, catalog, "merge")
    if not fast:
        collector._known_items = lambda target: {}  # type: ignore[method-assign]  # every position the careful way
    for i, text in enumerate(files):
        tree, problems = parse(text, f"stock/f{i}.yaml")
        assert not problems
        collector.add_file(tree, f"stock/f{i}.yaml")
    return collector


@pytest.mark.parametrize("files", [
    ["location: oslo\nstock:\n  xs:\n    A: 1\n    B: 0\n    C: 1000000\n"],                  # all common
    ["location: oslo\nstock:\n  xs:\n    A: 1\n    Z: 2\n    B: -1\n    C: 1000001\n"],      # unknown, range
    ["location: oslo\nstock:\n  xs:\n    A: 1\n    B: true\n    C: '3'\n"],                  # types
    ["location: oslo\nstock:\n  xs:\n    A: 1\n", "location: oslo\nstock:\n  xs:\n    A: 2\n    B: 3\n"],  # twice
    ["location: oslo\nstrategy: replace\nstock:\n  xs:\n    A: {quantity: 2, reorder_point: 1}\n    B: 4\n"],
    ["location: bergen\nstock:\n  xs: {}\n", "location: oslo\nstock:\n  xs:\n"],
    ["location: oslo\nstock:\n  xs:\n    A: 1\n    # c\n    B: 2\n\n    C: x\n"],        # lines looked up, not counted
])
def test_the_common_case_gives_what_the_position_checks_give(files: list[str]) -> None:
    fast, careful = _collect(files, fast=True), _collect(files, fast=False)
    assert fast.positions == careful.positions
    assert list(fast.positions) == list(careful.positions)
    assert [(p.file, p.line, p.message) for p in fast.problems] == [(p.file, p.line, p.message) for p in careful.problems]
    assert fast.declared == careful.declared


def test_positions_share_the_catalogs_sku_strings() -> None:
    collector = _collect(["location: oslo\nstock:\n  xs:\n    A: 1\n    B: 2\n"], fast=True)
    for key, dp in collector.positions.items():
        assert dp.item is next(sku for sku in collector.catalog if sku == dp.item) and key[2] is dp.item
    assert collector.positions[("xs", "oslo", "A")].protect is True
    assert collector.positions[("xs", "oslo", "B")].source == SourceRef("stock/f0.yaml", 5)


# --- the text report of a huge plan -----------------------------------------------------------------


def test_text_report_of_a_huge_plan_summarises_per_location() -> None:
    ops = [Operation(f"{i:016x}", OpKind.RESET, "xs", f"SKU-{i % 1000:06d}", (Leg(f"store-{i // 1000:03d}", 0, None, 5, 5, 5),),
                     "adopt", write_mode="absolute") for i in range(60_000)]
    text = render_text(_plan(ops), max_ops=20)
    assert "Operations per location" in text and "\u2502 xs     \u2502 store-049 \u2502  1,000 \u2502" in text
    assert "10 more locations not shown" in text and "store-050" not in text
    assert text.count("\n\u2502 reset") == 20
    assert "59,980 more operations not shown" in text and "--out FILE" in text


# --- load: the collector does not rescan a big desired state ----------------------------------------


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_a_big_load_is_frozen_out_of_the_collectors_sight(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench._repo import RepoSpec, write_repo
    from reconciler.config import loader

    spec = RepoSpec(2, 60, "xseries", 7)
    write_repo(tmp_path, spec, "http://127.0.0.1:9")
    size = sum(p.stat().st_size for p in (tmp_path / "stock").glob("store-*.yaml"))
    gc.unfreeze()
    try:
        monkeypatch.setattr(loader, "FREEZE_FROM_BYTES", size + 1)
        small = loader.load(tmp_path)
        assert len(small.desired.positions) == spec.positions and gc.get_freeze_count() == 0
        monkeypatch.setattr(loader, "FREEZE_FROM_BYTES", size)
        gc.disable()  # only load's own collection may free the cycle
        cycle = weakref.ref(_Cycle())  # garbage from before the load: collected, not frozen
        big = loader.load(tmp_path)
        assert cycle() is None
        # every position, its source and its key are now in the permanent generation
        assert not big.problems and gc.get_freeze_count() >= 3 * spec.positions
        assert big.desired.positions == small.desired.positions
    finally:
        gc.enable()
        gc.unfreeze()
