"""Verification stage: runs the verifiers of filters/ over a run and adds verdict columns."""

from __future__ import annotations

from distill.config import StageConfig


class VerifyConfig(StageConfig):
    """Settings of this stage (filled in by the stage's owner)."""
