"""Multiple-choice benchmarks: the options are shuffled per item (seeded) and the gold becomes a letter."""

from __future__ import annotations

from distill.evaluation.spec import BenchmarkSpec

__all__ = ["CHOICE"]

CHOICE = (
    BenchmarkSpec(
        name="gpqa_diamond",
        version="1",
        hub_id="Idavidrein/gpqa",
        config="gpqa_diamond",
        split="train",
        text_column="Question",
        answer_column="Correct Answer",
        kind="choice",
        default_k=64,
        id_column="Record ID",
        passthrough=("Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3"),
        items=198,
        description="GPQA Diamond (gated on the Hub: pass a local file with NAME=PATH)",
    ),
)
