"""From the generations store to data/all: one row per sample, input columns joined back, messages rebuilt.

`export(store, run)` writes everything at once. `StreamingExport` does the same work while
generation runs, fed with each committed batch, so that by the time the last response arrives the
Parquet shards are nearly written (and memory stays flat): rows from earlier calls are read from a
snapshot, this call's rows arrive through a queue, and failed rows this call did not retry are added
at the end.

Where it can (Linux/macOS, no other thread running when generation starts: the CLI), the shaping
and Parquet writing run in a forked child process fed through a pipe, not on a thread: loading
polars + pyarrow and building the frames hold the GIL for ~0.5–0.7 s per 6,000 samples, which on a
thread comes straight out of the event loop's time (bench/generate_throughput.py). The child never
touches SQLite (the parent reads the stored rows and sends them), ignores Ctrl-C, and stops without
replacing data/all when the parent goes away (the pipe closes).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distill import schema
from distill.errors import DistillError, StageError
from distill.generation.inputs import SYSTEM

if TYPE_CHECKING:
    import polars as pl

    from distill.generation.inputs import PromptSet
    from distill.generation.store import Raw, Store
    from distill.run import RunDir

FRAME_ROWS = 2000  # rows per row group written while streaming
IDLE_FRAME_ROWS = 500  # the export child writes a smaller row group when its input pauses
BACKLOG_ROWS = 4 * FRAME_ROWS  # committed rows that may wait for the export before the writer waits


def generated_types() -> dict[str, Any]:
    """The polars type of every column generation writes (stable across runs and shards)."""
    import polars as pl

    return {
        schema.REASONING: pl.String,
        schema.ANSWER_TEXT: pl.String,
        schema.COMPLETE: pl.Boolean,
        schema.TEACHER: pl.String,
        schema.FINISH_REASON: pl.String,
        schema.PROMPT_TOKENS: pl.Int64,
        schema.COMPLETION_TOKENS: pl.Int64,
        schema.LATENCY_S: pl.Float64,
        schema.ATTEMPTS: pl.Int64,
        schema.ERROR: pl.String,
        schema.TEMPERATURE: pl.Float64,
        schema.TOP_P: pl.Float64,
        schema.MAX_TOKENS: pl.Int64,
        schema.SEED: pl.Int64,
    }


def messages_expr() -> Any:
    """The row's chat (system if sent, user, assistant `<think>\\n…\\n</think>\\n\\n…`), as reasoning.py writes it."""
    import polars as pl

    reasoning, answer = pl.col(schema.REASONING), pl.col(schema.ANSWER_TEXT)
    turn = (
        pl.when(reasoning.is_null())
        .then(answer)
        .when(~pl.col(schema.COMPLETE))
        .then(pl.lit("<think>\n") + reasoning)
        .otherwise(pl.concat_str([pl.lit("<think>\n"), reasoning, pl.lit("\n</think>\n\n"), answer]))
    )

    def message(role: str, content: Any) -> Any:
        return pl.struct(pl.lit(role).alias("role"), content.alias("content"))

    user, assistant = message("user", pl.col(schema.PROMPT)), message("assistant", turn)
    return (
        pl.when(pl.col(schema.ERROR).is_not_null())
        .then(None)
        .when(pl.col(SYSTEM).is_null())
        .then(pl.concat_list([user, assistant]))
        .otherwise(pl.concat_list([message("system", pl.col(SYSTEM)), user, assistant]))
    )


class _Shaper:
    """Turns stored samples into output rows: generated columns typed, input columns joined, messages built."""

    def __init__(self, prompts: pl.DataFrame) -> None:
        import polars as pl

        if SYSTEM not in prompts.columns:
            prompts = prompts.with_columns(pl.lit(None, dtype=pl.String).alias(SYSTEM))
        self.prompts = prompts
        inputs = [c for c in prompts.columns if c not in (schema.PROMPT_ID, schema.PROMPT, SYSTEM)]
        self.order = [*inputs, schema.PROMPT_ID, schema.SAMPLE, schema.PROMPT, schema.MESSAGES]
        self.types = generated_types()

    def __call__(self, rows: list[Raw]) -> pl.DataFrame:
        """Rows as stored (`store.Raw`) → output rows; the small columns' JSON is decoded by polars."""
        import polars as pl

        texts = {k: v for k, v in self.types.items() if k in (schema.REASONING, schema.ANSWER_TEXT)}
        small = pl.Struct({k: v for k, v in self.types.items() if k not in texts})
        ids, samples, _status, _gen, reasoning, answers, meta = (
            (list(c) for c in zip(*rows, strict=True)) if rows else ([], [], [], [], [], [], [])
        )
        generated = pl.DataFrame(
            {
                schema.PROMPT_ID: ids,
                schema.SAMPLE: samples,
                schema.REASONING: reasoning,
                schema.ANSWER_TEXT: answers,
                "_meta": meta,
            },
            schema={schema.PROMPT_ID: pl.String, schema.SAMPLE: pl.Int64, **texts, "_meta": pl.String},
        )
        generated = generated.with_columns(pl.col("_meta").str.json_decode(small)).unnest("_meta")
        generated = generated.select(schema.PROMPT_ID, schema.SAMPLE, *self.types)
        prompts = self.prompts if rows else self.prompts.clear()
        joined = generated.join(prompts, on=schema.PROMPT_ID, how="left", maintain_order="left")
        joined = joined.with_columns(messages_expr().alias(schema.MESSAGES))
        return joined.select([*self.order, *[c for c in generated.columns if c not in self.order]])


def export(store: Store, run: RunDir) -> list[Path]:
    """Write every stored sample (dropped ones aside) to data/all."""
    shape = _Shaper(store.prompts())

    def frames() -> Iterator[pl.DataFrame]:
        yield shape([])  # the schema, even with no rows
        for batch in store.iter_raw(batch=FRAME_ROWS):
            yield shape(batch)

    files = run.write_rows_stream(frames(), "all")
    store.mark_exported()
    return files


class _Abort(Exception):
    pass


def can_fork() -> bool:
    """Whether the export may run in a forked child: Linux, no other thread, polars/pyarrow not loaded yet.

    (Their native thread pools do not survive a fork; the CLI reading JSON/JSONL prompts qualifies.)
    """
    return (
        sys.platform.startswith("linux")
        and threading.active_count() == 1
        and "polars" not in sys.modules
        and "pyarrow" not in sys.modules
    )


class StreamingExport:
    """Writes data/all while samples are being generated, in a child process or on a thread; see the module doc."""

    def __init__(self, store: Store, run: RunDir, prompts: PromptSet, *, process: bool = False) -> None:
        self.store = store
        self.run = run
        self.prompts = prompts
        self.process = process
        self._queue: queue.SimpleQueue[list[Raw] | None | type[_Abort]] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._files: list[Path] = []
        target = self._send if process else self._main
        self._thread = threading.Thread(target=target, name="distill-export", daemon=True)
        self._child: Any = None
        self._conn: Any = None
        self._backlog = 0  # rows added but not yet taken by the export
        self._drained = threading.Condition()

    def start(self) -> StreamingExport:
        """Start the export (with `process=True`, call it before any other thread or socket exists)."""
        if self.process and self._child is None:
            self._fork()
        self._thread.start()
        return self

    def add(self, rows: Iterable[Raw]) -> None:
        """Hand over samples that were just committed (call from the single writer).

        Backpressure: while more than BACKLOG_ROWS rows wait for the export, this blocks (and with it
        the event loop), so memory stays flat when responses arrive faster than Parquet is written.
        """
        rows = [r for r in rows if r[2] != "dropped"]
        if not rows:
            return
        with self._drained:
            while self._backlog > BACKLOG_ROWS and self._thread.is_alive():
                self._drained.wait(0.5)
            self._backlog += len(rows)
        self._queue.put(rows)

    def _taken(self, rows: int) -> None:
        """The export took `rows` off the queue."""
        with self._drained:
            self._backlog -= rows
            self._drained.notify_all()

    def check_prompts(self) -> None:
        """Store the input rows now, before any request: raises InputError if they do not fit the run's.

        With the export in a child process, this waits for the child to have stored them.
        """
        if not self.process:
            self.store.add_prompts(self.prompts.frame, source=self.prompts.path)
            return
        if self._child is None:
            self._fork()
        status, value = self._conn.recv()
        if status == "error":
            self._child.join()
            self._conn.close()
            self._child = None
            raise value if isinstance(value, BaseException) else StageError(str(value))

    def finish(self) -> list[Path]:
        """Wait for the shards to be complete; returns them."""
        if not self._thread.is_alive() and self._thread.ident is None:
            self.start()
        self._queue.put(None)
        self._thread.join()
        if self.process:
            self._collect()
        if isinstance(self._error, DistillError):
            raise self._error
        if self._error is not None:  # the samples are stored: say what failed, never exit without a word
            raise StageError(
                f"writing {self.run.config_dir('all')} failed ({type(self._error).__name__}: "
                f"{str(self._error).splitlines()[0][:200] if str(self._error) else 'no details'}); every "
                "sample is stored: rerun `distill generate` to export (--debug shows the traceback)"
            ) from self._error
        self.store.mark_exported()
        return self._files

    def abort(self) -> None:
        """Stop without replacing data/all (an interrupted run; the next run exports again)."""
        if self._thread.ident is None:
            return
        self._queue.put(_Abort)
        self._thread.join()
        if self._child is not None:
            self._child.join()
            self._conn.close()

    # ── the child process (process=True) ───────────────────────────────────
    def _fork(self) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        parent, child = ctx.Pipe(duplex=True)
        for stream in (sys.stdout, sys.stderr):  # nothing buffered may be written twice
            stream.flush()
        locks = [fd for fd in (self.store.lock_fd(), self.run.lock_fd()) if fd is not None]
        self._child = ctx.Process(
            target=_child_main, args=(child, parent, locks, self.store, self.run, self.prompts), daemon=True
        )
        self._child.start()
        child.close()
        self._conn = parent

    def _send(self) -> None:
        """Parent thread: stored and arriving rows, in export order, through the pipe."""
        try:
            for batch in self._row_batches():
                self._conn.send(batch)
            self._conn.send(None)
        except _Abort:
            with contextlib.suppress(OSError):
                self._conn.send(_ABORT)
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread in finish()
            self._error = e
            with contextlib.suppress(OSError):
                self._conn.send(_ABORT)

    def _collect(self) -> None:
        """Parent: wait for the child's shard list (or its error)."""
        try:
            # Read the child's answer even when sending failed: its own error says why the pipe broke
            # (a BrokenPipeError reaching the CLI reads as a closed stdout: exit 1 without a word).
            if self._error is None or isinstance(self._error, OSError):
                status, value = self._conn.recv()
                if status == "prompts":  # the child's first word, when check_prompts did not wait for it
                    status, value = self._conn.recv()
                if status == "ok" and self._error is None:
                    self._files = [Path(p) for p in value]
                elif status == "error":
                    self._error = value if isinstance(value, BaseException) else StageError(str(value))
        except (EOFError, OSError):
            self._error = StageError(
                f"writing {self.run.config_dir('all')} failed: the export process exited "
                f"({self._child.exitcode}); every sample is stored: rerun `distill generate` to export"
            )
        finally:
            self._child.join()
            self._conn.close()

    # ── rows in export order ───────────────────────────────────────────────
    def _row_batches(self) -> Iterator[list[Raw]]:
        """Rows of earlier calls, then this call's as they arrive, then earlier failed rows not retried."""
        gen = self.store.gen
        yield from self.store.iter_raw(batch=FRAME_ROWS, statuses=("ok",), before_gen=gen)
        while True:
            item = self._queue.get()
            if item is _Abort:
                raise _Abort
            if item is None:
                break
            yield item  # type: ignore[misc]
            self._taken(len(item))  # type: ignore[arg-type]
        # Failed rows of earlier calls that this call did not retry (it stopped early, or they were not due).
        yield from self.store.iter_raw(batch=FRAME_ROWS, statuses=("error",), before_gen=gen)

    def _main(self) -> None:
        try:
            self._files = self.run.write_rows_stream(self._frames(), "all")
        except _Abort:
            pass
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread in finish()
            self._error = e

    def _frames(self) -> Iterator[pl.DataFrame]:
        return _shaped(self.store, self.prompts, self._row_batches())


_ABORT = "abort"  # sent to the child: stop without replacing data/all


def _shaped(
    store: Store, prompts: PromptSet, batches: Iterable[list[Raw]], idle: Callable[[], bool] | None = None
) -> Iterator[pl.DataFrame]:
    """The schema frame, then the rows shaped FRAME_ROWS at a time (prompts.parquet is written first).

    With `idle` (nothing more is waiting), at least IDLE_FRAME_ROWS rows are shaped as soon as the
    input pauses, so little is left to do when the last response arrives.
    """
    store.add_prompts(prompts.frame, source=prompts.path)
    shape = _Shaper(store.prompts())
    yield shape([])
    pending: list[Raw] = []
    for batch in batches:
        pending.extend(batch)
        if len(pending) >= FRAME_ROWS or (idle is not None and len(pending) >= IDLE_FRAME_ROWS and idle()):
            yield shape(pending)
            pending = []
    if pending:
        yield shape(pending)


def _child_main(
    conn: Any, parent_end: Any, lock_fds: list[int], store: Store, run: RunDir, prompts: PromptSet
) -> None:
    """The export child: rows from the pipe → data/all; replies ("ok", paths) or ("error", exception)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which aborts us
    with contextlib.suppress(OSError):
        os.nice(5)  # background work: on a busy machine the requests (the parent) go first
    parent_end.close()  # so that the parent's death closes the pipe
    for fd in lock_fds:
        os.close(fd)  # the store's and the run's flocks belong to the parent: a rerun must not wait for us

    def batches() -> Iterator[list[Raw]]:
        while True:
            try:
                item = conn.recv()
            except (EOFError, OSError):  # the parent is gone: leave data/all as it was
                raise _Abort from None
            if item is None:
                return
            if item == _ABORT:
                raise _Abort
            yield item

    try:
        store.add_prompts(prompts.frame, source=prompts.path)  # first: the parent may wait for this
        conn.send(("prompts", None))
        files = run.write_rows_stream(_shaped(store, prompts, batches(), lambda: not conn.poll()), "all")
    except _Abort:
        return
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        try:
            pickle.loads(pickle.dumps(e))  # the parent must be able to rebuild it
            conn.send(("error", e))
        except Exception:  # noqa: BLE001 - an exception that does not round-trip: send its text
            conn.send(("error", f"{type(e).__name__}: {e}"))
        return
    conn.send(("ok", [str(f) for f in files]))
