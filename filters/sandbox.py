"""Run an untrusted Python program so that nothing it does outlives its run or reaches outside it.

Each run gets, as far as the host allows (`Sandbox.isolation` says what is in force, `lacks` what
is not, and both are logged once):
- namespaces: mount (one private, size-capped tmpfs holds /tmp, /var/tmp, /dev/shm and the work
  folder; every other mount read-only; a fresh /proc), pid (when the program ends, every process it
  started dies with the namespace), network (none), ipc (no System V segment survives);
- as root, a uid of its own per slot, claimed exclusively across processes (a lock file per uid);
  after every program every process of that uid is killed, so the next program starts with none;
  without root, a user namespace with every capability dropped, else the rlimits alone;
- a cgroup per program (v2, else v1) with memory and pids limits, killed as a whole afterwards;
- rlimits cpu, address space, file size, processes and core; a wall-clock SIGKILL; a cap on captured
  output; a scrubbed environment.

The verdict comes from what the kernel reports (the launcher's `wait4` status and CPU time, the
cgroup's OOM-kill count, a full tmpfs, SIGXCPU/SIGXFSZ), never from what the program printed. The
launcher (`filters/_sandbox_init.py`) is started with subprocess, so no `preexec_fn` runs in a
threaded parent.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from filters._cgroups import CgroupRun, Cgroups, find_cgroups
from filters._sandbox_init import MEMORY_EXIT, SETUP_EXIT

__all__ = ["Limits", "RunStatus", "Sandbox", "SandboxResult"]

log = logging.getLogger(__name__)

RunStatus = Literal["ok", "runtime_error", "timeout", "memory", "output_limit", "file_limit", "sandbox_error"]
Isolation = Literal["auto", "namespaces", "rlimits"]
UID_BASE = 61000  # slot i runs as uid UID_BASE + i when that uid is free (only when we are root)
UID_POOL = 1024  # …else the next free one of UID_BASE … UID_BASE + UID_POOL - 1
_LAUNCHER = Path(__file__).with_name("_sandbox_init.py")
_NS = {"mount": 0x00020000, "ipc": 0x08000000, "pid": 0x20000000, "network": 0x40000000}
_NEWUSER = 0x10000000
_OPTIONAL = ("read-only", "proc")  # steps a host may refuse without losing the namespaces
_CGROUP_SLACK_MB = 64  # the launcher and init, charged to the program's cgroup too
_logged: set[str] = set()  # isolation strings already logged by this process


@dataclass(frozen=True)
class Limits:
    """Per-run resource limits."""

    cpu_s: int = 10
    wall_s: float = 20.0
    memory_mb: int = 2048
    file_mb: int = 16
    disk_mb: int = 64  # everything the program writes, all files together (the private tmpfs)
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
    detail: str = ""  # why, as the kernel or the sandbox said it (the signal, the limit hit)


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
        self._uids = _SlotUids() if self._root else None
        self._cgroups = find_cgroups() if isolation != "rlimits" else Cgroups(None, None, None, False)
        self._unshare, self._have = 0, list[str]()
        self._locks: dict[int, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self.python = self._probe(python, isolation)
        self.lacks = self._lacks()
        self.isolation = self._describe()
        if self.isolation not in _logged:
            _logged.add(self.isolation)
            log.info("code sandbox: %s", self.isolation)
            if self.lacks:
                log.warning("code sandbox lacks: %s", "; ".join(self.lacks))

    def close(self) -> None:
        """Give the slots' uids back to other processes."""
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
        want = [*self._have, "required"]
        with self._slot_lock(slot):  # a slot runs one program at a time: its uid and cgroup are its own
            return self._launch(source, stdin, files or {}, slot, entry, self.python, want)[0]

    def _slot_lock(self, slot: int) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(slot, threading.Lock())

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
        found, none = self._cgroups, Cgroups(None, None, None, False)
        candidates = [wanted] if wanted else [sys.executable, "/usr/bin/python3", shutil.which("python3")]
        errors: list[str] = []
        for python in dict.fromkeys(c for c in candidates if c):
            for flags in ladder:
                for cgroups in dict.fromkeys([found, none]):
                    self._unshare, self._cgroups = flags, cgroups
                    # it imports a module the launcher has not: the uid must be able to read the stdlib
                    run, report = self._launch("import json", "", {}, 0, "main.py", python, [*_OPTIONAL])
                    if run.status == "ok":
                        self._have = [h for h in _OPTIONAL if h in report.have]
                        return python
                    errors.append(
                        f"{python} unshare={flags:#x}: {run.status} {run.detail or run.stderr[-200:]}"
                    )
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
            parts.append(
                f"mount namespace (private {lim.disk_mb}MB tmpfs on /tmp, /var/tmp, /dev/shm and the work folder{ro}{proc})"
            )
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

    # ── one run ────────────────────────────────────────────────────────────
    def _argv(
        self,
        python: str,
        work: Path,
        report_fd: int,
        uid: int | None,
        procs: list[str],
        want: list[str],
        entry: str,
    ) -> list[str]:
        lim = self.limits
        mem, fsize = lim.memory_mb * 1024**2, lim.file_mb * 1024**2
        # RLIMIT_NPROC counts every process of the uid: a dedicated uid starts at 0, ours does not.
        nproc = lim.nproc if uid is not None else lim.nproc + _processes_of(os.geteuid())
        rlimits = f"cpu:{lim.cpu_s}:{lim.cpu_s + 1},as:{mem}:{mem},fsize:{fsize}:{fsize},nproc:{nproc}:{nproc},core:0:0"
        inner = f"/tmp/{work.name}" if self._unshare & _NS["mount"] else str(work)
        return [
            python, "-I", str(_LAUNCHER),
            f"report={report_fd}", f"work={work}", f"inner_work={inner}", f"uid={'' if uid is None else uid}",
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
        python: str,
        want: list[str],
    ) -> tuple[SandboxResult, _Report]:
        uid = self.uid(slot)
        work = Path(tempfile.mkdtemp(prefix="distill-sbx-"))
        cgroup: CgroupRun | None = None
        report, oom = _Report(), False
        out = err = b""
        over_limit = timed_out = False
        start = self._clock()
        try:
            for name, text in {entry: source, **files}.items():
                (work / name).write_text(text, encoding="utf-8")
            if uid is not None and not self._unshare & _NS["mount"]:
                for path in (work, *work.iterdir()):
                    os.chown(path, uid, uid)
            if self._cgroups.memory or self._cgroups.pids or self._cgroups.kill:
                name = f"distill-sbx-{os.getpid()}-{slot}"
                cgroup = self._cgroups.start(name, self._cgroup_memory_mb * 1024**2, self.limits.nproc + 2)
            report_r, report_w = os.pipe()
            try:
                argv = self._argv(python, work, report_w, uid, cgroup.procs if cgroup else [], want, entry)
                proc = subprocess.Popen(
                    argv, cwd="/", env=self._env(work), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, process_group=0, close_fds=True, pass_fds=(report_w,),
                )  # fmt: skip
                os.close(report_w)
                report_w = -1
                out, err, over_limit, timed_out = _collect(
                    proc, stdin.encode(), self.limits, start, self._clock
                )
                report = _Report.parse(_read_all(report_r))
            finally:
                for fd in (report_r, report_w):
                    if fd >= 0:
                        os.close(fd)
        except OSError as e:
            report.error = f"cannot start: {e}"
        finally:
            oom = cgroup.finish() if cgroup else False
            if uid is not None and not report.swept:
                _sweep(uid)  # the launcher was killed (or never started) before it could
            shutil.rmtree(work, ignore_errors=True)
        wall = self._clock() - start
        status, detail = self._verdict(report, over_limit, timed_out, oom)
        code = os.waitstatus_to_exitcode(report.status) if report.status is not None else None
        stdout, stderr = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        isolation = getattr(self, "isolation", "")  # unset while probing
        return SandboxResult(status, code, stdout, stderr, wall, isolation, detail), report

    def _verdict(
        self, report: _Report, over_limit: bool, timed_out: bool, oom: bool
    ) -> tuple[RunStatus, str]:
        """The run's status from what the kernel reported (never from the program's output)."""
        if report.error:
            return "sandbox_error", report.error
        if over_limit:
            return "output_limit", f"more than {self.limits.output_bytes} bytes of output"
        if timed_out:
            return "timeout", f"wall-clock limit {self.limits.wall_s:g}s"
        if report.status is None:
            return "sandbox_error", "the sandbox ended without reporting the program's status"
        status = report.status
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
            if sig == signal.SIGXCPU or (
                sig == signal.SIGKILL and not oom and report.cpu_s >= self.limits.cpu_s
            ):
                return "timeout", f"CPU limit {self.limits.cpu_s}s ({name})"
            if sig == signal.SIGXFSZ:
                return "file_limit", f"file size limit {self.limits.file_mb}MB (SIGXFSZ)"
            if oom:
                return "memory", f"killed by the kernel OOM killer at {self._cgroup_memory_mb}MB ({name})"
            return "runtime_error", f"killed by {name}"
        code = os.WEXITSTATUS(status)
        if code == 0:
            return "ok", ""
        if oom or code == MEMORY_EXIT:
            return "memory", f"memory limit {self.limits.memory_mb}MB"
        if report.disk_full:
            return "file_limit", f"disk limit {self.limits.disk_mb}MB (tmpfs full)"
        if code == SETUP_EXIT and report.error:
            return "sandbox_error", report.error
        return "runtime_error", f"exit code {code}"

    def _env(self, work: Path) -> dict[str, str]:
        inner = f"/tmp/{work.name}" if self._unshare & _NS["mount"] else str(work)
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": inner,
            "TMPDIR": inner,
            "LANG": "C.UTF-8",
            "PYTHONIOENCODING": "utf-8",
            "PYTHONHASHSEED": "0",
        }


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


def _read_all(fd: int) -> str:
    """Everything on the report pipe; its writers have all exited (or were killed) by now."""
    os.set_blocking(fd, False)
    chunks = []
    with contextlib.suppress(BlockingIOError):
        while block := os.read(fd, 65536):
            chunks.append(block)
    return b"".join(chunks).decode("utf-8", "replace")


def _sweep(uid: int) -> None:
    """Kill every process of `uid` (as that uid: `kill(-1)`), e.g. what a killed launcher left."""
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        argv = [sys.executable, "-I", "-S", str(_LAUNCHER), "sweep", str(uid)]
        subprocess.run(argv, timeout=10, capture_output=True, check=False)


class _SlotUids:
    """One uid per slot, exclusive across processes: a lock file per uid, held while the slot lives."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_slot: dict[int, int] = {}
        self._fds: list[int] = []
        self._dir = (
            Path("/run/distill-sandbox")
            if Path("/run").is_dir()
            else Path(tempfile.gettempdir()) / "distill-sandbox"
        )
        self._dir.mkdir(mode=0o700, exist_ok=True)

    def uid(self, slot: int) -> int:
        with self._lock:
            if slot in self._by_slot:
                return self._by_slot[slot]
            taken = set(self._by_slot.values())
            order = [UID_BASE + slot, *range(UID_BASE, UID_BASE + UID_POOL)]
            for uid in dict.fromkeys(u for u in order if u not in taken and u < UID_BASE + UID_POOL):
                fd = os.open(self._dir / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                self._fds.append(fd)
                self._by_slot[slot] = uid
                _sweep(uid)  # anything a crashed earlier user of this uid left running
                return uid
        from distill.errors import VerifyError

        raise VerifyError(f"sandbox: all {UID_POOL} uids from {UID_BASE} are in use by other processes")

    def close(self) -> None:
        with self._lock:
            for fd in self._fds:
                os.close(fd)
            self._fds.clear()
            self._by_slot.clear()
