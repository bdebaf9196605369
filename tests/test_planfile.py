"""Plan files: exact round trip, and clear refusals of corrupt, foreign or tampered files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from reconciler.errors import PlanFileError
from reconciler.model import Leg, OpKind, Operation, Plan, Settings
from reconciler.planfile import dump_plan, load_plan, loads_plan, save_plan


def _plan() -> Plan:
    ops = [
        Operation("a" * 16, OpKind.ADJUST, "xs", "SKU-1", (Leg("oslo", 4, 6, 9, 3, 7),), "adjust by +3",
                  write_mode="delta", overridden_guards=("negative",)),
        Operation("b" * 16, OpKind.MOVE, "xs", "SKU-2", (Leg("oslo", 5, 5, 2, -3, 2), Leg("bergen", None, 1, 4, 3, 4)),
                  "movement of 3 from oslo to bergen", write_mode="delta"),
        Operation("c" * 16, OpKind.SETTINGS, "xs", "SKU-3", (Leg("oslo", 1, 1, 1, 0, 1),), "settings",
                  settings_before=Settings(reorder_point=1, tracking=False),
                  settings_after=Settings(reorder_point=2, tracking=True), write_mode="absolute"),
        Operation("d" * 16, OpKind.DELETE, "xs", "SKU-4", (Leg("oslo", 2, 2, None, 0, None),), "gone ü ✓",
                  write_mode="absolute"),
    ]
    return Plan(
        format_version=1, plan_id="p" * 16, created_at="2026-01-01T00:00:00Z", git_commit="abc", git_dirty=False,
        desired_digest="dd", desired_files={"stock/oslo.yaml": "11"}, lineage="lin", serial=4,
        strategy_note="merge", operations=ops, warnings=["w1"], unreadable_targets=["ka"],
        scope={"targets": ["xs"]},
    )


def test_round_trip_is_exact(tmp_path: Path) -> None:
    plan = _plan()
    assert loads_plan(dump_plan(plan)) == plan
    path = tmp_path / "plans" / "p.json"
    save_plan(plan, path)
    assert load_plan(path) == plan
    assert [p.name for p in path.parent.iterdir()] == ["p.json"]  # no temp file left behind


def test_file_is_versioned_json_with_digest() -> None:
    doc = json.loads(dump_plan(_plan()))
    assert doc["format_version"] == 1 and len(doc["digest"]) == 64
    assert doc["operations"][2]["settings_after"] == {"reorder_point": 2, "tracking": True}


def test_save_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text("old")
    save_plan(_plan(), path)
    assert load_plan(path) == _plan()


def test_corrupt_json_names_line_and_column() -> None:
    with pytest.raises(PlanFileError, match=r"p\.json:3:\d+: not a plan file: invalid JSON"):
        loads_plan('{\n "a": 1,\n oops\n}', source="p.json")


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    text = dump_plan(_plan())
    path = tmp_path / "p.json"
    path.write_text(text[: len(text) // 2])
    with pytest.raises(PlanFileError, match="truncated or corrupt"):
        load_plan(path)


@pytest.mark.parametrize("text", ["[1, 2]", "42", '"plan"'])
def test_not_an_object(text: str) -> None:
    with pytest.raises(PlanFileError, match="expected a JSON object"):
        loads_plan(text)


@pytest.mark.parametrize("version", [2, 0, "1", None, True])
def test_unknown_format_version(version) -> None:
    doc = json.loads(dump_plan(_plan()))
    doc["format_version"] = version
    with pytest.raises(PlanFileError, match=r"not supported \(this reconciler reads version 1\)"):
        loads_plan(json.dumps(doc))


def test_tampered_quantity_is_refused() -> None:
    doc = json.loads(dump_plan(_plan()))
    doc["operations"][0]["legs"][0]["change"] = 300
    with pytest.raises(PlanFileError, match=r"edited after it was written.*reconciler plan --out"):
        loads_plan(json.dumps(doc))


def test_tampered_text_edit_is_refused() -> None:
    text = dump_plan(_plan()).replace('"change": 3,', '"change": 4,', 1)
    with pytest.raises(PlanFileError, match="digest mismatch"):
        loads_plan(text)


def test_missing_and_ill_typed_fields_are_named() -> None:
    doc = json.loads(dump_plan(_plan()))
    del doc["lineage"]
    doc["operations"][1]["legs"][0]["change"] = "3"
    doc["serial"] = True
    with pytest.raises(PlanFileError) as err:
        loads_plan(json.dumps(doc), source="plan.json")
    text = str(err.value)
    assert "plan.json" in text and "lineage: missing" in text
    assert "operations.1.legs.0.change" in text and "serial" in text


def test_unknown_kind_is_refused() -> None:
    doc = json.loads(dump_plan(_plan()))
    doc["operations"][0]["kind"] = "explode"
    with pytest.raises(PlanFileError, match="operations.0.kind"):
        loads_plan(json.dumps(doc))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PlanFileError, match="no such plan file"):
        load_plan(tmp_path / "nope.json")


def test_unwritable_destination(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PlanFileError, match="cannot write the plan"):
        save_plan(_plan(), blocker / "p.json")
    assert os.listdir(tmp_path) == ["file"]


def test_loading_pauses_the_cyclic_collector_and_restores_it_even_when_refusing(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # A large plan is millions of live acyclic objects while it loads: the collector would rescan
    # them again and again (issue 22 point 4). It must be back on afterwards, refusal or not.
    import gc

    import reconciler.planfile as planfile

    seen: list[bool] = []
    real = planfile._PlanModel.model_validate

    def spy(raw: object) -> object:
        seen.append(gc.isenabled())
        return real(raw)

    assert gc.isenabled()
    monkeypatch.setattr(planfile._PlanModel, "model_validate", spy)
    assert loads_plan(dump_plan(_plan())) == _plan()
    text = dump_plan(_plan()).replace('"desired": 9', '"desired": 10')
    with pytest.raises(PlanFileError, match="digest"):
        loads_plan(text)
    assert seen == [False, False] and gc.isenabled()
