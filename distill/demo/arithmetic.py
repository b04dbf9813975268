"""Generated arithmetic word problems: a family large enough for a student to learn, with a held-out split.

The 52 shipped demo problems show every stage; they are far too few to teach a student anything.
The learning check (recipes/learn-check.yaml) needs thousands of problems of one family, and a
held-out set of the same family that no training problem matches. Both come from here, fixed by a
seed, so every run (and every machine) sees the same problems:

    train, held_out = make_split(4000, 300, seed=0)   # held-out: never a training template + numbers

Each problem carries its worked steps ("12 * 7 = 84; 84 - 9 = 75"), which the demo teacher turns
into an R1-style trace. Levels: `easy` is one sum of a two-digit and a one-digit number that carries
nothing, in four wordings (what a CPU-sized student learns in a test: each digit of the answer is a
digit of the question or a sum of two digits); `standard` is one or two steps on numbers up to 99
and times tables up to 12. No held-out problem states the same numbers as a training problem, in
any wording: that would be a reworded copy, and decontamination would rightly flag it.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from distill.demo.teacher import Problem
from distill.errors import ConfigError

Level = Literal["easy", "standard"]
SOURCE = "demo-arithmetic"
_MAX_MISSES = 10_000  # draws in a row that repeat a known problem: the level has run out of new ones

_PEOPLE = (
    ("Mia", "she"), ("Tom", "he"), ("Ada", "she"), ("Leo", "he"), ("Zoe", "she"),
    ("Sam", "he"), ("Ivy", "she"), ("Ben", "he"), ("Eva", "she"), ("Max", "he"),
)  # fmt: skip
_ITEMS = ("apples", "stickers", "marbles", "cards", "pencils", "shells", "coins", "books", "stamps", "eggs")


@dataclass(frozen=True)
class _Numbers:
    """Draws operands for one level."""

    rng: random.Random
    level: Level

    def term(self) -> int:
        """An addend: 10-99."""
        return self.rng.randint(10, 99)

    def pair(self) -> tuple[int, int]:
        """Two addends: any two of 10-99 (standard), or 10-89 and a digit that carries nothing (easy)."""
        if self.level == "standard":
            return self.term(), self.term()
        tens, units = self.rng.randint(1, 8), self.rng.randint(0, 8)
        return 10 * tens + units, self.rng.randint(1, 9 - units)

    def factor(self) -> int:
        """A factor or divisor: 2-9 (easy) or 2-12 (standard)."""
        return self.rng.randint(2, 9 if self.level == "easy" else 12)


# A template: (numbers, person, item) → (text, steps, answer). Steps are "expr = value".
_Template = Callable[[_Numbers, tuple[str, str], str], tuple[str, list[str], int]]


def _add(n: _Numbers, who: tuple[str, str], item: str) -> tuple[str, list[str], int]:
    a, b = n.pair()
    text = f"{who[0]} has {a} {item}. Then {who[1]} gets {b} more. How many {item} does {who[0]} have now?"
    return text, [f"{a} + {b} = {a + b}"], a + b


def _sub(n: _Numbers, who: tuple[str, str], item: str) -> tuple[str, list[str], int]:
    a, b = sorted((n.term(), n.term()), reverse=True)
    text = f"{who[0]} has {a} {item} and gives {b} of them away. How many {item} are left?"
    return text, [f"{a} - {b} = {a - b}"], a - b


def _mul(n: _Numbers, who: tuple[str, str], item: str) -> tuple[str, list[str], int]:
    a, b = n.factor(), n.factor()
    text = f"{who[0]} fills {a} bags with {b} {item} in each bag. How many {item} is that in total?"
    return text, [f"{a} * {b} = {a * b}"], a * b


def _div(n: _Numbers, who: tuple[str, str], item: str) -> tuple[str, list[str], int]:
    q, d = n.factor(), n.factor()
    text = f"{who[0]} shares {q * d} {item} equally among {d} friends. How many {item} does each friend get?"
    return text, [f"{q * d} / {d} = {q}"], q


def _mul_sub(n: _Numbers, who: tuple[str, str], item: str) -> tuple[str, list[str], int]:
    a, b = n.factor(), n.factor()
    c = n.rng.randint(1, a * b)
    text = f"{who[0]} buys {a} packs of {b} {item} and uses {c} of them. How many {item} are left?"
    return text, [f"{a} * {b} = {a * b}", f"{a * b} - {c} = {a * b - c}"], a * b - c


def _add_add(n: _Numbers, who: tuple[str, str], item: str) -> tuple[str, list[str], int]:
    a, b, c = n.term(), n.term(), n.term()
    text = (
        f"A shelf holds {a} {item} on the top, {b} in the middle and {c} at the bottom. "
        f"How many {item} are on the shelf?"
    )
    return text, [f"{a} + {b} = {a + b}", f"{a + b} + {c} = {a + b + c}"], a + b + c


def _sub_add(n: _Numbers, who: tuple[str, str], item: str) -> tuple[str, list[str], int]:
    a, b = sorted((n.term(), n.term()), reverse=True)
    c = n.term()
    text = f"A bus carries {a} people. At the stop {b} get off and {c} get on. How many people are on the bus now?"
    return text, [f"{a} - {b} = {a - b}", f"{a - b} + {c} = {a - b + c}"], a - b + c


def _add_plain(n: _Numbers, who: tuple[str, str], item: str) -> tuple[str, list[str], int]:
    a, b = n.pair()
    return f"What is {a} + {b}?", [f"{a} + {b} = {a + b}"], a + b


def _add_bus(n: _Numbers, who: tuple[str, str], item: str) -> tuple[str, list[str], int]:
    a, b = n.pair()
    text = f"A bus carries {a} people. At the stop {b} more get on. How many people are on the bus now?"
    return text, [f"{a} + {b} = {a + b}"], a + b


def _add_shelf(n: _Numbers, who: tuple[str, str], item: str) -> tuple[str, list[str], int]:
    a, b = n.pair()
    text = f"A shelf holds {a} {item} on the top and {b} at the bottom. How many {item} are on the shelf?"
    return text, [f"{a} + {b} = {a + b}"], a + b


def _plain(n: _Numbers, who: tuple[str, str], item: str) -> tuple[str, list[str], int]:
    a, b, c = n.term(), n.factor(), n.factor()
    text = f"What is {a} + {b} * {c}?"
    return text, [f"{b} * {c} = {b * c}", f"{a} + {b * c} = {a + b * c}"], a + b * c


TEMPLATES: dict[Level, dict[str, _Template]] = {
    # easy: no-carry sums asked four ways; held-out ones state other numbers, so only a student that
    # learned to read the digits and add them gets them right
    "easy": {"add": _add, "add_plain": _add_plain, "add_bus": _add_bus, "add_shelf": _add_shelf},
    "standard": {
        "add": _add,
        "sub": _sub,
        "mul": _mul,
        "div": _div,
        "mul_sub": _mul_sub,
        "add_add": _add_add,
        "sub_add": _sub_add,
        "plain": _plain,
    },
}


def iter_problems(
    seed: int, level: Level = "standard", *, prefix: str = "arith"
) -> Iterable[tuple[tuple, Problem]]:
    """An endless stream of (key, problem); the key is the numbers the problem states (what it asks)."""
    rng = random.Random(f"{SOURCE}:{level}:{seed}")
    templates = TEMPLATES[level]
    names = sorted(templates)
    numbers = _Numbers(rng, level)
    i = 0
    while True:
        name = rng.choice(names)
        text, steps, answer = templates[name](numbers, rng.choice(_PEOPLE), rng.choice(_ITEMS))
        yield _numbers_of(text), Problem(f"{prefix}-{seed}-{i:05d}", text, str(answer), "; ".join(steps))
        i += 1


def make_split(
    train: int, held_out: int, seed: int = 0, level: Level = "standard"
) -> tuple[list[Problem], list[Problem]]:
    """`train` distinct problems and `held_out` more of the same family asking nothing a training one asks.

    Distinct means other numbers: neither the names and items nor the wording make a new problem, so
    a held-out score measures arithmetic the student was not shown.
    """
    seen: set[tuple] = set()
    train_problems = _distinct(iter_problems(seed, level), train, seen)
    held = _distinct(iter_problems(seed + 1, level, prefix="held-out"), held_out, seen)
    return train_problems, held


def problems_jsonl(problems: Iterable[Problem]) -> str:
    """Problems as JSONL rows (`id`, `problem`, `answer`, `steps`, `source`): prompts or an eval file."""
    rows = (
        {"id": p.id, "problem": p.problem, "answer": p.answer, "steps": p.steps, "source": SOURCE}
        for p in problems
    )
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def _numbers_of(text: str) -> tuple[int, ...]:
    """The numbers a problem states, sorted: the same numbers in another wording ask the same thing
    (decontamination flags such a reworded problem), so a held-out problem never repeats them."""
    return tuple(sorted(int(x) for x in re.findall(r"\d+", text)))


def _distinct(stream: Iterable[tuple[tuple, Problem]], count: int, seen: set[tuple]) -> list[Problem]:
    """The first `count` problems of `stream` whose keys are not in `seen` (which grows)."""
    out: list[Problem] = []
    misses = 0
    for key, problem in stream:
        if len(out) == count:
            break
        if key in seen:
            misses += 1
            if misses > _MAX_MISSES:
                raise ConfigError(
                    f"demo.problems: only {len(seen)} distinct problems exist at this level, fewer than "
                    f"train + held_out asks; lower them or use level: standard"
                )
            continue
        misses = 0
        seen.add(key)
        out.append(problem)
    return out


__all__ = ["SOURCE", "TEMPLATES", "Level", "iter_problems", "make_split", "problems_jsonl"]
