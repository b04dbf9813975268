"""Run an untrusted Python program so that nothing it does outlives its run or reaches outside it.

Each run gets, as far as the host allows (`Sandbox.isolation` says what is in force, `lacks` what
is not, and both are logged once):
- namespaces: mount (one private, size-capped tmpfs holds /tmp, /var/tmp, /dev/shm and the work
  folder; every other mount read-only; a fresh /proc), pid (when the program ends, every process it
  started dies with the namespace), network (none), ipc (no System V segment survives);
- as root, a uid of its own per slot, claimed exclusively across processes (a lock file per uid; a
  uid that some process outside our locks runs as is skipped, never swept); after every program
  every process of that uid is killed, so the next program starts with none;
  without root, a user namespace with every capability dropped, else the rlimits alone;
- a cgroup per program (v2, else v1) with memory and pids limits, killed as a whole afterwards;
- rlimits cpu, address space, file size, processes and core; a wall-clock SIGKILL; a cap on captured
  output; a scrubbed environment.

The verdict comes from what the kernel reports (init's `wait4` status and CPU time, the cgroup's
OOM-kill count, a full tmpfs, SIGXCPU/SIGXFSZ), never from what the program printed. Programs are
forked by one long-lived launcher process per `Sandbox` (`filters/_sandbox_init.py`, started with
subprocess: no `preexec_fn` runs in a threaded parent, and no Python start-up is paid per program).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from filters._cgroups import CgroupRun, Cgroups, find_cgroups
from filters._forkserver import ForkServer, Output, kill_group, pump
from filters._sandbox_init import MEMORY_EXIT
from filters._uids import UID_BASE, SlotUids, processes_of, sweep

__all__ = ["UID_BASE", "Limits", "RunStatus", "Sandbox", "SandboxResult"]

log = logging.getLogger(__name__)

RunStatus = Literal["ok", "runtime_error", "timeout", "memory", "output_limit", "file_limit", "sandbox_error"]
Isolation = Literal["auto", "namespaces", "rlimits"]
_NS = {"mount": 0x00020000, "ipc": 0x08000000, "pid": 0x20000000, "network": 0x40000000}
_NEWUSER = 0x10000000
_OPTIONAL = ("read-only", "proc")  # steps a host may refuse without losing the namespaces
_NO_CGROUPS = Cgroups(None, None, None, False)
_CGROUP_SLACK_MB = 64  # the launcher and init, charged to the program's cgroup too
_CGROUP_PREFIX = "distill-sbx"  # a program's cgroup: PREFIX-PID-SANDBOX-SLOT (PID: the Sandbox's process)
# The probe's own wall clock: a busy box must not pass for one that lacks a namespace or a cgroup.
_PROBE_WALL_S = 60.0
_logged: set[str] = set()  # isolation strings this process has logged already


@dataclass(frozen=True)
class Limits:
    """Per-run resource limits."""

    cpu_s: int = 10
    wall_s: float = 20.0
    memory_mb: int = 2048
    file_mb: int = 16
    disk_mb: int = 64  # everything the program writes, all files together (its private tmpfs)
    nproc: int = 32
    output_bytes: int = 8 * 1024**2


@dataclass(frozen=True)
class SandboxResult:
    """What a program did: status, exit code, captured (possibly truncated) output, and why."""

    status: RunStatus
    returncode: int | None
    stdout: str
    stderr: str
    wall_s: float
    isolation: str
    detail: str = ""  # the reason, as the kernel or the sandbox reported it (signal, limit hit)


@dataclass
class _Report:
    """What the launcher wrote on its report pipe."""

    have: list[str] = field(default_factory=list)
    status: int | None = None  # the program's wait status
    cpu_s: float = 0.0
    disk_full: bool = False
    swept: bool = False
    error: str = ""

    @classmethod
    def parse(cls, text: str) -> _Report:
        report = cls()
        for line in text.splitlines():
            kind, _, rest = line.partition(" ")
            if kind == "have":
                report.have.append(rest)
            elif kind == "exit":
                status, cpu, _maxrss, full = rest.split()
                report.status, report.cpu_s, report.disk_full = int(status), float(cpu), full == "1"
            elif kind == "swept":
                report.swept = True
            elif kind == "error":
                report.error = rest
        return report


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
        self._uids = SlotUids() if self._root else None
        self._cgroups = find_cgroups() if isolation != "rlimits" else _NO_CGROUPS
        self._cgroups.remove_stale(_CGROUP_PREFIX)  # what Sandboxes of killed processes left
        self._unshare, self._have, self.isolation = 0, list[str](), ""
        self._locks: dict[int, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._server: ForkServer | None = None
        self.python = self._probe(python, isolation)
        self.lacks = self._lacks()
        self.isolation = self._describe()
        if self.isolation not in _logged:
            _logged.add(self.isolation)
            log.info("code sandbox: %s", self.isolation)
            if self.lacks:
                log.warning("code sandbox lacks: %s", "; ".join(self.lacks))

    def close(self) -> None:
        """Stop the launcher process and give the slots' uids back to other processes."""
        if self._server:
            self._server.close()
        if self._uids:
            self._uids.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        with self._slot_lock(slot):  # one program at a time per slot: its uid and cgroup are its own
            return self._launch(source, stdin, files or {}, slot, entry, [*self._have, "required"])[0]

    def uid(self, slot: int) -> int | None:
        """The uid the slot's programs run as (None unless we are root)."""
        return self._uids.uid(slot) if self._uids else None

    # ── set-up ─────────────────────────────────────────────────────────────
    def _probe(self, wanted: str | None, isolation: Isolation) -> str:
        """Pick the interpreter, namespaces and cgroups: the strongest set under which a program runs."""
        full = sum(_NS.values()) | (0 if self._root else _NEWUSER)
        ladder = [] if isolation == "rlimits" else [full, full & ~_NS["mount"]]
        if isolation != "namespaces":
            ladder.append(0)
        found = self._cgroups
        candidates = [wanted] if wanted else [sys.executable, "/usr/bin/python3", shutil.which("python3")]
        errors: list[str] = []
        for python in dict.fromkeys(c for c in candidates if c):
            self._server = ForkServer(python, _ENV)
            for flags in ladder:
                for cgroups in dict.fromkeys([found, _NO_CGROUPS]):
                    self._unshare, self._cgroups = flags, cgroups
                    # it imports a module the server has not: the uid must be able to read the stdlib
                    run, report = self._launch(
                        "import json", "", {}, 0, "main.py", list(_OPTIONAL), wall_s=_PROBE_WALL_S
                    )
                    if run.status == "ok":
                        self._have = [h for h in _OPTIONAL if h in report.have]
                        return python
                    errors.append(
                        f"{python} unshare={flags:#x}: {run.status} {run.detail or run.stderr[-200:]}"
                    )
            self._server.close()
        from distill.errors import VerifyError

        raise VerifyError(f"sandbox: no Python interpreter runs under the sandbox ({'; '.join(errors)})")

    def _lacks(self) -> list[str]:
        """What this host could not give, each with what it lets a program do."""
        missing = {
            "mount": "mount namespace (files written to /tmp, /var/tmp, /dev/shm stay; disk capped per file only)",
            "pid": "pid namespace (a program's background processes may outlive it)",
            "network": "network namespace (a program can reach the network)",
            "ipc": "ipc namespace (System V segments a program makes stay)",
        }
        lacks = [text for name, text in missing.items() if not self._unshare & _NS[name]]
        if self._unshare & _NS["mount"]:
            lacks += [f"{step} mount" for step in _OPTIONAL if step not in self._have]
        if not self._root:
            lacks.append("a uid per slot (not root): leftover processes cannot be swept by uid")
        if not (self._cgroups.memory or self._cgroups.pids):
            lacks.append("cgroup memory/pids limits (no writable cgroup hierarchy)")
        return lacks

    def _describe(self) -> str:
        lim, parts = self.limits, []
        if self._unshare & _NS["mount"]:
            ro = "; the rest read-only" if "read-only" in self._have else ""
            proc = "; its own /proc" if "proc" in self._have else ""
            tmpfs = f"private {lim.disk_mb}MB tmpfs on /tmp, /var/tmp, /dev/shm and the work folder"
            parts.append(f"mount namespace ({tmpfs}{ro}{proc})")
        if self._unshare & _NS["pid"]:
            parts.append("pid namespace")
        parts.append(
            "network namespace (no network)" if self._unshare & _NS["network"] else "no network isolation"
        )
        if self._unshare & _NS["ipc"]:
            parts.append("ipc namespace")
        if self._root:
            parts.append(f"uid {UID_BASE}+ per slot (its processes killed after every program)")
        else:
            user = "user namespace without capabilities, " if self._unshare & _NEWUSER else ""
            parts.append(f"{user}uid {os.geteuid()}")
        cgroup = self._cgroups.describe(self._cgroup_memory_mb, lim.nproc + 2)
        if cgroup:
            parts.append(cgroup)
        parts.append(
            f"rlimits cpu={lim.cpu_s}s mem={lim.memory_mb}MB fsize={lim.file_mb}MB nproc={lim.nproc} core=0; "
            f"wall={lim.wall_s:g}s; env scrubbed; {self.python}"
        )
        text = ", ".join(parts)
        return f"{text}; lacks: {'; '.join(self.lacks)}" if self.lacks else text

    @property
    def _cgroup_memory_mb(self) -> int:
        return self.limits.memory_mb + self.limits.disk_mb + _CGROUP_SLACK_MB

    def _slot_lock(self, slot: int) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(slot, threading.Lock())

    # ── one run ────────────────────────────────────────────────────────────
    def _settings(
        self, work: Path, uid: int | None, procs: list[str], want: list[str], entry: str
    ) -> list[str]:
        lim = self.limits
        mem, fsize = lim.memory_mb * 1024**2, lim.file_mb * 1024**2
        # RLIMIT_NPROC counts every process of the uid: a dedicated uid starts at 0, ours does not.
        nproc = lim.nproc if uid is not None else lim.nproc + len(processes_of(os.geteuid()))
        rlimits = f"cpu:{lim.cpu_s}:{lim.cpu_s + 1},as:{mem}:{mem},fsize:{fsize}:{fsize},nproc:{nproc}:{nproc},core:0:0"
        inner = f"/tmp/{work.name}" if self._unshare & _NS["mount"] else str(work)
        return [
            f"work={work}", f"inner_work={inner}", f"uid={'' if uid is None else uid}",
            f"unshare={self._unshare}", f"userns={int(bool(self._unshare & _NEWUSER))}",
            f"disk={lim.disk_mb * 1024**2}", f"cgroups={','.join(procs)}", f"want={','.join(want)}",
            f"rlimits={rlimits}", "--", entry,
        ]  # fmt: skip

    def _launch(
        self,
        source: str,
        stdin: str,
        files: Mapping[str, str],
        slot: int,
        entry: str,
        want: list[str],
        *,
        wall_s: float | None = None,
    ) -> tuple[SandboxResult, _Report]:
        assert self._server is not None
        uid = self.uid(slot)
        wall_s = self.limits.wall_s if wall_s is None else wall_s
        work = Path(tempfile.mkdtemp(prefix="distill-sbx-"))
        cgroup: CgroupRun | None = None
        output, error = Output(b"", b"", b"", False, False), ""
        start = self._clock()
        try:
            for name, text in {entry: source, **files}.items():
                (work / name).write_text(text, encoding="utf-8")
            if uid is not None and not self._unshare & _NS["mount"]:
                for path in (work, *work.iterdir()):
                    os.chown(path, uid, uid)
            if self._cgroups.memory or self._cgroups.pids or self._cgroups.kill:
                name = (
                    f"{_CGROUP_PREFIX}-{os.getpid()}-{id(self):x}-{slot}"  # unique while this Sandbox lives
                )
                cgroup = self._cgroups.start(name, self._cgroup_memory_mb * 1024**2, self.limits.nproc + 2)
            output = self._spawn_and_pump(
                self._settings(work, uid, cgroup.procs if cgroup else [], want, entry), stdin, wall_s
            )
        except OSError as e:
            error = f"cannot start: {e}"
        finally:
            oom = cgroup.finish() if cgroup else False
            report = _Report.parse(output.report.decode("utf-8", "replace"))
            if uid is not None and not report.swept:
                sweep(uid)  # the launcher was killed (or never started) before it could
            shutil.rmtree(work, ignore_errors=True)
        report.error = report.error or error
        status, detail = self._verdict(report, output, oom, wall_s)
        code = os.waitstatus_to_exitcode(report.status) if report.status is not None else None
        stdout, stderr = output.stdout.decode("utf-8", "replace"), output.stderr.decode("utf-8", "replace")
        result = SandboxResult(status, code, stdout, stderr, self._clock() - start, self.isolation, detail)
        return result, report

    def _spawn_and_pump(self, settings: list[str], stdin: str, wall_s: float) -> Output:
        assert self._server is not None
        pipes = [os.pipe() for _ in range(4)]  # stdin, stdout, stderr, report: (read, write) each
        theirs = [pipes[0][0], pipes[1][1], pipes[2][1], pipes[3][1]]
        ours = [pipes[0][1], pipes[1][0], pipes[2][0], pipes[3][0]]
        try:
            pid = self._server.spawn(settings, *theirs)
        except OSError:
            for fd in theirs + ours:
                os.close(fd)
            raise
        for fd in theirs:
            os.close(fd)
        try:
            return pump(
                stdin.encode(), *ours, kill=lambda: kill_group(pid), output_bytes=self.limits.output_bytes,
                deadline=self._clock() + wall_s, clock=self._clock,
            )  # fmt: skip
        finally:
            for fd in ours[1:]:  # pump closes stdin itself
                os.close(fd)

    def _verdict(self, report: _Report, output: Output, oom: bool, wall_s: float) -> tuple[RunStatus, str]:
        """The run's status from what the kernel reported (never from the program's output)."""
        if report.error:
            return "sandbox_error", report.error
        if output.over_limit:
            return "output_limit", f"more than {self.limits.output_bytes} bytes of output"
        if output.timed_out:
            return "timeout", f"wall-clock limit {wall_s:g}s"
        if report.status is None:
            return "sandbox_error", "the sandbox ended without reporting the program's status"
        if os.WIFSIGNALED(report.status):
            sig = os.WTERMSIG(report.status)
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = f"signal {sig}"
            if sig == signal.SIGXCPU or (
                sig == signal.SIGKILL and not oom and report.cpu_s >= self.limits.cpu_s
            ):
                return "timeout", f"CPU time limit ({name} after {report.cpu_s:.1f}s)"
            if sig == signal.SIGXFSZ:
                return "file_limit", f"file size limit {self.limits.file_mb}MB (SIGXFSZ)"
            if oom:
                return "memory", f"killed by the kernel OOM killer at {self._cgroup_memory_mb}MB ({name})"
            return "runtime_error", f"killed by {name}"
        code = os.WEXITSTATUS(report.status)
        if code == 0:
            return "ok", ""
        if oom:
            return "memory", f"the kernel OOM-killed its processes at the cgroup's {self._cgroup_memory_mb}MB"
        if code == MEMORY_EXIT:
            return "memory", f"memory limit {self.limits.memory_mb}MB (MemoryError)"
        if report.disk_full:
            return "file_limit", f"disk limit {self.limits.disk_mb}MB (its tmpfs is full)"
        return "runtime_error", f"exit code {code}"


_ENV = {  # the whole environment of every program (HOME and TMPDIR: its work folder)
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "PYTHONIOENCODING": "utf-8",
    "PYTHONHASHSEED": "0",
}
