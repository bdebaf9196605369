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

from reconciler.auth._scopes import check_plan_scopes
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


def reading_connectors(
    project: Project, targets: Iterable[str], *, env: Mapping[str, str] | None, transports: Transports | None,
    stack: ExitStack,
) -> tuple[dict[str, Connector], dict[str, Capabilities]]:
    """Connectors of the targets whose stock can be read, and every target's capabilities.

    A write-only target (Ka-ching, Run Free) is never contacted while planning or checking drift,
    so its credential is not needed then: a CI plan job holds read-only credentials only."""
    names = list(targets)
    readers = [n for n in names if connector_class(project.target(n).kind).reads_with(project.target(n).options)]
    connectors = open_connectors(project, readers, env=env, transports=transports, stack=stack)
    capabilities = {n: type(connectors[n]).capabilities if n in connectors
                    else connector_class(project.target(n).kind).capabilities for n in names}
    return connectors, capabilities


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


def state_url(project: Project, *, env: Mapping[str, str] | None = None, state: str | None = None) -> Any:
    """Where the state is: ``state`` (``--state``; relative to the working directory) if given,
    else ``$RECONCILER_STATE`` / ``state:`` in reconciler.yaml / .reconciler/state.db (relative
    to the repository)."""
    from reconciler.state.url import parse_state_url

    environ = os.environ if env is None else env
    if state:
        return parse_state_url(state, env=environ, origin="--state")
    location, origin = project.state_location
    return parse_state_url(location, root=project.root, env=environ, origin=origin)


def open_store(project: Project, *, env: Mapping[str, str] | None = None, state: str | None = None) -> Any:
    """The project's state store: SQLite file or PostgreSQL schema (``--state`` / ``state:`` /
    $RECONCILER_STATE)."""
    from reconciler.state import open_state_store

    return open_state_store(state_url(project, env=env, state=state))


def state_is_missing(url: Any) -> bool:
    """True for a SQLite state whose file does not exist yet (opening it would create it)."""
    return url.kind == "sqlite" and not url.path.exists()


def new_state_note(url: Any, missing: bool, base: BaseState) -> str | None:
    """The announcement Terraform users expect: planning against no state adopts everything."""
    if missing:
        return (f"no state at {url.redacted()}: a new, empty state was created and every position will be "
                "adopted. If this repository keeps its state elsewhere (CI, docs/gitops.md), restore it or "
                "pass --state.")
    if base.serial == 0 and not base.positions:
        return f"the state at {url.redacted()} is new (nothing applied yet): every position will be adopted."
    return None


Precheck = Callable[[Any], None]
"""Run on the opened state before any vendor request; raises to stop the command."""


def refuse_unsettled(targets: Iterable[str], only_locations: Iterable[str] | None) -> Precheck:
    """A precheck refusing a plan while earlier operations on its positions are unsettled."""
    from reconciler.apply._unsettled import unsettled_error, unsettled_touching

    wanted_targets, wanted_locations = set(targets), set(only_locations or ())

    def check(store: Any) -> None:
        blocking = unsettled_touching(
            store, wanted_targets, lambda key: not wanted_locations or key[1] in wanted_locations
        )
        if blocking:
            raise unsettled_error(blocking, "plan", store.locks())

    return check


def _load_base(project: Project, env: Mapping[str, str] | None, opened: threading.Event, url: Any,
               precheck: Precheck | None = None) -> BaseState:
    # Opened, read and closed on the worker thread: a SQLite connection belongs to its thread.
    from reconciler.state import open_state_store

    store = open_state_store(url)
    try:
        if precheck is not None:
            precheck(store)
        opened.set()
        return store.load_base()
    finally:
        store.close()


def base_and_actual(
    project: Project, connectors: Mapping[str, Connector], *, env: Mapping[str, str] | None = None,
    progress: Callable[[str], None] | None = None, url: Any = None, precheck: Precheck | None = None,
) -> tuple[BaseState, ActualState]:
    """B from the state store and A from the vendors, read at the same time.

    Reading live stock mostly waits for the vendor; B (a million rows for a large chain) is read
    meanwhile on a worker thread. The state is opened before the first vendor request, so a
    broken state URL or database still fails before any is sent. The worker does local work
    only: when the vendor read fails (or Ctrl-C), waiting for it is short, and the vendor read
    stays on this thread where Ctrl-C reaches it.
    """
    opened = threading.Event()
    url = state_url(project, env=env) if url is None else url
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="state-read") as pool:
        base: Future[BaseState] = pool.submit(_load_base, project, env, opened, url, precheck)
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
    state: str | None = None,
    count_max_age_days: float = 7.0,
    allow_old_count: bool = False,
    refresh: bool = False,
) -> Plan:
    """Load the repository, read state and live stock, and make a plan. Sends only reads.
    ``state``: the state location given on the command line (``--state``). ``refresh``: read
    every target in full, not the changes since the kept snapshot (_xseries_incremental), and
    plan every position, not only those changed since the last full plan (_plan_memo)."""
    from reconciler import _plan_memo
    from reconciler.connectors._xseries_incremental import attach

    project_light = None
    if not refresh and not only_locations:
        project_light = _light_project(root)
    if project_light is not None:
        targets = targets_in_scope(project_light, only_targets)
        url = state_url(project_light, env=env, state=state)
        if not state_is_missing(url):
            git = git_info(project_light.root)
            req = _plan_memo.MemoRequest(project_light, targets, url, env, transports, guard_overrides, git.commit, git.dirty,
                                         refuse_unsettled(targets, only_locations), progress, bool(only_targets))
            made = _plan_memo.plan_from_memo(req)
            if made is not None:
                return made
    project = load_project(root)
    targets = targets_in_scope(project, only_targets)
    url = state_url(project, env=env, state=state)
    missing = state_is_missing(url)
    with ExitStack() as stack:
        connectors, capabilities = reading_connectors(project, targets, env=env, transports=transports, stack=stack)
        reads = attach(connectors, url, refresh=refresh)
        base, actual = base_and_actual(project, connectors, progress=progress, url=url,
                                       precheck=refuse_unsettled(targets, only_locations))
        for name in targets:
            actual.setdefault(name, TargetActual(readable=False))
        policy = project.policy(
            capabilities,
            only_targets=frozenset(targets) if only_targets else None,
            only_locations=frozenset(only_locations) if only_locations else None,
            **dict(guard_overrides or {}),
        )
        git = git_info(project.root)
        counts = _counts_of(project, url, missing, env, state, count_max_age_days, allow_old_count)
        observed = _plan_memo.PlanContext()
        plan = make_plan(project.desired, base, actual, policy, git_commit=git.commit, git_dirty=git.dirty,
                         counts=counts, observed=observed)
        check_plan_scopes(plan.operations, connectors)  # a missing OAuth scope is a plan-time error
        ask_connectors(plan, project.desired, base, connectors)
        plan.notes.extend(reads.notes[name] for name in sorted(reads.notes))
        if not only_locations and counts is None:
            req = _plan_memo.MemoRequest(project, targets, url, env, transports, guard_overrides, git.commit, git.dirty,
                                         None, None, bool(only_targets))
            _plan_memo.keep_memo(req, plan, observed, project.desired, base, actual, reads.marks)
    note = new_state_note(url, missing, base)
    if note:
        # A warning of the plan: the terminal, the PR comment and the saved plan all show it.
        plan.warnings.insert(0, note)
    return plan


def _light_project(root: str | Path) -> Project | None:
    """The repository with its location files hashed, not parsed; None when it is not valid
    (the full load then reports every problem)."""
    from reconciler.errors import ConfigError

    try:
        return load_project(root, stock=False)
    except ConfigError:
        return None


def _counts_of(project: Project, url: Any, missing: bool, env: Mapping[str, str] | None, state: str | None,
               max_age_days: float, allow_old: bool) -> Any:
    """The stock counts the repository records (docs/counts.md), for the planner."""
    from reconciler.counts import count_plan

    if missing:
        return count_plan(project.root, None, max_age_days=max_age_days, allow_old=allow_old)
    with open_store(project, env=env, state=state) as store:
        return count_plan(project.root, store, max_age_days=max_age_days, allow_old=allow_old)


def ask_connectors(plan: Plan, desired: DesiredState, base: BaseState, connectors: Mapping[str, Connector]) -> None:
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
    state: str | None = None,
) -> Any:
    """Execute a saved plan exactly once. Every staleness check happens before any request."""
    from reconciler.apply import apply_plan

    project = load_project(root)
    url = state_url(project, env=env, state=state)
    if state_is_missing(url):
        raise StalePlanError(
            f"no state at {url.redacted()}, but plan {plan.plan_id} was made against state lineage "
            f"{plan.lineage} serial {plan.serial}",
            hint="Nothing was sent. Restore that state (in CI: the state step, docs/gitops.md) or pass --state, "
            "or make a new plan with `reconciler plan --out`.",
        )
    if plan.git_dirty and not allow_dirty:
        raise StalePlanError(
            f"plan {plan.plan_id} was made from a working tree with uncommitted changes to the desired files",
            hint="Commit the change and make a new plan, or pass --allow-dirty if you reviewed it.",
        )
    targets = sorted({op.target for op in plan.operations} & set(targets_in_scope(project, only_targets)))
    with ExitStack() as stack:
        connectors = open_connectors(project, targets, env=env, transports=transports, stack=stack)
        check_plan_scopes(plan.operations, connectors)  # before any write: scopes may have changed since the plan
        for name, conn in connectors.items():
            conn.resume_from(plan.marks.get(name))
        from reconciler.state import open_state_store

        store = open_state_store(url)
        stack.callback(store.close)
        check_desired_files(plan, project.desired.digest, project.desired.file_digests, store)
        return apply_plan(
            plan,
            store,
            connectors,
            desired_digest=project.desired.digest,
            holder=who(),
            progress=progress,
            targets=set(only_targets) if only_targets else None,
        )


def changed_files(planned: Mapping[str, str], now: Mapping[str, str]) -> list[str]:
    """The desired files that differ between the plan and now: "path (changed|added|removed)"."""
    out = []
    for path in sorted(set(planned) | set(now)):
        if path not in now:
            out.append(f"{path} (removed)")
        elif path not in planned:
            out.append(f"{path} (added)")
        elif planned[path] != now[path]:
            out.append(f"{path} (changed)")
    return out


def check_desired_files(plan: Plan, digest: str, now: Mapping[str, str], store: Any) -> None:
    """Refuse, before any request, a plan whose desired files changed: name the files (the plan
    keeps one digest per file) and the state serial it was made against versus now. A plan
    without per-file digests is left to the apply engine's whole-digest check."""
    files = changed_files(plan.desired_files, now) if digest != plan.desired_digest and plan.desired_files else []
    if not files:
        return
    serial = store.serial()
    moved = (f"the state moved too: the plan was made against serial {plan.serial}, it is now at serial {serial}"
             if serial != plan.serial else f"the state is still at serial {serial}, as when the plan was made")
    raise StalePlanError(
        f"plan {plan.plan_id} is stale: the desired files changed since the plan was made: "
        f"{', '.join(files)}; {moved}",
        hint="Nothing was sent. Make a new plan from the current files with `reconciler plan --out` and review it.",
    )


# Target fields that cannot send a credential anywhere new; every other field (kind, url,
# credentials_env, options, and whatever a later version adds, such as an OAuth token url) can.
HARMLESS_TARGET_FIELDS = frozenset({"locations", "strategy", "prune", "infer_movements", "rate_limit", "rate_burst",
                                    "concurrency", "timeout"})


def endpoint_changes(project: Project, trusted: Project) -> list[str]:
    """Targets of ``project`` whose credential could go somewhere ``trusted`` does not send it:
    a new target, or another value of any field but the harmless ones (kind, url,
    credentials_env, options, ...). A CI plan job of a pull request checks this against the
    base branch before it hands the pull request's files any token."""
    changes = []
    for name, target in sorted(project.config.targets.items()):
        known = trusted.config.targets.get(name)
        if known is None:
            changes.append(f"target {name} is new (kind {target.kind}, url {target.url}, credentials_env {target.credentials_env})")
            continue
        for field_name in type(target).model_fields:
            old, new = getattr(known, field_name), getattr(target, field_name)
            if field_name not in HARMLESS_TARGET_FIELDS and old != new:
                changes.append(f"target {name}: {field_name} {old} -> {new}")
    return changes


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
    state_note: str | None = None  # "no state at ...": nothing to compare against
    # operations of earlier applies still pending or in doubt: B of their positions is not sure
    unsettled: tuple[str, ...] = ()

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
    state: str | None = None,
) -> DriftReport:
    """Positions whose live stock differs from B, and the targets whose stock cannot be read."""
    project = load_project(root)
    targets = targets_in_scope(project, only_targets)
    url = state_url(project, env=env, state=state)
    if state_is_missing(url):
        # Drift only reads: never create a state as a side effect of looking.
        return DriftReport([], [], 0, 0, state_note=f"no state at {url.redacted()}: nothing was applied, so "
                           "nothing can have drifted. Restore the state or pass --state.")
    with ExitStack() as stack:
        connectors, _ = reading_connectors(project, targets, env=env, transports=transports, stack=stack)
        unsettled: list[str] = []

        def note_unsettled(store: Any) -> None:
            from reconciler.apply._unsettled import describe_entry

            unsettled.extend(describe_entry(e) for e in store.unsettled(targets))

        base, actual = base_and_actual(project, connectors, env=env, url=url, precheck=note_unsettled)
    for name in targets:
        actual.setdefault(name, TargetActual(readable=False))
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
    note = None if base.positions else f"the state at {url.redacted()} holds nothing applied yet: nothing to compare."
    return DriftReport(entries, unreadable, checked, applied, state_note=note, unsettled=tuple(unsettled))
