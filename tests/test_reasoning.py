"""Every way a teacher returns reasoning ends as the same reasoning / answer / messages."""

from __future__ import annotations

import json

import pytest

from distill.reasoning import build_messages, normalise

SAME = ("Let me add: 2 + 2 = 4.", "The answer is $\\boxed{4}$.")


@pytest.mark.parametrize(
    ("content", "reasoning"),
    [
        (SAME[1], SAME[0]),  # reasoning_content / reasoning field (DeepSeek API, vLLM --reasoning-parser)
        (f"<think>\n{SAME[0]}\n</think>\n\n{SAME[1]}", None),  # inline tags
        (f"{SAME[0]}\n</think>\n\n{SAME[1]}", None),  # the template pre-filled "<think>"
        (
            f"<|begin_of_thought|>\n\n{SAME[0]}\n\n<|end_of_thought|>\n\n<|begin_of_solution|>\n\n{SAME[1]}\n\n"
            "<|end_of_solution|>",
            None,
        ),  # Sky-T1 / Bespoke-Stratos style
    ],
    ids=["separate-field", "inline-think", "prefilled-think", "begin-of-thought"],
)
def test_every_style_gives_the_same_row(content: str, reasoning: str | None) -> None:
    trace = normalise(content, reasoning)
    assert (trace.reasoning, trace.answer_text, trace.complete) == (*SAME, True)
    messages = build_messages([{"role": "user", "content": "2+2?"}], trace)
    assert messages[-1] == {"role": "assistant", "content": f"<think>\n{SAME[0]}\n</think>\n\n{SAME[1]}"}


@pytest.mark.parametrize(
    ("content", "reasoning"),
    [
        (f"<think>\n{SAME[0]} and then I kept going", None),  # opened, never closed (hit max_tokens)
        ("<|begin_of_thought|>\nthinking forever", None),
        (None, SAME[0]),  # vLLM's parser put an unclosed trace entirely into reasoning_content
        ("", SAME[0]),
    ],
)
def test_unclosed_reasoning_is_incomplete_not_guessed(content: str | None, reasoning: str | None) -> None:
    trace = normalise(content, reasoning)
    assert trace.complete is False
    assert trace.answer_text == ""
    assert trace.reasoning and "</think>" not in trace.assistant_turn()


def test_plain_answer_has_no_reasoning() -> None:
    trace = normalise("Just 4.", None)
    assert (trace.reasoning, trace.answer_text, trace.complete) == (None, "Just 4.", False)


def test_real_sky_t1_traces(shared_data) -> None:  # noqa: ANN001
    """Real long traces: the closed ones split cleanly, the unfinished ones are marked incomplete."""
    complete = incomplete = 0
    with open(shared_data / "traces" / "skyt1_14b_aime24_outputs.jsonl", encoding="utf-8") as f:
        for line in f:
            responses = json.loads(line)["code"]
            responses = json.loads(responses) if isinstance(responses, str) else responses
            for text in responses:
                trace = normalise(text)
                closed = "<|end_of_thought|>" in text
                assert trace.complete is closed
                if closed:
                    complete += 1
                    assert "<|begin_of_solution|>" not in trace.answer_text
                    assert "<|end_of_thought|>" not in trace.reasoning
                else:
                    incomplete += 1
                    assert trace.answer_text == ""
    assert complete and incomplete  # this file has both kinds
