"""A whole run in one recipe: every stage's settings composed, loaded from YAML with overrides.

run_dir: runs/my-run            # where every stage reads and writes
stages: [generate, verify, filter, card, push, sft, eval]
until_correct: 2                # verification in the loop: sample until 2 correct traces…
max_samples: 16                 # …or 16 samples per prompt, whichever comes first
generate: {...}                 # each section is validated by its stage's own config class
verify: {...}
filter: {...}
card: {...}
push: {...}                     # optional: no push when absent
sft: {...}                      # optional: no training when absent
eval: {...}                     # optional: no evaluation when absent
demo: {teacher: true}           # optional: the built-in offline demo teacher / tiny student
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from distill.config import StageConfig, load_config
from distill.evaluation.config import EvalConfig
from distill.filtering.config import FilterConfig
from distill.generation.config import GenerateConfig
from distill.publishing.config import CardConfig, PushConfig
from distill.resources import resolve_recipe
from distill.training.config import SFTConfig
from distill.verification.config import VerifyConfig

StageName = Literal["generate", "verify", "filter", "card", "push", "sft", "eval"]
STAGES: tuple[StageName, ...] = ("generate", "verify", "filter", "card", "push", "sft", "eval")


class DemoConfig(StageConfig):
    """The offline demo: a built-in teacher and a tiny random student, so a run needs no GPU or network."""

    teacher: bool = Field(
        True,
        description="Serve generate's prompts from the built-in demo teacher "
        "(an OpenAI-compatible server on 127.0.0.1) instead of generate.base_url.",
    )
    student: bool = Field(
        True,
        description="Build a tiny random student (no download) as sft's base model, and "
        "serve the trained checkpoint on a local CPU server for eval.",
    )
    student_max_tokens: int = Field(
        48, ge=1, description="Tokens the tiny student may generate per eval answer."
    )
    benchmarks_dir: Path | None = Field(
        None,
        description=(
            "A folder holding math500_test.jsonl and gsm8k_test.jsonl: decontaminate against (and evaluate on) "
            "those; by default the demo uses the two benchmark items and four eval problems it ships."
        ),
    )


class Recipe(StageConfig):
    """Every stage's settings; each section is validated by the stage's own config class."""

    run_dir: Path = Field(Path("runs/default"), description="The run directory every stage reads and writes.")
    stages: list[StageName] = Field(
        list(STAGES),
        description=(
            "Stages `distill run` runs, in pipeline order; a stage whose section is absent (push, sft, eval) is "
            "skipped. `--stages` on the command line overrides it."
        ),
    )
    until_correct: int | None = Field(
        None,
        ge=1,
        description=(
            "Verification in the loop: keep sampling a prompt until it has this many verified-correct traces "
            "(or max_samples). generate.n samples come first; later rounds go where they are needed."
        ),
    )
    max_samples: int | None = Field(
        None,
        ge=1,
        description=("With until_correct: the most samples any prompt may get (the budget cap per prompt)."),
    )
    generate: GenerateConfig = Field(default_factory=GenerateConfig)
    verify: VerifyConfig = Field(default_factory=VerifyConfig)
    filter: FilterConfig = Field(default_factory=FilterConfig)
    card: CardConfig = Field(default_factory=CardConfig)
    push: PushConfig | None = Field(None, description="Hub target; no push when absent.")
    sft: SFTConfig | None = Field(None, description="Student recipe; no training when absent.")
    eval: EvalConfig | None = Field(
        None, description="Benchmarks for the student; no evaluation when absent."
    )
    demo: DemoConfig | None = Field(None, description="The offline demo's built-in teacher and tiny student.")

    @field_validator("stages")
    @classmethod
    def _check_stages(cls, stages: list[str]) -> list[str]:
        if [s for s in STAGES if s in stages] != list(stages):
            raise ValueError(f"stages must be distinct and in pipeline order: {', '.join(STAGES)}")
        return stages

    @field_validator("max_samples")
    @classmethod
    def _check_max_samples(cls, max_samples: int | None, info: ValidationInfo) -> int | None:
        until_correct = info.data.get("until_correct")
        if max_samples is not None and until_correct is None:
            raise ValueError("max_samples needs until_correct (verification in the loop)")
        if max_samples is not None and until_correct is not None and max_samples < until_correct:
            raise ValueError(f"must be at least until_correct ({until_correct})")
        return max_samples


def load_recipe(path: Path | str | None = None, overrides: Sequence[str] = (), prefer: str = "") -> Recipe:
    """Read a recipe (a YAML file or a shipped recipe's name; defaults when None) and apply `key=value` overrides.

    `prefer` is the shipped folder a short name means when several have it (see distill.resources).
    """
    return load_config(Recipe, None if path is None else resolve_recipe(path, prefer), overrides)
