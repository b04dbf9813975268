"""One cgroup per sandboxed program: memory and pids limits, an OOM count, and a kill of the whole group.

Found once per `Sandbox` from /proc/self/cgroup and /proc/self/mountinfo, nested under the cgroups
this process already lives in (never above them: a host's own accounting stays in force):
- cgroup v2, when our cgroup hands `memory` and `pids` to its children: one directory does all;
- else the v1 `memory` and `pids` hierarchies (each its own directory; hybrid hosts like our CI);
  a v2 directory only for `cgroup.kill` would cost one more migration per program (each write to
  `cgroup.procs` may wait for an RCU grace period, ~10 ms on a busy host) for nothing the v1 kill
  loop, the pid namespace and the uid sweep do not already do;
- else none, and `Sandbox.isolation` says so.

A process cannot leave its cgroup without write access to another one, which the program's uid
lacks; so after a run, killing what `cgroup.procs` lists (or writing `cgroup.kill`) ends everything
it started, even where no pid namespace could be made.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CgroupRun", "Cgroups", "find_cgroups"]

_KILL_DEADLINE_S = 2.0


@dataclass(frozen=True)
class Cgroups:
    """Where this process may create child cgroups, per purpose."""

    memory: Path | None  # parent directory for the memory controller
    pids: Path | None
    kill: Path | None  # a v2 parent directory (cgroup.kill), if any
    memory_v2: bool

    def describe(self, memory_mb: int, pids: int) -> str:
        if self.memory is None and self.pids is None and self.kill is None:
            return ""
        version = "v2" if self.memory_v2 else "v1"
        parts = []
        if self.memory is not None:
            parts.append(f"memory={memory_mb}MB")
        if self.pids is not None:
            parts.append(f"pids={pids}")
        kill = "cgroup.kill" if self.kill is not None else "every pid it lists"
        return f"cgroup {version} {' '.join(parts)}, killed as a whole ({kill})".replace("  ", " ")

    def remove_stale(self, prefix: str) -> None:
        """Empty and remove the cgroups `PREFIX-PID-…` whose process PID is dead (killed mid-run)."""
        for parent in dict.fromkeys(p for p in (self.kill, self.memory, self.pids) if p is not None):
            with contextlib.suppress(OSError):
                for path in parent.glob(f"{prefix}-*"):
                    owner = path.name[len(prefix) + 1 :].partition("-")[0]
                    if owner.isdigit() and not _alive(int(owner)):
                        CgroupRun([path], None).finish()

    def start(self, name: str, memory_bytes: int, pids: int) -> CgroupRun:
        """Create this program's cgroups with their limits (a stale one of the same name is emptied)."""
        dirs: list[Path] = []
        run = CgroupRun(dirs, None)
        try:
            for parent in dict.fromkeys(p for p in (self.kill, self.memory, self.pids) if p is not None):
                path = parent / name
                if path.exists():
                    CgroupRun([path], None).finish()
                path.mkdir()
                dirs.append(path)
                if parent == self.memory:
                    run.memory = path
                    _write(path / ("memory.max" if self.memory_v2 else "memory.limit_in_bytes"), memory_bytes)
                    swap = "memory.swap.max" if self.memory_v2 else "memory.memsw.limit_in_bytes"
                    if (path / swap).exists():
                        _write(path / swap, 0 if self.memory_v2 else memory_bytes)
                if parent == self.pids:
                    _write(path / "pids.max", pids)
        except OSError:
            run.finish()
            raise
        return run


@dataclass
class CgroupRun:
    """The cgroup directories of one program."""

    dirs: list[Path]
    memory: Path | None

    @property
    def procs(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def finish(self) -> bool:
        """Kill every process inside, remove the directories; True when the kernel OOM-killed one."""
        for d in self.dirs:
            if (d / "cgroup.kill").exists():
                with contextlib.suppress(OSError):
                    _write(d / "cgroup.kill", 1)
        deadline = time.monotonic() + _KILL_DEADLINE_S
        while any(_kill_listed(d) for d in self.dirs) and time.monotonic() < deadline:
            os.sched_yield()  # dying processes leave their cgroup within microseconds
        oom = self._oom_kills() > 0
        for d in self.dirs:
            while time.monotonic() < deadline:
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    os.sched_yield()
        return oom

    def _oom_kills(self) -> int:
        if self.memory is None:
            return 0
        for name in ("memory.events", "memory.oom_control"):
            with contextlib.suppress(OSError):
                for line in (self.memory / name).read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        return 0


def find_cgroups() -> Cgroups:
    """The cgroups this process may nest a program's under (writable, with the controllers we need)."""
    try:
        own = _own_cgroups()
        mounts = _cgroup_mounts()
    except OSError:
        return Cgroups(None, None, None, False)
    v2 = mounts.get("cgroup2")
    v2_dir = _base(v2, own.get("")) if v2 else None
    if v2_dir is not None and not _writable_parent(v2_dir):
        v2_dir = None
    if v2_dir is not None and _delegates(v2_dir, ("memory", "pids")):
        return Cgroups(v2_dir, v2_dir, v2_dir, True)
    memory = _base(mounts.get("memory"), own.get("memory"))
    pids = _base(mounts.get("pids"), own.get("pids"))
    return Cgroups(
        memory if memory and _writable_parent(memory) else None,
        pids if pids and _writable_parent(pids) else None,
        None,
        False,
    )


def _own_cgroups() -> dict[str, str]:
    """controller → our path in its hierarchy ("" for the v2 hierarchy)."""
    own: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for c in controllers.split(",") if controllers else [""]:
            own[c] = path
    return own


def _cgroup_mounts() -> dict[str, tuple[Path, str]]:
    """controller (or "cgroup2") → (mount point, root of the mount inside its hierarchy)."""
    mounts: dict[str, tuple[Path, str]] = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, (fstype, _source, options) = left.split(), right.split()[:3]
        root, point = fields[3], Path(fields[4].replace("\\040", " "))
        if fstype == "cgroup2":
            mounts.setdefault("cgroup2", (point, root))
        elif fstype == "cgroup":
            for c in options.split(","):
                mounts.setdefault(c, (point, root))
    return mounts


def _base(mount: tuple[Path, str] | None, path: str | None) -> Path | None:
    if mount is None or path is None:
        return None
    point, root = mount
    rel = path[len(root) :] if root != "/" and path.startswith(root) else path
    base = point / rel.lstrip("/")
    return base if base.is_dir() else None


def _writable_parent(path: Path) -> bool:
    return os.access(path, os.W_OK) and (path / "cgroup.procs").exists()


def _delegates(path: Path, controllers: tuple[str, ...]) -> bool:
    """True when children of `path` get these v2 controllers (enabling them if we may)."""
    try:
        enabled = (path / "cgroup.subtree_control").read_text().split()
        if all(c in enabled for c in controllers):
            return True
        available = (path / "cgroup.controllers").read_text().split()
        if not all(c in available for c in controllers):
            return False
        _write(path / "cgroup.subtree_control", " ".join(f"+{c}" for c in controllers))
    except OSError:
        return False  # e.g. our own cgroup holds processes (v2 lets only leaves hold them)
    return True


def _kill_listed(d: Path) -> bool:
    """SIGKILL every process the cgroup lists; True while any was listed."""
    try:
        pids = (d / "cgroup.procs").read_text().split()
    except OSError:
        return False
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(int(pid), signal.SIGKILL)
    return bool(pids)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, and not ours to signal
    return True


def _write(path: Path, value: object) -> None:
    with open(path, "w") as f:
        f.write(str(value))
