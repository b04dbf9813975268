"""Filter stage: runs the filters of filters/ over a run and sets keep / reject_reason."""

from __future__ import annotations

from distill.config import StageConfig


class FilterConfig(StageConfig):
    """Settings of this stage (filled in by the stage's owner)."""
