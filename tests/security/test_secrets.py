"""Secrets (issue 8, point 4): a known token per target, the whole CLI workflow against live
sandboxes, then every file written and every byte printed is scanned for the tokens in every
encoding a leak could take. Plus the HTTP client's refusal of plain http except to loopback.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator
from urllib.parse import quote, quote_plus

import httpx
import pytest

from reconciler.connectors._http import VendorHTTP
from reconciler.connectors.base import Secret, TargetContext
from reconciler.errors import InsecureTransportError

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "badinput"))  # the corpus' base repository and live sandboxes
from badinput_kit import BASE, credential_env, live_sandboxes, run_cli  # noqa: E402

# '/', '+' and '=' change under URL- and base64-encoding, so each form is really a different string.
TOKENS = {target: f"tok-SECRET-7f3a9c2e/{target}+q=9d41" for target in ("xs", "ls", "zt", "kc", "rf")}
WRONG = "tok-SECRET-0bad1dea/rejected+k=77"


def leak_forms(secret: str) -> list[bytes]:
    """The secret as it could appear: raw, URL-encoded both ways, base64 (at each of the three
    alignments, so it is found inside a longer encoded string such as Basic auth), and JSON-escaped."""
    raw = secret.encode()
    forms = {raw, quote(secret, safe="").encode(), quote_plus(secret).encode(), secret.replace("/", "\\/").encode()}
    for pad in (b"", b"x", b"xx"):
        encoded = base64.b64encode(pad + raw)
        skip = {0: 0, 1: 2, 2: 3}[len(pad)]
        forms.add(encoded[skip:len(encoded) - 4])  # drop the chars mixed with padding or the prefix
        forms.add(base64.urlsafe_b64encode(pad + raw)[skip:len(encoded) - 4])
    return sorted(forms)


def find_leaks(blob: bytes, where: str) -> list[str]:
    found = []
    for secret in [*TOKENS.values(), WRONG]:
        found += [f"{where}: {form!r}" for form in leak_forms(secret) if form in blob]
    return found


def test_the_scanner_finds_every_form() -> None:
    """The control for every scan below."""
    token = TOKENS["kc"]
    for blob in (token.encode(), b"apikey=" + quote_plus(token).encode(), b"Basic " + base64.b64encode(b"u:" + token.encode()),
                 b'{"k": "' + token.replace("/", "\\/").encode() + b'"}', base64.b64encode(b"xy" + token.encode() + b"z")):
        assert find_leaks(blob, "x"), blob
    assert find_leaks(b"tok-SECRET-7f3a9c2e", "x") == []


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "shop"
    shutil.copytree(BASE, root)
    for var in ("RECONCILER_STATE", "RECONCILER_REPO"):
        monkeypatch.delenv(var, raising=False)
    with live_sandboxes(root, TOKENS):
        yield root


class Session:
    """Runs the console script as a user would and keeps every byte it printed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {k: v for k, v in os.environ.items() if k not in ("RECONCILER_STATE", "RECONCILER_REPO")}
        for target, var in credential_env(root).items():
            self.env[var] = TOKENS[target]
        self.printed: list[tuple[str, bytes]] = []

    def run(self, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
        done = subprocess.run([sys.executable, "-m", "reconciler", *argv], cwd=self.root, env={**self.env, **(env or {})},
                              capture_output=True, timeout=120)
        self.printed.append((" ".join(argv), done.stdout + done.stderr))
        assert b"Traceback" not in done.stderr, done.stderr.decode()
        return done


def _written_files(root: Path) -> Iterator[tuple[str, bytes]]:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            yield path.relative_to(root).as_posix(), path.read_bytes()


def test_no_token_in_any_file_or_output_of_the_workflow(repo: Path) -> None:
    cli = Session(repo)
    assert cli.run("validate").returncode == 0
    assert cli.run("plan", "--out", "plans/first.json").returncode == 0  # prints the text format
    for fmt in ("markdown", "json"):
        assert cli.run("plan", "--format", fmt).returncode == 0
    for fmt in ("text", "markdown", "json"):  # markdown: the PR comment
        assert cli.run("show", "plans/first.json", "--format", fmt).returncode == 0
    assert cli.run("apply", "plans/first.json").returncode == 0

    # A failed apply: two vendors refuse the credential (HTTP 401/403) and say so in their bodies.
    oslo = repo / "stock" / "oslo.yaml"
    oslo.write_text(oslo.read_text(encoding="utf-8").replace("RED-M: 5", "RED-M: 6").replace("RED-M: 2", "RED-M: 3"),
                    encoding="utf-8")
    assert cli.run("plan", "--out", "plans/second.json").returncode == 0
    variables = credential_env(repo)
    failed = cli.run("apply", "plans/second.json", env={variables["xs"]: WRONG, variables["rf"]: WRONG})
    assert failed.returncode == 3, failed.stderr.decode()
    assert b"Access token is not valid" in failed.stdout  # the vendor's refusal reached the user...

    history = cli.run("history")
    run_id = re.search(rb"\b([0-9a-f]{8,})\b", history.stdout)
    assert history.returncode == 0 and run_id, history.stdout.decode()
    assert cli.run("history", run_id.group(1).decode()).returncode == 0
    assert cli.run("drift", "--format", "json").returncode == 0

    leaks = [leak for name, blob in cli.printed for leak in find_leaks(blob, f"output of `{name}`")]
    files = list(_written_files(repo))
    assert any(name.startswith(".reconciler/state.db") for name, _ in files)  # the scan covers the state
    leaks += [leak for name, blob in files for leak in find_leaks(blob, name)]
    assert leaks == []  # ...but no credential did, in any form


def test_no_token_in_debug_logs(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """There is no --verbose option; a user (or CI) can still turn on DEBUG logging of httpx,
    httpcore and reconciler. Kaching sends its apikey in the query string, which httpx logs."""
    for target, var in credential_env(repo).items():
        monkeypatch.setenv(var, TOKENS[target])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root_logger = logging.getLogger()
    old_level = root_logger.level
    root_logger.addHandler(handler)
    root_logger.setLevel(logging.DEBUG)
    try:
        plan_file = str(repo / "plans" / "debug.json")
        runs = [run_cli("-C", str(repo), "plan", "--out", plan_file),
                run_cli("-C", str(repo), "apply", plan_file, "--no-progress"),
                run_cli("-C", str(repo), "drift")]
    finally:
        root_logger.removeHandler(handler)
        root_logger.setLevel(old_level)
    assert [r.code for r in runs] == [0, 0, 0], runs
    logged = stream.getvalue()
    assert "imports/stock" in logged and "apikey=" in logged  # the kaching request URL was logged
    assert find_leaks(logged.encode(), "debug log") == []
    assert [leak for r in runs for leak in find_leaks((r.stdout + r.stderr).encode(), "output")] == []


# --- plain http ---------------------------------------------------------------------------------


def _ctx(url: str) -> TargetContext:
    return TargetContext(name="shop", kind="xseries", base_url=url, credential=Secret(TOKENS["xs"]),
                         location_ids={}, item_ids={})


class Recorder(httpx.MockTransport):
    def __init__(self) -> None:
        self.seen: list[httpx.Request] = []
        super().__init__(lambda request: self.seen.append(request) or httpx.Response(200, json={"ok": True}))


@pytest.mark.parametrize("url", ["http://vendor.example.com", "http://10.0.0.7:8080", "http://127.0.0.1.evil.example",
                                 "http://shop.localhost", "ftp://vendor.example.com"])
def test_plain_http_to_a_remote_host_is_refused_before_anything_is_sent(url: str) -> None:
    transport = Recorder()
    with pytest.raises(InsecureTransportError) as refused:
        VendorHTTP(_ctx(url), transport).get("/api/2.0/inventory")
    assert transport.seen == []
    message = str(refused.value)
    assert "'shop'" in message and "https" in message and "reconciler.yaml" in message
    assert find_leaks(message.encode(), "error") == []


def test_an_absolute_plain_http_url_is_refused_on_an_https_client() -> None:
    transport = Recorder()
    with VendorHTTP(_ctx("https://vendor.example.com"), transport) as http, pytest.raises(InsecureTransportError):
        http.request("POST", "http://vendor.example.com/api/2.0/consignments", idempotent=False, json={})
    assert transport.seen == []


@pytest.mark.parametrize("url", ["https://vendor.example.com", "http://127.0.0.1:8080", "http://localhost:9", "http://[::1]:8080"])
def test_https_and_loopback_http_are_allowed(url: str) -> None:
    transport = Recorder()
    with VendorHTTP(_ctx(url), transport) as http:
        assert http.get("/ping").json() == {"ok": True}
    assert [str(r.url) for r in transport.seen] == [url.rstrip("/") + "/ping"]


def test_the_cli_refuses_a_plain_http_target_before_any_request(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    shutil.copytree(BASE, root)
    config = root / "reconciler.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace("url: http://127.0.0.1:9", "url: http://vendor.example.com", 1),
                      encoding="utf-8")
    run = run_cli("-C", str(root), "plan")
    assert run.code == 1
    assert "reconciler.yaml:12: url of target 'xs' uses plain http to a non-loopback host" in run.stderr
    assert not (root / ".reconciler").exists()
