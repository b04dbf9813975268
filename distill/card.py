"""Data card: README.md with stats and plots, rendered from a template in data_cards/."""

from __future__ import annotations

from distill.config import StageConfig


class CardConfig(StageConfig):
    """Settings of this stage (filled in by the stage's owner)."""
