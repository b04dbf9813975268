"""The sandbox's launcher: builds a program's world, runs it, reports what the kernel said.

Runs under the sandbox's Python (stdlib only; it may be an older interpreter than ours) as a fork
server, `python -I _sandbox_init.py serve FD` (started once per `Sandbox`, so a program costs a
fork, not a Python start-up). Each request on the socket FD carries the settings and the program's
stdin, stdout, stderr and report pipes; the server forks, per program, three processes, so that
nothing the program does can outlive it:

    launcher   host namespaces; joins the program's cgroups, unshares, waits for init, then
      │        becomes the program's uid and kills every process of it (`kill(-1)`: the uid is
      │        the slot's alone); dies with the server (parent-death signal), so a Sandbox whose
      │        process is killed leaves no program behind
      └─ init  pid 1 of a new pid namespace (stays privileged, so the parent-death signal that a
          │    uid change would clear holds): mounts the program's private tmpfs, reaps orphans;
          │    when it exits the kernel kills every process left in the namespace
          └─ program  drops to the slot's uid (or all capabilities in a user namespace), sets the
                      rlimits, and runs ENTRY as __main__ in this same interpreter

The report goes to the file descriptor `report=N`, one line per fact: `have FEATURE` for each part
of the isolation that took, `exit WAITSTATUS CPU_S MAXRSS_KB DISK_FULL` from `wait4` and `statvfs`,
`swept` after the uid kill, `error MESSAGE` when the sandbox itself failed. A program never holds
that descriptor, so the verdict never depends on what the program printed.
"""

# ruff: noqa: SIM105  (no contextlib: every import here is paid again by the server's start-up)
import _signal  # not `signal`: its enum import alone would cost more than the rest of this file
import ctypes
import os
import resource
import sys

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER = 0x00020000, 0x08000000, 0x10000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 4096, 16384, 1 << 18
MNT_DETACH, AT_FDCWD, AT_RECURSIVE = 2, -100, 0x8000
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID = 1, 2
SYS_MOUNT_SETATTR = 442  # the same number on every architecture (new syscalls share one table)
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
MEMORY_EXIT = 86  # the program ended on an uncaught MemoryError (RLIMIT_AS refused an allocation)
PRIVATE = (("tmp", "/tmp"), ("var_tmp", "/var/tmp"), ("shm", "/dev/shm"))  # tmpfs subfolder → mount point
SETUP_EXIT = 125  # the sandbox could not be built; the reason is in the report

_libc = ctypes.CDLL(None, use_errno=True)


class SetupError(Exception):
    """A step of the isolation failed (the message names it)."""


def _check(result, what):
    if result != 0:
        raise SetupError(f"{what}: {os.strerror(ctypes.get_errno())}")


def _mount(source, target, fstype, flags, data, what):
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        what,
    )


def _read_only_everywhere():
    """Every mount we inherited becomes read-only and nosuid (mount_setattr, Linux 5.12+)."""

    class MountAttr(ctypes.Structure):
        _fields_ = [(n, ctypes.c_uint64) for n in ("attr_set", "attr_clr", "propagation", "userns_fd")]

    attr = MountAttr(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0, 0, 0)
    _check(
        _libc.syscall(
            ctypes.c_long(SYS_MOUNT_SETATTR),
            ctypes.c_int(AT_FDCWD),
            b"/",
            ctypes.c_uint(AT_RECURSIVE),
            ctypes.byref(attr),
            ctypes.c_size_t(ctypes.sizeof(attr)),
        ),
        "mount_setattr read-only",
    )


class Launch:
    """The launcher's settings, parsed from KEY=VALUE arguments written by `Sandbox`."""

    def __init__(self, argv, report):
        split = argv.index("--")
        opts = dict(arg.split("=", 1) for arg in argv[:split])
        self.entry = argv[split + 1]
        self.report = report
        self.work = opts["work"]
        self.inner_work = opts["inner_work"]
        self.uid = int(opts["uid"]) if opts.get("uid") else None
        self.unshare = int(opts.get("unshare", "0"))
        self.userns = opts.get("userns") == "1"
        self.disk = int(opts.get("disk", "0"))
        self.cgroups = [p for p in opts.get("cgroups", "").split(",") if p]
        self.want = set(opts.get("want", "").split(","))
        self.rlimits = [
            (getattr(resource, "RLIMIT_" + name.upper()), int(soft), int(hard))
            for name, soft, hard in (r.split(":") for r in opts.get("rlimits", "").split(",") if r)
        ]
        self.have = []

    def say(self, line):
        os.write(self.report, (line + "\n").encode())

    def optional(self, feature, step):
        """Run a step the host may refuse: recorded when it works, fatal only when it was required."""
        if feature not in self.want:
            return
        try:
            step()
        except (SetupError, OSError) as e:
            if "required" in self.want:
                raise SetupError(f"{feature}: {e}") from e
            return
        self.have.append(feature)
        self.say("have " + feature)


def launcher(cfg):
    """Host side: cgroups, namespaces, then wait for init and sweep the slot's uid."""
    for procs in cfg.cgroups:  # before any fork: every process of the program starts inside
        with open(procs, "w") as f:
            f.write(str(os.getpid()))
    _oom_score_adj(-1000)  # launcher and init: never the cgroup OOM killer's choice, the program is
    if cfg.unshare:
        uid, gid = os.geteuid(), os.getegid()
        _check(_libc.unshare(ctypes.c_int(cfg.unshare)), "unshare")
        if cfg.userns:  # our own uid, seen as itself: enough to mount, nothing more outside
            for name, text in (
                ("setgroups", "deny"),
                ("uid_map", f"{uid} {uid} 1"),
                ("gid_map", f"{gid} {gid} 1"),
            ):
                with open(f"/proc/self/{name}", "w") as f:
                    f.write(text)
    pid = os.fork()
    if pid == 0:
        return  # init: goes on to build the program's world
    _quiet_stdio()
    os.waitpid(pid, 0)
    if cfg.uid is not None:
        _become(cfg.uid)
        try:
            os.kill(-1, _signal.SIGKILL)  # every process this uid may signal (all of its own) but us
        except ProcessLookupError:
            pass  # none left: the usual case, the pid namespace took them
        cfg.say("swept")
    os._exit(0)


def init(cfg):
    """pid 1 of the namespace: private mounts, then fork the program and reap until it ends."""
    _libc.prctl(PR_SET_PDEATHSIG, _signal.SIGKILL)
    if cfg.unshare & CLONE_NEWNS:
        _mount(None, "/", None, MS_REC | MS_PRIVATE, None, "make mounts private")
        cfg.optional("read-only", _read_only_everywhere)
        _private_tmpfs(cfg)
        cfg.optional(
            "proc", lambda: _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None, "proc")
        )
    pid = os.fork()
    if pid == 0:
        return
    _quiet_stdio()
    while True:
        try:
            done, status, usage = os.wait4(-1, 0)
        except ChildProcessError:
            break
        if done == pid:
            cpu = usage.ru_utime + usage.ru_stime
            cfg.say(f"exit {status} {cpu:.3f} {usage.ru_maxrss} {int(_disk_full(cfg))}")
            break
    os._exit(0)  # as pid 1, our exit kills every process left in the namespace


def _private_tmpfs(cfg):
    """One size-capped tmpfs holds /tmp, /var/tmp, /dev/shm and the work folder (one total)."""
    old = os.open(cfg.work, os.O_RDONLY | os.O_DIRECTORY)
    files = {}
    for name in os.listdir(old):
        fd = os.open(name, os.O_RDONLY, dir_fd=old)
        with os.fdopen(fd, "rb") as f:
            files[name] = f.read()
    os.close(old)
    stage = cfg.work
    _mount("tmpfs", stage, "tmpfs", MS_NOSUID | MS_NODEV, f"size={cfg.disk},mode=0755", "tmpfs")
    owner = cfg.uid if cfg.uid is not None else os.geteuid()
    for sub, _ in PRIVATE:
        os.mkdir(f"{stage}/{sub}")
        os.chmod(f"{stage}/{sub}", 0o1777)
    work = f"{stage}/tmp/{os.path.basename(cfg.inner_work)}"
    os.mkdir(work, 0o700)
    for name, data in files.items():
        with open(f"{work}/{name}", "wb") as f:
            f.write(data)
        os.chown(f"{work}/{name}", owner, owner)
    os.chown(work, owner, owner)
    binds = [(sub, target) for sub, target in PRIVATE if target == "/tmp" or os.path.isdir(target)]
    binds.sort(key=lambda b: stage.startswith(b[1] + "/"))  # the one that hides the stage goes last
    for sub, target in binds:
        _mount(f"{stage}/{sub}", target, None, MS_BIND, None, f"bind {target}")
    if not any(stage.startswith(target + "/") for _, target in binds):  # else it is out of reach already
        _check(_libc.umount2(stage.encode(), MNT_DETACH), "detach staging")
    cfg.have.append("tmpfs")
    cfg.say("have tmpfs")


def _disk_full(cfg):
    if not cfg.unshare & CLONE_NEWNS:
        return False
    try:
        st = os.statvfs("/tmp")
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 64 * 1024


def become_program(cfg):
    """Drop privileges and set the limits; then nothing of ours stays open but stdio."""
    _oom_score_adj(0)
    if cfg.uid is not None:
        _become(cfg.uid)
    elif cfg.userns:
        _drop_capabilities()
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    for which, soft, hard in cfg.rlimits:
        resource.setrlimit(which, (soft, hard))
    # Python ignores SIGXFSZ at start-up; the default makes a write past RLIMIT_FSIZE a kernel verdict.
    _signal.signal(_signal.SIGXFSZ, _signal.SIG_DFL)
    os.chdir(cfg.inner_work)
    os.environ["HOME"] = os.environ["TMPDIR"] = cfg.inner_work
    os.closerange(3, 1 << 16)


def run_program(cfg):
    """Run ENTRY as __main__ in this interpreter, then end as Python would, minus its slow teardown."""
    sys.argv = [cfg.entry]
    main = type(sys)("__main__")
    main.__file__ = os.path.join(cfg.inner_work, cfg.entry)
    sys.modules["__main__"] = main
    try:
        with open(cfg.entry, "rb") as f:
            exec(compile(f.read(), cfg.entry, "exec"), main.__dict__)
        code = 0
    except SystemExit as e:
        code = _exit_code(e.code)
    except BaseException as e:  # the program's own failure: print it as Python would, minus our frame
        tb = e.__traceback__.tb_next if e.__traceback__ else None
        sys.__excepthook__(type(e), e.with_traceback(tb), tb)
        code = MEMORY_EXIT if isinstance(e, MemoryError) else 1
    _exit(code, main)


def _exit_code(value):
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    print(value, file=sys.stderr)
    return 1


def _exit(code, main):
    """What a normal interpreter exit does for a program (threads joined, atexit, files flushed).

    Python's full finalization of this forked interpreter costs ~25 ms, more than the program.
    """
    import atexit
    import gc

    try:
        if "threading" in sys.modules:
            sys.modules["threading"]._shutdown()  # non-daemon threads finish first, as at exit
        atexit._run_exitfuncs()
        main.__dict__.clear()
        gc.collect()  # files the program left open are flushed (a write past RLIMIT_FSIZE still counts)
    except SystemExit as e:
        code = _exit_code(e.code)
    except BaseException as e:
        sys.__excepthook__(type(e), e, e.__traceback__)
        code = code or 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            code = code or 120  # Python's own code when stdout cannot be flushed at exit
    os._exit(code)


def _drop_capabilities():
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    data = (ctypes.c_uint32 * 6)()
    _check(_libc.capset(ctypes.byref(Header(0x20080522, 0)), data), "capset")


def _quiet_stdio():
    """The program's pipes must reach EOF when it (and its children) are done, not when we are."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def _oom_score_adj(value):
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(value))
    except OSError:
        pass  # a read-only /proc (no fresh one could be mounted): the OOM killer picks by size alone


def _become(uid):
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)  # from root to non-root: every capability goes


def serve(sock_fd):
    """Fork a launcher per request; returns only in that launcher, with its settings and report fd."""
    import array
    import socket

    sock = socket.socket(fileno=sock_fd)
    server = os.getpid()
    _signal.signal(_signal.SIGCHLD, _signal.SIG_IGN)  # the kernel reaps our launchers
    while True:
        try:
            msg, ancdata, _, _ = sock.recvmsg(1 << 16, socket.CMSG_SPACE(4 * 4))
        except InterruptedError:
            continue
        if not msg:  # the Sandbox closed its end (or its process died): so do we
            os._exit(0)
        fds = array.array("i")
        for _, _, data in ancdata:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
        try:
            pid = os.fork()
        except OSError as e:  # this program cannot start; the server (and every running one) goes on
            for fd in fds:
                os.close(fd)
            sock.send(f"-{e.errno}".encode())
            continue
        if pid == 0:
            sock.close()
            # Dies with the server, which ends when the Sandbox's end of the socket closes (`close`,
            # or its process killed): then init dies too, and with it every process of the program.
            _libc.prctl(PR_SET_PDEATHSIG, _signal.SIGKILL)
            if os.getppid() != server:
                os._exit(0)  # the server ended before the line above
            _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
            os.setpgid(0, 0)  # its own group: the Sandbox kills it (and init) with killpg
            stdin, stdout, stderr, report = fds
            for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
                os.dup2(fd, target)
                os.close(fd)
            return msg.decode().split("\0"), report
        try:
            os.setpgid(pid, pid)  # both sides set it: no window where a kill misses the child
        except OSError:
            pass
        for fd in fds:
            os.close(fd)
        sock.send(str(pid).encode())


def main():
    if sys.argv[1] == "sweep":  # `sweep UID`: what a killed launcher could not do, or a crash left
        _become(int(sys.argv[2]))
        try:
            os.kill(-1, _signal.SIGKILL)
        except ProcessLookupError:
            pass
        return
    argv, report = serve(int(sys.argv[2]))  # `serve FD`
    cfg = Launch(argv, report)
    try:
        launcher(cfg)
        init(cfg)
        become_program(cfg)
    except (SetupError, OSError, ValueError) as e:
        cfg.say(f"error {e}")
        os._exit(SETUP_EXIT)
    run_program(cfg)


if __name__ == "__main__":
    main()
