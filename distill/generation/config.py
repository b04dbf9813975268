"""Settings of the generation stage: what to send, how to sample, where, how fast, at what price.

Kept apart from the stage so that the engine, the judge and the evaluation can read them without
importing the stage that drives them (no import cycle).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from distill.config import StageConfig
from distill.teachers.vllm_server import VllmConfig

__all__ = ["DEFAULT_TEMPLATE", "GenerateConfig", "Prices", "VllmConfig"]

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
    concurrency: int = Field(64, ge=1, le=65536, description="Requests in flight at most.")
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
    request_timeout_s: float = Field(
        1800.0,
        gt=0,
        description="Deadline of one attempt, first byte sent to last received (a 32k-token trace at "
        "~20 tok/s fits); a hanging or trickling server fails the attempt, which is retried.",
    )
    read_timeout_s: float = Field(
        1800.0,
        gt=0,
        description="Stall timeout: the longest silence while reading. A non-streamed reply is silent "
        "until it is done, so keep it at the deadline; with `stream: true`, a few minutes catch a stall early.",
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
            "request_timeout_s",
            "prices",
            "budget_usd",
            "durability",
        }
    )

    @field_validator("base_url")
    @classmethod
    def _has_scheme(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r} has no scheme: write http://{url} (or https://)")
        return urls

    def teacher_model(self) -> str | None:
        return self.model or (self.vllm.model if self.vllm else None)
