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

import re
from pathlib import Path
from typing import Any, Iterator, Sequence

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

    __slots__ = ("line", "_key_lines", "dense_from")

    def __init__(self, line: int = 1) -> None:
        super().__init__()
        self.line = line
        self._key_lines: dict[str, int] = {}
        # Set by the fast path when every key sits on consecutive lines from this one, in order:
        # the key -> line dict is then built only if something asks for it (a valid location
        # file of 5,000 positions never does; building it was ~0.15 s per million positions).
        self.dense_from: int | None = None

    @property
    def key_lines(self) -> dict[str, int]:
        """Key -> line; add keys to the mapping only after reading this (it freezes the lines)."""
        if self.dense_from is not None:
            self._key_lines = dict(zip(self, range(self.dense_from, self.dense_from + len(self))))
            self.dense_from = None
        return self._key_lines

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)

    def lines(self) -> Iterator[int]:
        """The line of each key, in the mapping's order (cheap for a dense mapping)."""
        if self.dense_from is not None:
            return iter(range(self.dense_from, self.dense_from + len(self)))
        return map(self._key_lines.__getitem__, self)

    def line_numbers(self) -> Sequence[int]:
        """The line of each key, in the mapping's order, to keep (a range for a dense mapping)."""
        if self.dense_from is not None:
            return range(self.dense_from, self.dense_from + len(self))
        return list(self.lines())


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


# Deeper than any reconciler file needs, and far from Python's recursion limit.
MAX_NESTING = 50


class _Builder:
    """Turns composed nodes into LineDict/LineList/scalars, collecting problems."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self._ctor = SafeConstructor()
        # Aliased nodes are built once: keeps "billion laughs" documents linear.
        self._memo: dict[int, Any] = {}
        self._depth = 0

    def build(self, node: Node) -> Any:
        if node.__class__ is ScalarNode:
            return self.scalar(node)  # type: ignore[arg-type]
        done = self._memo.get(id(node))
        if done is not None:
            return done
        # The walk is recursive: without a cap, a few hundred nested `[` end in RecursionError.
        if self._depth >= MAX_NESTING:
            self._problem(node.start_mark.line + 1, f"lists or mappings nested more than {MAX_NESTING} levels deep",
                          "Reconciler files nest a few levels at most: look for a runaway `[`, `{` or indentation.")
            return None
        self._depth += 1
        try:
            if isinstance(node, MappingNode):
                return self.mapping(node)
            if isinstance(node, SequenceNode):
                out = LineList(node.start_mark.line + 1)
                self._memo[id(node)] = out
                out.extend(self.build(child) for child in node.value)
                return out
            return self.scalar(node)  # type: ignore[arg-type]
        finally:
            self._depth -= 1

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
    fast = parse_simple(text)
    if fast is not None:
        return fast, []
    return parse_careful(text, rel)


def parse_careful(text: str, rel: str) -> tuple[Any, list[Problem]]:
    """The libyaml parse: every YAML feature, every error with its line."""
    loader = LineLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        return None, [_syntax_problem(exc, rel, text)]
    except yaml.reader.ReaderError as exc:
        return None, [_reader_problem(exc, rel, text)]
    except yaml.YAMLError as exc:
        return None, [Problem(f"YAML syntax error: {exc}", rel, None, _SYNTAX_HINT)]
    finally:
        loader.dispose()
    if node is None:
        return None, [Problem("the file is empty (or holds only comments)", rel, 1,
                              "Add content or delete the file; see docs/configuration.md for its format.")]
    builder = _Builder(rel)
    value = builder.build(node)
    if value is None and not builder.problems:
        # A document that is only a null (null, ~, Null, NULL) holds no data; None would read
        # as "already reported" to the caller and the file would be skipped in silence.
        return None, [Problem(f"the file holds only a null value ({node.value!r})", rel, node.start_mark.line + 1,
                              "Write the file's content, or delete the file; see docs/configuration.md for its format.")]
    return value, builder.problems


# --- the fast path ------------------------------------------------------------------------------
#
# A location file of a large chain is a few hundred thousand lines of `    SKU: 12`. libyaml plus
# the node walk cost ~5 us a line. This scanner reads the common shape (block mappings at most
# three levels deep, plain names as keys, plain counts and names as values, comments and blank
# lines) and builds exactly the tree `parse_careful` would: runs of `name: count` lines in the
# innermost mappings are matched by one regular expression and converted in bulk, so the cost
# per position is a fraction of a microsecond. Anything else (quotes, flow style, anchors, tags,
# tabs, CRLF, duplicate keys, odd indentation, other scalars) makes it give up, and the careful
# parse reads the file: that one reports errors with their lines, so the fast path never has to
# produce an error itself.

_KEY = r"[A-Za-z0-9_][A-Za-z0-9_.\-/+]*"
_COUNT = r"0|[1-9][0-9]*"
_SIMPLE_LINE = re.compile(rf"({_KEY}):(?: +(.*?))? *", re.ASCII)
_PLAIN_COUNT = re.compile(_COUNT, re.ASCII)
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-/]*", re.ASCII)
# Plain text of several words (`name: Red T-shirt S`), in a block mapping only: no character
# here can end the scalar, start a comment or an indicator, so YAML reads exactly these characters.
_PLAIN_TEXT = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-/]*(?: +[A-Za-z0-9_.\-/]+)+", re.ASCII)
# Quoted text without escapes: '' in single quotes and \ in double quotes are left to libyaml.
_QUOTED = re.compile(r"\"([^\"\\]*)\"|'([^']*)'")
# One `key: value` of a flow mapping written on one line (`{ids: {xs: "p-1"}}`); the value is
# quoted text, a plain word or the `{` of a nested flow mapping.
_FLOW_VALUE = r"\"([^\"\\]*)\"|'([^']*)'|([A-Za-z0-9_.\-/]+)"
_FLOW_ENTRY = re.compile(rf" *({_KEY}): +(?:{_FLOW_VALUE}|(\{{))", re.ASCII)
_FLOW_NEXT = re.compile(r" *([,}])")
# A flow mapping of quoted text and plain words only, checked whole; its pairs are then found by
# _FLOW_PAIR (nothing between two pairs but blanks and a comma, so they cannot be misaligned).
_FLOW_PAIR = re.compile(rf"({_KEY}): +(?:{_FLOW_VALUE})", re.ASCII)
_FLOW_ONE = rf"{_KEY}: +(?:\"[^\"\\]*\"|'[^']*'|[A-Za-z0-9_.\-/]+)"  # _FLOW_PAIR without groups
_FLOW_FLAT = re.compile(rf"\{{ *(?:{_FLOW_ONE} *(?:, *{_FLOW_ONE} *)*)?\}}", re.ASCII)
_MAX_FLOW = 3
_NON_PRINTABLE = yaml.reader.Reader.NON_PRINTABLE
_PLAIN_ASCII = bytes(range(0x20, 0x7F)) + b"\n"
_MAX_DEPTH = 6
_RUN_DEPTH = 3  # runs of `name: count` are looked for from the third level on (a location file's SKUs)
_runs: dict[int, re.Pattern[str]] = {}


def _run_pattern(indent: int) -> re.Pattern[str]:
    """Consecutive `<indent>name: count` lines, each ending in a newline or the end of the text."""
    pattern = _runs.get(indent)
    if pattern is None:
        line = rf"{' ' * indent}{_KEY}: +(?:{_COUNT}) *(?:\n|\Z)"
        pattern = _runs[indent] = re.compile(rf"(?:{line})+", re.ASCII)
    return pattern


class _Simple:
    """State of one scan: the open mappings, and a key waiting for its indented mapping."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.root: LineDict | None = None
        self.stack: list[tuple[int, LineDict]] = []  # (indent, mapping) per open depth
        self.pending: tuple[LineDict, str] | None = None

    def open(self, indent: int, number: int) -> bool:
        """Place a content line at ``indent``: nest, stay or close mappings; False if not simple."""
        stack = self.stack
        if self.pending is not None:
            parent, key = self.pending
            if indent <= stack[-1][0] or len(stack) >= _MAX_DEPTH:
                return False  # `key:` with nothing nested (null) or nested too deep
            child = parent[key] = LineDict(number)
            stack.append((indent, child))
            self.pending = None
        elif self.root is None:
            if indent:
                return False
            self.root = LineDict(number)
            stack.append((0, self.root))
        else:
            while indent < stack[-1][0]:
                stack.pop()
                if not stack:
                    return False
            if indent != stack[-1][0]:
                return False
        return True

    def run(self, pos: int, indent: int, number: int) -> tuple[int, int] | None:
        """Read a run of leaf lines at ``pos`` in bulk: (next position, lines read), or None."""
        match = _run_pattern(indent).match(self.text, pos)
        if match is None:
            return None
        end = match.end()
        # The run matched line by line, and keys hold no ':' or blank: dropping the colons and
        # splitting on blanks leaves exactly key, count, key, count, ...
        words = self.text[pos:end].replace(":", "").split()
        keys = words[0::2]
        count = len(keys)
        mapping = self.stack[-1][1]
        before = len(mapping)
        if before:
            # Not the mapping's first keys: their lines go in the dict (read it before adding).
            mapping.key_lines.update(zip(keys, range(number, number + count)))
        mapping.update(zip(keys, map(int, words[1::2])))
        if len(mapping) != before + count:
            return None  # a duplicate key: the careful parse reports it with both lines
        if not before:
            mapping.dense_from = number  # keys on lines number, number + 1, ... in order
        return end, count

    def line(self, content: str, number: int) -> bool:
        """One `key:` or `key: value` line in the current mapping."""
        match = _SIMPLE_LINE.fullmatch(content)
        if match is None:
            return False
        mapping = self.stack[-1][1]
        key, value = match.group(1), match.group(2)
        if key in mapping.key_lines:
            return False  # a duplicate: the careful parse reports both lines
        mapping.key_lines[key] = number
        if value is None:
            self.pending = (mapping, key)
            mapping[key] = None
            return True
        scalar = _simple_value(value, number)
        mapping[key] = scalar
        return scalar is not _NOT_SIMPLE


def parse_simple(text: str) -> LineDict | None:
    """The file as ``parse_careful`` would build it, or None when it is not of the simple shape."""
    # YAML breaks lines at these too, and refuses non-printable characters even in comments.
    # Printable ASCII and newlines only (one C pass, ~15 ms for 1M lines) rules all of them out;
    # anything else gets the full check (a regex pass, ~8x slower).
    if not (text.isascii() and not text.encode("ascii").translate(None, _PLAIN_ASCII)):
        if "\r" in text or "\x85" in text or "\u2028" in text or "\u2029" in text or _NON_PRINTABLE.search(text):
            return None
    scan = _Simple(text)
    pos, number, size = 0, 0, len(text)
    while pos < size:
        end = text.find("\n", pos)
        end = size if end < 0 else end
        number += 1
        raw = text[pos:end]
        content = raw.lstrip(" ")
        if not content or content[0] == "#":
            pos = end + 1
            continue
        indent = len(raw) - len(content)
        if not scan.open(indent, number):
            return None
        if len(scan.stack) >= _RUN_DEPTH:
            bulk = scan.run(pos, indent, number)
            if bulk is not None:
                pos, number = bulk[0], number + bulk[1] - 1
                continue
        if not scan.line(content, number):
            return None
        pos = end + 1
    return None if scan.pending is not None else scan.root


_NOT_SIMPLE = object()


def _simple_value(value: str, number: int) -> Any:
    """The value of a block mapping's ``key: value`` line; _NOT_SIMPLE when not of the simple shape."""
    first = value[:1]  # "" for `key: ` (a blank after the colon): not simple
    if first == "{":
        flow = _flow_mapping(value, 0, number, 1)
        return flow[0] if flow is not None and flow[1] == len(value) else _NOT_SIMPLE
    if first == '"' or first == "'":
        quoted = _QUOTED.fullmatch(value)
        if quoted is None:
            return _NOT_SIMPLE
        return quoted.group(1) if first == '"' else quoted.group(2)
    if " " in value:
        return _plain_text(value) if _PLAIN_TEXT.fullmatch(value) else _NOT_SIMPLE
    return _simple_scalar(value)


def _flow_mapping(text: str, pos: int, number: int, depth: int) -> tuple[LineDict, int] | None:
    """The flow mapping whose ``{`` is at ``pos`` (all on line ``number``) and the position after
    its ``}``; None when it is not of the simple shape (the careful parse then reads the file)."""
    out = LineDict(number)
    lines = out.key_lines
    flat = _FLOW_FLAT.match(text, pos)
    if flat is not None:
        for key, double, single, plain in _FLOW_PAIR.findall(text, pos, flat.end()):
            # findall gives "" for a group that took no part: plain words are never empty, so
            # without one the value was quoted ("" or '' when the quotes held nothing).
            value = _simple_scalar(plain) if plain else double or single
            if value is _NOT_SIMPLE or key in lines:
                return None
            lines[key] = number
            out[key] = value
        return out, flat.end()
    pos += 1
    while True:
        entry = _FLOW_ENTRY.match(text, pos)
        if entry is None:
            return None
        key = entry.group(1)
        if key in lines:
            return None  # a duplicate: the careful parse reports both
        if entry.group(5) is not None:
            if depth >= _MAX_FLOW:
                return None
            nested = _flow_mapping(text, entry.end() - 1, number, depth + 1)
            if nested is None:
                return None
            value, pos = nested
        else:
            double, single, plain = entry.group(2, 3, 4)
            value = double if double is not None else single if single is not None else _simple_scalar(plain)
            if value is _NOT_SIMPLE:
                return None
            pos = entry.end()
        lines[key] = number
        out[key] = value
        end = _FLOW_NEXT.match(text, pos)
        if end is None:
            return None
        pos = end.end()
        if end.group(1) == "}":
            return out, pos


def _plain_text(value: str) -> Any:
    """Plain text of several words, unless a resolver claims it (none does today)."""
    for _tag, regexp in LineLoader.yaml_implicit_resolvers.get(value[0], ()):
        if regexp.match(value):
            return _NOT_SIMPLE
    return value


def _simple_scalar(value: str) -> Any:
    """A plain count or name resolved exactly as LineLoader would; _NOT_SIMPLE otherwise."""
    if _PLAIN_COUNT.fullmatch(value):
        return int(value)
    if not _PLAIN_NAME.fullmatch(value):
        return _NOT_SIMPLE
    # A name that some implicit resolver claims (true, no, null, ...) is not text.
    for _tag, regexp in LineLoader.yaml_implicit_resolvers.get(value[0], ()):
        if regexp.match(value):
            return _NOT_SIMPLE
    return value


_SYNTAX_HINT = "Fix the YAML at this line: check the indentation, colons and quotes."


def _reader_problem(exc: yaml.reader.ReaderError, rel: str, text: str) -> Problem:
    """A character YAML refuses (control characters): say which and where, since most editors
    do not show it. libyaml counts ``position`` in UTF-8 bytes, the pure-Python reader in characters."""
    before = text.encode("utf-8")[: exc.position] if _BaseLoader is not yaml.SafeLoader else text[: exc.position]
    line = before.count(b"\n" if isinstance(before, bytes) else "\n") + 1
    char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "?")
    return Problem(f"YAML syntax error: the character U+{char:04X} is not allowed in YAML ({exc.reason})", rel, line,
                   "Remove it: it is usually invisible in an editor; retype the line if you cannot see it.")


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
