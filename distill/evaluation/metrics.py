"""Scores over k samples per problem: pass@1 with its error bars, unbiased pass@k, and cons@k.

Every function takes one entry per *problem* (a list of that problem's sample verdicts or answers),
because the problems, not the samples, are the unit a benchmark draws: the standard error of pass@1
is the spread of the per-problem accuracies over √N (Miller 2024, "Adding error bars to evals"),
which already contains the sampling noise of the k samples per problem.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

Z95 = 1.959963984540054  # two-sided 95% normal quantile


@dataclass(frozen=True)
class Estimate:
    """A mean over problems with its standard error and 95% interval (all in [0, 1])."""

    mean: float
    stderr: float
    ci_low: float
    ci_high: float
    problems: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def contains(self, value: float) -> bool:
        return self.ci_low <= value <= self.ci_high


def mean_estimate(values: Sequence[float], *, samples_per_value: Sequence[int] | None = None) -> Estimate:
    """Mean of per-problem scores with the standard error of the mean and a Student-t 95% interval.

    With a single problem, or when every problem scored the same (so the spread is 0 although the
    k samples are still a finite draw), the error falls back to the binomial error of the pooled
    samples, so an interval never claims certainty that k samples cannot give.
    """
    n = len(values)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, math.nan, 0)
    mean = math.fsum(values) / n
    se = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1) / n) if n > 1 else 0.0
    if se == 0.0 and samples_per_value is not None:
        pooled = sum(samples_per_value)
        se = math.sqrt(mean * (1 - mean) / pooled) if pooled else 0.0
        if se == 0.0 and pooled:  # all right or all wrong: the rule-of-three bound (≈95%) for the interval
            width = 3.0 / pooled
            return Estimate(mean, 0.0, max(0.0, mean - width), min(1.0, mean + width), n)
    q = t95(n - 1) if n > 1 else Z95
    return Estimate(mean, se, max(0.0, mean - q * se), min(1.0, mean + q * se), n)


def t95(df: int) -> float:
    """Two-sided 95% quantile of Student's t with `df` degrees of freedom (AIME has only 30 problems).

    Exact values up to df = 4, then the Cornish–Fisher expansion around the normal quantile (four
    terms: within 5e-4 of the exact value for df ≥ 5).
    """
    if df < 1:
        return Z95
    if df <= 4:
        return (12.706204736, 4.302652730, 3.182446305, 2.776445105)[df - 1]
    z = Z95
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
        + (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / (92160 * df**4)
    )


def pass_at_1(correct: Sequence[Sequence[bool]]) -> Estimate:
    """pass@1: each problem's accuracy over its samples, averaged over problems (DeepSeek-R1's definition)."""
    scored = [c for c in correct if len(c)]
    return mean_estimate(
        [sum(map(bool, c)) / len(c) for c in scored], samples_per_value=[len(c) for c in scored]
    )


def pass_at_k_unbiased(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn from n (c of them correct) is correct.

    The unbiased estimator of Chen et al. 2021 (Codex), 1 − C(n−c, k)/C(n, k), computed as a product
    so it stays exact for n in the thousands.
    """
    if k <= 0 or n <= 0:
        raise ValueError(f"pass@k needs n ≥ 1 and k ≥ 1 (got n={n}, k={k})")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per problem (got {n})")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def pass_at_k(correct: Sequence[Sequence[bool]], k: int) -> Estimate:
    """Mean over problems of the unbiased pass@k estimate."""
    scored = [c for c in correct if len(c)]
    return mean_estimate([pass_at_k_unbiased(len(c), sum(map(bool, c)), k) for c in scored])


def majority_vote(answers: Sequence[str | None]) -> int | None:
    """Index of the sample whose (already normalised) answer got the most votes; None when none answered.

    Samples without an answer do not vote. Ties go to the answer that appeared first, so the vote
    does not depend on dictionary order.
    """
    counts = Counter(a for a in answers if a is not None and a != "")
    if not counts:
        return None
    best = max(counts.values())
    for i, a in enumerate(answers):
        if a is not None and a != "" and counts[a] == best:
            return i
    return None  # unreachable


def cons_at_k(answers: Sequence[Sequence[str | None]], correct: Sequence[Sequence[bool]]) -> Estimate:
    """cons@k: share of problems whose majority answer is correct.

    The majority answer's verdict is the verifier's verdict on the first sample that gave it, so
    voting never re-verifies and uses the same judge as pass@1.
    """
    if len(answers) != len(correct):
        raise ValueError("answers and verdicts must have one entry per problem")
    scores = []
    for ans, ok in zip(answers, correct, strict=True):
        if not len(ans):
            continue
        winner = majority_vote(ans)
        scores.append(1.0 if winner is not None and ok[winner] else 0.0)
    return mean_estimate(scores)
