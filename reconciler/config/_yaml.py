"""Line-aware YAML loading that refuses what default loaders silently accept.

The stock YAML is composed into nodes by libyaml (``CSafeLoader``) when it is available, then one
Python walk turns the nodes into plain values. The walk is where we record the line of every
mapping key (for ``file:line`` in errors) and catch duplicate keys, which ``yaml.safe_load`` would
resolve by silently keeping the last one. Constructing values ourselves also keeps per-scalar
cost low: a million positions are two million scalars.

Mapping keys are always taken as the text written (``12345:`` is the SKU "12345", ``NO:`` is the
location "NO", not ``False``), because every key in our format is a name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.errors import Problem

_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_TAG = "tag:yaml.org,2002:"
STR_TAG, INT_TAG, FLOAT_TAG = _TAG + "str", _TAG + "int", _TAG + "float"
BOOL_TAG, NULL_TAG, MERGE_TAG = _TAG + "bool", _TAG + "null", _TAG + "merge"
# Standard tags whose values we keep as the text written (dates, binary, ...).
_TEXT_TAGS = frozenset({_TAG + "timestamp", _TAG + "binary", _TAG + "value"})


class LineLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Safe loader (libyaml when available) used only to compose nodes with their marks."""

    def resolve(self, kind: type, value: str, implicit: tuple[bool, bool]) -> str:
        # libyaml calls this once per scalar; the stock case (a SKU, a plain count) is decided
        # here without the regex scan, which is most of the cost of composing a big file.
        if kind is ScalarNode and value:
            if not implicit[0]:
                return STR_TAG
            if value.isdigit() and value.isascii() and (value[0] != "0" or len(value) == 1):
                return INT_TAG
            if value[0] not in _IMPLICIT_FIRST:
                return STR_TAG
        return super().resolve(kind, value, implicit)


_IMPLICIT_FIRST = frozenset(key for key in LineLoader.yaml_implicit_resolvers if key)


class LineDict(dict):  # type: ignore[type-arg]
    """A mapping that remembers its own line and the line of each key (1-based)."""

    __slots__ = ("line", "key_lines")

    def __init__(self, line: int = 1) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[str, int] = {}

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class LineList(list):  # type: ignore[type-arg]
    """A sequence that remembers its own line."""

    __slots__ = ("line",)

    def __init__(self, line: int = 1) -> None:
        super().__init__()
        self.line = line


def line_at(root: Any, path: tuple[Any, ...]) -> int | None:
    """The line of the deepest node of ``path`` that exists under ``root``."""
    line = getattr(root, "line", None)
    node = root
    for step in path:
        if isinstance(node, LineDict) and isinstance(step, str) and step in node:
            line = node.line_of(step)
            node = node[step]
        elif isinstance(node, LineList) and isinstance(step, int) and 0 <= step < len(node):
            node = node[step]
            line = getattr(node, "line", line)
        else:
            break
    return line


class _Builder:
    """Turns composed nodes into LineDict/LineList/scalars, collecting problems."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self._ctor = SafeConstructor()
        # Aliased nodes are built once: keeps "billion laughs" documents linear.
        self._memo: dict[int, Any] = {}

    def build(self, node: Node) -> Any:
        if node.__class__ is ScalarNode:
            return self.scalar(node)  # type: ignore[arg-type]
        done = self._memo.get(id(node))
        if done is not None:
            return done
        if isinstance(node, MappingNode):
            return self.mapping(node)
        if isinstance(node, SequenceNode):
            out = LineList(node.start_mark.line + 1)
            self._memo[id(node)] = out
            out.extend(self.build(child) for child in node.value)
            return out
        return self.scalar(node)  # type: ignore[arg-type]

    def mapping(self, node: MappingNode) -> LineDict:
        out = LineDict(node.start_mark.line + 1)
        self._memo[id(node)] = out
        lines = out.key_lines
        scalar = self.scalar
        for knode, vnode in node.value:
            kline = knode.start_mark.line + 1
            if knode.__class__ is not ScalarNode or knode.tag == MERGE_TAG:
                self._problem(kline, "only plain names can be keys here (no merge keys `<<`, lists or mappings)",
                              "Write each key out as plain text.")
                continue
            key = knode.value
            first = lines.get(key)
            if first is not None:
                self._problem(kline, f"duplicate key {key!r} (first at line {first})",
                              "Remove or rename one of them: YAML would silently keep only the last one.")
                continue
            lines[key] = kline
            out[key] = scalar(vnode) if vnode.__class__ is ScalarNode else self.build(vnode)
        return out

    def scalar(self, node: ScalarNode) -> Any:
        tag, value = node.tag, node.value
        if tag == STR_TAG:
            return value
        if tag == INT_TAG:
            # Fast path for the common case; the constructor handles 0x.., 0o.., 1_000, octal.
            if value.isascii() and value.isdigit() and (value[0] != "0" or len(value) == 1):
                return int(value)
            return self._construct(node, self._ctor.construct_yaml_int)
        if tag == FLOAT_TAG:
            return self._construct(node, self._ctor.construct_yaml_float)
        if tag == BOOL_TAG:
            return self._construct(node, self._ctor.construct_yaml_bool)
        if tag == NULL_TAG:
            return None
        if tag in _TEXT_TAGS:
            return value
        self._problem(node.start_mark.line + 1, f"unsupported YAML tag {tag!r}",
                      "Remove the tag: reconciler files hold plain text, numbers and booleans only.")
        return value

    def _construct(self, node: ScalarNode, fn: Any) -> Any:
        try:
            return fn(node)
        except (ConstructorError, ValueError) as exc:
            self._problem(node.start_mark.line + 1, f"cannot read the value {node.value!r}: {exc}",
                          "Write a plain number, true/false or quoted text.")
            return node.value

    def _problem(self, line: int, message: str, hint: str) -> None:
        self.problems.append(Problem(message, self.file, line, hint))


def read_text(path: Path, rel: str) -> tuple[bytes | None, str | None, list[Problem]]:
    """The file's bytes and its UTF-8 text, or the problem that stops us reading it."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        return None, None, [Problem(f"cannot read the file: {reason}", rel, None,
                                    "Check that it exists and that its permissions allow reading it.")]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        msg = f"the file is not valid UTF-8 (byte 0x{data[exc.start]:02x} at byte offset {exc.start})"
        return data, None, [Problem(msg, rel, line, "Save the file as UTF-8.")]
    return data, text.removeprefix("\ufeff"), []


def parse(text: str, rel: str) -> tuple[Any, list[Problem]]:
    """Plain values with line information, or None plus the problems found."""
    loader = LineLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        return None, [_syntax_problem(exc, rel, text)]
    except yaml.YAMLError as exc:
        return None, [Problem(f"YAML syntax error: {exc}", rel, None, _SYNTAX_HINT)]
    finally:
        loader.dispose()
    if node is None:
        return None, [Problem("the file is empty (or holds only comments)", rel, 1,
                              "Add content or delete the file; see docs/configuration.md for its format.")]
    builder = _Builder(rel)
    value = builder.build(node)
    return value, builder.problems


_SYNTAX_HINT = "Fix the YAML at this line: check the indentation, colons and quotes."


def _syntax_problem(exc: yaml.MarkedYAMLError, rel: str, text: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    what = exc.problem or "invalid YAML"
    if exc.context:
        context = exc.context
        if exc.context_mark is not None and exc.context_mark.line + 1 != line:
            context = f"{context} started at line {exc.context_mark.line + 1}"
        what = f"{what} ({context})"
    hint = _SYNTAX_HINT
    if mark is not None and _char_at(text, mark.line, mark.column) == "\t":
        hint = "YAML cannot indent with tabs: replace the tab at this line with spaces."
    return Problem(f"YAML syntax error: {what}", rel, line, hint)


def _char_at(text: str, line: int, column: int) -> str:
    lines = text.split("\n")
    if 0 <= line < len(lines) and 0 <= column < len(lines[line]):
        return lines[line][column]
    return ""
