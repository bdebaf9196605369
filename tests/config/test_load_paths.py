"""``load`` by its fast paths gives exactly what the precise loader gives.

The fast paths: location files and catalogs of the common shape read by the line scanner
(``parse_simple``) instead of libyaml, and location-file sections checked as a whole and kept
as columns until ``Loaded.desired`` is asked for (validate never asks). The precise loader here is
the same code with both switched off: every file through libyaml (``parse_careful``) and every
position through ``_position``, which says what is wrong. Both must give the same desired state
(positions, their order and their ``file:line`` sources, declared locations, digests) and the same
problems, on the example repository, on every bad-input fixture and on generated repositories.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.config import _yaml, load
from reconciler.config._stock import StockCollector
from reconciler.config.loader import Loaded

from config_helpers import BASE_FILES, write_repo
from test_config_problems import CASES

# The bad-input corpus (tests/badinput): its repositories are assembled by its own kit.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "badinput"))
from badinput_kit import REPO_CASES, assemble, repo_cases  # noqa: E402


@contextlib.contextmanager
def precise() -> Iterator[None]:
    """Every file through libyaml, every position checked one by one."""
    with mock.patch.object(_yaml, "parse_simple", lambda text: None), \
            mock.patch.object(StockCollector, "_known_items", lambda self, target: {}):
        yield


def _summary(loaded: Loaded) -> dict[str, Any]:
    count = loaded.position_count
    desired = loaded.desired
    return {
        "problems": [(p.file, p.line, p.message, p.hint) for p in loaded.problems],
        "positions": list(desired.positions.items()),  # order and DesiredPosition equality (source included)
        "sources": [str(dp.source) for dp in desired.positions.values()],
        "count": (count, len(desired.positions)),
        "declared": list(desired.declared_locations.items()),
        "digests": (desired.file_digests, desired.digest),
        "catalog": loaded.catalog,
        "files": loaded.stock_files,
    }


def assert_same_as_precise(root: Path) -> dict[str, Any]:
    fast = _summary(load(root))
    with precise():
        slow = _summary(load(root))
    assert fast == slow
    assert fast["count"][0] == fast["count"][1]
    return fast


def test_the_example_repository(example_repo: Path) -> None:
    summary = assert_same_as_precise(example_repo)
    assert not summary["problems"] and summary["count"][0] > 0


def test_a_generated_bench_repository(tmp_path: Path) -> None:
    from bench._repo import RepoSpec, write_repo

    spec = RepoSpec(3, 200, "xseries", 7)
    write_repo(tmp_path, spec, "http://127.0.0.1:9")
    with mock.patch.object(_yaml, "parse_careful", wraps=_yaml.parse_careful) as careful, \
            mock.patch.object(StockCollector, "_position") as one_by_one:
        loaded = load(tmp_path)
    # the fast paths were taken: libyaml read only reconciler.yaml (its urls hold a colon), and
    # no position went through the one-by-one checks
    assert [c.args[1] for c in careful.call_args_list] == ["reconciler.yaml"] and not one_by_one.called
    assert loaded.position_count == spec.positions
    summary = assert_same_as_precise(tmp_path)
    assert not summary["problems"] and summary["count"] == (spec.positions, spec.positions)
    assert summary["sources"][:2] == ["stock/store-0000.yaml:5", "stock/store-0000.yaml:6"]


@pytest.mark.parametrize("case", repo_cases())
def test_every_bad_input_fixture(case: str, tmp_path: Path) -> None:
    assert_same_as_precise(assemble(REPO_CASES / case, tmp_path / "repo"))


@pytest.mark.parametrize("files", [pytest.param(files, id=name) for name, files, *_ in CASES])
def test_every_config_problem_case(files: dict[str, str | bytes | None], tmp_path: Path) -> None:
    summary = assert_same_as_precise(write_repo(tmp_path / "repo", files))
    assert summary["problems"]


_BIG = 3000


def _big_oslo(bad_line: str | None, at: int) -> str:
    lines = ["location: oslo", "stock:", "  xs:"]
    lines += [f"    RED-M: 5" if i == 0 else f"    BLUE-L: {i}" if i == 1 else f"    SKU-{i:05d}: {i % 40}" for i in range(_BIG)]
    if bad_line is not None:
        lines[at - 1] = bad_line
    return "\n".join(lines) + "\n"


def _big_catalog() -> str:
    rows = [f'  SKU-{i:05d}: {{ids: {{xs: "p-{i}"}}}}' for i in range(2, _BIG)]
    return BASE_FILES["stock/catalog.yaml"] + "\n".join(rows) + "\n"  # type: ignore[operator]


@pytest.mark.parametrize(("bad", "message"), [
    ("    SKU-00777: 2.5", "quantity of 'SKU-00777' in target 'xs' must be a whole number, not 2.5"),
    ("    SKU-00777: yes", "quantity of 'SKU-00777' in target 'xs' must be a whole number, not the boolean true"),
    ('    SKU-00777: "12"', "quantity of 'SKU-00777' in target 'xs' must be a whole number, not the text '12'"),
    ("    SKU-00777: -1", "quantity of 'SKU-00777' in target 'xs' is negative (-1)"),
    ("    SKU-00777: 1000001", "quantity of 'SKU-00777' in target 'xs' is 1000001, above the maximum of 1000000"),
    ("    SKU-99999: 1", "unknown SKU 'SKU-99999'"),
    ("    SKU-00002: 1", "duplicate key 'SKU-00002' (first at line 6)"),
    ("    SKU-00777: [5", "YAML syntax error: did not find expected ',' or ']' (while parsing a flow sequence started at line 781)"),
    ("    SKU-00777: &a 5", None),  # an anchor alone is plain YAML: libyaml reads it, no problem
    ("    SKU-00777: *a", "YAML syntax error: found undefined alias"),
])
def test_a_problem_in_a_big_file_keeps_its_file_and_line(bad: str, message: str | None, tmp_path: Path) -> None:
    at = 781  # SKU-00777's own line (SKU-i is on line i + 4)
    root = write_repo(tmp_path / "repo", {"stock/oslo.yaml": _big_oslo(bad, at), "stock/catalog.yaml": _big_catalog()})
    summary = assert_same_as_precise(root)
    found = [(file, line, msg) for file, line, msg, _hint in summary["problems"]]
    if message is None:
        assert found == [] and summary["count"][0] == _BIG
    elif message.startswith("YAML syntax error"):
        assert found == [("stock/oslo.yaml", found[0][1], message)] and found[0][1] in (at, at + 1)
    else:
        assert found == [("stock/oslo.yaml", at, message)]


def test_validate_counts_positions_and_plan_gets_the_same_objects(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo", {"stock/oslo.yaml": _big_oslo(None, 0), "stock/catalog.yaml": _big_catalog(),
                                      "stock/bergen.yaml": "location: bergen\nstock:\n  xs:\n    RED-M: 1\n"})
    loaded = load(root)
    assert not loaded.problems and loaded.position_count == _BIG + 1
    desired = loaded.desired
    assert desired is loaded.desired and len(desired.positions) == _BIG + 1
    key = ("xs", "oslo", "SKU-00777")
    dp = desired.positions[key]
    assert (dp.quantity, str(dp.source), dp.strategy, dp.protect) == (777 % 40, "stock/oslo.yaml:781", "merge", False)
    stored = next(k for k in desired.positions if k == key)
    assert dp.item is stored[2] and dp.item is next(sku for sku in loaded.catalog if sku == "SKU-00777")


def test_protected_items_and_later_sections_of_the_same_location(tmp_path: Path) -> None:
    catalog = 'items:\n  RED-M: {ids: {xs: "p-red-m"}, protect: true}\n  BLUE-L: {ids: {xs: "p-blue-l"}}\n'
    root = write_repo(tmp_path / "repo", {
        "stock/catalog.yaml": catalog,
        "stock/a.yaml": "location: oslo\nstrategy: replace\nstock:\n  xs:\n    RED-M: 5\n    BLUE-L: 3\n",
        "stock/b.yaml": "location: bergen\nstock:\n  xs:\n    BLUE-L: 1\n    RED-M: {quantity: 2, reorder_point: 1}\n",
        "stock/c.yaml": "location: bergen\nstock:\n  xs:\n    BLUE-L: 9\n",  # declared twice
        "stock/oslo.yaml": None,
    })
    summary = assert_same_as_precise(root)
    protect = {key: dp.protect for key, dp in summary["positions"]}
    assert protect == {("xs", "oslo", "RED-M"): True, ("xs", "oslo", "BLUE-L"): False,
                       ("xs", "bergen", "BLUE-L"): False, ("xs", "bergen", "RED-M"): True}
    assert [(line, msg) for _f, line, msg, _h in summary["problems"]] == [
        (4, "position xs/bergen/BLUE-L is declared twice: here and at stock/b.yaml:4")]


# --- generated repositories ----------------------------------------------------------------------

_SKUS = st.sampled_from(["RED-M", "BLUE-L", "RED-M", "BLUE-L", "GREEN-S", "red-m"])
_QTY = st.sampled_from(["0", "5", "12", "1000000", "1000001", "-1", "2.5", "yes", "'7'", '"7"', "", "~", "007", "0x1F",
                        "{quantity: 3}", "{quantity: 3, reorder_point: 1}", "{quantity: 2, tracking: true}",
                        "{quantity: 4, protect: true}", "{quantity: x}", "{quantiy: 1}", "{}", "[1]", "&a 3", "*a",
                        "5 # five", "{quantity: 3, reorder_point: -1}"])
# Mostly plain counts: a section takes the column path only when every position in it is plain.
_POSITION = st.tuples(_SKUS, st.one_of(st.integers(0, 40).map(str), st.integers(0, 40).map(str), _QTY)).map(
    lambda t: f"    {t[0]}: {t[1]}".rstrip())
_SECTION_HEAD = st.sampled_from(["  xs:", "  xs:", "  zt:", "  xs: {}", "  xx:"])
_NOISE = st.sampled_from(["    # a comment", "", "  # c", "\t", "    RED-M:  1  "])


@st.composite
def _location_file(draw: Any) -> str:
    lines = [f"location: {draw(st.sampled_from(['oslo', 'oslo', 'bergen', 'olso']))}"]
    if draw(st.booleans()):
        lines.append(f"strategy: {draw(st.sampled_from(['merge', 'replace', 'sideways']))}")
    lines.append("stock:")
    for _ in range(draw(st.integers(0, 2))):
        lines.append(draw(_SECTION_HEAD))
        if lines[-1].endswith("{}"):
            continue
        lines += draw(st.lists(st.one_of(_POSITION, _POSITION, _POSITION, _NOISE), max_size=6))
    return "\n".join(lines) + "\n"


_CATALOGS = st.sampled_from([
    BASE_FILES["stock/catalog.yaml"],
    'items:\n  RED-M: {ids: {xs: "p-red-m", zt: {product: "p1", variant: "v1"}}, protect: true}\n'
    '  BLUE-L: {ids: {xs: "p-blue-l"}}\n',
    "items:\n  RED-M:\n    name: Red shirt M\n    ids: {xs: 'p-red-m'}\n  BLUE-L:\n    protect: yes\n    ids:\n"
    '      xs: "p-blue-l"\n      zt: {product: "p2", variant: "v2"}\n',
    'items:\n  RED-M: {ids: {xs: "p-red-m"}}\n  RED-M: {ids: {xs: "p-red-m"}}\n',
])


@settings(max_examples=80, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_location_file(), min_size=1, max_size=3), _CATALOGS)
def test_generated_repositories(files: list[str], catalog: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        layout: dict[str, str | bytes | None] = {f"stock/f{i}.yaml": text for i, text in enumerate(files)}
        layout["stock/oslo.yaml"] = None
        layout["stock/catalog.yaml"] = catalog
        assert_same_as_precise(write_repo(Path(tmp) / "repo", layout))
