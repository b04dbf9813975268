"""The viewer's text helpers: fenced code found and escaped, shared spans of two texts marked."""

from __future__ import annotations

from distill.viewer.text import highlight, segments, shared_spans


def test_fenced_code_is_split_out_even_when_unclosed():
    parts = segments("Intro $x$\n```python\nprint(1)\n```\nmiddle\n```\nopen fence to the end <b>")
    assert [(p.kind, p.language) for p in parts] == [
        ("text", ""),
        ("code", "python"),
        ("text", ""),
        ("code", "text"),
    ]
    assert parts[1].text == "print(1)\n" and parts[3].text == "open fence to the end <b>"
    assert segments(None) == [] and segments("") == []


def test_a_fence_language_cannot_carry_markup():
    parts = segments('```"><script>alert(1)</script>\nx = 1\n```')
    assert all(p.kind == "text" for p in parts)  # not a fence: shown as text, escaped by the template


def test_highlighted_code_is_escaped():
    html = str(highlight('s = "<script>alert(1)</script>" # <img onerror=x>\n', "python"))
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html and '<span class="' in html
    assert "&lt;b&gt;" in str(highlight("<b>", "no-such-language"))


def test_shared_spans_mark_what_both_texts_hold():
    a = "First we note that the quick brown fox jumps over the lazy dog today, then stop."
    b = "Unrelated start. THE QUICK BROWN FOX JUMPS OVER the lazy dog; unrelated end."
    left, right = shared_spans(a, b, n=6)
    assert "".join(p for p, _ in left) == a and "".join(p for p, _ in right) == b  # nothing lost
    assert [p for p, shared in left if shared] == ["the quick brown fox jumps over the lazy dog"]
    assert [p for p, shared in right if shared] == ["THE QUICK BROWN FOX JUMPS OVER the lazy dog"]
    assert not any(shared for _, shared in shared_spans("one two three", "four five six")[0])
