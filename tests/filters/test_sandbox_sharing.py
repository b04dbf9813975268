"""The sandbox on a shared, busy machine: strangers on its uids, owners that die, a loaded probe."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from filters._uids import UID_BASE, SlotUids, processes_of
from filters.sandbox import Limits, Sandbox

LIMITS = Limits(cpu_s=1, wall_s=2.0, memory_mb=512, file_mb=4, nproc=16, output_bytes=1024**2)
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="only root gives each slot a uid of its own")


def _wait_until(condition: object, deadline_s: float) -> bool:
    """Whether `condition()` holds before the deadline (checked every 20 ms, without spinning a core)."""
    end, never = time.monotonic() + deadline_s, threading.Event()
    while not condition():  # type: ignore[operator]
        if time.monotonic() > end:
            return False
        never.wait(0.02)  # nothing sets it: a bounded wait between looks
    return True


@needs_root
def test_a_uid_that_a_stranger_uses_is_skipped_and_its_processes_live(tmp_path: Path) -> None:
    # What an older sandbox does: it runs programs as UID_BASE + slot and never takes our lock. Our
    # sweep then killed them (`unshare: sigprocmask unblock failed`, canonical solutions failing).
    with contextlib.closing(SlotUids()) as held:
        uid = held.uid(0)  # no other Sandbox on this machine may use (or sweep) it while we hold it
        stranger = subprocess.Popen(["cat"], stdin=subprocess.PIPE, user=uid, group=uid, extra_groups=[])
        try:
            uids = SlotUids(lock_dir=tmp_path)  # every lock free: only the stranger says it is taken
            try:
                slot = uid - UID_BASE  # the slot that asks for this very uid first
                assert uids.uid(slot) != uid and uid not in {uids.uid(s) for s in range(4)}
            finally:
                uids.close()
            assert stranger.poll() is None and processes_of(uid) == [stranger.pid]
        finally:
            stranger.kill()
            stranger.wait()
    with Sandbox(LIMITS) as sb:  # and a sandbox's programs still get uids of their own
        result = sb.run_python("import os\nprint(os.getuid())", slot=1)
        assert (result.status, result.stdout) == ("ok", f"{sb.uid(1)}\n")


def test_programs_die_when_the_process_that_owns_the_sandbox_is_killed(tmp_path: Path) -> None:
    # e.g. `distill verify` or a test session killed by a timeout: its fork server sees its socket
    # close, and every launcher, init and program it started dies with it.
    filters = Path(__file__).resolve().parents[2]
    script = """if True:
        import os, sys, threading
        sys.path.insert(0, sys.argv[1])
        from filters.sandbox import Limits, Sandbox
        sb = Sandbox(Limits(cpu_s=60, wall_s=600.0, nproc=16))
        server = sb._server._proc.pid
        code = "import os, time\\nif os.fork() == 0:\\n    os.setsid()\\ntime.sleep(10**6)"
        threading.Thread(target=sb.run_python, args=(code,), daemon=True).start()
        def tree():
            kids = {}
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    parent = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError):
                    continue
                kids.setdefault(parent, []).append(int(pid))
            found, todo = [], [server]
            while todo:
                for kid in kids.get(todo.pop(), []):
                    found.append(kid)
                    todo.append(kid)
            return found
        ev = threading.Event()
        for _ in range(1500):  # 30 s at most
            if len(tree()) >= 4:  # launcher, init, the program and its child
                break
            ev.wait(0.02)
        print(" ".join(map(str, tree())), flush=True)
        ev.wait()
    """
    owner = subprocess.Popen(
        [sys.executable, "-c", script, str(filters)], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        line = owner.stdout.readline()  # type: ignore[union-attr]
        pids = [int(p) for p in line.split()]
        assert len(pids) >= 4, line
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()

    def all_gone() -> bool:
        return not any(Path(f"/proc/{pid}").exists() and _state(pid) != "Z" for pid in pids)

    assert _wait_until(all_gone, deadline_s=10.0), [(p, _state(p)) for p in pids]
    # its cgroups stayed behind (nobody was left to remove them): the next Sandbox does
    with Sandbox(LIMITS) as sb:
        parents = {p for p in (sb._cgroups.memory, sb._cgroups.pids, sb._cgroups.kill) if p is not None}
    assert [d for parent in parents for d in parent.glob(f"distill-sbx-{owner.pid}-*")] == []


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "gone"


def test_a_tight_wall_clock_does_not_weaken_the_isolation() -> None:
    # The probe that picks the isolation ran under the caller's wall clock: on a loaded box (or with
    # a 1 ms limit) it timed out and the sandbox fell back to fewer namespaces, or to none.
    with Sandbox(LIMITS) as normal, Sandbox(dataclasses.replace(LIMITS, wall_s=0.001)) as tight:
        assert tight.lacks == normal.lacks
        assert tight.isolation.replace("wall=0.001s", "") == normal.isolation.replace("wall=2s", "")
        result = tight.run_python("import time\ntime.sleep(10**6)")
        assert result.status == "timeout" and result.wall_s < 10


def test_a_fork_the_server_cannot_make_fails_one_program_not_the_others() -> None:
    # Launchers die with their fork server; a server that crashed on a failed fork (EAGAIN from a
    # pids limit, ENOMEM) would take every running program of the Sandbox down with it.
    with Sandbox(LIMITS) as sb:
        if sb._cgroups.pids is None:
            pytest.skip("this host gives no writable pids cgroup to starve the fork server with")
        server = sb._server._proc  # type: ignore[union-attr]
        assert server is not None
        other: list = []
        slow = threading.Thread(
            target=lambda: other.append(sb.run_python("import time\ntime.sleep(1.5)\nprint('done')", slot=1))
        )
        slow.start()
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children")
        assert _wait_until(lambda: children.read_text().split(), deadline_s=30.0)  # its launcher runs
        starved = sb._cgroups.pids / f"distill-test-starved-{os.getpid()}"
        starved.mkdir()
        try:
            (starved / "pids.max").write_text("1")
            (starved / "cgroup.procs").write_text(str(server.pid))  # the server alone: no fork succeeds
            refused = sb.run_python("print('never')")
        finally:
            with contextlib.suppress(ProcessLookupError):  # (it died: the bug this test is for)
                (sb._cgroups.pids / "cgroup.procs").write_text(str(server.pid))
            starved.rmdir()
        slow.join()
        assert refused.status == "sandbox_error" and "cannot fork" in refused.detail
        assert (other[0].status, other[0].stdout) == ("ok", "done\n")  # the running program was untouched
        assert server.poll() is None and sb.run_python("print(1)").stdout == "1\n"
