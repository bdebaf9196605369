"""The console script and `python -m reconciler`: help, version, usage errors."""

from __future__ import annotations

import subprocess
import sys

from cli_kit import run_cli

COMMANDS = ("apply", "drift", "history", "import", "plan", "resolve", "sandbox", "show", "state", "unlock", "validate")


def test_python_dash_m_help_lists_every_command() -> None:
    done = subprocess.run([sys.executable, "-m", "reconciler", "--help"], capture_output=True, text=True, timeout=60)

    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith("Usage: reconciler [OPTIONS] COMMAND [ARGS]...")
    listed = done.stdout.split("Commands:", 1)[1].split()
    assert set(COMMANDS) <= set(listed)


def test_every_command_has_help() -> None:
    for command in COMMANDS:
        result = run_cli(command, "--help")
        assert result.code == 0 and result.stdout.startswith(f"Usage: reconciler {command}"), command


def test_version() -> None:
    result = run_cli("--version")

    assert result.code == 0 and "version 0.1.0" in result.stdout


def test_usage_errors_exit_1_not_2() -> None:
    # 2 means "changes" for --detailed-exitcode, so click's usage-error code 2 must not leak
    unknown_option = run_cli("plan", "--no-such-option")
    unknown_command = run_cli("plann")

    assert unknown_option.code == 1 and "No such option '--no-such-option'" in unknown_option.stderr
    assert unknown_command.code == 1 and "No such command 'plann'" in unknown_command.stderr
