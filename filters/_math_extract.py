"""Where a response's final answer is: the last box, an "answer is …" phrase, a "Final answer:" line.

Shared by filters/math.py (verification) and majority voting (`normalize_answer`); it parses nothing
with sympy, so it is cheap and imports no heavy library.
"""

from __future__ import annotations

import re

__all__ = [
    "CHOICE",
    "FINAL_ANSWER",
    "GSM8K",
    "LABELLED_ANSWER",
    "PLAIN_WORDS",
    "extract_answer",
    "extract_boxed",
    "final_answer_after_box",
    "gold_from_solution",
    "normalize_answer",
    "strip_phrase",
]

CHOICE = re.compile(r"^\s*\(?\s*([A-E])\s*\)?\s*[.:]?\s*$")
PLAIN_WORDS = re.compile(r"^[A-Za-z][A-Za-z\s,'\-]*$")
GSM8K = re.compile(r"####\s*(.+?)\s*$", re.DOTALL)


def extract_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{…}` (or `\\fbox{…}`) in `text`, braces balanced; None if absent."""
    if not text:
        return None
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    while start >= 0:
        i = text.find("{", start)
        if i >= 0 and re.fullmatch(r"\\(?:boxed|fbox)\s*", text[start:i]):
            depth = 0
            for j in range(i, len(text)):
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                    if depth == 0:
                        return text[i + 1 : j].strip()
        elif text.startswith("\\boxed ", start):  # `\boxed 5`
            m = re.match(r"\\boxed\s+([^\s$]+)", text[start:])
            if m:
                return m.group(1)
        start = max(text.rfind("\\boxed", 0, start), text.rfind("\\fbox", 0, start))
    return None


def extract_answer(answer_text: str | None) -> str | None:
    """The final answer in a response: the last boxed value, else an "answer is X" phrase; None if none."""
    if not answer_text:
        return None
    boxed = extract_boxed(answer_text)
    if boxed is not None:
        return boxed
    matches = re.findall(
        r"answer is[:\s]*\$?([^\n$]+?)\$?\s*(?:\.(?!\d)|$)", answer_text, re.IGNORECASE | re.MULTILINE
    )
    return matches[-1].strip() if matches else None


def gold_from_solution(solution: str | None) -> str | None:
    """A gold answer from a worked solution: the last boxed value, or GSM8K's trailing `#### N`."""
    if not solution:
        return None
    m = GSM8K.search(solution)
    if m:
        return m.group(1).replace(",", "").strip()
    return extract_boxed(solution)


def normalize_answer(answer: str | None) -> str:
    """A canonical string for an answer, so that majority voting groups equal answers together."""
    if answer is None:
        return ""
    s = extract_boxed(answer) if "\\boxed" in answer else answer
    s = (s or "").strip().strip("$").strip()
    s = re.sub(r"\\(?:text|textbf|mathrm|mbox)\s*\{([^{}]*)\}", r"\1", s)
    s = re.sub(r"\\(?:left|right|displaystyle|!|,|;|:)", "", s)
    s = re.sub(r"\\[dt]frac", r"\\frac", s)
    s = s.replace("^\\circ", "").replace("^{\\circ}", "").replace("\\%", "").replace("%", "")
    s = re.sub(r"\s+", "", s).rstrip(".")
    m = CHOICE.match(s)
    if m:
        return m.group(1)
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", s):
        s = s.replace(",", "")
    number = _as_number(s)
    return number if number is not None else s.lower()


def _as_number(s: str) -> str | None:
    """Canonical text of a plain number or simple fraction (`0.50`, `1/2`, `\\frac{1}{2}` → `1/2`)."""
    m = re.fullmatch(r"(-?)\\frac\{(\d+)\}\{(\d+)\}", s) or re.fullmatch(r"(-?)(\d+)/(\d+)", s)
    try:
        from fractions import Fraction

        if m:
            value = Fraction(int(m.group(2)), int(m.group(3))) * (-1 if m.group(1) else 1)
        elif re.fullmatch(r"-?(\d+\.?\d*|\.\d+)", s):
            value = Fraction(s)
        else:
            return None
    except (ValueError, ZeroDivisionError):
        return None
    return str(value)


FINAL_ANSWER = re.compile(r"final answer(?!s)", re.IGNORECASE)  # "the final answers are: …" lists subproblems
# "**Final answer for Subproblem 1:** 3 bushels", "Final Answer: 12"
LABELLED_ANSWER = re.compile(r"final answer[^:\n]{0,40}:\s*\**\s*([^\n]+?)\s*$", re.IGNORECASE | re.MULTILINE)
_NUMBER_WORDS = {
    word: n
    for n, word in enumerate(
        ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
         "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty")
    )
}  # fmt: skip


def strip_phrase(phrase: str) -> str:
    """The math of an "answer is …" phrase: `definitely \\(8000\\)` → `8000`, `9 boys` → `9`, `three …` → `3`."""
    stated = extract_answer(phrase)
    if stated is not None and stated != phrase:
        phrase = stated
    elif " is " in phrase:
        phrase = phrase.rsplit(" is ", 1)[1]
    inline = re.findall(r"\\\((.+?)\\\)|\$([^$]+)\$", phrase)
    if inline:
        return next(a or b for a, b in reversed(inline))
    words = re.sub(r"^(?:definitely|indeed|exactly|just|simply)\s+", "", phrase.strip(), flags=re.IGNORECASE)
    first = words.split(" ", 1)[0].lower()
    if first in _NUMBER_WORDS and PLAIN_WORDS.match(words):
        return str(_NUMBER_WORDS[first])
    m = re.fullmatch(r"(-?[\d.,/]*\d)\s+[A-Za-z][A-Za-z\s'-]*", words)
    return m.group(1) if m else words


def final_answer_after_box(answer_text: str) -> str | None:
    """The text after the last box when it states a final answer ("… \\boxed{255} … The final answer is
    $10,455$."): that statement, not the earlier box, is the response's answer. None otherwise."""
    start = max(answer_text.rfind("\\boxed"), answer_text.rfind("\\fbox"))
    if start < 0:
        return None
    brace = answer_text.find("{", start)
    depth = 0
    for j in range(brace, len(answer_text)) if brace >= 0 else ():
        depth += {"{": 1, "}": -1}.get(answer_text[j], 0)
        if depth == 0:
            tail = answer_text[j + 1 :]
            return tail if FINAL_ANSWER.search(tail) else None
    return None
