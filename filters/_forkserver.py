"""The sandbox's fork server and the pump that feeds a program and reads it until it is done.

One Python start-up per `Sandbox` instead of one per program: `ForkServer` starts
`filters/_sandbox_init.py serve` once and hands it, per program, the settings and four pipe ends
(stdin, stdout, stderr, report) over a Unix socket. A program is done when its report pipe reaches
EOF: the launcher and init hold it to the end, the program never does. The server answers the
launcher's pid, or `-ERRNO` when it could not fork (it goes on serving: a server that died would take
every running program of its Sandbox with it, as the launchers die with their server).
"""

from __future__ import annotations

import array
import contextlib
import os
import selectors
import signal
import socket
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LAUNCHER", "ForkServer", "Output", "kill_group", "pump"]

LAUNCHER = Path(__file__).with_name("_sandbox_init.py")
_DRAIN_S = 5.0  # after a kill: how long the report may take to reach EOF


class ForkServer:
    """A long-lived `_sandbox_init.py serve` (restarted if it dies); thread-safe."""

    def __init__(self, python: str, env: dict[str, str]) -> None:
        self._python, self._env = python, env
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None

    def spawn(self, argv: list[str], stdin: int, stdout: int, stderr: int, report: int) -> int:
        """Start one launcher with these pipe ends; returns its pid (also its process group)."""
        message = "\0".join(argv).encode()
        fds = array.array("i", [stdin, stdout, stderr, report])
        with self._lock:
            for _ in range(2):  # once more with a fresh server if this one died
                if self._proc is None or self._proc.poll() is not None:
                    self._start()
                assert self._sock is not None
                try:
                    self._sock.sendmsg([message], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
                    reply = self._sock.recv(32)
                except OSError:
                    reply = b""
                if reply.startswith(b"-"):  # the server could not fork (it goes on serving)
                    errno = int(reply[1:])
                    raise OSError(errno, f"the sandbox's fork server cannot fork: {os.strerror(errno)}")
                if reply:
                    return int(reply)
                self._stop()
        raise OSError("the sandbox's fork server does not answer")

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self._proc = subprocess.Popen(
                [self._python, "-I", str(LAUNCHER), "serve", str(theirs.fileno())],
                cwd="/", env=self._env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, pass_fds=(theirs.fileno(),), process_group=0,
            )  # fmt: skip
        self._sock = ours

    def _stop(self) -> None:
        if self._sock is not None:
            self._sock.close()  # the server exits when its socket reaches EOF
            self._sock = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None


@dataclass
class Output:
    """What the pump read: the program's output, the launcher's report, and why it stopped."""

    stdout: bytes
    stderr: bytes
    report: bytes
    over_limit: bool
    timed_out: bool


def pump(
    data: bytes,
    stdin: int,
    stdout: int,
    stderr: int,
    report: int,
    *,
    kill: Callable[[], None],
    output_bytes: int,
    deadline: float,
    clock: Callable[[], float],
) -> Output:
    """Feed stdin (then close it) and read every pipe until the report's EOF, the output cap or the deadline."""
    chunks: dict[int, list[bytes]] = {stdout: [], stderr: [], report: []}
    total, over, timed_out = 0, False, False
    sel = selectors.DefaultSelector()
    for fd in (stdout, stderr, report):
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    if data:
        os.set_blocking(stdin, False)
        sel.register(stdin, selectors.EVENT_WRITE)
    else:
        os.close(stdin)
    view, sent = memoryview(data), 0
    try:
        while sel.get_map():
            remaining = deadline - clock()
            if remaining <= 0:
                if over or timed_out:
                    break  # killed and still not done: give up on the report
                timed_out = True
                kill()
                deadline = clock() + _DRAIN_S
                continue
            for key, _ in sel.select(timeout=remaining):
                if key.fd == stdin:
                    try:
                        sent += os.write(stdin, view[sent : sent + 65536])
                    except (BrokenPipeError, BlockingIOError):
                        sent = len(data)
                    if sent >= len(data):
                        sel.unregister(stdin)
                        os.close(stdin)  # the program sees EOF
                    continue
                block = os.read(key.fd, 65536)
                if not block:
                    sel.unregister(key.fd)
                    continue
                if key.fd != report and not over:
                    total += len(block)
                    if total > output_bytes:
                        over = True
                        kill()
                        deadline = min(deadline, clock() + _DRAIN_S)
                        continue
                if key.fd == report or not over:
                    chunks[key.fd].append(block)
    finally:
        if data and stdin in sel.get_map():
            os.close(stdin)
        sel.close()
    return Output(
        b"".join(chunks[stdout]), b"".join(chunks[stderr]), b"".join(chunks[report]), over, timed_out
    )


def kill_group(pgid: int) -> None:
    """SIGKILL a launcher's process group; with a pid namespace its init dies and takes every child."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
