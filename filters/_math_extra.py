"""Second looks at math-verify's verdicts: the guard re-checks each "yes", sound equalities each "no".

The guard (`is_false_positive`) removes a "yes" it can disprove: exact numbers compared at 30
significant digits (math-verify rounds to `float_rounding` decimals, so `1/2^99 = 1/2^98`),
expressions at exact random points, equations as proportional `lhs - rhs`.

Sound equalities (`same_value_extra`) are tried only after math-verify said "no" to two fully parsed
answers:

- The imaginary unit: math-verify reads `i` as a symbol, so `i(2-i)` and `1+2i` differ (`2i - i^2`
  vs `2i + 1`). When a side holds the symbol `i` and nothing else free, `i` is the imaginary unit:
  the two are compared with `i^2 = -1`.
- Equations: `x=1` and `2x=2` have the same solutions; two equations are equal when `lhs - rhs` of
  one is a nonzero constant times that of the other. An equation whose left side is only a name
  (`y`, `f(x)`, `v(r)`) labels its right side: `f(x)=x^2` and `y=x^2` compare their right sides.

Every path here can only turn a "no" into a "yes" by proof (a symbolic zero, or proportionality at
exact random points), never by rounding.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

__all__ = ["exact_value", "is_false_positive", "points", "proportional", "same_value_extra"]


def same_value_extra(gold: Any, pred: Any, compare: Callable[[Any, Any], bool]) -> bool:
    """Whether `gold` and `pred` are equal by one of the rules above (`compare` is math-verify's check)."""
    import sympy

    try:
        if isinstance(gold, sympy.Equality) or isinstance(pred, sympy.Equality):
            return _same_equation(gold, pred, compare)
        if isinstance(gold, sympy.Expr) and isinstance(pred, sympy.Expr):
            return _same_complex(gold, pred)
    except (TypeError, ValueError, ArithmeticError, AttributeError, RecursionError):
        return False
    return False


def _is_label(side: Any) -> bool:
    import sympy

    # a name or an undefined function (`f(x)`), never a known one: `\\sin(x) = …` is an equation
    return isinstance(side, (sympy.Symbol, sympy.core.function.AppliedUndef))


def _same_equation(gold: Any, pred: Any, compare: Callable[[Any, Any], bool]) -> bool:
    import sympy

    g_eq, p_eq = isinstance(gold, sympy.Equality), isinstance(pred, sympy.Equality)
    if g_eq and p_eq and _is_label(gold.lhs) and _is_label(pred.lhs):
        return compare(gold.rhs, pred.rhs) or _same_complex(gold.rhs, pred.rhs)
    if g_eq and p_eq:
        f, g = gold.lhs - gold.rhs, pred.lhs - pred.rhs
        return bool(f.free_symbols) and f.free_symbols == g.free_symbols and proportional(f, g)
    # one side is `name = value`, the other just the value
    if g_eq and _is_label(gold.lhs) and isinstance(pred, sympy.Expr):
        return compare(gold.rhs, pred)
    if p_eq and _is_label(pred.lhs) and isinstance(gold, sympy.Expr):
        return compare(gold, pred.rhs)
    return False


def _same_complex(gold: Any, pred: Any) -> bool:
    import sympy

    names = {str(s) for s in gold.free_symbols | pred.free_symbols}
    if names != {"i"}:
        return False
    unit = {s: sympy.I for s in gold.free_symbols | pred.free_symbols}
    difference = sympy.expand(gold.subs(unit) - pred.subs(unit))
    return difference == 0


def points(symbols: list[Any], n: int = 3) -> list[dict[Any, Any]]:
    rng = random.Random(1234)  # fixed: the same pair always gets the same verdict
    import sympy

    return [
        {s: sympy.Rational(rng.randint(1, 997), rng.randint(1, 97)) + sympy.Rational(1, 7) for s in symbols}
        for _ in range(n)
    ]


def exact_value(expr: Any, point: dict[Any, Any]) -> Any:
    """High-precision value as an mpmath number (handles 1/2006!, far below float range)."""
    import sympy

    v = (expr.subs(point) if point else expr).evalf(40)
    if not v.is_number or v.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo, sympy.I):
        return None
    try:
        return v._to_mpmath(130)
    except (TypeError, ValueError, AttributeError):
        return None


def proportional(f: Any, g: Any) -> bool:
    """Whether f = c·g for a nonzero constant c (two equations `f = 0`, `g = 0` describe the same set)."""
    symbols = sorted(f.free_symbols | g.free_symbols, key=str)
    if not symbols or len(symbols) > 6:
        return True  # nothing to compare pointwise: trust math-verify
    ratios = []
    for point in points(symbols):
        a, b = exact_value(f, point), exact_value(g, point)
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


# ── the guard: re-check each "yes" ─────────────────────────────────────────
def is_false_positive(gold: Any, pred: Any, options: Any) -> bool:
    """True when a pair math-verify calls equal is provably different (see module docstring)."""
    import sympy

    if isinstance(gold, str) or isinstance(pred, str):
        return _truncated(gold) or _truncated(pred)
    try:
        if isinstance(gold, sympy.Equality) and isinstance(pred, sympy.Equality):
            if isinstance(gold.lhs, sympy.Symbol) or isinstance(pred.lhs, sympy.Symbol):
                return False  # `y = …` assignments: math-verify compares the right sides
            return not proportional(gold.lhs - gold.rhs, pred.lhs - pred.rhs)
        if isinstance(gold, sympy.Expr) and isinstance(pred, sympy.Expr):
            return _numerically_different(gold, pred, options)
    except (TypeError, ValueError, ArithmeticError, AttributeError, RecursionError):
        return False  # the guard only ever removes a "yes" it can disprove
    return False


def _truncated(s: Any) -> bool:
    return isinstance(s, str) and s.count("{") != s.count("}")


def _value(expr: Any, point: dict[Any, Any]) -> complex | None:
    import sympy

    v = expr.subs(point).evalf(30) if point else expr.evalf(30)
    if not v.is_number or v.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        return None
    re_, im_ = v.as_real_imag()
    return complex(sympy.Float(re_, 30), sympy.Float(im_, 30)) if abs(re_) < 1e300 else None


def _numerically_different(gold: Any, pred: Any, options: Any) -> bool:
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

    for point in points(symbols):
        a, b = exact_value(gold, point), exact_value(pred, point)
        if a is None or b is None:
            return False
        scale = max(abs(a), abs(b))
        if scale == 0:
            continue
        with mp.workprec(100):
            if abs(a - b) > mpf(10) ** (-20) * scale:
                return True
    return False
