"""Code benchmarks: write a program; graded by running the benchmark's own tests in the sandbox."""

from __future__ import annotations

from distill.evaluation.spec import BenchmarkSpec

__all__ = ["CODE"]

CODE = (
    BenchmarkSpec(
        name="humaneval",
        version="1",
        hub_id="openai/openai_humaneval",
        config=None,
        split="test",
        text_column="prompt",
        answer_column="canonical_solution",
        kind="code",
        default_k=4,
        id_column="task_id",
        checksum="sha256:b796127e635a67f9",
        revision="7dce6050a7d6d172f3cc5c32aa97f52fa1a2e544",
        passthrough=("prompt", "test", "entry_point"),
        items=164,
        description="HumanEval: complete the function; `test` defines check(candidate)",
    ),
    BenchmarkSpec(
        name="mbpp",
        version="1",
        hub_id="google-research-datasets/mbpp",
        config="full",
        split="test",
        text_column="text",
        answer_column="code",
        kind="code",
        default_k=1,
        id_column="task_id",
        checksum="sha256:ccf64ceae9c5403b",
        passthrough=("test_list", "test_setup_code", "challenge_test_list"),
        description="MBPP: write a Python function; asserts in test_list",
    ),
    BenchmarkSpec(
        name="livecodebench",
        version="1",
        hub_id="livecodebench/code_generation_lite",
        config="release_v5",
        split="test",
        text_column="question_content",
        answer_column=None,
        kind="code",
        default_k=8,
        id_column="question_id",
        passthrough=(
            "public_test_cases",
            "private_test_cases",
            "starter_code",
            "platform",
            "contest_date",
            "difficulty",
            "metadata",
        ),
        description="LiveCodeBench code generation (pass a local file with NAME=PATH)",
        prompt_style="livecodebench",
    ),
)
