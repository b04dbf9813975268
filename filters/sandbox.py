"""Run an untrusted Python program: a fresh process with hard limits, no network, no secrets.

Every run gets an empty temporary working directory (also its HOME), a scrubbed environment, and
these limits: RLIMIT_CPU, RLIMIT_AS (memory), RLIMIT_FSIZE (file size), RLIMIT_NPROC (processes),
no core files, a cap on captured output, and a wall-clock kill. Isolation is chosen once, when a
`Sandbox` is built, from what works on the machine, and `Sandbox.isolation` says which is in force:

- as root: `unshare --net --pid` (no network; every process the program starts dies with it) and
  `setpriv` to a dedicated unprivileged uid per slot (root ignores RLIMIT_NPROC, so a fork bomb is
  only contained under another uid; that uid cannot read /root or delete the project's files);
- as a normal user: `unshare -r --net --pid` where user namespaces are allowed;
- otherwise: the rlimits alone, and the isolation string says "no network isolation".

The command is one exec chain of small system tools (unshare → setpriv → prlimit → python), so no
`preexec_fn` runs in a threaded parent.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["Limits", "RunStatus", "Sandbox", "SandboxResult"]

RunStatus = Literal["ok", "runtime_error", "timeout", "memory", "output_limit", "file_limit", "sandbox_error"]
Isolation = Literal["auto", "namespaces", "rlimits"]
UID_BASE = 61000  # slot i runs as uid UID_BASE + i (only when we are root)


@dataclass(frozen=True)
class Limits:
    """Per-run resource limits."""

    cpu_s: int = 10
    wall_s: float = 20.0
    memory_mb: int = 2048
    file_mb: int = 16
    nproc: int = 32
    output_bytes: int = 8 * 1024**2


@dataclass(frozen=True)
class SandboxResult:
    """What a program did: status, exit code, captured (possibly truncated) output."""

    status: RunStatus
    returncode: int | None
    stdout: str
    stderr: str
    wall_s: float
    isolation: str


class Sandbox:
    """Runs Python sources under the strongest isolation this machine allows."""

    def __init__(
        self,
        limits: Limits = Limits(),
        *,
        python: str | None = None,
        isolation: Isolation = "auto",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self._clock = clock
        self._root = os.geteuid() == 0
        namespaces = isolation in ("auto", "namespaces") and _works(self._ns_prefix() + ["true"])
        if isolation == "namespaces" and not namespaces:
            from distill.errors import VerifyError

            raise VerifyError("sandbox: Linux namespaces (unshare --net --pid) are not available here")
        self._namespaces = namespaces
        self.python = self._pick_python(python)
        parts = (
            ["network namespace (no network)", "pid namespace"] if namespaces else ["no network isolation"]
        )
        parts.append(f"uid {UID_BASE}+slot" if self._root else f"uid {os.geteuid()}")
        parts.append(
            f"rlimits cpu={limits.cpu_s}s mem={limits.memory_mb}MB fsize={limits.file_mb}MB "
            f"nproc={limits.nproc}; wall={limits.wall_s:g}s; env scrubbed; empty temp cwd; {self.python}"
        )
        self.isolation = ", ".join(parts)

    # ── public ─────────────────────────────────────────────────────────────
    def run_python(
        self,
        source: str,
        *,
        stdin: str = "",
        files: Mapping[str, str] | None = None,
        slot: int = 0,
        entry: str = "main.py",
    ) -> SandboxResult:
        """Run `source` as `entry` in a fresh empty directory (plus `files`), feeding it `stdin`."""
        work = Path(tempfile.mkdtemp(prefix="distill-sbx-"))
        try:
            for name, text in {entry: source, **(files or {})}.items():
                (work / name).write_text(text, encoding="utf-8")
            if self._root:
                uid = UID_BASE + slot
                for path in (work, *work.iterdir()):
                    os.chown(path, uid, uid)
            work.chmod(0o700)
            argv = self._command(slot) + [self.python, "-I", entry]
            return self._run(argv, stdin, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    # ── internals ──────────────────────────────────────────────────────────
    def _ns_prefix(self) -> list[str]:
        user = [] if self._root else ["--map-root-user"]
        return ["unshare", *user, "--net", "--pid", "--fork", "--kill-child", "--"]

    def _command(self, slot: int) -> list[str]:
        lim = self.limits
        cmd = self._ns_prefix() if self._namespaces else []
        if self._root:
            uid = UID_BASE + slot
            cmd += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]
        mem, fsize = lim.memory_mb * 1024**2, lim.file_mb * 1024**2
        # RLIMIT_NPROC counts every process of the uid: a dedicated uid starts at 0, ours does not.
        nproc = lim.nproc if self._root else lim.nproc + _processes_of(os.geteuid())
        cmd += [
            "prlimit",
            f"--cpu={lim.cpu_s}:{lim.cpu_s + 1}",
            f"--as={mem}:{mem}",
            f"--fsize={fsize}:{fsize}",
            f"--nproc={nproc}:{nproc}",
            "--core=0:0",
            "--",
        ]
        return cmd

    def _pick_python(self, wanted: str | None) -> str:
        """The first interpreter the sandboxed uid can run (ours may sit under an unreadable /root)."""
        candidates = [wanted] if wanted else [sys.executable, "/usr/bin/python3", shutil.which("python3")]
        for candidate in candidates:
            if candidate and _works(self._command(0) + [candidate, "-I", "-c", "pass"], cwd="/"):
                return candidate
        from distill.errors import VerifyError

        raise VerifyError(f"sandbox: no Python interpreter runs under the sandbox (tried {candidates})")

    def _env(self, work: Path) -> dict[str, str]:
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(work),
            "TMPDIR": str(work),
            "LANG": "C.UTF-8",
            "PYTHONIOENCODING": "utf-8",
            "PYTHONHASHSEED": "0",
        }

    def _run(self, argv: list[str], stdin: str, work: Path) -> SandboxResult:
        start = self._clock()
        try:
            proc = subprocess.Popen(
                argv,
                cwd=work,
                env=self._env(work),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                process_group=0,
                close_fds=True,
            )
        except OSError as e:
            return SandboxResult("sandbox_error", None, "", f"cannot start: {e}", 0.0, self.isolation)
        out, err, over_limit, timed_out = _collect(proc, stdin.encode(), self.limits, start, self._clock)
        wall = self._clock() - start
        code = proc.returncode
        stdout, stderr = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        status: RunStatus
        if over_limit:
            status = "output_limit"
        elif timed_out or (code != 0 and wall >= 0.9 * self.limits.cpu_s and "Traceback" not in stderr):
            status = "timeout"  # the CPU limit's SIGKILL (unshare reports it as its own failure)
        elif code in (-signal.SIGXFSZ, 128 + signal.SIGXFSZ) or "File too large" in stderr:
            status = "file_limit"
        elif "MemoryError" in stderr or "Cannot allocate memory" in stderr:
            status = "memory"
        elif code != 0:
            status = "runtime_error"
        else:
            status = "ok"
        return SandboxResult(status, code, stdout, stderr, wall, self.isolation)


def _collect(
    proc: subprocess.Popen[bytes], data: bytes, limits: Limits, start: float, clock: Callable[[], float]
) -> tuple[bytes, bytes, bool, bool]:
    """Feed stdin and read both pipes until exit, the output cap, or the wall-clock limit."""
    assert proc.stdin and proc.stdout and proc.stderr
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    chunks: dict[int, list[bytes]] = {out_fd: [], err_fd: []}
    total, over, timed_out = 0, False, False
    sel = selectors.DefaultSelector()
    for pipe in (proc.stdout, proc.stderr):
        os.set_blocking(pipe.fileno(), False)
        sel.register(pipe, selectors.EVENT_READ)
    if data:
        os.set_blocking(proc.stdin.fileno(), False)
        sel.register(proc.stdin, selectors.EVENT_WRITE)
    else:
        proc.stdin.close()
    view, sent = memoryview(data), 0
    try:
        while sel.get_map():
            remaining = start + limits.wall_s - clock()
            if remaining <= 0:
                timed_out = True
                break
            for key, _ in sel.select(timeout=remaining):
                if key.fileobj is proc.stdin:
                    try:
                        sent += os.write(key.fd, view[sent : sent + 65536])
                    except (BrokenPipeError, BlockingIOError):
                        sent = len(data)
                    if sent >= len(data):
                        sel.unregister(proc.stdin)
                        proc.stdin.close()
                    continue
                block = os.read(key.fd, 65536)
                if not block:
                    sel.unregister(key.fileobj)
                    continue
                total += len(block)
                if total > limits.output_bytes:
                    over = True
                    break
                chunks[key.fd].append(block)
            if over:
                break
    finally:
        sel.close()
        if over or timed_out:
            _kill_group(proc)
        try:
            proc.wait(timeout=max(0.1, start + limits.wall_s - clock()))
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
            proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe and not pipe.closed:
                pipe.close()
    return b"".join(chunks[out_fd]), b"".join(chunks[err_fd]), over, timed_out


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the whole process group; with a pid namespace its init dies and takes every child."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _processes_of(uid: int) -> int:
    count = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            with status.open() as f:
                count += any(line.startswith("Uid:") and line.split()[1] == str(uid) for line in f)
        except OSError:
            continue
    return count


def _works(argv: list[str], cwd: str | None = None) -> bool:
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, timeout=20, env={"PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0
