"""Model text made safe to show: code blocks highlighted, shared spans of two texts marked.

Everything returned here is either plain text (the templates escape it) or markup built by Pygments,
whose formatter escapes every token. Model text never reaches the page as HTML: a `<script>` in a trace
is shown as the characters `<script>`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from markupsafe import Markup

__all__ = ["Segment", "highlight", "pygments_css", "segments", "shared_spans"]

_FENCE = re.compile(r"```([A-Za-z0-9_+#.-]{0,20})[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
_WORD = re.compile(r"\w+")
MAX_COMPARE_CHARS = 200_000  # longer texts are compared on their first 200k characters


@dataclass(frozen=True)
class Segment:
    """A piece of model text: prose (math is rendered in the browser) or a highlighted code block."""

    kind: str  # "text" or "code"
    text: str
    language: str = ""

    @property
    def html(self) -> Markup:
        return highlight(self.text, self.language)


def segments(text: str | None) -> list[Segment]:
    """Split `text` into prose and fenced code blocks (an unclosed fence runs to the end)."""
    if not text:
        return []
    out: list[Segment] = []
    at = 0
    for m in _FENCE.finditer(text):
        if m.start() > at:
            out.append(Segment("text", text[at : m.start()]))
        out.append(Segment("code", m.group(2), m.group(1).lower() or "text"))
        at = m.end()
    if at < len(text):
        out.append(Segment("text", text[at:]))
    return out


def highlight(code: str, language: str) -> Markup:
    """Code as escaped HTML with Pygments' token classes (plain escaped text for unknown languages)."""
    from pygments import highlight as render
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        lexer = get_lexer_by_name(language or "text", stripnl=False, ensurenl=False)
    except ClassNotFound:
        lexer = get_lexer_by_name("text", stripnl=False, ensurenl=False)
    return Markup(render(code, lexer, HtmlFormatter(nowrap=True)))  # noqa: S704 - the formatter escapes


def pygments_css() -> str:
    """The stylesheet for Pygments' token classes, scoped to `.code`."""
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(style="default").get_style_defs(".code")


def shared_spans(a: str, b: str, n: int = 6) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
    """Both texts cut into (piece, shared) runs, where shared pieces are covered by a word n-gram of the other.

    Words are compared lower-cased, so the marks show what a near-duplicate or contamination check sees.
    """
    a, b = a[:MAX_COMPARE_CHARS], b[:MAX_COMPARE_CHARS]
    words_a, words_b = list(_WORD.finditer(a)), list(_WORD.finditer(b))
    k = max(1, min(n, len(words_a), len(words_b)))
    grams_a, grams_b = _grams(words_a, k), _grams(words_b, k)
    common = set(grams_a) & set(grams_b)
    return _pieces(a, words_a, grams_a, common, k), _pieces(b, words_b, grams_b, common, k)


def _grams(words: list[re.Match[str]], k: int) -> list[tuple[str, ...]]:
    lowered = [w.group().lower() for w in words]
    return [tuple(lowered[i : i + k]) for i in range(len(lowered) - k + 1)]


def _pieces(
    text: str, words: list[re.Match[str]], grams: list[tuple[str, ...]], common: set, k: int
) -> list[tuple[str, bool]]:
    covered = [False] * len(words)
    for i, gram in enumerate(grams):
        if gram in common:
            for j in range(i, i + k):
                covered[j] = True
    out: list[tuple[str, bool]] = []
    at, i = 0, 0
    while i < len(words):
        if not covered[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(words) and covered[j + 1]:
            j += 1
        start, end = words[i].start(), words[j].end()
        if start > at:
            out.append((text[at:start], False))
        out.append((text[start:end], True))
        at, i = end, j + 1
    if at < len(text):
        out.append((text[at:], False))
    return out
