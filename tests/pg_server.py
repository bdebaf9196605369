"""A throwaway PostgreSQL server for the tests, and the URL of one to use.

``RECONCILER_TEST_PG`` (a postgresql:// URL) names a server to use; ``.ci/run`` sets it after
starting one with ``python tests/pg_server.py start DIR``. Unset, the test session starts its
own on loopback (initdb into a temp dir, pg_ctl on a free port) and stops it at the end.
PostgreSQL refuses to run as root, so under root the server runs as the ``postgres`` user, else
``nobody``. When no server can be started the PostgreSQL tests skip and say why.
"""

from __future__ import annotations

import atexit
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ENV = "RECONCILER_TEST_PG"
_SEARCH = ("/usr/local/bin", "/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin",
           "/usr/lib/postgresql/14/bin", "/usr/local/pgsql/bin", "/opt/homebrew/bin")


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for folder in _SEARCH:
        if (Path(folder) / name).exists():
            return str(Path(folder) / name)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as() -> str | None:
    """The user to run the server as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a postgres nor a nobody user exists to run PostgreSQL as")


class Server:
    """initdb + pg_ctl start in ``folder``; ``url`` has a password (scram) for the user reconciler."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.user = _run_as()
        self.password = secrets.token_hex(8)
        self.port = 0
        self.url = ""

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(list(args), user=self.user, capture_output=True, text=True, timeout=120, cwd=self.folder)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {done.stderr.strip() or done.stdout.strip()}")
        return done

    def start(self) -> str:
        initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
        if not initdb or not pg_ctl:
            raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.user:
            shutil.chown(self.folder, user=self.user)
        pwfile = self.folder / "pw"
        pwfile.write_text(self.password)
        if self.user:
            shutil.chown(pwfile, user=self.user)
        self._run(initdb, "-D", str(self.data), "-U", "reconciler", "--pwfile", str(pwfile), "--auth-local=trust",
                  "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync", "--locale=C")
        pwfile.unlink()
        last = ""
        for _ in range(5):  # the free port may be taken between probing and binding
            self.port = _free_port()
            opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.folder} "
                    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
            try:
                self._run(pg_ctl, "-D", str(self.data), "-o", opts, "-l", str(self.folder / "log"), "-w", "-t", "30", "start")
            except RuntimeError as exc:
                last = f"{exc}; log: {(self.folder / 'log').read_text(errors='replace')[-500:]}"
                continue
            self.url = f"postgresql://reconciler:{self.password}@127.0.0.1:{self.port}/postgres"
            return self.url
        raise RuntimeError(f"PostgreSQL did not start: {last}")

    def stop(self) -> None:
        pg_ctl = _binary("pg_ctl")
        if pg_ctl and self.data.exists():
            subprocess.run([pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"], user=self.user,
                           capture_output=True, timeout=60, cwd=self.folder)


_started: list[Server] = []


def server_url() -> tuple[str | None, str]:
    """(URL, "") of a server to test against, or (None, why not)."""
    if os.environ.get(ENV):
        return os.environ[ENV], ""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return None, "psycopg is not installed"
    if _started:
        return _started[0].url, ""
    folder = Path(tempfile.mkdtemp(prefix="reconciler-pg-"))
    server = Server(folder)
    try:
        url = server.start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        return None, f"could not start a PostgreSQL server ({exc}); set {ENV}=postgresql://... to use one"
    _started.append(server)
    atexit.register(_cleanup, server)
    return url, ""


def _cleanup(server: Server) -> None:
    server.stop()
    shutil.rmtree(server.folder, ignore_errors=True)


def main(argv: list[str]) -> int:
    """``start DIR``: start a server in DIR and print its URL; ``stop DIR``: stop it."""
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print("usage: pg_server.py start|stop DIR", file=sys.stderr)
        return 2
    server = Server(Path(argv[1]))
    if argv[0] == "stop":
        server.stop()
        return 0
    try:
        print(server.start())
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        print(f"could not start PostgreSQL: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


# --- pytest fixtures (imported by the conftest modules that need them) ------------------------
import uuid  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A PostgreSQL server's URL (password included); skips, saying why, when there is none."""
    url, why = server_url()
    if url is None:
        pytest.skip(f"PostgreSQL tests skipped: {why}")
    return url


def with_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


@pytest.fixture
def pg_schema_url(pg_url: str):  # type: ignore[no-untyped-def]
    """A fresh schema of the test server for one test, dropped afterwards."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield with_schema(pg_url, schema)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same state interface on both backends: a SQLite file, or a PostgreSQL schema."""
    if request.param == "sqlite":
        return str(tmp_path / "state" / "state.db")
    return str(request.getfixturevalue("pg_schema_url"))
