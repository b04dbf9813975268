"""A uid of its own per sandbox slot, exclusive across processes, and the sweep that empties it.

Slot i runs as `UID_BASE + i` when no other process holds that uid, else as the next free one: a
lock file per uid (flock, held while the `Sandbox` lives) makes a uid one slot's alone, even with
several `distill verify` runs (or test sessions) on one machine. Hence killing every process of
the uid after a program (`kill(-1)` as that uid) can only hit what that slot's programs left.

A free lock does not make a uid free: something that never takes our lock (an older sandbox, another
tool) may run processes as it. Such a uid is skipped, never swept: a sweep would kill a stranger's
live programs (an older sandbox's then fail with `unshare: sigprocmask unblock failed`), and its
processes would count against our programs' RLIMIT_NPROC. Whatever a crashed holder left behind is
skipped the same way (its launchers die with their fork server, so with a pid namespace nothing is).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from filters._forkserver import LAUNCHER

__all__ = ["UID_BASE", "UID_POOL", "SlotUids", "processes_of", "sweep"]

UID_BASE = 61000  # slot i runs as uid UID_BASE + i when that uid is free (only when we are root)
UID_POOL = 1024  # …else the next free one of UID_BASE … UID_BASE + UID_POOL - 1

log = logging.getLogger(__name__)


class SlotUids:
    """One uid per slot: a lock file per uid, held until `close`."""

    def __init__(self, *, lock_dir: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._by_slot: dict[int, int] = {}
        self._fds: list[int] = []
        run = Path("/run")
        default = run / "distill-sandbox" if run.is_dir() else Path(tempfile.gettempdir()) / "distill-sandbox"
        self._dir = lock_dir or default  # one folder for every Sandbox of the machine
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
                strangers = processes_of(uid)
                if strangers:  # checked under the lock: no Sandbox can start one now, only a stranger
                    os.close(fd)
                    log.warning("sandbox: uid %d is used by processes %s outside any sandbox; skipped", uid,
                                " ".join(map(str, strangers[:5])))  # fmt: skip
                    continue
                self._fds.append(fd)
                self._by_slot[slot] = uid
                return uid
        from distill.errors import VerifyError

        raise VerifyError(f"sandbox: all {UID_POOL} uids from {UID_BASE} are in use by other processes")

    def close(self) -> None:
        with self._lock:
            for fd in self._fds:
                os.close(fd)
            self._fds.clear()
            self._by_slot.clear()


def processes_of(uid: int) -> list[int]:
    """Pids of the processes that `kill(-1)` as `uid` would reach (its real or saved uid is `uid`)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            with status.open() as f:
                uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
        except (OSError, StopIteration):
            continue  # it ended while we looked
        if str(uid) in (uids[0], uids[2]):
            found.append(int(status.parent.name))
    return found


def sweep(uid: int) -> None:
    """Kill every process of `uid` (`kill(-1)` as that uid), e.g. what a killed launcher left."""
    argv = [sys.executable, "-I", "-S", str(LAUNCHER), "sweep", str(uid)]
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run(argv, timeout=10, capture_output=True, check=False)
