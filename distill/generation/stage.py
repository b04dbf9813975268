"""Generation: prompts → teacher samples, committed one by one to the run's store, exported to data/all.

    report = generate(GenerateConfig(prompts="math.jsonl", base_url=["https://api.deepseek.com/v1"],
                                     model="deepseek-reasoner", api_key_env="DEEPSEEK_API_KEY"), RunDir("runs/r1"))

A fixed pool of `concurrency` worker coroutines pulls (prompt, samples) jobs; a single writer commits
each result as it arrives, so a SIGKILL loses only requests in flight and a rerun sends only the
(prompt_id, sample) pairs that have no stored success. Failed requests are stored as rows with
`error` set and retried by the next run. Settings that change the output are fingerprinted; a rerun
with other settings is refused unless asked for (raising `n` is always allowed).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distill.generation.config import GenerateConfig
from distill.generation.report import GenerateReport

if TYPE_CHECKING:
    from distill.generation.engine import Engine
    from distill.progress import Progress
    from distill.run import RunDir
    from distill.teachers.base import Teacher

log = logging.getLogger(__name__)


# ── the stage ──────────────────────────────────────────────────────────────
def generate(
    cfg: GenerateConfig,
    run: RunDir,
    *,
    teacher: Teacher | None = None,
    progress: Progress | None = None,
    n_per_prompt: Mapping[str, int] | None = None,
    allow_changed_settings: bool = False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> GenerateReport:
    """Generate every missing (prompt_id, sample) of `cfg.prompts` into `run`; returns what happened."""
    from distill.errors import ConfigError
    from distill.generation.engine import Engine, describe_failures, jobs_for
    from distill.generation.export import StreamingExport, can_fork, export
    from distill.generation.inputs import load_prompts, read_template
    from distill.generation.store import Store

    if cfg.prompts is None:
        raise ConfigError("no prompts: give PROMPTS (or generate.prompts in the recipe)")
    if teacher is None and not cfg.base_url and cfg.vllm is None:
        raise ConfigError("no teacher: give --base-url URL (repeatable) or --vllm MODEL")
    if teacher is None and cfg.vllm is not None and not cfg.vllm.model:
        raise ConfigError("generate.vllm.model is not set: give --vllm MODEL")
    started = clock()
    # data/all is written while requests are in flight: by a forked child process when this process
    # runs no other thread (the CLI), else on a thread (see distill/generation/export.py).
    in_child = can_fork()
    if not in_child:
        # The export needs polars and pyarrow, whose loading is mostly disk reads: start it now on a thread
        # so it overlaps with reading prompts and opening connections instead of delaying the first request.
        threading.Thread(target=_load_export_libraries, name="distill-preload", daemon=True).start()
    prompts = load_prompts(
        cfg.prompts,
        prompt_column=cfg.prompt_column,
        template=read_template(cfg.template),
        system=cfg.system,
        split=cfg.split,
        shard=cfg.shard,
    )
    log.debug("prompts: %d read in %.2fs", len(prompts), clock() - started)
    with run.ensure().writing("generate"), Store(run.generations, durability=cfg.durability) as store:
        stale = _check_exported(run, store)
        settings = cfg.model_dump(mode="json", exclude=set(cfg.fingerprint_exclude))
        store.check_settings(cfg.fingerprint(), settings, allow_change=allow_changed_settings)
        _write_run_yaml(run, cfg)
        wanted = _wanted(prompts.ids, cfg.n, n_per_prompt)
        finished = store.finished()
        pending = sum(1 for pid, k in _pairs(wanted) if (pid, k) not in finished)
        engine = Engine(cfg, store, clock=clock, sleep=sleep, progress=progress)
        teacher_name = cfg.teacher_model() or ""
        counts = None
        if pending:
            jobs = jobs_for(prompts.ids, prompts.prompts, wanted, finished, cfg)
            in_child = in_child and can_fork()  # reading the prompts may have loaded polars
            exporter = StreamingExport(store, run, prompts, process=in_child)
            if in_child:  # fork now, before the event loop, its sockets or any thread exist
                exporter.start()
            else:  # the thread starts once the first requests are out, so its imports never delay them
                engine.on_ready = exporter.start
            if store.prompts_path.exists():  # a rerun: the inputs must fit the run's rows before we pay
                exporter.check_prompts()
            engine.on_commit = exporter.add
            try:
                with _serving(cfg, run, teacher, clock) as chosen, _lighter_gc():
                    log.debug("ready to send %d samples after %.2fs", pending, clock() - started)
                    teacher_name = asyncio.run(engine.run(chosen, jobs, pending))
            except KeyboardInterrupt:
                exporter.abort()
                _export_interrupted(store, run, prompts)
                raise
            except BaseException:
                exporter.abort()
                raise
            if in_child:  # while the child writes its last Parquet frame: copy the WAL, count the run
                store.checkpoint()
                counts = store.totals()
            files = exporter.finish()
            log.debug("requests done and exported after %.2fs", clock() - started)
        elif stale or not store.is_exported() or not run.has_rows("all"):
            store.add_prompts(prompts.frame, source=prompts.path)
            files = export(store, run)
        else:
            files = run.shard_files("all")
        if engine.written or engine.errors:
            _forget_later_stages(run)
        report = _report(
            cfg, run, store, prompts, engine, pending, clock() - started, files, teacher_name, counts
        )
    report.settings = settings
    run.update_stats("generate", report.to_stats())
    if not report.stopped and report.error_rows == 0:
        run.mark_done("generate", cfg.fingerprint(), samples=report.samples)
    if engine.fatal is not None:
        raise engine.fatal
    if engine.errors and not engine.written:
        from distill.errors import TeacherError

        raise TeacherError(
            f"no sample succeeded: {engine.errors:,} failed ({describe_failures(engine.failures)}); "
            f"they are stored as error rows in {run.root}, fix the cause and rerun"
        )
    return report


def _export_interrupted(store: Any, run: RunDir, prompts: Any) -> None:
    """Ctrl-C: write what the store holds to data/all (so a first run's data/all is not empty), and say so."""
    from distill.generation.export import export

    stored = sum(n for status, n in store.counts().items() if status != "dropped")
    if stored:
        log.warning(
            "interrupted: writing the %d stored samples to data/all (Ctrl-C again skips this)", stored
        )
        store.add_prompts(prompts.frame, source=prompts.path)
        export(store, run)
    log.warning(
        "interrupted: %d samples are stored in %s; rerun the same command to resume", stored, run.root
    )


def _check_exported(run: RunDir, store: Any) -> bool:
    """Refuse a data/all holding rows the store does not (the export would drop them); True when it lacks some.

    data/all lacking stored samples (a stage raced the export, a shard was damaged) is written again.
    """
    from distill.errors import InputError, StageError

    stored = sum(n for status, n in store.counts().items() if status != "dropped")
    try:
        exported = run.row_count("all")
    except InputError as e:
        if stored == 0:
            raise
        log.warning("%s; writing data/all again from the generations store", e)
        return True
    if exported > stored:
        raise StageError(
            f"{run.config_dir('all')} holds {exported:,} rows but its generations store only {stored:,}: "
            "rows that were not generated here (a dataset pulled from the Hub?) would be replaced; "
            "use a new --out"
        )
    return exported < stored


def _wanted(ids: list[str], n: int, n_per_prompt: Mapping[str, int] | None) -> dict[str, int]:
    extra = n_per_prompt or {}
    return {pid: max(n, int(extra.get(pid, 0))) for pid in ids}


def _pairs(wanted: Mapping[str, int]) -> Iterator[tuple[str, int]]:
    for pid, count in wanted.items():
        for k in range(count):
            yield pid, k


@contextlib.contextmanager
def _serving(
    cfg: GenerateConfig, run: RunDir, teacher: Teacher | None, clock: Callable[[], float]
) -> Iterator[Any]:
    """The teacher to use: the injected one, a started vLLM server, one endpoint, or a pool of them."""
    if teacher is not None:
        yield teacher
        return
    from distill.errors import ConfigError
    from distill.teachers.openai import OpenAITeacher
    from distill.teachers.pool import PoolTeacher

    api_key = None
    if cfg.api_key_env:
        api_key = os.environ.get(cfg.api_key_env)
        if not api_key:
            raise ConfigError(
                f"environment variable {cfg.api_key_env} is not set (it should hold the API key)"
            )
        if api_key != api_key.strip() or any(c in api_key for c in "\r\n\t "):
            raise ConfigError(
                f"environment variable {cfg.api_key_env} holds whitespace around or inside the key "
                "(a trailing \\r from a Windows file?): strip it"
            )

    def endpoint(url: str) -> OpenAITeacher:
        return OpenAITeacher(
            url,
            api_key=api_key,
            stream=cfg.stream,
            connect_timeout_s=cfg.connect_timeout_s,
            read_timeout_s=cfg.read_timeout_s,
            request_timeout_s=cfg.request_timeout_s,
            max_connections=cfg.concurrency,
            clock=clock,
        )

    with contextlib.ExitStack() as stack:
        urls = list(cfg.base_url)
        if cfg.vllm is not None:
            from distill.teachers.vllm_server import VllmServer

            urls = [stack.enter_context(VllmServer(cfg.vllm, log_dir=run.logs)).base_url]
        yield endpoint(urls[0]) if len(urls) == 1 else PoolTeacher([endpoint(u) for u in urls], clock=clock)


@contextlib.contextmanager
def _lighter_gc() -> Iterator[None]:
    """Cheaper garbage collection while requests are in flight (measured: 0.39 s → see bench/RESULTS.md).

    Everything alive before the requests start (modules, settings, the prompts) is frozen, so the
    collector stops rescanning it every few hundred responses, and young objects are collected every
    10,000 allocations instead of 700. Memory stays flat (cycles are still collected); both are undone
    on the way out.
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(threshold[0], 10_000), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


# ── stats and bookkeeping ──────────────────────────────────────────────────
def _load_export_libraries() -> None:
    import polars  # noqa: F401
    import pyarrow.parquet  # noqa: F401


def _write_run_yaml(run: RunDir, cfg: GenerateConfig) -> None:
    """Record the resolved generate settings (no secrets) in run.yaml, keeping other sections."""
    run.write_settings({"generate": cfg.model_dump(mode="json")})


def _forget_later_stages(run: RunDir) -> None:
    stages = [s for s in run.read_json(run.manifest).get("stages", {}) if s != "generate"]
    if stages:
        run.forget(*stages)


def _report(
    cfg: GenerateConfig,
    run: RunDir,
    store: Any,
    prompts: Any,
    engine: Engine,
    pending: int,
    elapsed: float,
    files: list[Path],
    teacher: str,
    counts: tuple[tuple, dict] | None = None,
) -> GenerateReport:
    from distill.generation.engine import describe_failures

    totals, reasons = counts or store.totals()
    samples, error_rows, prompt_tokens, completion_tokens = totals
    return GenerateReport(
        run=run.root,
        teacher=teacher,
        prompts=len(prompts),
        duplicates=prompts.duplicates,
        requested=pending,
        written=engine.written,
        errors=engine.errors,
        retries=engine.retries,
        samples=samples,
        error_rows=error_rows,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost_usd=round(cfg.prices.cost(prompt_tokens, completion_tokens), 6),
        elapsed_s=elapsed,
        stopped=engine.stopped or ("stopped on a teacher error" if engine.fatal else None),
        failures=describe_failures(engine.failures) if engine.failures else "",
        finish_reasons={str(k): int(v) for k, v in reasons.items()},
        files=files,
    )
