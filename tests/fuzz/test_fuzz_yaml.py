"""Property-based fuzzing of the YAML loader (issue 8, point 3).

Random mutations of a valid stock repository (byte flips, truncation, bad UTF-8, duplicated
lines and keys, type swaps, deep nesting, huge numbers, tabs) must never raise anything but a
ReconcilerError, every problem must name its file and, when the file could be parsed that far,
its line; and the CLI must exit 0 or 1 with no traceback.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from fuzz_kit import FUZZ, mutated, problems_are_located, run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.config import load, load_project
from reconciler.config._yaml import LineDict, LineList, parse, parse_careful, parse_simple
from reconciler.errors import ConfigError, ReconcilerError

BASE = Path(__file__).resolve().parents[1] / "badinput" / "base"
FILES = sorted(p.relative_to(BASE).as_posix() for p in BASE.rglob("*.yaml"))
ORIGINAL = {rel: (BASE / rel).read_bytes() for rel in FILES}


def _repo_with(rel: str, data: bytes) -> tempfile.TemporaryDirectory[str]:
    tmp = tempfile.TemporaryDirectory()
    root = Path(tmp.name) / "repo"
    shutil.copytree(BASE, root)
    (root / rel).write_bytes(data)
    return tmp


@FUZZ
@given(rel=st.sampled_from(FILES), data=st.data())
def test_a_mutated_repository_is_valid_or_a_located_config_error(rel: str, data: st.DataObject) -> None:
    broken = data.draw(mutated(ORIGINAL[rel]), label="file")
    with _repo_with(rel, broken) as tmp:
        try:
            load_project(Path(tmp) / "repo")
        except ConfigError as exc:
            assert exc.problems, "a ConfigError without problems"
            problems_are_located(exc.problems)
        except ReconcilerError:
            pass
        # anything else propagates and fails the property: that is a crash with a traceback


@FUZZ
@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
def test_any_text_parses_or_yields_located_problems(text: str) -> None:
    value, problems = parse(text, "stock/x.yaml")
    for problem in problems:
        assert problem.file == "stock/x.yaml" and isinstance(problem.line, int) and problem.line >= 1, problem
    assert value is not None or problems


def _shape(value: Any) -> Any:
    """The value with every line the loader records, for comparing two parses exactly."""
    if isinstance(value, LineDict):
        return ("map", value.line, {k: (value.line_of(k), _shape(v)) for k, v in value.items()})
    if isinstance(value, LineList):
        return ("list", value.line, [_shape(v) for v in value])
    return (type(value).__name__, value)


_LINE = st.one_of(
    st.from_regex(r"[A-Za-z0-9_-]{1,6}:( [A-Za-z0-9_.\-]{1,8})?", fullmatch=True),
    st.sampled_from(["", "# note", "  ", "- a", "x: [1]", "y: 'q'", "z: ~", "n: no", "t: 1_000", "o: 012"]),
)


@FUZZ
@given(lines=st.lists(st.tuples(st.sampled_from([0, 2, 4, 3]), _LINE), max_size=12))
def test_the_fast_path_builds_exactly_what_the_careful_parse_builds(lines: list[tuple[int, str]]) -> None:
    text = "\n".join(" " * indent + line for indent, line in lines) + "\n"
    fast = parse_simple(text)
    if fast is None:
        return  # not the simple shape: the careful parse reads it
    careful, problems = parse_careful(text, "f.yaml")
    assert problems == []
    assert _shape(fast) == _shape(careful)


@settings(FUZZ, max_examples=40)
@given(rel=st.sampled_from(FILES), data=st.data())
def test_the_cli_exits_0_or_1_and_never_shows_a_traceback(rel: str, data: st.DataObject) -> None:
    broken = data.draw(mutated(ORIGINAL[rel]), label="file")
    with _repo_with(rel, broken) as tmp:
        root = Path(tmp) / "repo"
        run = run_cli("-C", str(root), "validate")
        assert run.code in (0, 1), run
        assert "Traceback" not in run.stdout + run.stderr
        assert (run.code == 0) == (load(root).problems == [])
        assert not (root / ".reconciler").exists()


def test_the_mutations_do_break_files() -> None:
    """The control: the strategies above produce broken repositories, not only harmless edits."""
    broken = 0

    @settings(FUZZ, max_examples=60)
    @given(data=st.data())
    def count(data: st.DataObject) -> None:
        nonlocal broken
        with _repo_with("stock/oslo.yaml", data.draw(mutated(ORIGINAL["stock/oslo.yaml"]))) as tmp:
            broken += bool(load(Path(tmp) / "repo").problems)

    count()
    assert broken >= 20


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
