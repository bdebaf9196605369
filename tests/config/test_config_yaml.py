"""The line-aware YAML loader: lines, duplicate keys, keys kept as text, safe construction."""

from __future__ import annotations

from reconciler.config._yaml import LineDict, line_at, parse


def test_keys_are_text_and_lines_are_recorded() -> None:
    value, problems = parse("NO: 1\n12345: 2\nnested:\n  a: {b: 3}\n  list: [1, 2]\n", "f.yaml")

    assert problems == []
    assert value == {"NO": 1, "12345": 2, "nested": {"a": {"b": 3}, "list": [1, 2]}}
    assert isinstance(value, LineDict) and value.key_lines == {"NO": 1, "12345": 2, "nested": 3}
    assert line_at(value, ("nested", "a", "b")) == 4
    assert line_at(value, ("nested", "missing")) == 3


def test_scalars_follow_yaml_rules() -> None:
    value, problems = parse("a: 0x10\nb: 1_000\nc: 2.5\nd: true\ne: ~\nf: '7'\ng: 0\nh: 2024-01-01\n", "f.yaml")

    assert problems == []
    assert value == {"a": 16, "b": 1000, "c": 2.5, "d": True, "e": None, "f": "7", "g": 0, "h": "2024-01-01"}


def test_duplicate_keys_in_nested_mappings_are_all_found() -> None:
    _, problems = parse("a: 1\nb:\n  x: 1\n  x: 2\na: 3\n", "f.yaml")

    assert [(p.line, p.message) for p in problems] == [
        (4, "duplicate key 'x' (first at line 3)"),
        (5, "duplicate key 'a' (first at line 1)"),
    ]


def test_aliases_are_built_once_so_alias_bombs_stay_small() -> None:
    text = "a: &a [x, x, x, x, x, x, x, x, x]\n"
    for name, prev in zip("bcdefghij", "abcdefghi"):
        text += f"{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"

    value, problems = parse(text, "bomb.yaml")

    assert problems == []
    assert value["j"][0] is value["j"][1]


def test_merge_keys_are_refused() -> None:
    _, problems = parse("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n", "f.yaml")

    assert [(p.line, p.message) for p in problems] == [
        (3, "only plain names can be keys here (no merge keys `<<`, lists or mappings)")
    ]


def test_multiple_documents_are_a_syntax_error() -> None:
    value, problems = parse("a: 1\n---\nb: 2\n", "f.yaml")

    assert value is None
    assert problems[0].line == 2
    assert problems[0].message == ("YAML syntax error: but found another document "
                                   "(expected a single document in the stream started at line 1)")


def test_byte_order_mark_is_accepted(config_repo) -> None:  # type: ignore[no-untyped-def]
    from reconciler.config import validate_project

    root = config_repo({"stock/bergen.yaml": "\ufefflocation: bergen\nstock: {zt: {RED-M: 1}}\n"})

    assert validate_project(root) == []
