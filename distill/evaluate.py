"""Evaluation of a student on benchmarks with the generation engine and the verifiers."""

from __future__ import annotations

from distill.config import StageConfig


class EvalConfig(StageConfig):
    """Settings of this stage (filled in by the stage's owner)."""
