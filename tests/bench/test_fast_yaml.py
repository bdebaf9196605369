"""The fast path of the YAML loader builds exactly what the careful parse builds, or steps aside.

Every case compares ``parse`` (fast path first) with ``parse_careful`` (libyaml only): same
values, same lines, same problems with the same file:line. Hypothesis then throws generated
near-miss documents at both.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.config._yaml import LineDict, parse, parse_careful, parse_simple

SIMPLE = "# header\nlocation: oslo\nstrategy: replace\nstock:\n  xs-main:\n    A-1: 3\n    # note\n\n    B.2: 0\n  zt:\n    C/3: 12\n"


def _tree(value: object) -> object:
    if isinstance(value, LineDict):
        # lines() first: on a mapping the fast path left dense it counts lines instead of reading
        # key_lines, which reading key_lines would build; both must say the same.
        in_order = list(value.lines())
        assert in_order == [value.key_lines[k] for k in value] == list(value.lines())
        return ("map", value.line, dict(value.key_lines), {k: _tree(v) for k, v in value.items()})
    return (type(value).__name__, value)


def _same(text: str) -> None:
    fast_value, fast_problems = parse(text, "stock/x.yaml")
    slow_value, slow_problems = parse_careful(text, "stock/x.yaml")
    assert _tree(fast_value) == _tree(slow_value)
    assert [(p.file, p.line, p.message, p.hint) for p in fast_problems] == \
        [(p.file, p.line, p.message, p.hint) for p in slow_problems]


def test_the_common_shape_takes_the_fast_path() -> None:
    assert parse_simple(SIMPLE) is not None
    _same(SIMPLE)


@pytest.mark.parametrize("text", [
    'items:\n  SKU-000001: {ids: {xs-bench: "6f1d3c2a-9a51"}}\n  SKU-000002: {ids: {a: "1", b: {product: "p", variant: "v"}}}\n',
    '# from `reconciler init --from`\nitems:\n  A-1:\n    name: "Red T-shirt S"\n    ids: {xs: "p-1"}\n  B:\n    name: Plain words\n'
    "    ids: {kc: {product: 'tshirt', variant: s}}\n",
    "location: oslo\nstock:\n  xs:\n    A: {quantity: 2, reorder_point: 1}\n    B: 3\n    C: {}\n",
])
def test_catalogs_and_settings_take_the_fast_path(text: str) -> None:
    assert parse_simple(text) is not None
    _same(text)


@pytest.mark.parametrize("text", [
    "location: oslo\nstock:\n  xs:\n    A: 1\n    A: 2\n",          # duplicate SKU: both lines reported
    "location: oslo\nstock:\n  xs:\n    A: 1\n    # c\n    A: 2\n",  # duplicate across a comment
    "location: oslo\nlocation: bergen\n",                          # duplicate top-level key
    "location: oslo\nstock:\n  xs:\n    A: '1'\n",                  # quoted count: text
    "location: oslo\nstock:\n  xs:\n    A: 012\n",                  # octal
    "location: oslo\nstock:\n  xs:\n    A: 1_000\n",
    "location: oslo\nstock:\n  xs:\n    A: -1\n",
    "location: oslo\nstock:\n  xs:\n    A: 1.5\n",
    "location: oslo\nstock:\n  xs:\n    A: 1 # comment\n",
    "location: oslo\nstock:\n  xs:\n    A: true\n",
    "location: oslo\nstock:\n  xs:\n    A:\n",                      # null quantity
    "location: oslo\nstock:\n  xs:\n",                              # null section
    "location: oslo\nstock:\n",
    "location: NO\nstock: {}\n",                                   # a name YAML reads as a boolean
    "location: null\n", "location: off\n", "location: ~\n", "location: 2024-01-01\n",
    "location: oslo\nstock:\n  xs:\n    A: {quantity: 2, reorder_point: 1}\n",
    "location: oslo\nstock:\n  xs:\n    A:\n      quantity: 2\n",   # a fourth level
    "location: oslo\nstock:\n  xs:\n    A: 1\n   B: 2\n",           # bad indentation
    "location: oslo\nstock:\n  xs:\n    A: 1\n      B: 2\n",
    "location: oslo\nstock:\n\txs:\n    A: 1\n",                     # a tab
    "location: oslo\r\nstock:\r\n  xs:\r\n    A: 1\r\n",            # CRLF
    "location: oslo\nstock:\n  xs:\n    A: 1\n# c\u2028    B: 2\n",  # a YAML line break in a comment
    "location: oslo\n# bell \x07\n",                                # non-printable in a comment
    "  location: oslo\n",                                           # indented root
    "location: oslo\nstock:\n  xs:\n    A: 1\n  zt:\n    A: 1\n    B: 2",  # no final newline
    "---\nlocation: oslo\n", "- a\n- b\n", "", "# only a comment\n", "a:b: 1\n",
    "location: oslo\nstock:\n  xs:\n    <<: 1\n", "location: oslo\nstock:\n  xs:\n    &x A: 1\n",
    "location: oslo\nstock:\n  xs:\n    A : 1\n", "location: oslo\nstock:\n  xs:\n    A:  7  \n",
    "location: oslo\nstock:\n  xs:\n    A: 1\n    # c\n    B: 2\n\n    C: 3\n",      # three runs, one mapping
    "location: oslo\nstock:\n  xs:\n    A: 1\n    B: x\n    C: 3\n",                # a name between runs
    "location: oslo\nstock:\n  xs:\n    A: 1\n    B: 2\n    # c\n    A: 3\n",    # duplicate in a later run
    "location: oslo\nstock:\n  xs:\n    A: 1\n# del \x7f\n", "location: oslo\n# ff \x0c\n",  # ASCII controls
    "location: oslo\n# tab\tin a comment\n", "location: ösl\nstock:\n  xs:\n    Å: 1\n",  # not plain ASCII
    "location: oslo\n# nbsp \xa0 and \x85\n",
    # flow mappings on one line, quoted text, plain text of several words (catalogs, settings)
    'items:\n  A: {ids: {xs: "p-1", zt: {product: "p", variant: \'v\'}}}\n  B:\n    name: Red T-shirt S\n',
    'items:\n  A:\n    name: "Red"\n    ids:\n      xs: "p-1"\n      kc: {product: a, variant: b}\n',
    "items:\n  A: {ids: {xs: {a: {b: 1}}}}\n",                   # four levels of flow
    "A: {a: 1,}\n", "A: {a: 1, a: 2}\n", "A: {a: 1, b: 2, a: 3}\n", "A: {a: 1}}\n", "A: {a: 1} # c\n",
    'A: {a: "x\\"y"}\n', "A: {a: 'it''s'}\n", 'A: "x" # c\n', "A: 'x'\n", 'A: ""\n', "A: ''\n",
    'A: {a: "", b: \'\'}\n', "A: {}\n", "A: { }\n", "A: {a: yes}\n", "A: {a: 012}\n", "A: {a: 1.5}\n",
    "A: {a:b}\n", "A: {a: b c}\n", "A: {a: [1]}\n", 'A: {"a": 1}\n', "A: {a : 1}\n", "A: {a: ~}\n",
    "A: {a: -1}\n", "A: {a: 1, b: {}}\n", "A: {a: {}, b: {c: 1}}\n", "A: {a: 1 , b: 2 }\n", "A: {a: 1,b: 2}\n",
    "A: {a: NO}\n", "A: {NO: a}\n", "A: {<<: a}\n", "A: {a: &x 1}\n", "A: {a: !!str 1}\n",
    "name: Red T-shirt S\n", "name: yes no\n", "name: a  b\n", "name: a #b\n", "name: No\n", "name: a b:\n",
    'A: "x"y"\n', "A: ö\n", 'A: "ö"\n', 'A: {a: "ö"}\n', 'A: "a\tb"\n', "A: 'a\tb'\n", 'A: "a: b # c"\n',
    "A: {a: 1}\nA: 2\n", "A: {a: 1}\n  b: 2\n", "A: 'x'\n  b: 2\n", "A: Red\n  shirt\n",
    "A: \n", "A:   \n", "location: oslo\nstock: \n  xs:\n    A: 1\n", "location: oslo\nstock:\n  xs:\n    A: \n",
])
def test_near_misses_give_what_the_careful_parse_gives(text: str) -> None:
    _same(text)


_KEYS = st.sampled_from(["A", "B", "A-1", "x.y", "NO", "on", "12", "0", "<<", "a b", "'q'", "k#", "null", "SKU/2"])
_VALUES = st.sampled_from(["", "1", "0", "007", "12", "-3", "1.5", "yes", "oslo", "'7'", "~", "{}", "[1]", "1 # c",
                           "2024-01-01", "0x1F", "a:b", "*x", "&y 3",
                           '"x"', "''", '"a b"', "{a: 1}", '{a: "x", b: {c: yes}}', "{a: 1, a: 2}", "Red T-shirt",
                           "a  b", "{a: b c}", "{ }", "{a: 1,}", "{ids: {xs: 'p', zt: {product: a, variant: 2}}}",
                           "on off", "{a: {b: {c: {d: 1}}}}", '"q" x', "{a: 1} # c"])
_INDENTS = st.sampled_from([0, 1, 2, 3, 4, 6])
_LINES = st.one_of(
    st.tuples(_INDENTS, _KEYS, _VALUES).map(lambda t: " " * t[0] + f"{t[1]}: {t[2]}".rstrip()),
    st.tuples(_INDENTS, _KEYS, st.sampled_from(["", " ", "  "])).map(lambda t: " " * t[0] + f"{t[1]}:{t[2]}"),
    st.sampled_from(["", "# c", "    # c", "\t", "---"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_LINES, min_size=1, max_size=12), st.booleans())
def test_generated_documents_give_what_the_careful_parse_gives(lines: list[str], final_newline: bool) -> None:
    _same("\n".join(lines) + ("\n" if final_newline else ""))


def test_a_dense_mapping_builds_its_key_lines_only_when_asked() -> None:
    section = parse_simple(SIMPLE)["stock"]["xs-main"]  # type: ignore[index]
    assert section.dense_from is None  # a comment and a blank line split its runs
    dense = parse_simple("location: oslo\nstock:\n  xs:\n    A: 1\n    B: 2\n    C: 3\n")["stock"]["xs"]  # type: ignore[index]
    assert dense.dense_from == 4 and list(dense.lines()) == [4, 5, 6]
    assert dense.line_of("C") == 6 and dense.key_lines == {"A": 4, "B": 5, "C": 6} and dense.dense_from is None
