"""A whole run in one recipe: every stage's settings composed, loaded from YAML with overrides."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import Field

from distill.card import CardConfig
from distill.config import StageConfig, load_config
from distill.evaluate import EvalConfig
from distill.filtering import FilterConfig
from distill.generate import GenerateConfig
from distill.push import PushConfig
from distill.sft.config import SFTConfig
from distill.verify import VerifyConfig

STAGES = ("generate", "verify", "filter", "card", "push", "sft", "eval")


class Recipe(StageConfig):
    """Every stage's settings; each section is validated by the stage's own config class."""

    run_dir: Path = Field(Path("runs/default"), description="The run directory every stage reads and writes.")
    generate: GenerateConfig = Field(default_factory=GenerateConfig)
    verify: VerifyConfig = Field(default_factory=VerifyConfig)
    filter: FilterConfig = Field(default_factory=FilterConfig)
    card: CardConfig = Field(default_factory=CardConfig)
    push: PushConfig | None = Field(None, description="Hub target; no push when absent.")
    sft: SFTConfig | None = Field(None, description="Student recipe; no training when absent.")
    eval: EvalConfig | None = Field(None, description="Benchmarks for the student; no evaluation when absent.")


def load_recipe(path: Path | None = None, overrides: Sequence[str] = ()) -> Recipe:
    """Read a recipe YAML (or defaults) and apply `key=value` overrides."""
    return load_config(Recipe, path, overrides)
