"""Math answer verification: math-verify, plus a guard against its known false positives.

math-verify (HF) parses LaTeX/plain answers into sympy and compares them with many strategies. It is
right almost everywhere, but it accepts a few pairs that differ:

- tiny numbers compared after rounding to `float_rounding` decimals: `1/2^99 = 1/2^98`,
  `1/2004! = 1/2006!` (both round to 0);
- a parse that silently stops early: `1 - \\frac{1}{\\mathrm{e}}` is read as `1`, so `1-1/e = 1+1/e`;
- equations whose two sides are dropped: a bare `3x-y+13=0` is read as its right side `0`.

`answers_equal` keeps every "no" of math-verify and re-checks each "yes": exact numbers are compared
at 30 significant digits, expressions at several random points, equations as proportional
`lhs - rhs`. Gold answers are wrapped in `$…$` when they carry no LaTeX delimiters (math-verify needs
them to read LaTeX). Letters A–E and plain-text answers are compared as text.

math-verify's own timeouts use `signal.alarm`, which only works in a process's main thread; the
stage runs these functions in worker processes (filters/_pool.py) that add a hard wall-clock limit.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MathOptions",
    "Verdict",
    "answers_equal",
    "compare_parsed",
    "extract_answer",
    "extract_boxed",
    "gold_from_solution",
    "normalize_answer",
    "verify_math",
]


@dataclass(frozen=True)
class Verdict:
    """A verifier's answer: ok is True/False, or None when the check does not apply (no/bad gold)."""

    ok: bool | None
    detail: str = ""


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
_CHOICE = re.compile(r"^\s*\(?\s*([A-E])\s*\)?\s*[.:]?\s*$")
_CHOICE_IN_TEXT = re.compile(
    r"(?:answer|choice|option)\s*(?:is|:)?\s*:?\s*\(?\\?(?:text\{|textbf\{|mathrm\{)?\(?([A-E])\b",
    re.IGNORECASE,
)
_PLAIN_WORDS = re.compile(r"^[A-Za-z][A-Za-z\s,'\-]*$")
_GSM8K = re.compile(r"####\s*(.+?)\s*$", re.DOTALL)
_MATHRM_CONST = re.compile(r"\\(?:mathrm|rm|operatorname)\s*\{\s*([ei])\s*\}")


# ── extraction ─────────────────────────────────────────────────────────────
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
        r"answer is[:\s]*\$?([^\n$]+?)\$?\s*(?:\.|$)", answer_text, re.IGNORECASE | re.MULTILINE
    )
    return matches[-1].strip() if matches else None


def gold_from_solution(solution: str | None) -> str | None:
    """A gold answer from a worked solution: the last boxed value, or GSM8K's trailing `#### N`."""
    if not solution:
        return None
    m = _GSM8K.search(solution)
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
    m = _CHOICE.match(s)
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
            if verify([g], [p], **kwargs) and not _is_false_positive(g, p, options):
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
    ca, cb = _CHOICE.match(_strip_text(a)), _CHOICE.match(_strip_text(b))
    if ca or cb:
        return bool(ca and cb and ca.group(1) == cb.group(1))
    wrap = "latex" in kinds
    gold = _parse(_prepare(a, wrap=wrap), options, kinds)
    pred = _parse(_prepare(b, wrap=wrap), options, kinds)
    if gold and pred:
        return compare_parsed(gold, pred, options)
    return _text_key(a) == _text_key(b) != ""


def verify_math(answer_text: str | None, gold: Any, options: MathOptions = MathOptions()) -> Verdict:
    """Whether the response's final answer equals `gold`; None when gold is missing or unreadable."""
    if gold is None or (isinstance(gold, float) and gold != gold):
        return Verdict(None, "no gold answer")
    gold_text = _gold_text(gold)
    if not gold_text:
        return Verdict(None, "empty gold answer")
    if not answer_text or not answer_text.strip():
        return Verdict(False, "no answer")

    choice = _CHOICE.match(gold_text)
    if choice:
        return _verify_choice(answer_text, choice.group(1))

    fast = _fast_verdict(gold_text, answer_text)
    if fast is not None:
        return fast

    gold_parsed = _parse(_prepare(gold_text, wrap=True), options, ("latex", "expr"))
    if all(isinstance(g, str) for g in gold_parsed):  # math-verify kept only the raw text: no math in it
        if _PLAIN_WORDS.match(_strip_text(gold_text)):
            got = extract_answer(answer_text) or answer_text.strip().splitlines()[-1]
            ok = _text_key(got) == _text_key(gold_text)
            return Verdict(ok, "" if ok else f"text answer {got[:60]!r} != gold")
        return Verdict(None, "gold answer does not parse")
    # The last boxed value is what math-verify would pick first (boxed_match_priority=0); parsing just
    # that short string is much faster than scanning a long response, which is parsed only as a fallback.
    # When there is one, the verdict depends on the boxed value alone (distill.verification.stage relies on that to
    # verify each distinct boxed answer of a prompt once).
    boxed = extract_boxed(answer_text)
    if boxed is not None:
        pred_parsed = _parse(_prepare(boxed, wrap=True), options, ("latex", "expr"))
    else:
        pred_parsed = _parse(_prepare(answer_text, wrap=False), options, ("latex", "expr"))
    if not pred_parsed:
        return Verdict(False, "no parseable answer")
    if compare_parsed(gold_parsed, pred_parsed, options):
        return Verdict(True, "")
    shown = pred_parsed[-1] if isinstance(pred_parsed[-1], str) else str(pred_parsed[0])
    return Verdict(False, f"answer {shown[:60]!r} != gold {gold_text[:60]!r}")


_LATEX_NOISE = re.compile(r"\\(?:left|right|displaystyle)(?![A-Za-z])|\\[!,;: ]")
_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_SIMPLE_FRACTION = re.compile(r"(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}|(-?)(\d+)/(\d+)")


def _fast_verdict(gold_text: str, answer_text: str) -> Verdict | None:
    """A fast exact verdict for identical LaTeX or plain numbers/fractions; None: use math-verify.

    Most competition answers are integers, and parsing them with sympy costs ~10 ms each. Equal
    values are equal; two different integers are different. Unequal decimals go to math-verify,
    whose rounding (`float_rounding`) may still call them equal.
    """
    boxed = extract_boxed(answer_text)
    if boxed is None:
        return None
    if _same_latex(gold_text, boxed):
        return Verdict(True, "")
    a, b = _plain(gold_text), _plain(boxed)
    if a is None or b is None:
        return None
    if a == b:
        return Verdict(True, "")
    if "." not in gold_text + boxed:
        return Verdict(False, f"answer {boxed[:60]!r} != gold {gold_text[:60]!r}")
    return None


def _same_latex(gold: str, answer: str) -> bool:
    """The same LaTeX up to spacing and sizing commands (`\\left(`, `\\dfrac`): equal without parsing."""
    if gold.count("{") != gold.count("}"):
        return False  # a broken gold must stay "does not parse"

    def key(s: str) -> str:
        s = _LATEX_NOISE.sub("", s.strip().strip("$"))
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
    m = _GSM8K.search(text)
    if m:
        return m.group(1).replace(",", "").strip()
    return text


def _verify_choice(answer_text: str, letter: str) -> Verdict:
    got = extract_answer(answer_text)
    found: str | None = None
    if got is not None:
        plain = re.sub(r"\\(?:text|textbf|mathrm)\s*\{([^{}]*)\}", r"\1", got)
        m = _CHOICE.match(plain) or re.match(r"^\s*\(?([A-E])\)", plain)
        found = m.group(1) if m else None
    if found is None:
        hits = _CHOICE_IN_TEXT.findall(answer_text)
        found = hits[-1].upper() if hits else None
    if found is None:
        return Verdict(False, "no choice letter in answer")
    return Verdict(found == letter, "" if found == letter else f"choice {found} != gold {letter}")


def _strip_text(s: str) -> str:
    return re.sub(r"\\(?:text|textbf|mathrm|mbox|mathbf)\s*\{([^{}]*)\}", r"\1", s).strip().strip("$").strip()


def _text_key(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", _strip_text(s).lower())


# ── the guard ──────────────────────────────────────────────────────────────
def _is_false_positive(gold: Any, pred: Any, options: MathOptions) -> bool:
    """True when a pair math-verify calls equal is provably different (see module docstring)."""
    import sympy

    if isinstance(gold, str) or isinstance(pred, str):
        return _truncated(gold) or _truncated(pred)
    try:
        if isinstance(gold, sympy.Equality) and isinstance(pred, sympy.Equality):
            if isinstance(gold.lhs, sympy.Symbol) or isinstance(pred.lhs, sympy.Symbol):
                return False  # `y = …` assignments: math-verify compares the right sides
            return not _proportional(gold.lhs - gold.rhs, pred.lhs - pred.rhs)
        if isinstance(gold, sympy.Expr) and isinstance(pred, sympy.Expr):
            return _numerically_different(gold, pred, options)
    except (TypeError, ValueError, ArithmeticError, AttributeError, RecursionError):
        return False  # the guard only ever removes a "yes" it can disprove
    return False


def _truncated(s: Any) -> bool:
    return isinstance(s, str) and s.count("{") != s.count("}")


def _points(symbols: list[Any], n: int = 3) -> list[dict[Any, Any]]:
    rng = random.Random(1234)  # fixed: the same pair always gets the same verdict
    import sympy

    return [
        {s: sympy.Rational(rng.randint(1, 997), rng.randint(1, 97)) + sympy.Rational(1, 7) for s in symbols}
        for _ in range(n)
    ]


def _value(expr: Any, point: dict[Any, Any]) -> complex | None:
    import sympy

    v = expr.subs(point).evalf(30) if point else expr.evalf(30)
    if not v.is_number or v.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        return None
    re_, im_ = v.as_real_imag()
    return complex(sympy.Float(re_, 30), sympy.Float(im_, 30)) if abs(re_) < 1e300 else None


def _numerically_different(gold: Any, pred: Any, options: MathOptions) -> bool:
    import sympy

    if gold.has(sympy.Float) or pred.has(sympy.Float):
        # A decimal on either side is an approximation: math-verify's rounding is the intended check,
        # except for numbers so small that the rounding erases them (compare their ratio instead).
        a, b = _value(gold, {}), _value(pred, {})
        if a is None or b is None or gold.free_symbols or pred.free_symbols:
            return False
        scale = max(abs(a), abs(b))
        return 0 < scale < 10 ** (-options.float_rounding) and abs(a - b) > 1e-3 * scale
    if {str(s) for s in gold.free_symbols} != {str(s) for s in pred.free_symbols}:
        # matched by name or position (`\\text{odd}` vs `odd`, strict=False): not a value question
        return False
    symbols = sorted(gold.free_symbols | pred.free_symbols, key=str)
    if len(symbols) > 6:
        return False
    from mpmath import mp, mpf

    for point in _points(symbols):
        a, b = _exact_value(gold, point), _exact_value(pred, point)
        if a is None or b is None:
            return False
        scale = max(abs(a), abs(b))
        if scale == 0:
            continue
        with mp.workprec(100):
            if abs(a - b) > mpf(10) ** (-20) * scale:
                return True
    return False


def _exact_value(expr: Any, point: dict[Any, Any]) -> Any:
    """High-precision value as an mpmath number (handles 1/2006!, far below float range)."""
    import sympy

    v = (expr.subs(point) if point else expr).evalf(40)
    if not v.is_number or v.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo, sympy.I):
        return None
    try:
        return v._to_mpmath(130)
    except (TypeError, ValueError, AttributeError):
        return None


def _proportional(f: Any, g: Any) -> bool:
    """Whether f = c·g for a nonzero constant c (two equations `f = 0`, `g = 0` describe the same set)."""
    symbols = sorted(f.free_symbols | g.free_symbols, key=str)
    if not symbols or len(symbols) > 6:
        return True  # nothing to compare pointwise: trust math-verify
    ratios = []
    for point in _points(symbols):
        a, b = _exact_value(f, point), _exact_value(g, point)
        if a is None or b is None:
            return True
        if b == 0:
            if a != 0:
                return False
            continue
        ratios.append(a / b)
    if not ratios:
        return True
    first = ratios[0]
    return first != 0 and all(abs(r - first) <= 1e-20 * abs(first) for r in ratios)
