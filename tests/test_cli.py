"""The console script: exit codes and one-line errors."""

from __future__ import annotations

import subprocess
import sys


def _distill(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "distill.cli", *args], capture_output=True, text=True,
                          timeout=120)


def test_help_lists_commands_and_unknown_command_is_a_usage_error() -> None:
    ok = _distill("--help")
    assert ok.returncode == 0 and "Usage" in ok.stdout
    bad = _distill("no-such-command")
    assert bad.returncode == 2 and "No such command" in bad.stderr
