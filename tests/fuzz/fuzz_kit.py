"""Mutation strategies and checks shared by the fuzz tests."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterable

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from reconciler.errors import Problem

# The CLI runner of the bad-input corpus: main() in this process, exit code and output captured.
sys.path.insert(0, str(Path(__file__).parent.parent / "badinput"))
from badinput_kit import Run, run_cli  # noqa: E402,F401

# derandomize: the same examples on every run, so CI never flakes on a new random draw; a
# failure found locally is reproducible from its printed example.
FUZZ = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Values a careless edit puts where a count, a name or a mapping was.
SWAPS = [b"2.5", b'"12"', b"true", b"~", b"[]", b"{}", b"-3", b"1e9", b"0x1F", b"012", b".inf",
         b"99999999999999999999999999999", b"!!binary aGk=", b"&a x", b"*a", b"*nope", b"!!python/object:os.system x",
         b"<<", b"? [a]", b"|", b">-", b"'unterminated", b"\"esc \\q\"", b"2001-12-14", b"null", b"NO", b"=", b"@x", b"%"]


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` after one to four random edits."""
    data = original
    for _ in range(draw(st.integers(1, 4))):
        data = draw(_edit(data))
    return data


def _edit(data: bytes) -> st.SearchStrategy[bytes]:
    size = max(1, len(data))
    pos = st.integers(0, size)
    lines = data.split(b"\n")
    line_no = st.integers(0, max(0, len(lines) - 1))

    def at(p: int, new: bytes, cut: int = 0) -> bytes:
        return data[:p] + new + data[p + cut:]

    def swap_value(n: int, value: bytes) -> bytes:
        head, sep, _ = lines[n].partition(b": ")
        lines2 = list(lines)
        lines2[n] = head + b": " + value if sep else value + b" " + head
        return b"\n".join(lines2)

    def duplicate(n: int) -> bytes:
        return b"\n".join(lines[: n + 1] + [lines[n]] + lines[n + 1:])

    def reindent(n: int, by: int) -> bytes:
        lines2 = list(lines)
        lines2[n] = (b" " * by + lines2[n].lstrip(b" ")) if by >= 0 else lines2[n][-by:]
        return b"\n".join(lines2)

    return st.one_of(
        st.builds(lambda p, x: at(min(p, len(data) - 1), bytes([data[min(p, len(data) - 1)] ^ x]), 1) if data else b"\xff",
                  pos, st.integers(1, 255)),                                        # byte flip
        st.builds(lambda p: data[:p], pos),                                        # truncation
        st.builds(lambda p, b: at(p, b), pos, st.sampled_from([b"\xff", b"\xc3(", b"\xed\xa0\x80", b"\x00", b"\xef\xbb\xbf"])),
        st.builds(duplicate, line_no),                                             # duplicated key/line
        st.builds(swap_value, line_no, st.sampled_from(SWAPS)),                    # type swap
        st.builds(lambda n, d: swap_value(n, b"[" * d + b"]" * d), line_no, st.integers(1, 400)),  # deep nesting
        st.builds(lambda n, k: swap_value(n, b"9" * k), line_no, st.integers(7, 400)),             # huge number
        st.builds(reindent, line_no, st.integers(-3, 7)),                          # indentation
        st.builds(lambda p: at(p, b"\t"), pos),                                    # a tab
        st.builds(lambda n: b"\n".join(lines[:n] + lines[n + 1:]), line_no),        # a lost line
    )


WHOLE_FILE = ("not found (", "cannot read the file:")


def problems_are_located(problems: Iterable[Problem]) -> None:
    """Every problem names its file, and a line unless it is about the file as a whole."""
    for problem in problems:
        assert problem.file, problem
        assert problem.hint, problem
        if not any(w in problem.message for w in WHOLE_FILE):
            assert isinstance(problem.line, int) and problem.line >= 1, problem
