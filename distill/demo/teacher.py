"""The demo teacher: R1-style traces for the shipped problems, with every flaw a real teacher has.

    with TeacherServer(DemoTeacher(), reasoning_field="inline", model=DEMO_MODEL) as srv: ...

For each (problem, sample) the reply is fixed by a hash, so every run sees the same mix:
mostly correct traces, some wrong answers, some truncated (`finish_reason: length`, no `</think>`),
some exact duplicates of another sample, some drifting from English into Chinese. Problems differ in
difficulty (how often the teacher is right), so verification-in-the-loop has somewhere to spend.
A prompt that is not one of the shipped problems gets a short generic reply.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from distill.demo import PROBLEMS
from distill.testing.local_server import Reply

DEMO_MODEL = "distill-demo-teacher"

# Shares of each flaw (of all samples); the rest are correct with the problem's own success rate.
DUPLICATE, DRIFT, TRUNCATED = 0.08, 0.07, 0.06
SUCCESS_RATES = (0.95, 0.9, 0.75, 0.35)  # easy … hard, chosen per problem by its hash

_OPENERS = (
    "Okay, let's see.",
    "Alright, so I need to figure this out.",
    "Hmm, let me think about this problem.",
    "Let me work through this carefully.",
    "First, I should understand what is being asked.",
)
_FILLERS = (
    "I want to be careful with the units here.",
    "Maybe I should write down what I know before computing anything.",
    "The numbers look small enough to do by hand.",
    "It helps to restate the question in my own words.",
    "Let me not rush; these word problems often hide a small trap.",
    "I could also draw a quick table, but a list is enough.",
    "The key quantities are all given directly in the text.",
    "There is only one unknown, so this should be direct.",
)
_CHECKS = (
    "Wait, let me double-check that arithmetic.",
    "Let me verify by working backwards from the result.",
    "Hmm, does that make sense? Let me plug it back in.",
    "Just to be safe, I will redo the last step another way.",
)


@dataclass(frozen=True)
class Problem:
    id: str
    problem: str
    answer: str
    steps: str


def load_problems(path: Path = PROBLEMS) -> list[Problem]:
    """The shipped demo problems."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [Problem(r["id"], r["problem"], r["answer"], r.get("steps", "")) for r in rows]


def _unit(*parts: object) -> float:
    """A number in [0, 1) fixed by `parts`."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def wrong_answer(answer: str, salt: object) -> str:
    """A plausible wrong answer: off by a slip, a doubling, or an inverted fraction."""
    fraction = re.fullmatch(r"\\frac\{(\d+)\}\{(\d+)\}", answer)
    if fraction:
        return f"\\frac{{{fraction[2]}}}{{{fraction[1]}}}"
    try:
        value = Fraction(answer)
    except ValueError:
        return answer + "0"
    slip = (1, -1, 10, value or 1)[int(_unit("slip", salt) * 4)]
    wrong = value + slip
    return str(wrong) if wrong.denominator == 1 else f"{float(wrong):g}"


@dataclass
class DemoTeacher:
    """A responder for `TeacherServer`: see the module docstring for what it says."""

    problems: list[Problem] = field(default_factory=load_problems)
    _seen: Counter = field(default_factory=Counter, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, messages: list[dict], params: dict, index: int) -> Reply:
        prompt = str(messages[-1].get("content", "")) if messages else ""
        problem = self.find(prompt)
        if problem is None:
            return self.generic(prompt, index)
        return self.reply(problem, self._sample_index(problem.id, params, index))

    def find(self, prompt: str) -> Problem | None:
        """The shipped problem whose text the prompt contains."""
        return next((p for p in self.problems if p.problem in prompt), None)

    def _sample_index(self, problem_id: str, params: dict, index: int) -> str:
        # A per-sample seed, when the client sends one, fixes the reply; otherwise count the asks.
        seed = params.get("seed")
        key = (problem_id, seed, index)
        with self._lock:
            occurrence = self._seen[key]
            self._seen[key] += 1
        return f"{seed}:{index}:{occurrence}"

    def reply(self, p: Problem, sample: str) -> Reply:
        """The deterministic reply for one sample of one problem."""
        roll = _unit("kind", p.id, sample)
        if roll < DUPLICATE:
            return self.correct(p, variant=None)
        if roll < DUPLICATE + DRIFT:
            return self.drifting(p)
        if roll < DUPLICATE + DRIFT + TRUNCATED:
            return self.truncated(p, sample)
        success = SUCCESS_RATES[int(_unit("difficulty", p.id) * len(SUCCESS_RATES))]
        if _unit("right", p.id, sample) < success:
            return self.correct(p, variant=sample)
        return self.correct(p, variant=sample, answer=wrong_answer(p.answer, (p.id, sample)))

    def correct(self, p: Problem, variant: str | None, answer: str | None = None) -> Reply:
        """A well-formed trace; `variant=None` is the canonical one (what duplicates repeat word for word)."""
        answer = p.answer if answer is None else answer
        pick = (
            (lambda name, pool: pool[0])
            if variant is None
            else (lambda name, pool: pool[int(_unit(name, p.id, variant) * len(pool))])
        )
        fillers = list(_FILLERS)
        if variant is not None:
            fillers.sort(key=lambda f: _unit("order", p.id, variant, f))
        steps = [s.strip() for s in p.steps.split(";") if s.strip()]
        lines = [f"{pick('open', _OPENERS)} The question: {p.problem}", "", fillers[0], ""]
        lines += [f"Step {i}: {step}." for i, step in enumerate(steps, 1)]
        if answer != p.answer:
            lines.append(f"Then the result must be {answer}.")
        lines += [
            "",
            pick("check", _CHECKS),
            fillers[1],
            f"Yes, I get {answer} again.",
            "",
            f"So the answer is {answer}.",
        ]
        content = (
            f"Working step by step: {'; '.join(steps) or 'direct computation'}.\n\n"
            f"The answer is $\\boxed{{{answer}}}$."
        )
        return Reply(content=content, reasoning="\n".join(lines))

    def drifting(self, p: Problem) -> Reply:
        """A correct answer whose reasoning drifts from English into Chinese (R1's language mixing)."""
        steps = "；".join(s.strip() for s in p.steps.split(";"))
        reasoning = (
            f"Okay, let's see. The question: {p.problem}\n\n"
            "嗯，我先用中文想一想这个问题。题目给出的数字都很直接，我们一步一步地计算。\n"
            f"计算过程：{steps}。\n"
            "等一下，让我再检查一遍计算，确认没有出错。每一步都没有问题，结果是正确的。\n"
            f"所以最后的答案是 {p.answer}。"
        )
        return Reply(content=f"The answer is $\\boxed{{{p.answer}}}$.", reasoning=reasoning)

    def truncated(self, p: Problem, sample: str) -> Reply:
        """A trace that ran out of tokens: it loops, never closes `</think>`, and stops on `length`."""
        first = p.steps.split(";")[0].strip()
        loop = "Hmm, wait. Maybe I misread the problem. Let me start over from the beginning.\n"
        reasoning = f"Okay, let's see. The question: {p.problem}\n\nFirst, {first}.\n" + loop * 6
        return Reply(content=f"<think>\n{reasoning}", reasoning=None, finish_reason="length")

    def generic(self, prompt: str, index: int) -> Reply:
        """A short reply to a prompt the demo does not know."""
        guess = int(_unit("generic", prompt, index) * 100)
        return Reply(
            content=f"The answer is $\\boxed{{{guess}}}$.",
            reasoning="I do not recognise this problem, so this is a guess.",
        )
