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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from distill.config import StageConfig
from distill.teachers.vllm_server import VllmConfig

if TYPE_CHECKING:
    from distill.generation.engine import Engine
    from distill.progress import Progress
    from distill.run import RunDir
    from distill.teachers.base import Teacher

log = logging.getLogger(__name__)

# DeepSeek-R1's usage advice: no system prompt; for math, ask for step-by-step reasoning and a boxed answer.
DEFAULT_TEMPLATE = "{prompt}\nPlease reason step by step, and put your final answer within \\boxed{}."


# ── settings ───────────────────────────────────────────────────────────────
class Prices(StageConfig):
    """USD per million tokens (e.g. DeepSeek-R1: input 0.55, output 2.19)."""

    input_per_million: float = Field(0.0, ge=0, description="USD per million prompt tokens.")
    output_per_million: float = Field(0.0, ge=0, description="USD per million completion tokens.")

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_million + completion_tokens * self.output_per_million) / 1e6


class GenerateConfig(StageConfig):
    """Settings of the generation stage."""

    # what to send
    prompts: str | None = Field(
        None, description="Prompts file (.jsonl/.json/.csv/.parquet), dataset folder or Hub id."
    )
    split: str = Field("train", description="Split to read from a dataset folder or Hub id.")
    prompt_column: str = Field("problem", description="Input column holding the prompt text.")
    template: str = Field(
        DEFAULT_TEMPLATE, description="User turn; {prompt} is the prompt column, {col} any column."
    )
    system: str | None = Field(None, description="System prompt (DeepSeek-R1 advises none).")
    n: int = Field(4, ge=1, description="Samples per prompt.")
    shard: str | None = Field(
        None, description="I/N: only the I-th of N deterministic slices of the prompts."
    )
    # how to sample
    model: str | None = Field(None, description="Model name at the endpoint; default: the one it serves.")
    temperature: float = Field(
        0.6, ge=0, description="Sampling temperature (DeepSeek-R1: 0.5–0.7, 0.6 advised)."
    )
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling.")
    max_tokens: int = Field(32768, ge=1, description="Completion budget per sample.")
    seed: int | None = Field(None, description="Base seed; sample k is sent seed + k.")
    extra_body: dict[str, Any] = Field(
        default_factory=dict, description="Extra request fields (top_k, min_p, …)."
    )
    on_length: Literal["keep", "drop", "retry"] = Field(
        "keep",
        description="finish_reason=length: keep the row, drop it from data/all, or retry with 2× max_tokens.",
    )
    length_retry_max_tokens: int = Field(
        131072, ge=1, description="Largest budget `on_length: retry` may ask for."
    )
    # where to send it
    base_url: list[str] = Field(
        default_factory=list, description="OpenAI-compatible base URLs (…/v1); several = pool."
    )
    api_key_env: str | None = Field(None, description="Environment variable holding the API key.")
    vllm: VllmConfig | None = Field(
        None, description="Start `vllm serve` for this model instead of using base_url."
    )
    stream: bool = Field(False, description="Stream responses (keeps long requests alive through proxies).")
    samples_per_request: int = Field(
        1, ge=1, description="Samples asked in one request (`n`); vLLM shares the prefill."
    )
    # pacing and faults
    concurrency: int = Field(64, ge=1, description="Requests in flight at most.")
    adaptive_concurrency: bool = Field(
        True, description="Lower concurrency on 429s, raise it again on success."
    )
    rpm_limit: float | None = Field(None, gt=0, description="Requests per minute, at most.")
    tpm_limit: float | None = Field(
        None, gt=0, description="Tokens (prompt + completion) per minute, at most."
    )
    max_attempts: int = Field(8, ge=1, description="Tries per request before it is stored as an error row.")
    retry_initial_s: float = Field(1.0, ge=0, description="First backoff; doubles each retry, plus jitter.")
    retry_max_s: float = Field(60.0, ge=0, description="Longest wait between tries (Retry-After included).")
    connect_timeout_s: float = Field(
        10.0, gt=0, description="Connect timeout; an unreachable URL fails this fast."
    )
    read_timeout_s: float = Field(
        3600.0, gt=0, description="Longest silence while reading (a 32k trace is slow)."
    )
    # money and durability
    prices: Prices = Field(
        default_factory=Prices, description="Per-million-token prices for cost accounting."
    )
    budget_usd: float | None = Field(
        None, gt=0, description="Stop cleanly (resumable) once this much is spent."
    )
    durability: Literal["normal", "full"] = Field(
        "normal", description="normal: every commit survives a process kill; full: also a power loss (fsync)."
    )

    fingerprint_exclude: ClassVar[frozenset[str]] = frozenset(
        {
            "prompts",
            "split",
            "n",
            "shard",
            "base_url",
            "api_key_env",
            "vllm",
            "stream",
            "samples_per_request",
            "concurrency",
            "adaptive_concurrency",
            "rpm_limit",
            "tpm_limit",
            "max_attempts",
            "retry_initial_s",
            "retry_max_s",
            "connect_timeout_s",
            "read_timeout_s",
            "prices",
            "budget_usd",
            "durability",
        }
    )

    def teacher_model(self) -> str | None:
        return self.model or (self.vllm.model if self.vllm else None)


# ── the report ─────────────────────────────────────────────────────────────
@dataclass
class GenerateReport:
    """What a generate call did (this call) and what the run holds (all calls)."""

    run: Path
    teacher: str
    prompts: int
    duplicates: int
    requested: int
    written: int
    errors: int
    retries: int
    samples: int
    error_rows: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    elapsed_s: float
    stopped: str | None = None
    finish_reasons: dict[str, int] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    def summary_line(self) -> str:
        stop = f"; stopped: {self.stopped} (rerun to resume)" if self.stopped else ""
        return (
            f"generate: {self.written:,}/{self.requested:,} new samples ({self.errors:,} errors, "
            f"{self.retries:,} retries) in {self.elapsed_s:.1f}s; run holds {self.samples:,} samples "
            f"({self.error_rows:,} with errors); tokens in {self.prompt_tokens:,} out "
            f"{self.completion_tokens:,}; cost ${self.cost_usd:,.4f}{stop} → {self.run}"
        )

    def as_table(self) -> Any:
        from rich.table import Table

        table = Table(title=f"generate → {self.run}", show_header=False)
        rows = [
            ("teacher", self.teacher),
            ("prompts", f"{self.prompts:,} ({self.duplicates:,} duplicates dropped)"),
            (
                "this run",
                f"{self.written:,}/{self.requested:,} samples, {self.errors:,} errors, "
                f"{self.retries:,} retries, {self.elapsed_s:.1f}s",
            ),
            ("run total", f"{self.samples:,} samples, {self.error_rows:,} with errors"),
            ("tokens", f"in {self.prompt_tokens:,}  out {self.completion_tokens:,}"),
            ("cost", f"${self.cost_usd:,.4f}"),
            (
                "finish reasons",
                ", ".join(f"{k} {v:,}" for k, v in sorted(self.finish_reasons.items())) or "-",
            ),
        ]
        if self.stopped:
            rows.append(("stopped", f"{self.stopped}: rerun the same command to resume"))
        for key, value in rows:
            table.add_row(key, value)
        return table


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
    from distill.generation.engine import Engine, jobs_for
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
    run.ensure()
    with Store(run.generations, durability=cfg.durability) as store:
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
            engine.on_commit = exporter.add
            try:
                with _serving(cfg, run, teacher, clock) as chosen, _lighter_gc():
                    log.debug("ready to send %d samples after %.2fs", pending, clock() - started)
                    teacher_name = asyncio.run(engine.run(chosen, jobs, pending))
            except BaseException:
                exporter.abort()
                raise
            if in_child:  # while the child writes its last Parquet frame: copy the WAL, count the run
                store.checkpoint()
                counts = _counts(store)
            files = exporter.finish()
            log.debug("requests done and exported after %.2fs", clock() - started)
        elif not store.is_exported() or not run.has_rows("all"):
            store.add_prompts(prompts.frame)
            files = export(store, run)
        else:
            files = run.shard_files("all")
        if engine.written or engine.errors:
            _forget_later_stages(run)
        report = _report(
            cfg, run, store, prompts, engine, pending, clock() - started, files, teacher_name, counts
        )
    run.update_stats("generate", _stats(report, settings))
    if not report.stopped and report.error_rows == 0:
        run.mark_done("generate", cfg.fingerprint(), samples=report.samples)
    if engine.fatal is not None:
        raise engine.fatal
    return report


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

    def endpoint(url: str) -> OpenAITeacher:
        return OpenAITeacher(
            url,
            api_key=api_key,
            stream=cfg.stream,
            connect_timeout_s=cfg.connect_timeout_s,
            read_timeout_s=cfg.read_timeout_s,
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
    import yaml

    from distill.config import redact

    data: dict[str, Any] = {}
    if run.run_yaml.exists():
        loaded = yaml.safe_load(run.run_yaml.read_text(encoding="utf-8"))
        data = loaded if isinstance(loaded, dict) else {}
    data["generate"] = redact(cfg.model_dump(mode="json"))
    run.write_text(run.run_yaml, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


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
    totals, reasons = counts or _counts(store)
    samples, error_rows, prompt_tokens, completion_tokens = (int(v or 0) for v in totals)
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
        finish_reasons={str(k): int(v) for k, v in reasons.items()},
        files=files,
    )


def _counts(store: Any) -> tuple[tuple, dict]:
    """What the whole run holds: (samples, error rows, prompt tokens, completion tokens), finish reasons."""
    totals = store.db.execute(
        "SELECT SUM(status != 'dropped'), SUM(status = 'error'), COALESCE(SUM(json_extract(meta, '$.prompt_tokens')), 0), "
        "COALESCE(SUM(json_extract(meta, '$.completion_tokens')), 0) FROM samples"
    ).fetchone()
    reasons = dict(
        store.db.execute(
            "SELECT COALESCE(json_extract(meta, '$.finish_reason'), 'error'), COUNT(*) FROM samples GROUP BY 1"
        )
    )
    return totals, reasons


def _stats(report: GenerateReport, settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "teacher": report.teacher,
        "settings": settings,
        "prompts": report.prompts,
        "duplicates": report.duplicates,
        "samples": report.samples,
        "errors": report.error_rows,
        "prompt_tokens": report.prompt_tokens,
        "completion_tokens": report.completion_tokens,
        "cost_usd": report.cost_usd,
        "finish_reasons": report.finish_reasons,
        "retries": report.retries,
        "elapsed_s": round(report.elapsed_s, 3),
    }
