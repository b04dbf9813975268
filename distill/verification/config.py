"""Settings of the verification stage: which verifiers run, where golds and tests come from, the limits."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from distill.config import StageConfig
from distill.judge import JudgeConfig

__all__ = ["VERIFIERS", "VerifyConfig"]

VERIFIERS = ("math", "code", "format")


class VerifyConfig(StageConfig):
    """Which verifiers run, where gold answers and tests come from, and the limits."""

    fingerprint_exclude: ClassVar[frozenset[str]] = frozenset({"workers"})

    math: bool = Field(True, description="Check final answers against gold answers (rows that have one).")
    code: bool = Field(False, description="Run extracted programs against tests (rows that have them).")
    format: bool = Field(True, description="Check think-block format, completeness and looping tails.")
    gold_column: str = Field(
        "answer", description="Column with the gold answer (GSM8K's `#### N` is understood)."
    )
    solution_column: str | None = Field(
        "solution",
        description="Worked solution whose last boxed value is the gold when gold_column is empty.",
    )
    answer_source: Literal["answer", "answer_or_boxed"] = Field(
        "answer",
        description="`answer`: only the text after </think>; `answer_or_boxed`: fall back to the "
        "last \\boxed{} of the reasoning when the answer has none.",
    )
    float_rounding: int = Field(6, description="Decimal places math-verify rounds floats to.")
    strict: bool = Field(True, description="math-verify strict mode (variable names matter).")
    math_timeout_s: int = Field(5, ge=1, description="math-verify's own parse/compare timeout per call.")
    item_timeout_s: float = Field(
        30.0, gt=0, description="Hard wall-clock limit per row: the worker is killed."
    )
    math_memory_mb: int = Field(
        4096, ge=256, description="Address-space cap of each math worker (MemoryError beyond)."
    )
    workers: int | None = Field(
        None, ge=1, description="Processes for math and sandbox slots for code; default all cores."
    )
    tests_column: str = Field(
        "tests", description="Tests as stdin/stdout cases, asserts, or a JSON string of either."
    )
    test_column: str = Field("test", description="HumanEval-style test code defining check(candidate).")
    entry_point_column: str = Field("entry_point", description="HumanEval-style name passed to check().")
    test_list_column: str = Field("test_list", description="MBPP-style list of assert lines.")
    test_setup_column: str = Field("test_setup_code", description="MBPP-style code run before the asserts.")
    code_prefix_column: str | None = Field(
        None,
        description="Column prepended to the program (HumanEval's `prompt` when answers hold only a body).",
    )
    float_tol: float | None = Field(None, description="Tolerance for numbers in stdin/stdout comparisons.")
    code_cpu_s: int = Field(10, description="CPU seconds per program run.")
    code_wall_s: float = Field(20.0, description="Wall-clock seconds per program run (process group killed).")
    code_memory_mb: int = Field(2048, description="Address-space limit per program run.")
    code_disk_mb: int = Field(
        64, description="Disk per program run, all files together (its private /tmp, /dev/shm, work folder)."
    )
    loop_min_tokens: int = Field(
        64, description="A repeated tail must cover this many tokens to count as a loop."
    )
    loop_min_repeats: int = Field(4, description="…and repeat its chunk at least this many times.")
    judge: JudgeConfig | None = Field(
        None,
        description="LLM judge for math rows the rules leave null: {base_url, model, api_key_env, …}.",
    )
