"""Settings of an evaluation: the student, the benchmarks, and DeepSeek-R1's sampling protocol.

`engine` and `verifier` are the generation stage's and the verification stage's own settings, so a typo
(`eval.engine.concurency`) is refused when the recipe loads, not after generation and SFT have run.
Only the keys a recipe sets are written back (eval.yaml, run.yaml) and fed to the engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_serializer, field_validator

from distill.config import NameList, StageConfig
from distill.evaluation.benchmark_detect import BenchmarkMeta
from distill.generation.config import GenerateConfig
from distill.verification.config import VerifyConfig

__all__ = ["CHOICE_INSTRUCTION", "CODE_INSTRUCTION", "EvalConfig", "MATH_INSTRUCTION"]

MATH_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
CODE_INSTRUCTION = (
    "Complete the following Python function. Reason step by step, then give the complete "
    "function, with its imports, in one ```python code block."
)
CHOICE_INSTRUCTION = (
    "Answer the following multiple choice question. Reason step by step, and put the letter "
    "of your final answer (A, B, C or D) within \\boxed{}."
)


class EvalConfig(StageConfig):
    """How to evaluate a student: which model, which benchmarks, and DeepSeek-R1's sampling protocol."""

    model: str | None = Field(
        None,
        description="Model name served at base_url (also matched against DeepSeek's "
        "reference table); with vllm, the served name.",
    )
    base_url: str | None = Field(
        None, description="OpenAI-compatible endpoint of the student, e.g. http://localhost:8000/v1."
    )
    vllm: str | None = Field(
        None,
        description="A local checkpoint (or Hub id) to serve with `vllm serve` for the "
        "evaluation, started and stopped by the generation engine.",
    )
    api_key_env: str | None = Field(None, description="Environment variable holding the endpoint's API key.")
    benchmarks: NameList = Field(
        ["aime24", "math500"],
        description="Registry names (distill/evaluation/benchmarks.py) or names given a file.",
    )
    benchmark_paths: dict[str, Path] = Field(
        {},
        description="Local files by name (what --benchmark NAME=PATH "
        "sets): a registry benchmark's copy or the user's own; other benchmarks come from the Hub cache.",
    )
    benchmarks_meta: dict[str, BenchmarkMeta] = Field(
        {},
        description="Kind and columns of a benchmark by name (kind, text_column, answer_column, id_column, "
        "k), over what is detected from its file, e.g. {heldout: {kind: math, answer_column: target}}.",
    )
    k: int | Literal["auto"] = Field(
        "auto",
        description="Samples per problem; auto = the registry's default_k "
        "(AIME 64, MATH-500 16, GPQA 64, LiveCodeBench 8).",
    )
    k_by_benchmark: dict[str, int] = Field(
        {}, description="Samples per problem for some benchmarks, over `k` (e.g. {aime24: 64, math500: 4})."
    )
    pass_k: list[int] = Field([], description="Also report unbiased pass@k for these k (each ≤ the samples).")
    cons: bool = Field(True, description="Report cons@k (majority vote over normalised answers) for math.")
    temperature: float = Field(0.6, ge=0.0, description="DeepSeek-R1 protocol: 0.6.")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="DeepSeek-R1 protocol: 0.95.")
    max_tokens: int = Field(32768, ge=1, description="DeepSeek-R1 protocol: 32,768 generated tokens.")
    seed: int = Field(0, description="Base seed of the sampling (recorded per sample by the engine).")
    system: str | None = Field(None, description="System prompt; DeepSeek-R1's protocol uses none.")
    math_instruction: str = Field(MATH_INSTRUCTION, description="Appended to every math problem.")
    code_instruction: str = Field(
        CODE_INSTRUCTION, description="Put before every HumanEval-style function stub."
    )
    choice_instruction: str = Field(
        CHOICE_INSTRUCTION, description="Put before every multiple-choice question."
    )
    limit: int | None = Field(
        None,
        ge=1,
        description="Only the first N problems of each benchmark (a smoke "
        "test; marked as a subset in the report).",
    )
    reference: str | None = Field(
        "auto",
        description="Reference row of recipes/eval/reference.yaml to show beside "
        "the scores: auto (match the model id), a model name, or null.",
    )
    reference_table: Path | None = Field(None, description="Another reference table (same format).")
    engine: GenerateConfig = Field(
        default_factory=GenerateConfig,
        description="More settings for the generation engine (generate's keys such as concurrency, "
        "timeouts, vllm options); the sampling protocol above wins over its sampling keys.",
    )
    verifier: VerifyConfig = Field(
        default_factory=VerifyConfig, description="More settings for the verifiers (verify's keys)."
    )

    # How fast, not what: the endpoint and the engine's speed knobs do not change the scores.
    fingerprint_exclude: ClassVar[frozenset[str]] = frozenset(
        {"base_url", "api_key_env", "engine", "reference", "reference_table"}
    )

    @field_validator("pass_k")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(k < 1 for k in value):
            raise ValueError("every pass@k needs k ≥ 1")
        return sorted(set(value))

    @field_validator("k", "k_by_benchmark")
    @classmethod
    def _at_least_one(cls, value: Any) -> Any:
        values = value.values() if isinstance(value, dict) else [value]
        if any(isinstance(v, int) and v < 1 for v in values):
            raise ValueError("samples per problem must be at least 1")
        return value

    @field_serializer("engine", "verifier")
    def _only_what_was_set(self, value: StageConfig) -> dict[str, Any]:
        return value.model_dump(mode="json", exclude_unset=True)

    @property
    def model_id(self) -> str | None:
        """What the student is called: the model name, else the checkpoint's folder name."""
        if self.model:
            return self.model
        return Path(self.vllm).name if self.vllm else None
