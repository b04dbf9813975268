"""SFT settings: a student recipe (model, data, hyper-parameters, hardware plan)."""

from __future__ import annotations

from distill.config import StageConfig


class SFTConfig(StageConfig):
    """Settings of this stage (filled in by the stage's owner)."""
