"""Trace format checks: one well-formed think block, an answer after it, no runaway loop at the end.

`complete` means the teacher finished: the think block was closed and generation did not stop at the
token limit. `format_ok` additionally needs exactly one think block, a non-empty answer after it, a
final boxed answer when the prompt is a math one, and no repeated-loop tail (a response whose end is
the same chunk over and over, the classic failure of long-CoT models near their token limit).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["FormatVerdict", "check_format", "repeated_tail"]

OPEN, CLOSE = "<think>", "</think>"
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")


@dataclass(frozen=True)
class FormatVerdict:
    """`format_ok`, `complete`, and the names of the checks that failed."""

    format_ok: bool
    complete: bool
    problems: tuple[str, ...] = ()

    @property
    def detail(self) -> str:
        return ", ".join(self.problems)


def check_format(
    content: str | None,
    *,
    finish_reason: str | None = None,
    math: bool = False,
    min_loop_tokens: int = 64,
    min_loop_repeats: int = 4,
) -> FormatVerdict:
    """Check an assistant turn written as `<think>\\n…\\n</think>\\n\\nanswer`."""
    text = content or ""
    problems: list[str] = []
    opens, closes = text.count(OPEN), text.count(CLOSE)
    closed = closes >= 1
    if opens != 1 or closes != 1:
        problems.append(f"think tags: {opens} open, {closes} close")
    elif text.find(OPEN) > text.find(CLOSE) or text[: text.find(OPEN)].strip():
        problems.append("think block not at the start")
    answer = text.rsplit(CLOSE, 1)[1].strip() if closed else ""
    if closed and not answer:
        problems.append("empty answer")
    truncated = finish_reason == "length"
    if truncated:
        problems.append("hit max_tokens")
    elif not closed:
        problems.append("think block never closed")
    if math and answer and not _BOXED.search(answer):
        problems.append("no boxed answer")
    # The end of the whole response, and the end of the reasoning (a model that looped until it
    # happened to close its think block is as bad a training example).
    ends = [text, text.rsplit(CLOSE, 1)[0]] if closed else [text]
    loop = next(
        (
            found
            for part in ends
            if (found := repeated_tail(part, min_tokens=min_loop_tokens, min_repeats=min_loop_repeats))
        ),
        None,
    )
    if loop is not None:
        problems.append(f"repeated tail: {loop[1]}× the same {loop[0]}-unit chunk")
    complete = closed and not truncated
    return FormatVerdict(not problems, complete, tuple(problems))


def repeated_tail(
    text: str, *, min_tokens: int = 64, min_repeats: int = 4, max_period: int = 200, window: int = 4000
) -> tuple[int, int] | None:
    """(period, repeats) when the end of `text` is one chunk repeated, else None.

    Works on whitespace tokens, and on characters for text without spaces (e.g. Chinese): the tail
    is a loop when at least `min_repeats` copies of a chunk of `period` tokens cover `min_tokens`.
    """
    words = text.split()[-window:]
    found = _periodic_tail(words, min_tokens, min_repeats, max_period)
    if found is None:
        chars = list(re.sub(r"\s+", "", text[-window * 2 :]))
        found = _periodic_tail(chars, min_tokens * 4, min_repeats, max_period * 4)
    return found


def _periodic_tail(seq: list[str], min_len: int, min_repeats: int, max_period: int) -> tuple[int, int] | None:
    n = len(seq)
    if n < min_len:
        return None
    for period in range(1, min(max_period, n // min_repeats) + 1):
        run = 0  # how many trailing positions equal the one `period` before them
        i = n - 1
        while i - period >= 0 and seq[i] == seq[i - period]:
            run += 1
            i -= 1
        span = run + period
        if span >= min_len and span // period >= min_repeats:
            return period, span // period
    return None
