"""Trace format: one think block, an answer after it, boxed for math, not truncated, no looping tail."""

from __future__ import annotations

import json
from pathlib import Path

from filters.format import check_format, repeated_tail

GOOD = "<think>\nLet me add 2 and 2. That is 4.\n</think>\n\nThe sum is $\\boxed{4}$."


def test_a_well_formed_math_trace_passes() -> None:
    verdict = check_format(GOOD, finish_reason="stop", math=True)
    assert verdict.format_ok and verdict.complete and verdict.problems == ()


def test_each_format_problem_is_named() -> None:
    cases = {
        "<think>\na\n</think>\n\n<think>\nb\n</think>\n\n\\boxed{4}": "think tags: 2 open, 2 close",
        "<think>\nstill thinking": "think block never closed",
        "<think>\ndone\n</think>\n\n   ": "empty answer",
        "preamble <think>\nx\n</think>\n\n\\boxed{4}": "think block not at the start",
        "<think>\nx\n</think>\n\nThe sum is 4.": "no boxed answer",
    }
    for text, problem in cases.items():
        verdict = check_format(text, math=True)
        assert not verdict.format_ok and problem in verdict.detail, (text, verdict)
    assert check_format("<think>\nx\n</think>\n\nThe sum is 4.", math=False).format_ok  # boxed only for math


def test_truncated_generation_is_incomplete() -> None:
    verdict = check_format(GOOD, finish_reason="length", math=True)
    assert not verdict.complete and not verdict.format_ok and "hit max_tokens" in verdict.detail
    assert not check_format("<think>\nno end", finish_reason="stop").complete


def test_repeated_loop_tail_is_marked_but_a_varied_tail_is_not() -> None:
    loop = "<think>\nSolve it.\n" + "Wait, let me recompute the sum of the first terms again. " * 40
    assert repeated_tail(loop) == (11, 40)  # 11 words, 40 times
    verdict = check_format(loop + "\n</think>\n\n\\boxed{4}", math=True)
    assert not verdict.format_ok and "repeated tail" in verdict.detail
    varied = " ".join(f"step {i}: add {i} to the total giving {i * (i + 1) // 2}." for i in range(200))
    assert repeated_tail(varied) is None
    assert repeated_tail("好" * 2000) is not None  # no spaces: characters are compared


def test_real_runaway_traces_are_flagged(shared_data: Path) -> None:
    """Sky-T1-14B on AIME24: finished traces pass; unfinished ones fail, and looping ones say so."""
    from distill.reasoning import normalise

    lines = (shared_data / "traces" / "skyt1_14b_aime24_outputs.jsonl").read_text().splitlines()
    traces = [normalise(json.loads(line)["code"][0]) for line in lines]
    verdicts = [check_format(t.assistant_turn(), math=True) for t in traces]
    assert [v.format_ok for v in verdicts] == [t.complete for t in traces]
    assert sum(v.complete for v in verdicts) == 8
    assert sum("repeated tail" in v.detail for v in verdicts) >= 8
