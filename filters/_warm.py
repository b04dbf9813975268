"""Warm math-verify in the pool's fork server, so every worker forked from it starts warm.

Imported only as a `forkserver` preload (filters/_pool.py): the import itself does the work. The
first parses in a process are slow (ANTLR builds its prediction DFA, sympy imports submodules and
fills caches); doing them once in the server, before it forks, saves that cost in every worker.
"""

from __future__ import annotations

SAMPLES = (
    "\\frac{1}{2}",
    "-\\frac{3\\sqrt{3}}{4}",
    "\\sqrt{2}+\\sqrt[3]{5}",
    "2^{10}",
    "x^2+2x+1",
    "(3,\\frac{\\pi}{2})",
    "[0,1)",
    "(-\\infty, 2] \\cup (3, \\infty)",
    "\\{1,2,3\\}",
    "x=5",
    "3x-y+13=0",
    "y \\le 2",
    "\\begin{pmatrix}1 & 2\\\\3 & 4\\end{pmatrix}",
    "\\sin(2t)+\\cos(3t)",
    "e^{-t}",
    "\\log_2 8",
    "28\\%",
    "90^\\circ",
    "\\text{Evelyn}",
    "\\frac{d\\omega}{dt}=-\\frac{2B}{I}\\omega",
    "f(x)=\\frac{x+1}{x-1}",
    "1.5\\times 10^{3}",
    "\\dfrac{14}{3}",
    "2\\pi r",
    "\\binom{5}{2}",
    "5!",
    "|x-2|",
    "a_{n+1}=2a_n",
)


def warm() -> None:
    from math_verify import parse, verify

    from filters.math import answers_equal

    for text in SAMPLES:
        verify(parse(f"${text}$"), parse(f"The answer is $\\boxed{{{text}}}$."))
        answers_equal(text, text)


warm()
