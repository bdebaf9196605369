"""Saved plans (DESIGN.md section 5): versioned, self-contained, tamper-evident JSON.

The file holds every field of :class:`~reconciler.model.Plan` and its operations plus a
``digest``: the sha256 of the canonical JSON (sorted keys, no whitespace) of everything else.
Loading recomputes it, so a plan edited after it was written is refused before anything is
applied. Plans hold quantities, names and hashes only; no credential ever reaches them.

Layout: pretty-printed header, one operation per line, so a plan diffs well in review and a
million-operation plan stays a reasonable size. Plans of ``COMPRESS_FROM`` operations or more
are saved gzip-compressed (the same JSON inside: ``zcat plan.json`` shows it); ``load_plan``
reads both.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import queue
import tempfile
import threading
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from reconciler.errors import PlanFileError
from reconciler.model import SETTING_NAMES, Leg, OpKind, Operation, Plan, Settings, gc_paused

SUPPORTED_VERSIONS = (1,)
_REMAKE = "make a new plan with `reconciler plan --out`"


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class _LegModel(_Strict):
    location: str
    actual: int | None
    base: int | None
    desired: int | None
    change: int
    expected: int | None


class _OpModel(_Strict):
    id: str
    kind: Literal["reset", "adjust", "move", "delete", "release", "record", "settings", "drift"]
    target: str
    item: str
    legs: list[_LegModel]
    reason: str
    settings_before: dict[str, int | bool] | None
    settings_after: dict[str, int | bool] | None
    overridden_guards: list[str]
    write_mode: str


class _PlanModel(_Strict):
    format_version: int
    digest: str
    plan_id: str
    created_at: str
    git_commit: str | None
    git_dirty: bool
    desired_digest: str
    desired_files: dict[str, str]
    lineage: str
    serial: int
    strategy_note: str
    operations: list[_OpModel]
    warnings: list[str]
    unreadable_targets: list[str]
    scope: dict[str, list[str]]
    notes: list[str] = []
    marks: dict[str, str] = {}
    counts: list[str] = []


# --- writing -------------------------------------------------------------------------------


def _settings_out(s: Settings | None) -> dict[str, int | bool] | None:
    return None if s is None else s.as_dict()


def _op_out(op: Operation) -> dict[str, Any]:
    return {
        "id": op.id,
        "kind": op.kind.value,
        "target": op.target,
        "item": op.item,
        "legs": [
            {"location": l.location, "actual": l.actual, "base": l.base, "desired": l.desired,
             "change": l.change, "expected": l.expected}
            for l in op.legs
        ],
        "reason": op.reason,
        "settings_before": _settings_out(op.settings_before),
        "settings_after": _settings_out(op.settings_after),
        "overridden_guards": list(op.overridden_guards),
        "write_mode": op.write_mode,
    }


def _head_document(plan: Plan) -> dict[str, Any]:
    """Every field of the plan file but the operations and the digest."""
    return {
        "format_version": plan.format_version,
        "plan_id": plan.plan_id,
        "created_at": plan.created_at,
        "git_commit": plan.git_commit,
        "git_dirty": plan.git_dirty,
        "desired_digest": plan.desired_digest,
        "desired_files": dict(plan.desired_files),
        "lineage": plan.lineage,
        "serial": plan.serial,
        "strategy_note": plan.strategy_note,
        "warnings": list(plan.warnings),
        "unreadable_targets": list(plan.unreadable_targets),
        "scope": {k: list(v) for k, v in plan.scope.items()},
        # only when there are some: plan files written before notes existed keep their digest
        **({"notes": list(plan.notes)} if plan.notes else {}),
        **({"marks": dict(plan.marks)} if plan.marks else {}),
        **({"counts": list(plan.counts)} if plan.counts else {}),
    }


def plan_document(plan: Plan) -> dict[str, Any]:
    """The plan as a JSON-ready dict, without the digest."""
    return {**_head_document(plan), "operations": [_op_out(op) for op in plan.operations]}


# One encoder each, built once: json.dumps with options builds a new encoder per call, which
# costs more than encoding an operation (a million operations in a large first plan).
_encode_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_encode_line = json.JSONEncoder(sort_keys=True, ensure_ascii=False).encode
# The string escaper both encoders use (ensure_ascii=False): quotes, backslashes, control characters.
_string = json.encoder.encode_basestring  # type: ignore[attr-defined]


def _canonical(doc: dict[str, Any]) -> bytes:
    return _encode_canonical(doc).encode()


def digest_of(doc: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical(doc)).hexdigest()


def _settings_texts(s: Settings | None) -> tuple[str, str]:
    if s is None:
        return "null", "null"
    values = s.as_dict()
    return _encode_canonical(values), _encode_line(values)


def _op_texts(op: Operation) -> tuple[str, str]:
    """(canonical, line) JSON of ``_op_out(op)``, character for character what ``_encode_canonical``
    and ``_encode_line`` write, without building the dict or walking it twice: the plan file of
    a chain's first plan holds a million operations. Keys are in sorted order. Quantities are
    ints (the planner and the loader make sure), which format as the encoder writes them.
    ``tests/test_planfile.py`` checks this against the encoders."""
    canon_legs, line_legs = [], []
    for l in op.legs:
        a = "null" if l.actual is None else l.actual
        b = "null" if l.base is None else l.base
        d = "null" if l.desired is None else l.desired
        e = "null" if l.expected is None else l.expected
        loc = _string(l.location)
        canon_legs.append(f'{{"actual":{a},"base":{b},"change":{l.change},"desired":{d},"expected":{e},"location":{loc}}}')
        line_legs.append(f'{{"actual": {a}, "base": {b}, "change": {l.change}, "desired": {d}, "expected": {e}, "location": {loc}}}')
    guards = [_string(g) for g in op.overridden_guards]
    after_c, after_l = _settings_texts(op.settings_after)
    before_c, before_l = _settings_texts(op.settings_before)
    # OpKind._value_ is a plain attribute; .value goes through Enum's Python-level property.
    i, item, kind = _string(op.id), _string(op.item), _string(op.kind._value_)
    reason, target, mode = _string(op.reason), _string(op.target), _string(op.write_mode)
    canon = (f'{{"id":{i},"item":{item},"kind":{kind},"legs":[{",".join(canon_legs)}],'
             f'"overridden_guards":[{",".join(guards)}],"reason":{reason},"settings_after":{after_c},'
             f'"settings_before":{before_c},"target":{target},"write_mode":{mode}}}')
    line = (f'{{"id": {i}, "item": {item}, "kind": {kind}, "legs": [{", ".join(line_legs)}], '
            f'"overridden_guards": [{", ".join(guards)}], "reason": {reason}, "settings_after": {after_l}, '
            f'"settings_before": {before_l}, "target": {target}, "write_mode": {mode}}}')
    return canon, line


_ESCAPED_MAX = 100_000


class _Escaped(dict[str, str]):
    """``_string`` of texts that repeat across operations (SKUs, adopt reasons), each escaped once."""

    def __missing__(self, text: str) -> str:
        if len(self) >= _ESCAPED_MAX:  # a bound for plans whose texts never repeat
            self.clear()
        out = self[text] = _string(text)
        return out


def _chunk_texts(ops: list[Operation], escaped: _Escaped, pretty: bool = True) -> tuple[list[str], list[str]]:
    """``_op_texts`` of each operation, as two lists (canonical texts, lines); without ``pretty``
    the lines list is empty (a compressed plan's lines are the canonical texts).

    The common operation - one leg, no settings, no overridden guards: every op of a chain's
    first plan - is formatted inline by one f-string per form; what repeats from the previous
    operation (kind, target, write mode, location) is not formatted again. Any other operation
    goes through ``_op_texts``. ``tests/bench/test_fast_paths.py`` checks both against the encoders.
    """
    canon: list[str] = []
    lines: list[str] = []
    c_add, l_add, string = canon.append, lines.append, _string
    kind = target = mode = location = None
    kind_c = kind_l = tail_c = tail_l = loc = ""
    for op in ops:
        legs = op.legs
        if len(legs) != 1 or op.overridden_guards or op.settings_after is not None or op.settings_before is not None:
            c, line = _op_texts(op)
            c_add(c)
            if pretty:
                l_add(line)
            continue
        if op.kind is not kind:
            kind = op.kind
            kind_c, kind_l = f'"kind":{string(kind._value_)},"legs":[', f'"kind": {string(kind._value_)}, "legs": ['
        if op.target is not target or op.write_mode is not mode:
            target, mode = op.target, op.write_mode
            t, m = string(target), string(mode)
            tail_c = f',"settings_after":null,"settings_before":null,"target":{t},"write_mode":{m}}}'
            tail_l = f', "settings_after": null, "settings_before": null, "target": {t}, "write_mode": {m}}}'
        leg = legs[0]
        if leg.location is not location:
            location = leg.location
            loc = string(location)
        # Each number made text once (f"{n}" is what the encoders write for an int), not once per form.
        a = "null" if leg.actual is None else f"{leg.actual}"
        b = "null" if leg.base is None else f"{leg.base}"
        d = "null" if leg.desired is None else f"{leg.desired}"
        e = "null" if leg.expected is None else f"{leg.expected}"
        i, item, reason, change = string(op.id), escaped[op.item], escaped[op.reason], f"{leg.change}"
        c_add(f'{{"id":{i},"item":{item},{kind_c}{{"actual":{a},"base":{b},"change":{change},"desired":{d},'
              f'"expected":{e},"location":{loc}}}],"overridden_guards":[],"reason":{reason}{tail_c}')
        if pretty:
            l_add(f'{{"id": {i}, "item": {item}, {kind_l}{{"actual": {a}, "base": {b}, "change": {change}, '
                  f'"desired": {d}, "expected": {e}, "location": {loc}}}], "overridden_guards": [], '
                  f'"reason": {reason}{tail_l}')
    return canon, lines


def _canonical_around_operations(doc: dict[str, Any]) -> tuple[str, str]:
    """The canonical text of ``{**doc, "operations": [...]}`` before and after the operations."""
    before = {k: v for k, v in doc.items() if k < "operations"}
    after = {k: v for k, v in doc.items() if k > "operations"}
    head = _encode_canonical(before)[:-1] + ("," if before else "") + '"operations":['
    tail = "]" + ("," + _encode_canonical(after)[1:] if after else "}")
    return head, tail


_DIGEST_KEY = '"digest": "'
_PLACEHOLDER = "0" * 64  # as long as a sha256 hex digest, so it is overwritten in place
_CHUNK = 10_000  # operations encoded, hashed and written together


def write_plan(plan: Plan, out: BinaryIO) -> None:
    """Write the plan file to a seekable binary stream: a pretty-printed header with
    ``format_version`` and ``digest`` first, then one operation a line.

    The digest covers the canonical JSON of everything else, operations included, but heads the
    file: it is written as a placeholder and filled in once the operations have streamed past,
    so each operation is encoded once per form and never held as a whole file in memory.
    """
    start = out.tell()
    header, digest_at, pieces = _plan_pieces(plan)
    out.write(header)
    for piece in pieces:
        out.write(piece)
    end = out.tell()
    out.seek(start + digest_at)
    out.write(pieces.digest.encode())
    out.seek(end)


class _Pieces:
    """The bytes of a plan file after its header, chunk by chunk; ``digest`` once exhausted.
    ``pretty``: operations as ``_encode_line`` writes them; else as their canonical text."""

    def __init__(self, plan: Plan, canon_head: str, canon_tail: str, pretty: bool = True) -> None:
        self.plan, self.canon_head, self.canon_tail, self.pretty = plan, canon_head, canon_tail, pretty
        self.digest = ""

    def parts(self) -> Iterator[tuple[bytes, bytes]]:
        """(file bytes, the canonical bytes they stand for in the digest), chunk by chunk."""
        ops = self.plan.operations
        escaped = _Escaped()
        if not ops:
            yield b"[]\n}\n", b""
            return
        yield b"[\n    ", b""
        for start in range(0, len(ops), _CHUNK):
            canon, lines = _chunk_texts(ops[start:start + _CHUNK], escaped, self.pretty)
            if start:
                yield b",\n    ", b","
            yield ",\n    ".join(lines if self.pretty else canon).encode(), ",".join(canon).encode()
        yield b"\n  ]\n}\n", b""

    def hasher(self) -> Any:
        return hashlib.sha256(self.canon_head.encode())

    def finish(self, digest: Any) -> None:
        digest.update(self.canon_tail.encode())
        self.digest = digest.hexdigest()

    def __iter__(self) -> Iterator[bytes]:
        digest = self.hasher()
        for piece, canon in self.parts():
            digest.update(canon)
            yield piece
        self.finish(digest)


def _plan_pieces(plan: Plan, pretty: bool = True) -> tuple[bytes, int, _Pieces]:
    """The header (digest as a placeholder), the placeholder's byte offset in it, and the rest."""
    doc = _head_document(plan)
    canon_head, canon_tail = _canonical_around_operations(doc)
    head = {"format_version": doc["format_version"], "digest": _PLACEHOLDER}
    head.update((k, v) for k, v in sorted(doc.items()) if k != "format_version")
    header = json.dumps(head, indent=2, ensure_ascii=False, sort_keys=False)[:-2]
    digest_at = len(header[: header.index(_DIGEST_KEY) + len(_DIGEST_KEY)].encode())
    return f'{header},\n  "operations": '.encode(), digest_at, _Pieces(plan, canon_head, canon_tail, pretty)


# Plans of at least this many operations are saved gzip-compressed (a chain's first plan: ~390
# bytes an operation as text, ~40 compressed). Smaller plans stay plain text, readable in review.
# load_plan reads both; the JSON inside is the same format_version either way.
COMPRESS_FROM = 10_000
_GZIP_MAGIC = b"\x1f\x8b"


def write_compressed_plan(plan: Plan, out: BinaryIO) -> None:
    """The plan file gzip-compressed, as two gzip members (one stream to any gzip reader).

    The first member holds the header, stored uncompressed (level 0) so that its size does not
    depend on the digest: it is rewritten in place once the digest is known. The second holds
    the operations, one canonical text a line (what the digest hashes, so each operation is
    formatted once; any JSON reader reads it as the same document), hashed and compressed on a
    worker thread (sha256 and zlib release the GIL) while this thread formats the next chunk.
    """
    start = out.tell()
    header, digest_at, pieces = _plan_pieces(plan, pretty=False)
    placeholder = _stored_member(header)
    out.write(placeholder)
    jobs: queue.Queue[tuple[bytes, bytes] | None] = queue.Queue(maxsize=4)
    failed: list[BaseException] = []

    def compress() -> None:
        try:
            deflate = zlib.compressobj(1, zlib.DEFLATED, 31)  # wbits 31: a gzip member
            digest = pieces.hasher()
            while (job := jobs.get()) is not None:
                if not failed:
                    digest.update(job[1])
                    out.write(deflate.compress(job[0]))
            if not failed:
                out.write(deflate.flush())
                pieces.finish(digest)
        except BaseException as exc:  # noqa: BLE001 - handed to the writing thread
            failed.append(exc)
            while jobs.get() is not None:  # drain so the producer never blocks
                pass

    worker = threading.Thread(target=compress, name="plan-compress", daemon=True)
    worker.start()
    try:
        batch: list[bytes] = []
        canon: list[bytes] = []
        for piece, text in pieces.parts():  # pieces of ~10,000 operations; small ones are batched
            batch.append(piece)
            canon.append(text)
            if sum(map(len, batch)) >= 1 << 20:
                jobs.put((b"".join(batch), b"".join(canon)))
                batch, canon = [], []
            if failed:
                break
        if batch:
            jobs.put((b"".join(batch), b"".join(canon)))
    finally:
        jobs.put(None)
        worker.join()
    if failed:
        raise failed[0]
    real = header[:digest_at] + pieces.digest.encode() + header[digest_at + len(_PLACEHOLDER):]
    end = out.tell()
    out.seek(start)
    out.write(_stored_member(real))
    out.seek(end)


def _stored_member(data: bytes) -> bytes:
    """A gzip member holding ``data`` uncompressed; its size depends only on ``len(data)``."""
    return gzip.compress(data, compresslevel=0, mtime=0)


def dump_plan(plan: Plan) -> str:
    """The plan file text: JSON with ``format_version`` and ``digest``, one operation a line."""
    buf = io.BytesIO()
    write_plan(plan, buf)
    return buf.getvalue().decode()


def save_plan(plan: Plan, path: str | os.PathLike[str]) -> None:
    """Write atomically (temp file + rename) so a crash never leaves half a plan behind."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                (write_compressed_plan if len(plan.operations) >= COMPRESS_FROM else write_plan)(plan, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise PlanFileError(f"cannot write the plan to {target}: {exc.strerror or exc}") from exc


# --- reading -------------------------------------------------------------------------------


def _settings_in(data: dict[str, int | bool] | None, where: str) -> Settings | None:
    if data is None:
        return None
    unknown = sorted(set(data) - set(SETTING_NAMES))
    if unknown:
        raise PlanFileError(f"{where}: unknown setting(s) {', '.join(unknown)}; {_REMAKE}")
    _check_settings(data, where)
    return Settings.from_dict(data)


def _op_in(m: _OpModel, where: str) -> Operation:
    return Operation(
        id=m.id,
        kind=OpKind(m.kind),
        target=m.target,
        item=m.item,
        legs=tuple(Leg(l.location, l.actual, l.base, l.desired, l.change, l.expected) for l in m.legs),
        reason=m.reason,
        settings_before=_settings_in(m.settings_before, where),
        settings_after=_settings_in(m.settings_after, where),
        overridden_guards=tuple(m.overridden_guards),
        write_mode=m.write_mode,
    )


def _field_errors(exc: ValidationError, source: str) -> PlanFileError:
    shown = []
    for err in exc.errors()[:10]:
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        what = "missing" if err["type"] == "missing" else err["msg"].lower()
        shown.append(f"  {loc}: {what}")
    more = f"\n  ... and {exc.error_count() - 10} more" if exc.error_count() > 10 else ""
    return PlanFileError(
        f"{source}: the plan file has missing or ill-typed fields:\n" + "\n".join(shown) + more
        + f"\n{_REMAKE[0].upper()}{_REMAKE[1:]}."
    )


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json keeps the last of two equal keys silently; reconciler never writes one, so a
    # duplicate means the file was edited, and two readers could disagree on its content.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise PlanFileError(f"duplicate key {key!r} in a JSON object: the plan file was edited; {_REMAKE}")
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise PlanFileError(f"{name} is not a number a plan file can hold: the plan file was edited; {_REMAKE}")


def _decode(text: str, source: str) -> Any:
    if not text.strip():
        raise PlanFileError(f"{source}: not a plan file: the file is empty; {_REMAKE}")
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise PlanFileError(
            f"{source}:{exc.lineno}:{exc.colno}: not a plan file: invalid JSON ({exc.msg}); "
            f"the file may be truncated or corrupt; {_REMAKE}"
        ) from exc
    except RecursionError as exc:
        raise PlanFileError(f"{source}: not a plan file: JSON nested too deeply; {_REMAKE}") from exc
    except PlanFileError as exc:
        raise PlanFileError(f"{source}: {exc}") from exc


def _parse(text: str, source: str) -> dict[str, Any]:
    raw = _decode(text, source)
    if not isinstance(raw, dict):
        raise PlanFileError(f"{source}: not a plan file: expected a JSON object, found {_json_type(raw)}; {_REMAKE}")
    if "format_version" not in raw:
        raise PlanFileError(f"{source}: not a plan file: it has no format_version; {_REMAKE}")
    version = raw["format_version"]
    if version not in SUPPORTED_VERSIONS or isinstance(version, bool):
        supported = ", ".join(str(v) for v in SUPPORTED_VERSIONS)
        raise PlanFileError(
            f"{source}: plan format_version {version!r} is not supported (this reconciler reads "
            f"version {supported}); {_REMAKE} with this version of reconciler"
        )
    return raw


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null", int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


# Quantities and serials end up in SQLite INTEGER columns (signed 64-bit).
_INT_LIMIT = 2**63


def _check_consistency(m: _PlanModel, source: str) -> None:
    """What the schema cannot say. A plan reconciler wrote always passes; these only catch a
    file edited and re-digested by hand, before it can confuse the applier or the journal."""
    if not -_INT_LIMIT < m.serial < _INT_LIMIT:
        raise PlanFileError(f"{source}: serial {m.serial} is out of range; {_REMAKE}")
    seen: set[str] = set()
    for i, op in enumerate(m.operations):
        where = f"{source}: operation {i} ({op.id})"
        if not op.id or op.id in seen:
            raise PlanFileError(f"{where}: operation ids must be unique and non-empty; {_REMAKE}")
        seen.add(op.id)
        legs = 2 if op.kind == "move" else 1
        if len(op.legs) != legs:
            raise PlanFileError(f"{where}: a {op.kind} has {legs} leg{'s' if legs > 1 else ''}, not {len(op.legs)}; {_REMAKE}")
        for leg in op.legs:
            numbers = (leg.actual, leg.base, leg.desired, leg.change, leg.expected)
            if any(n is not None and not -_INT_LIMIT < n < _INT_LIMIT for n in numbers):
                raise PlanFileError(f"{where}: a quantity at {leg.location!r} is out of range; {_REMAKE}")


def _check_settings(data: dict[str, int | bool], where: str) -> None:
    for name, value in data.items():
        if name in _BOOL_SETTINGS and not isinstance(value, bool):
            raise PlanFileError(f"{where}: setting {name} must be true or false; {_REMAKE}")
        if name not in _BOOL_SETTINGS and (isinstance(value, bool) or not 0 <= value < _INT_LIMIT):
            raise PlanFileError(f"{where}: setting {name} must be a whole number of 0 or more; {_REMAKE}")


_BOOL_SETTINGS = frozenset({"tracking", "backordering"})


def loads_plan(text: str, source: str = "<plan>") -> Plan:
    """Parse and verify plan file text. Raises PlanFileError naming ``source`` and the problem."""
    # A plan of 100k operations is ~2M small acyclic objects (decoded JSON, models, operations)
    # that all stay alive while it loads: the cyclic collector would rescan them again and again.
    with gc_paused():
        return _loads_plan(text, source)


def _loads_plan(text: str, source: str) -> Plan:
    raw = _parse(text, source)
    try:
        m = _PlanModel.model_validate(raw)
    except ValidationError as exc:
        raise _field_errors(exc, source) from exc
    rest = {k: v for k, v in raw.items() if k != "digest"}
    if digest_of(rest) != m.digest:
        raise PlanFileError(f"{source}: the plan was edited after it was written (digest mismatch); {_REMAKE}")
    _check_consistency(m, source)
    return Plan(
        format_version=m.format_version,
        plan_id=m.plan_id,
        created_at=m.created_at,
        git_commit=m.git_commit,
        git_dirty=m.git_dirty,
        desired_digest=m.desired_digest,
        desired_files=dict(m.desired_files),
        lineage=m.lineage,
        serial=m.serial,
        strategy_note=m.strategy_note,
        operations=[_op_in(op, f"{source}: operation {i} ({op.id})") for i, op in enumerate(m.operations)],
        warnings=list(m.warnings),
        unreadable_targets=list(m.unreadable_targets),
        scope={k: list(v) for k, v in m.scope.items()},
        notes=list(m.notes),
        marks=dict(m.marks),
        counts=list(m.counts),
    )


def _decompress(data: bytes, path: Path) -> bytes:
    """A compressed plan's text (save_plan compresses plans of COMPRESS_FROM operations or more)."""
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise PlanFileError(
            f"{path}: not a plan file: it is gzip-compressed but its data is truncated or corrupt ({exc}); {_REMAKE}"
        ) from exc


def load_plan(path: str | os.PathLike[str]) -> Plan:
    """Read and verify a saved plan."""
    p = Path(path)
    try:
        data = p.read_bytes()
        if data.startswith(_GZIP_MAGIC):
            data = _decompress(data, p)
        text = data.decode("utf-8")
    except FileNotFoundError as exc:
        raise PlanFileError(f"{p}: no such plan file; make one with `reconciler plan --out {p}`") from exc
    except UnicodeDecodeError as exc:
        data = exc.object if isinstance(exc.object, bytes) else b""
        line = data.count(b"\n", 0, exc.start) + 1
        raise PlanFileError(
            f"{p}:{line}: not a plan file: not valid UTF-8 (byte 0x{data[exc.start]:02x} at byte offset {exc.start}); {_REMAKE}"
        ) from exc
    except OSError as exc:
        raise PlanFileError(f"{p}: cannot read the plan file: {exc.strerror or exc}") from exc
    return loads_plan(text, source=str(p))
