"""R1's readability rules on real traces: paragraphs, code blocks, loops, token length."""

from __future__ import annotations

import numpy as np
import polars as pl

from filters.readability import count_tokens, has_code_block, longest_paragraph, repetition_share
from tests.filters._data import traces


def test_runaway_loops_score_high_and_healthy_traces_low(shared_data):
    runaway = [r["responses"][0] for r in traces(shared_data, "skyt1_14b_aime24_outputs.jsonl")]
    healthy = [r["responses"][0] for r in traces(shared_data, "skyt1_27b_math500_outputs.jsonl")]
    loops = repetition_share(pl.Series(runaway)).to_numpy()
    normal = repetition_share(pl.Series(healthy)).to_numpy()
    assert np.median(loops) > 0.8  # most of Sky-T1-14B's AIME traces never finish: they loop
    assert np.median(normal) < 0.05
    assert (normal > 0.5).mean() < 0.1


def test_paragraphs_and_code_fences():
    texts = pl.Series(
        ["short\nlines\nonly", "x" * 5000 + "\nend", "Let me code it:\n```python\nprint(1)\n```", None]
    )
    assert longest_paragraph(texts).to_list() == [5, 5000, 15, 0]
    assert has_code_block(texts).to_list() == [False, False, True, False]


def test_token_counts_approximate_without_a_tokenizer_and_exact_with_one(tiny_model):
    texts = pl.Series(["a" * 360, "Let me think about this step by step.", None])
    assert count_tokens(texts).to_list() == [100, 11, 0]
    exact = count_tokens(texts, tiny_model)
    assert exact[1] > 0 and exact[2] == 0
