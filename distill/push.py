"""Push a run to the Hugging Face Hub."""

from __future__ import annotations

from distill.config import StageConfig


class PushConfig(StageConfig):
    """Settings of this stage (filled in by the stage's owner)."""
