"""Math answer verification: math-verify, made stricter where it is wrong and wider where it is blind.

math-verify (HF) parses LaTeX/plain answers into sympy and compares them with many strategies. It is
right almost everywhere, but it accepts a few pairs that differ:

- tiny numbers compared after rounding to `float_rounding` decimals: `1/2^99 = 1/2^98`,
  `1/2004! = 1/2006!` (both round to 0);
- a parse that silently stops early: `1 - \\frac{1}{\\mathrm{e}}` is read as `1`, so `1-1/e = 1+1/e`;
- equations whose two sides are dropped: a bare `3x-y+13=0` is read as its right side `0`;
- a number taken from inside a formula it could not parse: `4` = `4\\sqrt(2)` (Math-Verify #14, #41).

`verify_math` therefore says "equal" only when both answers were parsed whole (_math_parse.py,
which also rewrites Python, Unicode and other spellings math-verify misses), re-checks each "yes"
(the guard in _math_extra.py: exact numbers at 30 significant digits, expressions at random points,
equations as proportional `lhs - rhs`), and turns a "no" into a "yes" only by proof (the imaginary
unit, equivalent equations, `f(x)=…` vs `y=…`). Where the answer is — the last box, several boxes for
a tuple gold, a "Final answer:" line, never a response cut off mid-sentence — is _math_extract.py.
Each verdict carries a reason: parsed, partial_parse, no_answer, gold_unparsed (the stage adds
timeout and judge). Letters A–E and plain-text answers are compared as text.

math-verify's own timeouts use `signal.alarm`, which only works in a process's main thread; the
stage runs these functions in worker processes (filters/_pool.py) that add a hard wall-clock limit.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

from filters._math_extra import is_false_positive, same_value_extra
from filters._math_extract import (
    CHOICE,
    GSM8K,
    LABELLED_ANSWER,
    PLAIN_WORDS,
    extract_answer,
    extract_boxed,
    final_answer_after_box,
    gold_from_solution,
    normalize_answer,
    strip_phrase,
)
from filters._math_parse import boxed_collection, final_statement, parse_whole

__all__ = [
    "MathOptions",
    "Verdict",
    "answer_key",
    "answers_equal",
    "compare_parsed",
    "extract_answer",
    "extract_boxed",
    "final_answer_after_box",
    "gold_from_solution",
    "normalize_answer",
    "verify_math",
    "VERDICT_REASONS",
]

VERDICT_REASONS = ("parsed", "partial_parse", "no_answer", "gold_unparsed", "timeout", "judge")


@dataclass(frozen=True)
class Verdict:
    """A verifier's answer: ok is True/False, or None when the check does not apply (no/bad gold)."""

    ok: bool | None
    detail: str = ""
    reason: str = "parsed"  # parsed, partial_parse, no_answer, gold_unparsed (the stage adds timeout, judge)


@dataclass(frozen=True)
class MathOptions:
    """Comparison knobs, passed through to math-verify."""

    float_rounding: int = 6
    numeric_precision: int = 15
    strict: bool = True
    allow_set_relation_comp: bool = False
    timeout_s: int = 5  # math-verify's own per-parse/per-compare alarm (main thread only)
    guard: bool = True  # re-check math-verify's "yes" answers (see module docstring)


_DELIMITED = re.compile(r"\$|\\\(|\\\[|\\boxed|\\fbox")
_CHOICE_IN_TEXT = re.compile(
    r"(?:answer|choice|option)\s*(?:is|:)?\s*:?\s*\(?\\?(?:text\{|textbf\{|mathrm\{)?\(?([A-E])\b",
    re.IGNORECASE,
)
_MATHRM_CONST = re.compile(r"\\(?:mathrm|rm|operatorname)\s*\{\s*([ei])\s*\}")


# ── comparison ─────────────────────────────────────────────────────────────
def _targets(kinds: tuple[str, ...] = ("latex", "expr")) -> list[Any]:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig

    return [
        LatexExtractionConfig(boxed_match_priority=0) if k == "latex" else ExprExtractionConfig()
        for k in kinds
    ]


def _prepare(text: str, *, wrap: bool) -> str:
    text = _MATHRM_CONST.sub(r"\1", text.strip()).replace("\\$", "")  # `\$6`: a currency sign
    if wrap and not _DELIMITED.search(text):
        return f"${text}$"
    return text


def _timeout(options: MathOptions) -> int | None:
    # signal.alarm only works in the main thread; elsewhere the caller's process pool bounds the time.
    return options.timeout_s if threading.current_thread() is threading.main_thread() else None


def _parse(text: str, options: MathOptions, kinds: tuple[str, ...]) -> list[Any]:
    from math_verify import parse

    t = _timeout(options)
    return parse(text, _targets(kinds), parsing_timeout=t if t else None)  # type: ignore[arg-type]


def _parse_whole(text: str, options: MathOptions) -> tuple[list[Any], str]:
    return parse_whole(_prepare(text, wrap=False), lambda t, kinds: _parse(t, options, kinds))


def compare_parsed(gold: list[Any], pred: list[Any], options: MathOptions = MathOptions()) -> bool:
    """math-verify on two parse results, each "yes" re-checked by the guard."""
    from math_verify import verify

    kwargs = dict(
        float_rounding=options.float_rounding,
        numeric_precision=options.numeric_precision,
        strict=options.strict,
        allow_set_relation_comp=options.allow_set_relation_comp,
        timeout_seconds=_timeout(options),
    )
    if not options.guard:
        return bool(verify(gold, pred, **kwargs))
    # Pair by pair (what verify does inside): a "yes" counts only if it survives the guard.
    for g in gold:
        for p in pred:
            if verify([g], [p], **kwargs) and not is_false_positive(g, p, options):
                return True
    return False


def answers_equal(
    a: str | None,
    b: str | None,
    options: MathOptions = MathOptions(),
    *,
    kinds: tuple[str, ...] = ("latex", "expr"),
) -> bool:
    """Whether answer `b` matches answer `a` (a is treated as the gold side)."""
    if a is None or b is None or not a.strip() or not b.strip():
        return False
    ca, cb = CHOICE.match(_strip_text(a)), CHOICE.match(_strip_text(b))
    if ca or cb:
        return bool(ca and cb and ca.group(1) == cb.group(1))
    wrap = "latex" in kinds
    gold = _parse(_prepare(a, wrap=wrap), options, kinds)
    pred = _parse(_prepare(b, wrap=wrap), options, kinds)
    if gold and pred:
        return compare_parsed(gold, pred, options)
    return _text_key(a) == _text_key(b) != ""


def verify_math(answer_text: str | None, gold: Any, options: MathOptions = MathOptions()) -> Verdict:
    """Whether the response's final answer equals `gold`; None when it cannot be told (see `reason`)."""
    if gold is None or (isinstance(gold, float) and gold != gold):
        return Verdict(None, "no gold answer", "gold_unparsed")
    gold_text = _gold_text(gold)
    if not gold_text:
        return Verdict(None, "empty gold answer", "gold_unparsed")
    if not answer_text or not answer_text.strip():
        return Verdict(False, "no answer", "no_answer")

    choice = CHOICE.match(gold_text)
    if choice:
        return _verify_choice(answer_text, choice.group(1))
    if _is_text_gold(gold_text):
        return _verify_text(answer_text, gold_text)

    fast = _fast_verdict(gold_text, answer_text)
    if fast is not None:
        return fast

    gold_parsed, gold_status = _parse_whole(gold_text, options)
    if gold_status != "parsed":
        what = "does not parse" if gold_status == "none" else "parses only in part"
        return Verdict(None, f"gold answer {what}", "gold_unparsed")
    # The last boxed value is what math-verify would pick first (boxed_match_priority=0); parsing just
    # that short string is much faster than scanning a long response. When there is one, the verdict
    # depends on the last paragraph's boxed values and any "final answer" after them alone
    # (distill.verification.stage groups rows by `answer_key`).
    boxed = extract_boxed(answer_text)
    late = final_answer_after_box(answer_text)
    if boxed is None or late is not None:
        return _verify_unboxed(late or answer_text, gold_text, gold_parsed, options)
    collection = boxed_collection(answer_text) if _is_collection(gold_parsed) else None
    shown = collection or boxed
    if _same_latex(gold_text, shown):
        return Verdict(True, "", "parsed")
    pred_parsed, status = _parse_whole(shown, options)
    if status == "none":
        return Verdict(False, f"boxed answer {shown[:60]!r} does not parse", "no_answer")
    if status == "partial":  # a number math-verify took from inside an unparsed formula: never "equal"
        return Verdict(None, f"only part of the answer {shown[:60]!r} parses", "partial_parse")
    if _equal(gold_parsed, pred_parsed, options):
        return Verdict(True, "", "parsed")
    return Verdict(False, f"answer {shown[:60]!r} != gold {gold_text[:60]!r}", "parsed")


def answer_key(answer_text: str | None) -> str:
    """All that verify_math's verdict depends on besides the gold: equal keys, equal verdicts."""
    text = answer_text or ""
    boxed = extract_boxed(text)
    if boxed is None:
        return f"text:{text}"
    late = final_answer_after_box(text)
    if late is not None:
        return f"late:{late}"
    return f"boxed:{boxed}|{boxed_collection(text)}"


def _verify_unboxed(
    answer_text: str, gold_text: str, gold_parsed: list[Any], options: MathOptions
) -> Verdict:
    """No box: the answer is what the last paragraphs state ("the answer is X"), never a cut-off tail."""
    statement = final_statement(answer_text)
    if statement is None:
        return Verdict(False, "no final answer (the response stops mid-sentence)", "no_answer")
    labelled = LABELLED_ANSWER.findall(statement)
    phrase = labelled[-1].strip().strip("*").strip() if labelled else extract_answer(statement)
    if phrase is not None:
        pred, status = _parse_whole(strip_phrase(phrase), options)
        if status == "parsed":
            ok = _equal(gold_parsed, pred, options)
            return Verdict(ok, "" if ok else f"answer {phrase[:60]!r} != gold {gold_text[:60]!r}", "parsed")
    pred = _parse(_prepare(statement, wrap=False), options, ("latex", "expr"))
    if not pred:
        return Verdict(False, "no parseable answer", "no_answer")
    if _equal(gold_parsed, pred, options):
        return Verdict(True, "", "parsed")
    shown = pred[-1] if isinstance(pred[-1], str) else str(pred[0])
    return Verdict(False, f"answer {shown[:60]!r} != gold {gold_text[:60]!r}", "parsed")


def _equal(gold: list[Any], pred: list[Any], options: MathOptions) -> bool:
    """math-verify (guarded), then the sound equalities it misses: `i` as the imaginary unit, equations."""
    if compare_parsed(gold, pred, options):
        return True
    g = next((x for x in gold if not isinstance(x, str)), None)
    p = next((x for x in pred if not isinstance(x, str)), None)
    if g is None or p is None:
        return False
    return same_value_extra(g, p, lambda a, b: compare_parsed([a], [b], options))


_LATEX_NOISE = re.compile(r"\\(?:left|right|displaystyle)(?![A-Za-z])|\\[!,;: ]")
_TEXT_WRAPPER = re.compile(r"\\(?:text|textrm|textnormal|mathrm|mbox)\s*\{([^{}]*)\}")
_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_SIMPLE_FRACTION = re.compile(r"(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}|(-?)(\d+)/(\d+)")


def _fast_verdict(gold_text: str, answer_text: str) -> Verdict | None:
    """A fast exact verdict for identical LaTeX or plain numbers/fractions; None: use math-verify.

    Most competition answers are integers, and parsing them with sympy costs ~10 ms each. Equal
    values are equal; two different integers are different. Unequal decimals go to math-verify,
    whose rounding (`float_rounding`) may still call them equal.
    """
    boxed = extract_boxed(answer_text)
    if boxed is None or final_answer_after_box(answer_text) is not None:
        return None
    if _same_latex(gold_text, boxed):
        return Verdict(True, "", "parsed")
    a, b = _plain(gold_text), _plain(boxed)
    if a is None or b is None:
        return None
    if a == b:
        return Verdict(True, "", "parsed")
    if "." not in gold_text + boxed:
        return Verdict(False, f"answer {boxed[:60]!r} != gold {gold_text[:60]!r}", "parsed")
    return None


def _same_latex(gold: str, answer: str) -> bool:
    """The same LaTeX up to spacing and sizing commands (`\\left(`, `\\dfrac`): equal without parsing."""
    if gold.count("{") != gold.count("}"):
        return False  # a broken gold must stay "does not parse"

    def key(s: str) -> str:
        s = _TEXT_WRAPPER.sub(r"\1", _LATEX_NOISE.sub("", s.strip().strip("$")))
        return re.sub(r"\s+", "", re.sub(r"\\[dt]frac", r"\\frac", s)).rstrip(".")

    return key(gold) == key(answer) != ""


def _plain(text: str) -> Any:
    from fractions import Fraction

    s = text.strip().strip("$").strip()
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", s):
        s = s.replace(",", "")
    if _PLAIN_NUMBER.fullmatch(s):
        return Fraction(s)
    m = _SIMPLE_FRACTION.fullmatch(s.replace(" ", ""))
    if m is None:
        return None
    sign, num, den = (
        (m.group(1), m.group(2), m.group(3)) if m.group(2) else (m.group(4), m.group(5), m.group(6))
    )
    return Fraction(int(num), int(den)) * (-1 if sign else 1) if int(den) else None


def _gold_text(gold: Any) -> str:
    if isinstance(gold, float) and gold.is_integer():
        return str(int(gold))  # AMC's 27.0
    text = str(gold).strip()
    m = GSM8K.search(text)
    if m:
        return m.group(1).replace(",", "").strip()
    return text


def _verify_choice(answer_text: str, letter: str) -> Verdict:
    got = extract_answer(answer_text)
    found: str | None = None
    if got is not None:
        plain = re.sub(r"\\(?:text|textbf|mathrm)\s*\{([^{}]*)\}", r"\1", got)
        m = CHOICE.match(plain) or re.match(r"^\s*\(?([A-E])\)", plain)
        found = m.group(1) if m else None
    if found is None:
        hits = _CHOICE_IN_TEXT.findall(answer_text)
        found = hits[-1].upper() if hits else None
    if found is None:
        return Verdict(False, "no choice letter in answer", "no_answer")
    return Verdict(found == letter, "" if found == letter else f"choice {found} != gold {letter}")


def _is_text_gold(gold_text: str) -> bool:
    """A gold that is words, not math: `\\text{east}`, `odd`, `no solution` (one letter is a variable)."""
    plain = _strip_text(gold_text)
    if not PLAIN_WORDS.match(plain):
        return False
    return "\\text" in gold_text or any(len(w) >= 3 for w in re.findall(r"[A-Za-z]+", plain))


def _verify_text(answer_text: str, gold_text: str) -> Verdict:
    got = extract_answer(answer_text) or answer_text.strip().splitlines()[-1]
    ok = _text_key(got) == _text_key(gold_text)
    return Verdict(ok, "" if ok else f"text answer {got[:60]!r} != gold", "parsed")


def _is_collection(parsed: list[Any]) -> bool:
    import sympy

    return any(isinstance(p, (sympy.FiniteSet, sympy.Tuple, tuple)) for p in parsed)


def _strip_text(s: str) -> str:
    return re.sub(r"\\(?:text|textbf|mathrm|mbox|mathbf)\s*\{([^{}]*)\}", r"\1", s).strip().strip("$").strip()


def _text_key(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", _strip_text(s).lower())
