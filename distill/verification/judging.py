"""The verify stage's second opinion: an LLM judge for the rows the rules could not grade, and gold checks.

Rules (filters/math.py) leave a math verdict null when the gold does not parse (free-form or science
answers), when only part of the answer parses, or when a row timed out. With `verify.judge` set,
those rows go to a judge model with a fixed, versioned prompt (NeMo-Skills and simple-evals grade
the same way); the verdict lands in `judge_verdict` beside the rule verdict, never over it, so a
user can always tell a rule's "true" from a model's. Requests run through distill/judge.py: the
teacher client and generation engine, resumable under RUN/judge/, paced and cost-accounted.

A source whose gold column is empty or unparseable in every row is almost always a wrong
`verify.gold_column`: it gets one warning with counts, not one line per row.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distill.judge import JudgeConfig, JudgePrompt, JudgeReport, JudgeRequest, judge

if TYPE_CHECKING:
    from distill.teachers.base import Teacher

__all__ = ["JUDGED_REASONS", "MATH_JUDGE_PROMPT", "JudgeOutcome", "judge_rows", "warn_about_golds"]

log = logging.getLogger(__name__)

# Rule verdicts the judge is asked to replace: nothing to compare, or the comparison did not finish.
JUDGED_REASONS = frozenset({"gold_unparsed", "partial_parse", "timeout"})

MATH_JUDGE_PROMPT = JudgePrompt(
    name="math-answer-equivalence",
    version=1,
    fields=("problem", "gold", "answer"),
    template=(
        "You are grading the final answer of a response to a problem against the reference answer.\n\n"
        "PROBLEM:\n{problem}\n\n"
        "REFERENCE ANSWER:\n{gold}\n\n"
        "RESPONSE (its answer section):\n{answer}\n\n"
        "Decide whether the response's final answer is equivalent to the reference answer: the same "
        "value, expression, set or statement, written in any notation, with or without units the "
        "problem implies. A response with no final answer, with several different final answers, or "
        "with an answer that only partly matches is not equivalent. Do not solve the problem "
        "yourself and do not judge the reasoning, only the final answer.\n\n"
        "Explain in one or two sentences, then end with a last line that is exactly "
        "`Judgement: yes` or `Judgement: no`."
    ),
)


@dataclass
class JudgeOutcome:
    """Per-row judge columns (None where the judge was not asked) and what the call did."""

    verdict: list[bool | None]
    model: list[str | None]
    reason: list[str | None]
    report: JudgeReport | None = None
    asked: int = 0


def judge_rows(
    cfg: JudgeConfig,
    folder: Path,
    *,
    problems: list[Any],
    golds: list[Any],
    answers: list[Any],
    reasons: list[str | None],
    teacher: Teacher | None = None,
) -> JudgeOutcome:
    """Ask the judge about every row whose rule verdict is null for a reason in JUDGED_REASONS."""
    n = len(reasons)
    outcome = JudgeOutcome([None] * n, [None] * n, [None] * n)
    rows = [i for i in range(n) if reasons[i] in JUDGED_REASONS and _text(golds[i]) and _text(answers[i])]
    if not rows:
        return outcome
    requests = [
        JudgeRequest(
            str(i),
            {
                "problem": _text(problems[i]) or "(not given)",
                "gold": _text(golds[i]),
                "answer": _text(answers[i]),
            },
        )
        for i in rows
    ]
    results, report = judge(
        cfg, MATH_JUDGE_PROMPT, requests, folder / MATH_JUDGE_PROMPT.name, teacher=teacher
    )
    for i, result in zip(rows, results, strict=True):
        outcome.verdict[i] = result.verdict
        outcome.model[i] = result.model
        outcome.reason[i] = result.reason[:500]
    outcome.report, outcome.asked = report, len(rows)
    return outcome


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and value != value) else str(value).strip()


@dataclass
class GoldCheck:
    """Per source: math rows, rows whose gold is empty, rows whose gold does not parse."""

    rows: Counter[str] = field(default_factory=Counter)
    empty: Counter[str] = field(default_factory=Counter)
    unparsed: Counter[str] = field(default_factory=Counter)

    def as_stats(self) -> dict[str, dict[str, int]]:
        return {
            s: {"rows": self.rows[s], "gold_empty": self.empty[s], "gold_unparsed": self.unparsed[s]}
            for s in sorted(self.rows)
            if self.empty[s] or self.unparsed[s]
        }


def warn_about_golds(
    sources: list[str], golds: list[Any], reasons: list[str | None], math_rows: list[int], gold_column: str
) -> GoldCheck:
    """One warning per source whose gold column is empty or unparseable in all its math rows."""
    check = GoldCheck()
    for i in math_rows:
        source = sources[i]
        check.rows[source] += 1
        if not _text(golds[i]):
            check.empty[source] += 1
        elif reasons[i] == "gold_unparsed":
            check.unparsed[source] += 1
    problems: dict[str, str] = defaultdict(str)
    for source, rows in check.rows.items():
        bad = check.empty[source] + check.unparsed[source]
        if rows and bad == rows:
            problems[source] = (
                f"verify: source {source!r}: no usable gold answer in any of its {rows:,} rows "
                f"({check.empty[source]:,} empty, {check.unparsed[source]:,} unparseable in column "
                f"{gold_column!r}); their math verdicts are null — check verify.gold_column"
            )
    for line in problems.values():
        log.warning("%s", line)
    return check
