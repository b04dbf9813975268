"""From the generations store to data/all: one row per sample, input columns joined back, messages rebuilt.

`export(store, run)` writes everything at once. `StreamingExport` does the same work while
generation runs, on a background thread fed with each committed batch, so that by the time the
last response arrives the Parquet shards are nearly written (and memory stays flat): rows from
earlier calls are read from a snapshot, this call's rows arrive through a queue, and failed rows
this call did not retry are added at the end.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distill import schema
from distill.inputs import SYSTEM

if TYPE_CHECKING:
    import polars as pl

    from distill.inputs import PromptSet
    from distill.run import RunDir
    from distill.store import Raw, Store

FRAME_ROWS = 2000  # rows per row group written while streaming


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


class StreamingExport:
    """Writes data/all on a background thread while samples are being generated; see the module doc."""

    def __init__(self, store: Store, run: RunDir, prompts: PromptSet) -> None:
        self.store = store
        self.run = run
        self.prompts = prompts
        self._queue: queue.SimpleQueue[list[Raw] | None | type[_Abort]] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._files: list[Path] = []
        self._thread = threading.Thread(target=self._main, name="distill-export", daemon=True)

    def start(self) -> StreamingExport:
        self._thread.start()
        return self

    def add(self, rows: Iterable[Raw]) -> None:
        """Hand over samples that were just committed (call from the single writer)."""
        rows = [r for r in rows if r[2] != "dropped"]
        if rows:
            self._queue.put(rows)

    def finish(self) -> list[Path]:
        """Wait for the shards to be complete; returns them."""
        if not self._thread.is_alive() and self._thread.ident is None:
            self.start()
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        self.store.mark_exported()
        return self._files

    def abort(self) -> None:
        """Stop without replacing data/all (an interrupted run; the next run exports again)."""
        if self._thread.ident is None:
            return
        self._queue.put(_Abort)
        self._thread.join()

    def _main(self) -> None:
        try:
            self._files = self.run.write_rows_stream(self._frames(), "all")
        except _Abort:
            pass
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread in finish()
            self._error = e

    def _frames(self) -> Iterator[pl.DataFrame]:
        gen = self.store.gen
        self.store.add_prompts(self.prompts.frame)
        shape = _Shaper(self.store.prompts())
        yield shape([])
        for batch in self.store.iter_raw(batch=FRAME_ROWS, statuses=("ok",), before_gen=gen):
            yield shape(batch)
        pending: list[Raw] = []
        while True:
            item = self._queue.get()
            if item is _Abort:
                raise _Abort
            if item is None:
                break
            pending.extend(item)  # type: ignore[arg-type]
            if len(pending) >= FRAME_ROWS:
                yield shape(pending)
                pending = []
        if pending:
            yield shape(pending)
        # Failed rows of earlier calls that this call did not retry (it stopped early, or they were not due).
        for batch in self.store.iter_raw(batch=FRAME_ROWS, statuses=("error",), before_gen=gen):
            yield shape(batch)
