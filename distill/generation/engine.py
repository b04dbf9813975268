"""The async generation engine: a fixed pool of workers, retries and pacing, and one writer.

`concurrency` worker coroutines pull jobs (one prompt, one or more samples) from a single lazy
iterator; each calls the teacher through the adaptive limiter, RPM/TPM buckets and retries, turns
the answer into rows, and queues them; one writer commits whatever has arrived in a single SQLite
transaction and hands the rows to the streaming export. A 401 stops every worker; a budget stop
lets in-flight requests finish (they are paid for) and sends nothing new.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from distill import schema
from distill.errors import ConfigError, StageError, TeacherError
from distill.generation.inputs import chat_messages
from distill.generation.ratelimit import AdaptiveLimiter, TokenBucket, with_retries
from distill.generation.store import Status, StoredSample
from distill.progress import NullProgress
from distill.reasoning import normalise
from distill.teachers.base import ChatRequest, RequestFailed

if TYPE_CHECKING:
    from distill.generation.config import GenerateConfig
    from distill.progress import Progress
    from distill.teachers.base import Completion, Teacher

log = logging.getLogger(__name__)


@dataclass
class _Job:
    prompt_id: str
    samples: tuple[int, ...]
    messages: list[dict[str, str]]


def jobs_for(
    ids: list[str],
    prompts: list[str],
    wanted: Mapping[str, int],
    finished: set[tuple[str, int]],
    cfg: GenerateConfig,
) -> Iterator[_Job]:
    """Jobs for the missing samples, built lazily (memory stays flat in the number of prompts)."""
    for pid, prompt in zip(ids, prompts, strict=True):
        missing = [k for k in range(wanted[pid]) if (pid, k) not in finished]
        if not missing:
            continue
        messages = chat_messages(prompt, cfg.system)
        for i in range(0, len(missing), cfg.samples_per_request):
            yield _Job(pid, tuple(missing[i : i + cfg.samples_per_request]), messages)


# ── the async engine ───────────────────────────────────────────────────────
class Engine:
    """Workers pull jobs from one iterator, call the teacher with retries, and hand rows to one writer."""

    def __init__(
        self,
        cfg: GenerateConfig,
        store: Any,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        progress: Progress | None,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.clock = clock
        self.sleep = sleep
        self.progress = progress or NullProgress()
        self.written = self.errors = self.retries = self.length_retries = 0
        self.prompt_tokens = self.completion_tokens = 0
        self.cost = 0.0
        self.finish_reasons: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()  # why requests failed for good, by message
        self.stopped: str | None = None
        self.fatal: BaseException | None = None
        self.on_commit: Callable[[list[tuple]], None] = lambda rows: None  # rows as stored (store.Raw)
        self.on_ready: Callable[[], object] = lambda: None
        self._rng = random.Random(cfg.seed)

    async def run(self, teacher: Teacher, jobs: Iterator[_Job], total: int) -> str:
        cfg = self.cfg
        self.limiter = AdaptiveLimiter(cfg.concurrency, enabled=cfg.adaptive_concurrency, clock=self.clock)
        self.rpm = TokenBucket(cfg.rpm_limit, clock=self.clock, sleep=self.sleep) if cfg.rpm_limit else None
        self.tpm = TokenBucket(cfg.tpm_limit, clock=self.clock, sleep=self.sleep) if cfg.tpm_limit else None
        self.results: asyncio.Queue[list[StoredSample] | None] = asyncio.Queue()
        self.stop = asyncio.Event()
        async with teacher:
            self.model = await resolve_model(teacher, cfg)
            self.started = self.clock()
            self.progress.start(
                f"generate ({self.model}, ≤{cfg.request_timeout_s / 60:g} min a request)", total
            )
            writer = asyncio.ensure_future(self._writer())
            workers = [asyncio.ensure_future(self._worker(teacher, jobs)) for _ in range(cfg.concurrency)]
            await asyncio.sleep(0)  # let the workers send their first requests
            self.on_ready()
            try:
                await asyncio.gather(*workers)
            except BaseException:
                for task in workers:
                    task.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
                raise
            finally:
                self.results.put_nowait(None)
                await writer
                self.progress.finish()
        return self.model

    async def _worker(self, teacher: Teacher, jobs: Iterator[_Job]) -> None:
        for job in jobs:  # a shared iterator: each job goes to exactly one worker
            if self.stop.is_set():
                return
            try:
                rows = await self._do(teacher, job)
            except TeacherError as e:  # 401, gone for good: stop everything, keep what is stored
                if self.fatal is None:
                    self.fatal = e
                self.stop.set()
                return
            self.results.put_nowait(rows)

    async def _do(self, teacher: Teacher, job: _Job) -> list[StoredSample]:
        cfg = self.cfg
        max_tokens = cfg.max_tokens
        attempts_total = 0
        while True:
            request = ChatRequest(
                messages=job.messages,
                model=self.model,
                temperature=cfg.temperature,
                top_p=cfg.top_p,
                max_tokens=max_tokens,
                n=len(job.samples),
                seed=None if cfg.seed is None else cfg.seed + job.samples[0],
                extra_body=cfg.extra_body,
            )
            try:
                completion, tries = await with_retries(
                    functools.partial(self._call, teacher, request),
                    attempts=cfg.max_attempts,
                    sleep=self.sleep,
                    initial_s=cfg.retry_initial_s,
                    max_s=cfg.retry_max_s,
                    rng=self._rng,
                    on_retry=self._on_retry,
                )
            except RequestFailed as e:
                attempts_total += getattr(e, "attempts", 1)
                return [self._error_row(job, k, str(e), attempts_total, max_tokens) for k in job.samples]
            attempts_total += tries
            self._account(completion)
            if (
                cfg.on_length == "retry"
                and max_tokens < cfg.length_retry_max_tokens
                and any(c.finish_reason == "length" for c in completion.choices)
            ):
                self.length_retries += 1
                max_tokens = min(cfg.length_retry_max_tokens, max_tokens * 2)
                continue
            return self._rows(job, completion, attempts_total, max_tokens)

    async def _call(self, teacher: Teacher, request: Any) -> Completion:
        await self.limiter.acquire()
        try:
            if self.rpm is not None:
                await self.rpm.acquire(1)
            estimate = 0
            if self.tpm is not None:
                estimate = _estimate_tokens(request, self.completion_tokens, self.written)
                await self.tpm.acquire(estimate)
            completion = await teacher.complete(request)
            if self.tpm is not None:
                self.tpm.settle(completion.prompt_tokens + completion.completion_tokens - estimate)
        finally:
            self.limiter.release()
        self.limiter.on_success()
        return completion

    def _on_retry(self, error: Any) -> None:
        self.retries += 1
        if error.is_rate_limit:
            self.limiter.on_rate_limited()
        log.debug("retrying: %s", error)

    def _account(self, completion: Completion) -> None:
        self.prompt_tokens += completion.prompt_tokens
        self.completion_tokens += completion.completion_tokens
        self.cost += self.cfg.prices.cost(completion.prompt_tokens, completion.completion_tokens)
        if self.cfg.budget_usd is not None and self.cost >= self.cfg.budget_usd and not self.stop.is_set():
            self.stopped = f"budget of ${self.cfg.budget_usd:,.2f} reached"
            self.stop.set()

    def _rows(self, job: _Job, completion: Completion, attempts: int, max_tokens: int) -> list[StoredSample]:
        n = len(job.samples)
        rows = []
        for index, k in enumerate(job.samples):
            choice = completion.choices[index] if index < len(completion.choices) else None
            if choice is None:
                rows.append(
                    self._error_row(
                        job, k, "the server returned fewer choices than asked", attempts, max_tokens
                    )
                )
                continue
            trace = normalise(choice.content, choice.reasoning)
            reason = choice.finish_reason or "unknown"
            self.finish_reasons[reason] += 1
            row = {  # messages are rebuilt from these at export: the store keeps each text once
                schema.REASONING: trace.reasoning,
                schema.ANSWER_TEXT: trace.answer_text,
                schema.COMPLETE: trace.complete,
                schema.TEACHER: self.model,
                schema.FINISH_REASON: choice.finish_reason,
                schema.PROMPT_TOKENS: _share(completion.prompt_tokens, n, index),
                schema.COMPLETION_TOKENS: _share(completion.completion_tokens, n, index),
                schema.LATENCY_S: round(completion.latency_s, 4),
                schema.ATTEMPTS: attempts,
                schema.ERROR: None,
                **self._params(k, max_tokens),
            }
            status: Status = "dropped" if self.cfg.on_length == "drop" and reason == "length" else "ok"
            rows.append(StoredSample(job.prompt_id, k, status, row))
        return rows

    def _error_row(self, job: _Job, k: int, error: str, attempts: int, max_tokens: int) -> StoredSample:
        self.failures[error[:200]] += 1
        row = {
            schema.REASONING: None,
            schema.ANSWER_TEXT: None,
            schema.COMPLETE: False,
            schema.TEACHER: getattr(self, "model", None),
            schema.FINISH_REASON: None,
            schema.PROMPT_TOKENS: 0,
            schema.COMPLETION_TOKENS: 0,
            schema.LATENCY_S: None,
            schema.ATTEMPTS: attempts,
            schema.ERROR: error[:500],
            **self._params(k, max_tokens),
        }
        return StoredSample(job.prompt_id, k, "error", row)

    def _params(self, k: int, max_tokens: int) -> dict[str, Any]:
        cfg = self.cfg
        return {
            schema.TEMPERATURE: cfg.temperature,
            schema.TOP_P: cfg.top_p,
            schema.MAX_TOKENS: max_tokens,
            schema.SEED: None if cfg.seed is None else cfg.seed + k,
        }

    async def _writer(self) -> None:
        """The single writer: commits whatever has arrived in one transaction, then waits for more."""
        while True:
            batch = await self.results.get()
            if batch is None:
                return
            rows = list(batch)
            done = False
            while not self.results.empty():
                more = self.results.get_nowait()
                if more is None:
                    done = True
                    break
                rows.extend(more)
            try:
                stored = self.store.write(rows)
            except StageError as e:  # the disk is full or read-only: stop sending, keep what is committed
                if self.fatal is None:
                    self.fatal = e
                self.stop.set()
                return
            self.on_commit(stored)
            errors = sum(1 for r in rows if r.status == "error")
            self.errors += errors
            self.written += len(rows) - errors
            elapsed = max(self.clock() - self.started, 1e-9)
            self.progress.advance(
                len(rows),
                errors=self.errors,
                retries=self.retries,
                **{
                    "tok/s in": int(self.prompt_tokens / elapsed),
                    "tok/s out": int(self.completion_tokens / elapsed),
                    "cost $": self.cost,
                },
            )
            if done:
                return


def describe_failures(failures: Counter[str], limit: int = 3) -> str:
    """The first distinct reasons requests failed, with counts: `HTTP 400: bad model (×12); …`."""
    top = failures.most_common(limit)
    more = len(failures) - len(top)
    return "; ".join(f"{reason} (×{count:,})" for reason, count in top) + (
        f"; {more} more" if more > 0 else ""
    )


def _share(total: int, parts: int, index: int) -> int:
    """`total` split over `parts` integers that sum back to it."""
    return total // parts + (1 if index < total % parts else 0)


def _estimate_tokens(request: Any, completion_tokens: int, samples: int) -> int:
    prompt = sum(len(m["content"]) for m in request.messages) // 4 + 1
    per_sample = completion_tokens // samples if samples else min(request.max_tokens, 4096)
    return prompt + per_sample * request.n


async def resolve_model(teacher: Teacher, cfg: GenerateConfig) -> str:
    """Fail fast on an unusable teacher, and pick the model (the one it serves when not given)."""
    served = await teacher.check()
    wanted = cfg.teacher_model()
    if wanted is None:
        if len(served) == 1:
            return served[0]
        raise ConfigError(f"give --model; {teacher.name} serves {', '.join(served) or 'no listed model'}")
    if served and wanted not in served and not (cfg.vllm and len(served) == 1):
        raise TeacherError(
            f"{teacher.name} does not serve model {wanted!r}; it serves {', '.join(served[:10])}"
        )
    return wanted if not (cfg.vllm and served) else served[0]
