"""Sound equalities math-verify misses, tried only after it said "no" to two fully parsed answers.

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

from collections.abc import Callable
from typing import Any

__all__ = ["same_value_extra"]


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
        from filters.math import _proportional  # the guard's check, shared

        f, g = gold.lhs - gold.rhs, pred.lhs - pred.rhs
        return bool(f.free_symbols) and f.free_symbols == g.free_symbols and _proportional(f, g)
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
