"""Property-based fuzzing of the plan loader (issue 8, point 3).

Two kinds of damage: random byte-level edits of a saved plan (the digest should catch nearly all
of them), and structural edits whose digest is recomputed, which reach every check behind the
digest. Either way the loader raises PlanFileError or returns a plan that renders in every
format and saves again to the same plan; nothing else may escape.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from fuzz_kit import FUZZ, mutated, run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.errors import PlanFileError
from reconciler.model import Leg, OpKind, Operation, Plan, Settings
from reconciler.planfile import digest_of, dump_plan, load_plan, loads_plan
from reconciler.render import render

OPS = [
    Operation("0f3a9c1d2e4b5a60", OpKind.ADJUST, "xs", "RED-M", (Leg("oslo", 3, 4, 5, 1, 4),), "adjust by +1", write_mode="delta"),
    Operation("1b2c3d4e5f607182", OpKind.MOVE, "xs", "BLUE-L", (Leg("oslo", 6, 6, 3, -3, 3), Leg("bergen", 0, 0, 3, 3, 3)),
              "movement of 3 from oslo to bergen", write_mode="delta"),
    Operation("2c3d4e5f60718293", OpKind.SETTINGS, "xs", "BLUE-L", (Leg("oslo", 3, 3, 3, 0, 3),), "settings",
              settings_before=Settings(reorder_point=0), settings_after=Settings(reorder_point=1, tracking=True),
              write_mode="absolute"),
    Operation("3d4e5f6071829304", OpKind.DELETE, "rf", "RED-M", (Leg("oslo", None, 2, None, 0, None),), "stop tracking",
              write_mode="absolute", overridden_guards=("mass-delete",)),
    Operation("4e5f607182930415", OpKind.DRIFT, "zt", "RED-M", (Leg("bergen", 5, 7, 7, 0, 7),), "drift: sold 2"),
]
PLAN = Plan(format_version=1, plan_id="9a8b7c6d5e4f3021", created_at="2026-03-01T09:30:00Z", git_commit=None,
            git_dirty=True, desired_digest="a" * 64, desired_files={"reconciler.yaml": "b" * 64}, lineage="lineage-1",
            serial=3, strategy_note="merge", operations=OPS, warnings=["w"], unreadable_targets=["rf"],
            scope={"targets": ["xs", "rf"]})
TEXT = dump_plan(PLAN)
DOC = json.loads(TEXT)

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _accepts_or_refuses(text: str) -> Plan | None:
    try:
        plan = loads_plan(text, source="fuzz.json")
    except PlanFileError as exc:
        assert str(exc).startswith("fuzz.json"), exc  # the error names the file
        return None
    for fmt in ("text", "markdown", "json"):
        assert isinstance(render(plan, fmt), str)
    assert loads_plan(dump_plan(plan)) == plan
    return plan


@settings(FUZZ, max_examples=80)
@given(data=st.data())
def test_byte_level_damage_is_refused_or_harmless(data: st.DataObject) -> None:
    broken = data.draw(mutated(TEXT.encode()), label="plan")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plan.json"
        path.write_bytes(broken)
        try:
            plan = load_plan(path)
        except PlanFileError as exc:
            assert str(exc).startswith(str(path)), exc
            return
    # only edits the digest cannot see (whitespace between tokens) may load, and then unchanged
    assert plan == PLAN


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


PATHS = [p for p in _paths(DOC) if p and p != ("digest",)]


def _redigested(doc: dict[str, Any]) -> str:
    body = {k: v for k, v in doc.items() if k != "digest"}
    return json.dumps({"digest": digest_of(body), **body}, indent=1)


@FUZZ
@given(path=st.sampled_from(PATHS), action=st.sampled_from(["replace", "delete", "add"]), value=JSON_VALUES,
       key=st.text(min_size=1, max_size=8))
def test_structural_damage_with_a_valid_digest_is_refused_or_consistent(
    path: tuple[Any, ...], action: str, value: Any, key: str
) -> None:
    doc = json.loads(TEXT)
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if action == "replace":
        parent[last] = value
    elif action == "delete":
        del parent[last]
    elif isinstance(parent[last], dict):
        parent[last][key] = value
    elif isinstance(parent[last], list):
        parent[last].append(value)
    else:
        parent[last] = [parent[last], value]
    _accepts_or_refuses(_redigested(doc))


@settings(FUZZ, max_examples=30)
@given(data=st.data())
def test_show_exits_0_or_1_and_never_shows_a_traceback(data: st.DataObject) -> None:
    broken = data.draw(mutated(TEXT.encode()), label="plan")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plan.json"
        path.write_bytes(broken)
        run = run_cli("show", str(path), "--format", "markdown")
    assert run.code in (0, 1) and "Traceback" not in run.stdout + run.stderr
    assert run.code == 0 or run.stderr.startswith(f"Error: {path}")


def test_the_undamaged_plan_loads() -> None:
    """The control: the fixtures above start from a plan the loader accepts."""
    assert _accepts_or_refuses(TEXT) == PLAN
    assert _accepts_or_refuses(_redigested(json.loads(TEXT))) == PLAN
