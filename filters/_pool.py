"""A process pool with a hard wall-clock limit per item: a stuck item is killed, never waited for.

`concurrent.futures` cannot stop one running task, and math-verify's own `signal.alarm` timeouts
work only in a process's main thread (and not at all inside C code that ignores signals). Here each
worker is a plain process fed through a pipe; when an item overruns `timeout_s`, its worker is
killed, the item is recorded as `timeout`, and a fresh worker takes its place, so one pathological
row can never stall a million-row run. A worker that dies (segfault, OOM kill) yields `error`.

Workers come from the `forkserver` start method: they are forked from a clean server process that
has imported `preload` once (cheap restarts, and no fork of a parent that runs polars threads).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Literal

Status = Literal["ok", "timeout", "error"]
PREFETCH = 2  # items queued per worker, so a worker never idles during a round trip
STARTUP_S = 120.0  # a worker's own start (fork, unpickling `fn`) is not charged to its first item
_READY = "ready"


@dataclass(frozen=True)
class ItemResult:
    """The outcome of one item: its value when `ok`, else why it has none."""

    index: int
    status: Status
    value: Any = None
    detail: str = ""
    seconds: float = 0.0


def default_workers() -> int:
    """Every core this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def run_pool(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    *,
    workers: int | None = None,
    timeout_s: float = 30.0,
    memory_mb: int | None = None,
    preload: Iterable[str] = (),
    on_result: Callable[[ItemResult], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> list[ItemResult]:
    """Apply `fn` to every item in worker processes; results come back in input order.

    `fn` must be a module-level function (it is pickled by reference). `workers=0` runs in this
    process without a time limit (for debugging). `memory_mb` caps each worker's address space, so
    an item that would exhaust the machine fails with MemoryError (recorded as `error`) instead.
    `on_result` is called as each item finishes.
    """
    results: list[ItemResult | None] = [None] * len(items)

    def record(result: ItemResult) -> None:
        results[result.index] = result
        if on_result is not None:
            on_result(result)

    if workers == 0:
        for i, item in enumerate(items):
            record(_call(fn, i, item, clock))
        return [r for r in results if r is not None]

    n = max(1, min(workers or default_workers(), len(items)))
    if not items:
        return []
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(sorted({__name__, *preload}))
    pending: deque[int] = deque(range(len(items)))
    pool = [_Worker(ctx, fn, clock, memory_mb) for _ in range(n)]
    try:
        while pending or any(w.queue for w in pool):
            for w in pool:
                while pending and len(w.queue) < PREFETCH:
                    i = pending.popleft()
                    w.send(i, items[i])
            busy = {w.conn: w for w in pool if w.queue}
            deadline = min(w.deadline(timeout_s) for w in busy.values())
            ready = wait(list(busy), timeout=max(0.0, deadline - clock()))
            for conn in ready:
                w = busy[conn]
                try:
                    result = w.receive()
                    if result is not None:
                        record(result)
                except (EOFError, OSError):  # the worker died under its item
                    index = w.queue.popleft()
                    record(ItemResult(index, "error", detail=f"worker died (exit code {w.exitcode()})"))
                    pending.extendleft(reversed(w.queue))
                    pool[pool.index(w)] = w.replace()
            now = clock()
            for w in list(pool):
                if w.queue and now >= w.deadline(timeout_s) and w.conn not in ready:
                    index = w.queue.popleft()
                    record(
                        ItemResult(
                            index, "timeout", detail=f"killed after {timeout_s:g}s", seconds=now - w.started
                        )
                    )
                    pending.extendleft(reversed(w.queue))
                    pool[pool.index(w)] = w.replace()
    finally:
        for w in pool:
            w.close()
    return [r for r in results if r is not None]


class _Worker:
    """One worker process and the indexes it has been sent, oldest (running) first."""

    def __init__(
        self, ctx: Any, fn: Callable[[Any], Any], clock: Callable[[], float], memory_mb: int | None
    ) -> None:
        self._ctx, self._fn, self._clock, self._memory_mb = ctx, fn, clock, memory_mb
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, fn, memory_mb), daemon=True)
        self.proc.start()
        child.close()
        self.queue: deque[int] = deque()
        self.started = clock()
        self.ready = False

    def send(self, index: int, item: Any) -> None:
        if not self.queue and self.ready:
            self.started = self._clock()
        self.queue.append(index)
        self.conn.send((index, item))

    def receive(self) -> ItemResult | None:
        """The next finished item, or None for the worker's "ready" (its first item starts now)."""
        result = self.conn.recv()
        self.started = self._clock()
        if result == _READY:
            self.ready = True
            return None
        self.queue.popleft()
        return result

    def deadline(self, timeout_s: float) -> float:
        return self.started + (timeout_s if self.ready else STARTUP_S + timeout_s)

    def exitcode(self) -> int | None:
        self.proc.join(timeout=1)
        return self.proc.exitcode

    def replace(self) -> _Worker:
        self.kill()
        return _Worker(self._ctx, self._fn, self._clock, self._memory_mb)

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join()
        self.conn.close()

    def close(self) -> None:
        if self.proc.is_alive() and not self.queue:
            try:
                self.conn.send(None)
                self.proc.join(timeout=2)
            except (BrokenPipeError, OSError):
                pass
        self.kill()


def _call(fn: Callable[[Any], Any], index: int, item: Any, clock: Callable[[], float]) -> ItemResult:
    start = clock()
    try:
        value = fn(item)
    except Exception as e:  # a process boundary: the item's error becomes its verdict
        return ItemResult(index, "error", detail=f"{type(e).__name__}: {e}"[:300], seconds=clock() - start)
    return ItemResult(index, "ok", value, seconds=clock() - start)


def _worker_main(conn: Connection, fn: Callable[[Any], Any], memory_mb: int | None) -> None:
    if memory_mb:
        import resource

        limit = memory_mb * 1024**2
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    conn.send(_READY)
    while True:
        try:
            message = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if message is None:
            return
        index, item = message
        conn.send(_call(fn, index, item, time.monotonic))
