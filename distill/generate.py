"""Generation: prompts → teacher samples in the run's store and data/all."""

from __future__ import annotations

from distill.config import StageConfig


class GenerateConfig(StageConfig):
    """Settings of this stage (filled in by the stage's owner)."""
