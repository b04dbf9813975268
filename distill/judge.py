"""An LLM judge: yes/no questions about rows, sent through the teacher client and generation engine.

    prompt = JudgePrompt(name="math-equivalence", version=1, system=None, fields=("problem", "gold", "answer"),
                         template="…{problem}…{gold}…{answer}…End with `Judgement: yes` or `Judgement: no`.")
    preflight(cfg)                                   # TeacherError naming the endpoint if it is down
    results, report = judge(cfg, prompt, [JudgeRequest("row-1", {...}), ...], run.judge / prompt.name)

Why the generation engine and not a second client: the judge is just another teacher call, and it needs
everything generation already has — a fixed pool of workers, RPM/TPM pacing, retries that honour
Retry-After, a budget stop, cost accounting, and a crash-safe store so a rerun sends only what is missing.
Each request is stored under a key hashed from the prompt's name and version, the judge model and the
rendered text, so a rerun with the same judge reuses verdicts and a new prompt version or model asks
again. The template is fixed and versioned by the caller: change the wording, bump the version.

The verdict is read from the judge's last `Judgement: yes|no` line (also `Verdict:`, `**Judgement**: Yes`,
`\\boxed{yes}`, correct/incorrect, true/false, same/different); anything else is no verdict (`None`),
with the reason saying why, never a guess.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from distill import schema
from distill.config import StageConfig
from distill.errors import ConfigError, TeacherError
from distill.generation.config import GenerateConfig, Prices

if TYPE_CHECKING:
    from distill.progress import Progress
    from distill.teachers.base import Teacher

__all__ = [
    "JudgeConfig",
    "JudgePrompt",
    "JudgeReport",
    "JudgeRequest",
    "JudgeResult",
    "judge",
    "parse_verdict",
    "preflight",
]


# ── settings ───────────────────────────────────────────────────────────────
class JudgeConfig(StageConfig):
    """Where the judge model is served and how hard to push it."""

    base_url: str = Field(description="OpenAI-compatible base URL of the judge (…/v1).")
    model: str | None = Field(None, description="Judge model name; default: the one the endpoint serves.")
    api_key_env: str | None = Field(None, description="Environment variable holding the judge's API key.")
    temperature: float = Field(
        0.0, ge=0, description="Sampling temperature (0: the same verdict every time)."
    )
    max_tokens: int = Field(
        2048, ge=1, description="Completion budget per verdict (reasoning judges need more)."
    )
    concurrency: int = Field(16, ge=1, description="Judge requests in flight at most.")
    rpm_limit: float | None = Field(None, gt=0, description="Requests per minute, at most.")
    tpm_limit: float | None = Field(None, gt=0, description="Tokens per minute, at most.")
    max_attempts: int = Field(6, ge=1, description="Tries per request before the row gets no verdict.")
    connect_timeout_s: float = Field(
        10.0, gt=0, description="Connect timeout; a dead endpoint fails this fast."
    )
    read_timeout_s: float = Field(600.0, gt=0, description="Longest silence while reading a verdict.")
    prices: Prices = Field(default_factory=Prices, description="Per-million-token prices of the judge.")
    budget_usd: float | None = Field(
        None, gt=0, description="Stop sending (resumable) once this much is spent."
    )

    def generate_config(self, model: str | None, system: str | None) -> GenerateConfig:
        """The engine's settings for judge requests: one greedy sample per request."""
        return GenerateConfig(
            base_url=[self.base_url],
            model=model,
            api_key_env=self.api_key_env,
            system=system,
            n=1,
            temperature=self.temperature,
            top_p=1.0,
            max_tokens=self.max_tokens,
            concurrency=self.concurrency,
            adaptive_concurrency=True,
            rpm_limit=self.rpm_limit,
            tpm_limit=self.tpm_limit,
            max_attempts=self.max_attempts,
            connect_timeout_s=self.connect_timeout_s,
            read_timeout_s=self.read_timeout_s,
            prices=self.prices,
            budget_usd=self.budget_usd,
        )


@dataclass(frozen=True)
class JudgePrompt:
    """A fixed, versioned question: `template` is filled with `fields` by `str.format`."""

    name: str
    version: int
    template: str
    fields: tuple[str, ...]
    system: str | None = None

    @property
    def id(self) -> str:
        return f"{self.name}-v{self.version}"

    def render(self, values: Mapping[str, Any], *, max_field_chars: int = 8000) -> str:
        missing = [f for f in self.fields if f not in values]
        if missing:
            raise ConfigError(f"judge prompt {self.id}: missing field(s) {', '.join(missing)}")
        # Long fields are cut in the middle: the judge needs the start (setup) and the end (the answer).
        return self.template.format(**{f: _clip(str(values[f]), max_field_chars) for f in self.fields})


@dataclass(frozen=True)
class JudgeRequest:
    """One question for the judge: the caller's key for the row and the prompt's fields."""

    key: str
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class JudgeResult:
    """The judge's answer for one request: `verdict` is None when there is none (see `reason`)."""

    key: str
    verdict: bool | None
    reason: str
    model: str | None
    error: str | None = None


@dataclass
class JudgeReport:
    """What one judge call did: requests sent now, reused from the store, verdicts and cost."""

    endpoint: str
    model: str
    prompt: str
    requests: int
    sent: int
    reused: int
    yes: int
    no: int
    no_verdict: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    elapsed_s: float
    stopped: str | None = None

    def as_stats(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


# ── verdict parsing ────────────────────────────────────────────────────────
_WORDS = {
    "yes": True,
    "no": False,
    "correct": True,
    "incorrect": False,
    "true": True,
    "false": False,
    "same": True,
    "different": False,
    "equivalent": True,
    "not equivalent": False,
}
_WORD = r"(not equivalent|equivalent|incorrect|correct|different|same|yes|no|true|false)"
_LABELLED = re.compile(
    r"(?:judge?ment|verdict|final answer|answer)\s*\**\s*[:：]\s*\**\s*[\"'`(\[]?\s*" + _WORD + r"\b",
    re.IGNORECASE,
)
_BOXED = re.compile(r"\\boxed\{\s*(?:\\text\{)?\s*" + _WORD + r"\s*\}?\s*\}", re.IGNORECASE)
_LAST_LINE = re.compile(r"^\W*" + _WORD + r"\W*$", re.IGNORECASE)


def parse_verdict(text: str | None) -> tuple[bool | None, str]:
    """(verdict, reason) from a judge's reply: the last labelled yes/no wins; None when there is none."""
    if not text or not text.strip():
        return None, "the judge returned an empty reply"
    matches = [*_LABELLED.finditer(text), *_BOXED.finditer(text)]
    if matches:
        last = max(matches, key=lambda m: m.start())
        return _WORDS[last.group(1).lower()], _explanation(text[: last.start()]) or "no explanation given"
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if lines and (m := _LAST_LINE.match(lines[-1])):
        return _WORDS[m.group(1).lower()], _explanation("\n".join(lines[:-1])) or "no explanation given"
    return None, f"no 'Judgement: yes/no' in the reply: {_explanation(text)}"


def _explanation(text: str, limit: int = 400) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else "…" + flat[-limit:]


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[… {len(text) - limit:,} characters cut …]\n{text[-half:]}"


# ── preflight ──────────────────────────────────────────────────────────────
def preflight(cfg: JudgeConfig, *, teacher: Teacher | None = None) -> str:
    """The judge model's name, or TeacherError naming the endpoint when it is down; sends no request."""
    return asyncio.run(_resolve(cfg, teacher))


async def _resolve(cfg: JudgeConfig, teacher: Teacher | None) -> str:
    from distill.generation.engine import resolve_model
    from distill.generation.stage import _serving

    gen = cfg.generate_config(cfg.model, None)
    with _serving(gen, None, teacher, time.monotonic) as chosen:  # type: ignore[arg-type]
        try:
            async with chosen:
                return await resolve_model(chosen, gen)
        except TeacherError as e:
            raise TeacherError(f"judge endpoint {cfg.base_url} is not usable: {e}") from e
        except ConfigError as e:
            raise ConfigError(f"judge endpoint {cfg.base_url}: {e}") from e


# ── the call ───────────────────────────────────────────────────────────────
def judge(
    cfg: JudgeConfig,
    prompt: JudgePrompt,
    requests: Sequence[JudgeRequest],
    folder: Path,
    *,
    teacher: Teacher | None = None,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> tuple[list[JudgeResult], JudgeReport]:
    """Ask the judge every request not yet answered in `folder`'s store; one result per request, in order.

    Checks the endpoint first (nothing is sent if it is down). A request that keeps failing gets
    `verdict=None` with the error; a rerun asks it again.
    """
    from distill.generation.engine import Engine, jobs_for
    from distill.generation.stage import _serving
    from distill.generation.store import Store

    started = clock()
    model = preflight(cfg, teacher=teacher)
    gen = cfg.generate_config(model, prompt.system)
    rendered = [prompt.render(r.fields) for r in requests]
    ids = [_request_id(prompt, model, text) for text in rendered]
    unique = dict(zip(ids, rendered, strict=True))  # identical questions are asked once
    with Store(Path(folder), durability="normal") as store:
        finished = store.finished()
        pending = [i for i in unique if (i, 0) not in finished]
        engine = Engine(gen, store, clock=clock, sleep=sleep, progress=progress)
        if pending:
            jobs = jobs_for(pending, [unique[i] for i in pending], dict.fromkeys(pending, 1), finished, gen)
            with _serving(gen, None, teacher, clock) as chosen:  # type: ignore[arg-type]
                asyncio.run(engine.run(chosen, jobs, len(pending)))
        stored = _stored(store, set(unique))
    results = [_result(r.key, stored.get(i)) for r, i in zip(requests, ids, strict=True)]
    report = _report(cfg, prompt, model, results, stored, unique, pending, engine, clock() - started)
    if engine.fatal is not None:
        raise engine.fatal
    return results, report


def _request_id(prompt: JudgePrompt, model: str, text: str) -> str:
    data = json.dumps([prompt.id, model, prompt.system or "", text], ensure_ascii=False)
    return hashlib.sha256(data.encode()).hexdigest()[:24]


def _stored(store: Any, wanted: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for batch in store.iter_samples(statuses=("ok", "error")):
        for sample in batch:
            if sample.prompt_id in wanted:
                out[sample.prompt_id] = sample
    return out


def _result(key: str, sample: Any) -> JudgeResult:
    if sample is None:
        return JudgeResult(key, None, "not judged (stopped before this request was sent)", None)
    row = sample.row
    if sample.status == "error":
        error = str(row.get(schema.ERROR) or "request failed")
        return JudgeResult(key, None, f"judge request failed: {error}"[:500], row.get(schema.TEACHER), error)
    reply = row.get(schema.ANSWER_TEXT) or ""
    verdict, reason = parse_verdict(reply if reply.strip() else row.get(schema.REASONING))
    return JudgeResult(key, verdict, reason, row.get(schema.TEACHER))


def _report(
    cfg: JudgeConfig,
    prompt: JudgePrompt,
    model: str,
    results: list[JudgeResult],
    stored: dict[str, Any],
    unique: dict[str, str],
    pending: list[str],
    engine: Any,
    elapsed: float,
) -> JudgeReport:
    prompt_tokens = sum(int(s.row.get(schema.PROMPT_TOKENS) or 0) for s in stored.values())
    completion_tokens = sum(int(s.row.get(schema.COMPLETION_TOKENS) or 0) for s in stored.values())
    return JudgeReport(
        endpoint=cfg.base_url,
        model=model,
        prompt=prompt.id,
        requests=len(results),
        sent=engine.written + engine.errors,
        reused=len(unique) - len(pending),
        yes=sum(r.verdict is True for r in results),
        no=sum(r.verdict is False for r in results),
        no_verdict=sum(r.verdict is None and r.error is None for r in results),
        errors=sum(r.error is not None for r in results),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost_usd=cfg.prices.cost(prompt_tokens, completion_tokens),
        elapsed_s=elapsed,
        stopped=engine.stopped or ("stopped on a judge endpoint error" if engine.fatal else None),
    )
