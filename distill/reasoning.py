"""Normalise the ways teachers return reasoning into one shape: reasoning, answer, complete, messages.

Handled, all ending as the same row:
- a separate field (`reasoning_content`: DeepSeek API, vLLM `--reasoning-parser`; `reasoning`: newer
  vLLM, OpenRouter), with the answer in `content`;
- inline `<think>…</think>answer` in `content`;
- `…</think>answer` whose opening `<think>` the chat template pre-filled (DeepSeek-R1, QwQ);
- `<|begin_of_thought|>…<|end_of_thought|>` then `<|begin_of_solution|>…<|end_of_solution|>` (Sky-T1,
  Bespoke-Stratos, OpenThoughts).

`complete` means the reasoning was closed (a closing tag was seen, or the server split the answer
from the reasoning). A trace that opened its reasoning and never closed it is incomplete; nothing
is guessed. Text without any reasoning marker has no reasoning and is not complete.
"""

from __future__ import annotations

from dataclasses import dataclass

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
THOUGHT_OPEN, THOUGHT_CLOSE = "<|begin_of_thought|>", "<|end_of_thought|>"
SOLUTION_OPEN, SOLUTION_CLOSE = "<|begin_of_solution|>", "<|end_of_solution|>"


@dataclass(frozen=True)
class Trace:
    reasoning: str | None
    answer_text: str
    complete: bool

    def assistant_turn(self) -> str:
        """The assistant message in the dataset's one format: `<think>\\n…\\n</think>\\n\\n…`."""
        if self.reasoning is None:
            return self.answer_text
        if not self.complete:
            return f"{THINK_OPEN}\n{self.reasoning}"
        return f"{THINK_OPEN}\n{self.reasoning}\n{THINK_CLOSE}\n\n{self.answer_text}"


def normalise(content: str | None, reasoning: str | None = None) -> Trace:
    """One teacher output (content plus an optional separate reasoning field) as a Trace."""
    text = content or ""
    if reasoning is not None and reasoning.strip():
        # The server split it. An empty answer means the model never left its reasoning (vLLM puts an
        # unclosed trace entirely into reasoning_content).
        inner = normalise(text)
        answer = inner.answer_text if inner.reasoning is None or inner.complete else text.strip()
        return Trace(reasoning.strip(), answer, bool(answer))
    if THOUGHT_OPEN in text or THOUGHT_CLOSE in text:
        return _split_thought(text)
    if THINK_CLOSE in text:
        before, _, after = text.partition(THINK_CLOSE)
        start = before.find(THINK_OPEN)
        thought = before[start + len(THINK_OPEN) :] if start >= 0 else before  # opening tag pre-filled
        return Trace(thought.strip(), after.strip(), True)
    stripped = text.lstrip()
    if stripped.startswith(THINK_OPEN):
        return Trace(stripped[len(THINK_OPEN) :].strip(), "", False)
    return Trace(None, text.strip(), False)


def _split_thought(text: str) -> Trace:
    start = text.find(THOUGHT_OPEN)
    body = text[start + len(THOUGHT_OPEN) :] if start >= 0 else text
    thought, closed, rest = body.partition(THOUGHT_CLOSE)
    if not closed:
        return Trace(thought.strip(), "", False)
    answer = rest
    if SOLUTION_OPEN in answer:
        answer = answer.split(SOLUTION_OPEN, 1)[1]
    answer = answer.split(SOLUTION_CLOSE, 1)[0]
    return Trace(thought.strip(), answer.strip(), True)


def build_messages(prompt_messages: list[dict[str, str]], trace: Trace) -> list[dict[str, str]]:
    """The row's chat: what was sent (system if any, then the user turn), then the assistant turn."""
    return [*prompt_messages, {"role": "assistant", "content": trace.assistant_turn()}]
