"""Running sandboxes as processes: the foreground server behind ``reconciler sandbox serve``,
:class:`SandboxProcess` (a real subprocess for tests), and the detached sandboxes of
``reconciler sandbox up/down/status``.
"""

from __future__ import annotations

import inspect
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, Callable, Mapping

import httpx

from reconciler.errors import ReconcilerError
from reconciler.sandbox import simulator_class
from reconciler.sandbox._core import Simulator, quiet_dropped_connections
from reconciler.sandbox._fixtures import read_fixtures

READY_PREFIX = "listening on "
START_TIMEOUT_S = 20.0


class SandboxError(ReconcilerError):
    """A sandbox could not be started, reached or stopped."""


# --- one simulator in the foreground ------------------------------------------------------------


def make_simulator(
    kind: str,
    *,
    state: str | Path | None = None,
    token: str | None = None,
    fixtures_path: str | Path | None = None,
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
) -> Simulator:
    """Build the ``kind`` simulator; ``options`` are its kind-specific settings (e.g. Ka-ching's
    ``account``, ``integration``, ``delay``): constructor keywords, or one ``options`` mapping for
    simulators that take them so (Zettle)."""
    cls = simulator_class(kind)
    accepted = accepted_options(cls)
    unknown = sorted(set(options or {}) - accepted)
    if unknown:
        raise SandboxError(
            f"the {kind} sandbox has no option {', '.join(unknown)}",
            hint=f"Its options: {', '.join(sorted(accepted)) or 'none'}.",
        )
    fixtures = read_fixtures(fixtures_path) if fixtures_path else None
    extra: dict[str, Any] = dict(options or {})
    if _takes_options_mapping(cls):
        extra = {"options": extra} if extra else {}
    try:
        return cls(state=state, token=token, fixtures=fixtures, seed=seed, **extra)
    except (TypeError, ValueError) as exc:
        raise SandboxError(f"the {kind} sandbox refused its options: {exc}") from exc


_COMMON_ARGS = frozenset({"state", "token", "fixtures", "seed", "self", "clock"})


def _takes_options_mapping(cls: type[Simulator]) -> bool:
    return "options" in inspect.signature(cls.__init__).parameters


def accepted_options(cls: type[Simulator]) -> set[str]:
    """The kind-specific settings a simulator takes: its extra keyword-only constructor arguments,
    or the names in its module's ``KNOWN_OPTIONS`` when it takes one ``options`` mapping."""
    if _takes_options_mapping(cls):
        return set(getattr(sys.modules[cls.__module__], "KNOWN_OPTIONS", ()))
    params = inspect.signature(cls.__init__).parameters.values()
    return {p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name not in _COMMON_ARGS}


def http_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(sim: Simulator, *, host: str, port: int, on_ready: Callable[[str], None]) -> None:
    """Serve ``sim`` with uvicorn until SIGINT/SIGTERM; ``on_ready(url)`` once it accepts connections."""
    import uvicorn

    quiet_dropped_connections()
    config = uvicorn.Config(sim.app, host=host, port=port, log_level="warning", lifespan="off")

    class _Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                on_ready(http_url(host, self.servers[0].sockets[0].getsockname()[1]))

        async def shutdown(self, sockets: Any = None) -> None:
            # uvicorn re-raises SIGTERM after shutdown, which ends the process: close the state here
            await super().shutdown(sockets=sockets)
            closed.set()
            sim.close()

    closed = threading.Event()
    try:
        _Server(config).run()
    except SystemExit as exc:
        # uvicorn logs why it could not start (e.g. the port is taken) and exits with its own code
        raise SandboxError(f"the {sim.kind} sandbox could not start on {host}:{port} (see the error above)",
                           hint="Pick another --port, or stop what uses this one.") from exc
    finally:
        if not closed.is_set():
            sim.close()


# --- a sandbox in a subprocess (tests) ----------------------------------------------------------


def serve_command(
    kind: str,
    *,
    state: str | Path,
    host: str = "127.0.0.1",
    port: int = 0,
    fixtures_path: str | Path | None = None,
    token: str | None = None,
    seed: int = 0,
    options: Mapping[str, str] | None = None,
) -> list[str]:
    """The argv of ``reconciler sandbox serve`` with these settings."""
    cmd = [sys.executable, "-m", "reconciler", "sandbox", "serve", kind,
           "--host", host, "--port", str(port), "--state", str(state), "--seed", str(seed)]
    if fixtures_path:
        cmd += ["--fixtures", str(fixtures_path)]
    if token:
        cmd += ["--token", token]
    for key, value in (options or {}).items():
        cmd += ["--option", f"{key}={value}"]
    return cmd


class SandboxProcess:
    """``with SandboxProcess("runfree", state=tmp / "rf.db") as sb: httpx.get(sb.url + ...)``

    Starts ``python -m reconciler sandbox serve`` as a real subprocess, waits for its
    "listening on" line, and terminates it on exit.
    """

    def __init__(
        self,
        kind: str,
        *,
        state: str | Path,
        fixtures_path: str | Path | None = None,
        token: str | None = None,
        port: int = 0,
        seed: int = 0,
        options: Mapping[str, str] | None = None,
        timeout: float = START_TIMEOUT_S,
    ) -> None:
        self.kind = kind
        self.cmd = serve_command(kind, state=state, port=port, fixtures_path=fixtures_path, token=token,
                                 seed=seed, options=options)
        self.timeout = timeout
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None
        self._stderr: IO[str] | None = None

    def __enter__(self) -> SandboxProcess:
        self._stderr = tempfile.TemporaryFile(mode="w+", encoding="utf-8")
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=self._stderr, stdin=subprocess.DEVNULL,
                                     text=True, bufsize=1)
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_pump, args=(self.proc.stdout, lines), daemon=True).start()
        try:
            self.url = self._wait_ready(lines)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, lines: queue.Queue[str]) -> str:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                assert self.proc is not None
                if self.proc.poll() is not None and lines.empty():
                    break
                continue
            if line.startswith(READY_PREFIX):
                return line[len(READY_PREFIX):].strip()
        raise SandboxError(f"the {self.kind} sandbox did not start: {self.stderr_text()[-2000:] or 'no output'}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._stderr:
            self._stderr.close()


def _pump(stream: IO[str] | None, lines: queue.Queue[str]) -> None:
    for line in stream or ():
        lines.put(line)


# --- detached sandboxes (sandbox up/down/status) ------------------------------------------------


@dataclass(frozen=True)
class PidRecord:
    """What ``.reconciler/sandboxes/<target>.pid`` holds."""

    target: str
    kind: str
    pid: int
    url: str
    state: str

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> PidRecord | None:
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None


def start_detached(cmd: list[str], *, log_path: Path, cwd: Path) -> int:
    """Start ``cmd`` in its own session (it outlives this process); output goes to ``log_path``."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=cwd,
                                start_new_session=True)
    return proc.pid


def health(url: str, timeout: float = 1.0) -> dict[str, Any] | None:
    """The sandbox's /_sandbox/health answer, or None when nothing answers there."""
    try:
        response = httpx.get(url.rstrip("/") + "/_sandbox/health", timeout=timeout)
        return response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def wait_healthy(url: str, kind: str, pid: int, log_path: Path, timeout: float = START_TIMEOUT_S, *,
                 log_offset: int = 0) -> None:
    """Wait until the sandbox process ``pid`` itself answers on ``url``.

    Another sandbox of the same kind answering there (another checkout's) is not enough: the
    process must be alive, must have written its ready line (it binds its port before that) to
    its own log after ``log_offset``, and where the system tells (Linux /proc) must hold the
    listening socket."""
    port = int(url.rsplit(":", 1)[1].rstrip("/"))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # alive, not "is a sandbox": just after the fork the child still shows our command line
        if not _alive(pid):
            break
        if READY_PREFIX in _log_since(log_path, log_offset):
            holder = port_holder(port)
            answer = health(url, timeout=0.5)
            if holder not in (None, pid):
                raise SandboxError(f"the {kind} sandbox (pid {pid}) reported ready, but port {port} is held by "
                                   f"{describe_process(holder)}", hint="Stop that process, or give this target another port.")
            if answer and answer.get("kind") == kind:
                return
        time.sleep(0.1)
    tail = _log_since(log_path, log_offset)[-1500:]
    state = "still starting" if _alive(pid) else "exited"
    raise SandboxError(f"the {kind} sandbox at {url} did not become healthy (pid {pid}, {state}); its log {log_path} ends:\n{tail}",
                       hint="Check that the port is free, or run `reconciler sandbox serve` by hand to see why.")


def _log_since(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as log:
            log.seek(offset)
            return log.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on ``host:port`` (we could bind it ourselves)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # as uvicorn binds: a closed connection lingering in TIME_WAIT does not make a port taken
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def port_holder(port: int) -> int | None:
    """The pid of the process listening on TCP ``port`` (any address), where Linux's /proc says;
    None when it cannot be told (another OS, another user's process) or nothing listens."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text(encoding="ascii", errors="replace").splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            # local address "0100007F:1F90", state 0A = LISTEN, inode in column 10
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return int(proc.name)
        except OSError:
            continue
    return None


def describe_process(pid: int) -> str:
    """"pid 123 (reconciler sandbox serve xseries ..., in /other/checkout)", as far as /proc tells."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        command = " ".join(a.decode(errors="replace") for a in args if a)
        if "-m reconciler " in command:
            command = "reconciler " + command.split("-m reconciler ", 1)[1]
        where = os.readlink(f"/proc/{pid}/cwd")
        return f"pid {pid} ({command[:160]}, in {where})"
    except OSError:
        return f"pid {pid}"


def is_sandbox_process(pid: int) -> bool:
    """True when ``pid`` is alive and is a ``reconciler sandbox serve`` (so we never kill a stranger
    that reused the pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            return False
        if b"sandbox" not in args or b"serve" not in args:
            return False
        # a zombie (exited, not yet reaped) has an empty cmdline and was rejected above
    return True


def stop_process(pid: int, timeout: float = 10.0) -> bool:
    """SIGTERM a sandbox process and wait for it; SIGKILL if it lingers. False if it was not running."""
    return stop_processes([pid], timeout)[pid]


def stop_processes(pids: list[int], timeout: float = 10.0) -> dict[int, bool]:
    """SIGTERM every sandbox process first, then wait for all (they shut down in parallel);
    SIGKILL what lingers past ``timeout``. pid -> whether it was running."""
    running = {pid: is_sandbox_process(pid) for pid in pids}
    waiting = [pid for pid, alive in running.items() if alive]
    for pid in waiting:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        waiting = [pid for pid in waiting if _alive(pid)]
        if waiting:
            time.sleep(0.05)
    for pid in waiting:
        os.kill(pid, signal.SIGKILL)
    return running


def _alive(pid: int) -> bool:
    try:
        # reap it if it is our child (tests start `up` in-process), so it does not linger as a zombie
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        text = status.read_text(encoding="utf-8", errors="replace")
        return "\nState:\tZ" not in text
    return True


# --- the sandboxes of a project -----------------------------------------------------------------

SANDBOX_DIR = ".reconciler/sandboxes"
ENV_FILE = ".reconciler/sandbox.env"  # read by reconciler.config as a fallback for credentials
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class PlannedSandbox:
    """A target of the project that `sandbox up` serves: its url is on loopback."""

    target: str
    kind: str
    host: str
    port: int
    url: str
    credentials_env: str | None
    options: dict[str, str]


def is_loopback(host: str) -> bool:
    import ipaddress

    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def planned_sandboxes(project: Any) -> list[PlannedSandbox]:
    """The project's targets whose url is on loopback, in name order; other targets are real vendors."""
    from urllib.parse import parse_qsl, urlsplit

    planned: list[PlannedSandbox] = []
    for name, target in sorted(project.config.targets.items()):
        parts = urlsplit(target.url or "")
        if not parts.hostname or not is_loopback(parts.hostname):
            continue
        if parts.port is None:
            raise SandboxError(f"target {name!r}: the sandbox url {target.url} has no port",
                               hint="Write the port in reconciler.yaml, e.g. url: http://127.0.0.1:8101.")
        accepted = accepted_options(simulator_class(target.kind))
        # A url pasted with its query (Ka-ching's account and integration) configures the sandbox too.
        options = {k: v for k, v in parse_qsl(parts.query) if k in accepted}
        options.update({k: str(v) for k, v in target.options.items() if k in accepted})
        planned.append(PlannedSandbox(name, target.kind, parts.hostname, parts.port, http_url(parts.hostname, parts.port),
                                      target.credentials_env, options))
    ports = [p.port for p in planned]
    clashes = sorted({port for port in ports if ports.count(port) > 1})
    if clashes:
        raise SandboxError(f"several loopback targets use port {', '.join(map(str, clashes))}",
                           hint="Give each sandbox target its own port in reconciler.yaml.")
    return planned


def sandboxes_up(root: str | Path) -> list[tuple[str, str]]:
    """Start a detached sandbox per loopback target of the project at ``root`` (idempotent);
    returns ``(target, what happened)`` pairs.

    A sandbox of this checkout that is running and answering is "already up". A port held by
    anything else (another checkout's sandbox too) is an error naming the port and, where the
    system tells, the process; it is raised before anything is started. Each started sandbox is
    reported only once its own process answers on its port (:func:`wait_healthy`)."""
    from reconciler.config import load_project

    project = load_project(root)
    base = Path(project.root)
    folder = base / SANDBOX_DIR
    folder.mkdir(parents=True, exist_ok=True)
    report: list[tuple[str, str]] = []
    to_start: list[PlannedSandbox] = []
    for sandbox in planned_sandboxes(project):
        record = PidRecord.read(folder / f"{sandbox.target}.pid")
        if record and _is_ours_and_up(record, sandbox):
            report.append((sandbox.target, f"already up at {record.url} (pid {record.pid})"))
        else:
            to_start.append(sandbox)
    _refuse_taken_ports(to_start)
    started = [(sandbox, *_start(project, folder, sandbox)) for sandbox in to_start]
    for sandbox, pid, offset in started:
        try:
            wait_healthy(sandbox.url, sandbox.kind, pid, folder / f"{sandbox.target}.log", log_offset=offset)
        except SandboxError:
            stop_processes([p for _, p, _ in started])
            for other, _, _ in started:
                (folder / f"{other.target}.pid").unlink(missing_ok=True)
            raise
        report.append((sandbox.target, f"started at {sandbox.url} (pid {pid})"))
    write_env_file(base, planned_sandboxes(project))
    return sorted(report)


def _is_ours_and_up(record: PidRecord, sandbox: PlannedSandbox) -> bool:
    """This checkout's pid file names a live sandbox process of the kind, holding the port (where
    that can be told) and answering there."""
    if record.url != sandbox.url or not is_sandbox_process(record.pid):
        return False
    holder = port_holder(sandbox.port)
    return holder in (None, record.pid) and (health(record.url) or {}).get("kind") == sandbox.kind


def _refuse_taken_ports(sandboxes: list[PlannedSandbox]) -> None:
    taken = []
    for sandbox in sandboxes:
        if port_is_free(sandbox.host, sandbox.port):
            continue
        holder = port_holder(sandbox.port)
        by = f"held by {describe_process(holder)}" if holder is not None else "in use by another process"
        taken.append(f"port {sandbox.port} of target {sandbox.target} ({sandbox.kind}) is {by}")
    if taken:
        raise SandboxError(
            "cannot start the sandboxes, nothing was started: " + "; ".join(taken),
            hint="Stop that process (if it is another checkout's sandbox: `reconciler -C THAT_CHECKOUT sandbox down`), "
            "or give these targets other ports in reconciler.yaml.",
        )


def _start(project: Any, folder: Path, sandbox: PlannedSandbox) -> tuple[int, int]:
    """Start one detached sandbox; (pid, where its new log output begins)."""
    from reconciler.sandbox._fixtures import target_fixtures

    pid_path = folder / f"{sandbox.target}.pid"
    pid_path.unlink(missing_ok=True)
    state = folder / f"{sandbox.target}.db"
    fixtures_path = None
    if not state.exists():  # an existing state keeps its stock; `down --reset` starts afresh
        fixtures_path = folder / f"{sandbox.target}.fixtures.json"
        fixtures_path.write_text(json.dumps(target_fixtures(project, sandbox.target), indent=1), encoding="utf-8")
    cmd = serve_command(sandbox.kind, state=state, host=sandbox.host, port=sandbox.port,
                        fixtures_path=fixtures_path, options=sandbox.options)
    log_path = folder / f"{sandbox.target}.log"
    offset = log_path.stat().st_size if log_path.exists() else 0
    pid = start_detached(cmd, log_path=log_path, cwd=Path(project.root))
    PidRecord(sandbox.target, sandbox.kind, pid, sandbox.url, str(state)).write(pid_path)
    return pid, offset


def write_env_file(root: Path, sandboxes: list[PlannedSandbox]) -> Path:
    """``.reconciler/sandbox.env``: each sandbox target's credentials_env = the sandbox's default token."""
    path = root / ENV_FILE
    lines = ["# written by `reconciler sandbox up`: the sandboxes' default tokens (not real credentials)"]
    lines += [f"{s.credentials_env}={simulator_class(s.kind).default_token}" for s in sandboxes if s.credentials_env]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def sandbox_records(root: str | Path) -> list[tuple[PidRecord, bool]]:
    """Every pid file under .reconciler/sandboxes, with whether its process is running."""
    folder = Path(root) / SANDBOX_DIR
    records = [PidRecord.read(path) for path in sorted(folder.glob("*.pid"))] if folder.is_dir() else []
    return [(record, is_sandbox_process(record.pid)) for record in records if record]


def sandboxes_down(root: str | Path, *, reset: bool = False) -> list[tuple[str, str]]:
    """Stop every sandbox with a pid file and remove the pid files; ``reset`` also deletes their state."""
    folder = Path(root) / SANDBOX_DIR
    report: list[tuple[str, str]] = []
    records = [record for record, _ in sandbox_records(root)]
    stopped = stop_processes([record.pid for record in records])
    for record in records:
        (folder / f"{record.target}.pid").unlink(missing_ok=True)
        report.append((record.target, f"stopped (pid {record.pid})" if stopped[record.pid] else "was not running"))
    if reset and folder.is_dir():
        for path in folder.iterdir():
            if path.suffix in {".db", ".json", ".log"} or path.name.endswith((".db-wal", ".db-shm")):
                path.unlink()
        report.append(("*", "state, fixtures and logs removed"))
    return report
