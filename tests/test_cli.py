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


def test_help_shows_flags_without_python_type_placeholders() -> None:
    """`--dry-run` alone and `--n INTEGER`, never typer's `<bool>` / `<list[str]>` / `<str>`."""
    from typer.main import get_command

    from distill.cli import app

    commands = ["", *get_command(app).commands]  # type: ignore[attr-defined]
    for name in commands:
        done = subprocess.run(
            [sys.executable, "-m", "distill.cli", *([name] if name else []), "--help"],
            capture_output=True, text=True, timeout=120, env={**__import__("os").environ, "COLUMNS": "200"},
        )
        assert done.returncode == 0, done.stderr
        for placeholder in ("<bool>", "<list[", "<str>", "<int>", "<path>", "<float>"):
            assert placeholder not in done.stdout, f"distill {name} --help shows {placeholder}"
    push = _distill("push", "--help").stdout
    assert "--dry-run" in push and "--force" in push
