"""The library functions behind ``plan``, ``apply``, ``drift`` and ``import``.

Each one wires the pieces together: the project (config + desired state), the state store,
the connectors (the only I/O towards vendors) and the pure planner. The CLI calls exactly one
of these per command and renders the result.
"""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import httpx

from reconciler.config import Project, load_project
from reconciler.connectors.base import Connector, connector_class
from reconciler.errors import PlanError, StalePlanError
from reconciler.model import (
    EXECUTABLE_KINDS, ActualState, BaseState, Capabilities, DesiredState, OpKind, Plan, Record, TargetActual,
)
from reconciler.planner import make_plan

Transports = Mapping[str, httpx.BaseTransport]
"""target name -> transport; lets tests mount a sandbox in-process. Empty: real network."""


@dataclass(frozen=True)
class GitInfo:
    commit: str | None
    dirty: bool


def git_info(root: Path) -> GitInfo:
    """The commit of the stock repository and whether its desired files have uncommitted edits."""

    def run(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    if commit is None:
        return GitInfo(None, False)
    status = run("status", "--porcelain", "--untracked-files=all", "--", "reconciler.yaml", "stock")
    return GitInfo(commit, bool(status))


def who() -> str:
    """user@host of the person or CI job running the command (never a secret)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = os.environ.get("GITHUB_ACTOR", "unknown")
    return f"{user}@{socket.gethostname()}"


def open_connectors(
    project: Project,
    targets: Iterable[str],
    *,
    env: Mapping[str, str] | None = None,
    transports: Transports | None = None,
    stack: ExitStack,
) -> dict[str, Connector]:
    """Connectors for ``targets``. Every credential is resolved before any connector exists, so
    a missing token is an error before the first request."""
    contexts = {name: project.target_context(name, env=env) for name in targets}
    connectors: dict[str, Connector] = {}
    for name, ctx in contexts.items():
        conn = connector_class(ctx.kind)(ctx, transport=(transports or {}).get(name))
        stack.callback(conn.close)
        connectors[name] = conn
    return connectors


def read_actual(connectors: Mapping[str, Connector], progress: Callable[[str], None] | None = None) -> ActualState:
    """Live stock of every target that has a read API; write-only targets are marked unknown."""
    actual: ActualState = {}
    for name, conn in connectors.items():
        if not type(conn).capabilities.readable:
            actual[name] = TargetActual(readable=False)
            continue
        if progress:
            progress(f"reading live stock of {name}")
        actual[name] = TargetActual(readable=True, positions=conn.read_stock())
    return actual


def targets_in_scope(project: Project, only_targets: Iterable[str] | None) -> list[str]:
    names = list(project.config.targets)
    if not only_targets:
        return names
    wanted = set(only_targets)
    unknown = wanted - set(names)
    if unknown:
        raise PlanError(
            f"unknown target(s): {', '.join(sorted(unknown))}",
            hint=f"Targets in reconciler.yaml: {', '.join(names)}.",
        )
    return [n for n in names if n in wanted]


def open_store(project: Project, *, env: Mapping[str, str] | None = None) -> Any:
    """The project's state store: SQLite file or PostgreSQL schema (``state:`` / $RECONCILER_STATE)."""
    from reconciler.state import open_state_store

    location, origin = project.state_location
    from reconciler.state.url import parse_state_url

    url = parse_state_url(location, root=project.root, env=os.environ if env is None else env, origin=origin)
    return open_state_store(url)


def _load_base(project: Project, env: Mapping[str, str] | None, opened: threading.Event) -> BaseState:
    # Opened, read and closed on the worker thread: a SQLite connection belongs to its thread.
    store = open_store(project, env=env)
    try:
        opened.set()
        return store.load_base()
    finally:
        store.close()


def base_and_actual(
    project: Project, connectors: Mapping[str, Connector], *, env: Mapping[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[BaseState, ActualState]:
    """B from the state store and A from the vendors, read at the same time.

    Reading live stock mostly waits for the vendor; B (a million rows for a large chain) is read
    meanwhile on a worker thread. The state is opened before the first vendor request, so a
    broken state URL or database still fails before any is sent. The worker does local work
    only: when the vendor read fails (or Ctrl-C), waiting for it is short, and the vendor read
    stays on this thread where Ctrl-C reaches it.
    """
    opened = threading.Event()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="state-read") as pool:
        base: Future[BaseState] = pool.submit(_load_base, project, env, opened)
        while not opened.wait(0.05):
            if base.done():
                base.result()  # the store could not be opened: raise its error
        actual = read_actual(connectors, progress)
        return base.result(), actual


def plan_project(
    root: str | Path,
    *,
    only_targets: Iterable[str] | None = None,
    only_locations: Iterable[str] | None = None,
    guard_overrides: Mapping[str, bool] | None = None,
    env: Mapping[str, str] | None = None,
    transports: Transports | None = None,
    progress: Callable[[str], None] | None = None,
) -> Plan:
    """Load the repository, read state and live stock, and make a plan. Sends only reads."""
    project = load_project(root)
    targets = targets_in_scope(project, only_targets)
    with ExitStack() as stack:
        connectors = open_connectors(project, targets, env=env, transports=transports, stack=stack)
        capabilities: dict[str, Capabilities] = {n: type(c).capabilities for n, c in connectors.items()}
        base, actual = base_and_actual(project, connectors, progress=progress)
        policy = project.policy(
            capabilities,
            only_targets=frozenset(targets) if only_targets else None,
            only_locations=frozenset(only_locations) if only_locations else None,
            **dict(guard_overrides or {}),
        )
        git = git_info(project.root)
        plan = make_plan(project.desired, base, actual, policy, git_commit=git.commit, git_dirty=git.dirty)
        _ask_connectors(plan, project.desired, base, connectors)
    return plan


def _ask_connectors(plan: Plan, desired: DesiredState, base: BaseState, connectors: Mapping[str, Connector]) -> None:
    """Plan-time checks only the vendor can make (reads only) and each target's cost estimate,
    which the plan shows as notes."""
    problems = []
    for name, conn in connectors.items():
        ops = [op for op in plan.operations if op.target == name and op.kind in EXECUTABLE_KINDS]
        # the stock file of each adjustment's desired position (a connector may choose by file)
        sources = {op.id: position.source.file for op in ops if op.kind is OpKind.ADJUST
                   and (position := desired.positions.get((name, op.location, op.item))) is not None and position.source}
        mark = conn.mark(ops, sources)
        if mark is not None:
            plan.marks[name] = mark
        if not ops:
            continue
        kept: set[tuple[str, str]] = set()
        if any(op.kind is OpKind.DELETE for op in ops):  # kept positions matter to deletes only
            gone = {key for op in plan.operations if op.target == name
                    and op.kind in (OpKind.DELETE, OpKind.RELEASE) for key in op.keys}
            kept = {(loc, item) for (t, loc, item) in (*desired.positions, *base.positions)
                    if t == name and (t, loc, item) not in gone}
        problems += conn.plan_problems(ops, kept)
        estimate = conn.estimate(ops)
        plan.notes.extend([estimate.describe(name), *estimate.notes])
    if problems:
        raise PlanError("; ".join(p.message for p in problems), hint=problems[0].hint)


def apply_saved_plan(
    root: str | Path,
    plan: Plan,
    *,
    allow_dirty: bool = False,
    only_targets: Iterable[str] | None = None,
    env: Mapping[str, str] | None = None,
    transports: Transports | None = None,
    progress: Callable[..., None] | None = None,
) -> Any:
    """Execute a saved plan exactly once. Every staleness check happens before any request."""
    from reconciler.apply import apply_plan

    project = load_project(root)
    if plan.git_dirty and not allow_dirty:
        raise StalePlanError(
            f"plan {plan.plan_id} was made from a working tree with uncommitted changes to the desired files",
            hint="Commit the change and make a new plan, or pass --allow-dirty if you reviewed it.",
        )
    targets = sorted({op.target for op in plan.operations} & set(targets_in_scope(project, only_targets)))
    with ExitStack() as stack:
        connectors = open_connectors(project, targets, env=env, transports=transports, stack=stack)
        for name, conn in connectors.items():
            conn.resume_from(plan.marks.get(name))
        store = open_store(project, env=env)
        stack.callback(store.close)
        return apply_plan(
            plan,
            store,
            connectors,
            desired_digest=project.desired.digest,
            holder=who(),
            progress=progress,
            targets=set(only_targets) if only_targets else None,
        )


@dataclass(frozen=True)
class DriftEntry:
    target: str
    location: str
    item: str
    base: int
    actual: int | None

    @property
    def difference(self) -> int | None:
        return None if self.actual is None else self.actual - self.base


@dataclass(frozen=True)
class DriftReport:
    """Drifted positions, the targets that could not be checked, and the size of what was checked
    (so a threshold in percent has a denominator)."""

    entries: list[DriftEntry]
    unreadable: list[str]
    checked_positions: int
    applied_units: int  # sum of |B| over the checked positions

    @property
    def drift_units(self) -> int:
        """Total absolute drift: |A - B| summed, so +5 here and -5 there is 10, not 0."""
        return sum(abs(e.difference or 0) for e in self.entries)

    @property
    def drift_percent(self) -> float | None:
        """Drift units as a percentage of the applied units; None when nothing was applied."""
        return None if self.applied_units == 0 else 100.0 * self.drift_units / self.applied_units


@dataclass(frozen=True)
class DriftThreshold:
    """When drift is worth an alert. Exceeding either limit is enough; no limit: any drift."""

    units: int | None = None
    percent: float | None = None

    def exceeded_by(self, report: DriftReport) -> bool:
        total = report.drift_units
        if total == 0:
            return False
        if self.units is None and self.percent is None:
            return True
        if self.units is not None and total > self.units:
            return True
        if self.percent is None:
            return False
        # Drift where nothing was applied has no percentage; any drift then exceeds (conservative).
        share = report.drift_percent
        return share is None or share > self.percent

    def describe(self) -> str:
        parts = []
        if self.units is not None:
            parts.append(f"{self.units:,} units")
        if self.percent is not None:
            parts.append(f"{self.percent:g}% of the applied units")
        return " or ".join(parts) if parts else "any drift"


def drift_report(
    root: str | Path,
    *,
    only_targets: Iterable[str] | None = None,
    env: Mapping[str, str] | None = None,
    transports: Transports | None = None,
) -> DriftReport:
    """Positions whose live stock differs from B, and the targets whose stock cannot be read."""
    project = load_project(root)
    targets = targets_in_scope(project, only_targets)
    with ExitStack() as stack:
        connectors = open_connectors(project, targets, env=env, transports=transports, stack=stack)
        base, actual = base_and_actual(project, connectors, env=env)
    entries: list[DriftEntry] = []
    checked = applied = 0
    for (target, location, item), record in sorted(base.positions.items()):
        live = actual.get(target)
        if live is None or not live.readable:
            continue
        checked += 1
        applied += abs(record.quantity)
        now = live.positions.get((location, item), Record(0)).quantity
        if now != record.quantity:
            entries.append(DriftEntry(target, location, item, record.quantity, now))
    unreadable = sorted(n for n, a in actual.items() if not a.readable)
    return DriftReport(entries, unreadable, checked, applied)
