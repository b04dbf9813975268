"""Hostile programs are contained, recorded with their failure kind, and the machine is unharmed."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from filters.sandbox import UID_BASE, Limits, Sandbox

LIMITS = Limits(cpu_s=1, wall_s=2.0, memory_mb=512, file_mb=4, nproc=16, output_bytes=1024**2)


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(LIMITS)


def _live_processes_of(uid: int, deadline_s: float = 3.0) -> int:
    """Live (non-zombie) processes owned by `uid`, waiting up to the deadline for the kernel to end them."""
    end = time.monotonic() + deadline_s
    while True:
        count = 0
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
            except OSError:
                continue
            if int(fields["Uid"].split()[0]) == uid and not fields["State"].strip().startswith("Z"):
                count += 1
        if count == 0 or time.monotonic() > end:
            return count


def test_isolation_in_force_is_reported(sandbox: Sandbox) -> None:
    if os.geteuid() != 0:
        pytest.skip("the CI machine runs as root; elsewhere the isolation depends on user namespaces")
    assert "network namespace" in sandbox.isolation and "pid namespace" in sandbox.isolation
    assert f"uid {UID_BASE}" in sandbox.isolation and "nproc=16" in sandbox.isolation


def test_a_normal_program_reads_stdin_and_writes_stdout(sandbox: Sandbox) -> None:
    result = sandbox.run_python("print(sum(map(int, input().split())))", stdin="2 3 4\n")
    assert (result.status, result.stdout) == ("ok", "9\n")


def test_printing_gigabytes_hits_the_output_cap_quickly(sandbox: Sandbox) -> None:
    result = sandbox.run_python("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)")
    assert result.status == "output_limit"
    assert len(result.stdout) <= LIMITS.output_bytes and result.wall_s < LIMITS.wall_s


def test_fork_bomb_is_contained_and_leaves_nothing_behind(sandbox: Sandbox) -> None:
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    result = sandbox.run_python(bomb, slot=3)
    assert result.status in ("timeout", "runtime_error")
    if os.geteuid() == 0:
        assert _live_processes_of(UID_BASE + 3) == 0
    assert sandbox.run_python("print('still fine')", slot=3).stdout == "still fine\n"


def test_allocating_50_gb_is_a_memory_failure(sandbox: Sandbox) -> None:
    result = sandbox.run_python("x = bytearray(50 * 1024**3)")
    assert result.status == "memory"


def test_sleeping_forever_is_killed_at_the_wall_clock_limit(sandbox: Sandbox) -> None:
    result = sandbox.run_python("import time\ntime.sleep(10**6)")
    assert result.status == "timeout" and LIMITS.wall_s <= result.wall_s < LIMITS.wall_s + 2


def test_a_background_child_dies_with_the_program(sandbox: Sandbox) -> None:
    code = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(10**6)\nprint('parent done')"
    result = sandbox.run_python(code, slot=5)
    assert result.status == "ok" and result.stdout == "parent done\n"
    if os.geteuid() == 0:
        assert _live_processes_of(UID_BASE + 5) == 0


def test_no_network(sandbox: Sandbox) -> None:
    code = "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=2)\nprint('connected')"
    result = sandbox.run_python(code)
    assert result.status == "runtime_error" and "connected" not in result.stdout
    assert "unreachable" in result.stderr.lower() or "network" in result.stderr.lower()


def test_secrets_are_invisible(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-never-leak")
    monkeypatch.setenv("HF_TOKEN", "hf_should_never_leak")
    secret = tmp_path / "id_rsa"
    secret.write_text("PRIVATE KEY")
    secret.chmod(0o600)
    code = (
        f"import os\nprint(dict(os.environ))\nprint(os.path.expanduser('~'))\n"
        f"print(open({str(secret)!r}).read())"
    )
    result = sandbox.run_python(code)
    assert "should_never_leak" not in result.stdout and "should-never-leak" not in result.stdout
    if os.geteuid() == 0:
        assert result.status == "runtime_error" and "PRIVATE KEY" not in result.stdout
        assert "PermissionError" in result.stderr
        assert sandbox.run_python("print(open('/root/.bashrc').read())").status == "runtime_error"


def test_deleting_files_outside_its_directory_fails(sandbox: Sandbox, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only a separate uid protects the caller's files")
    victim = tmp_path / "keep.txt"
    victim.write_text("data")
    code = (
        f"import os, shutil\nshutil.rmtree(os.path.expanduser('~'), ignore_errors=True)\n"
        f"os.remove({str(victim)!r})"
    )
    result = sandbox.run_python(code)
    assert result.status == "runtime_error" and "PermissionError" in result.stderr
    assert victim.read_text() == "data"


def test_writing_a_huge_file_hits_the_file_size_limit(sandbox: Sandbox) -> None:
    result = sandbox.run_python("open('big', 'w').write('x' * (64 * 1024**2))")
    assert result.status == "file_limit"


def test_cpu_spin_is_a_timeout(sandbox: Sandbox) -> None:
    result = sandbox.run_python("while True:\n    pass")
    assert result.status == "timeout"
