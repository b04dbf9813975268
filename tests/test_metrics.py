"""pass@1 with error bars, unbiased pass@k and majority voting."""

from __future__ import annotations

import math
import random

import pytest

from distill.evaluation.metrics import cons_at_k, majority_vote, pass_at_1, pass_at_k, pass_at_k_unbiased, t95


def test_pass_at_k_estimator_equals_the_combinatorial_definition() -> None:
    for n in (1, 5, 16, 64):
        for c in range(n + 1):
            for k in sorted({1, min(2, n), n // 2 or 1, n}):
                exact = 1 - math.comb(n - c, k) / math.comb(n, k)
                assert pass_at_k_unbiased(n, c, k) == pytest.approx(exact, abs=1e-12)
    assert pass_at_k_unbiased(64, 16, 1) == pytest.approx(16 / 64)  # pass@1 is plain accuracy
    with pytest.raises(ValueError, match="at least 8 samples"):
        pass_at_k_unbiased(4, 1, 8)


def test_pass_at_1_interval_covers_the_planted_accuracy() -> None:
    rng = random.Random(0)
    covered = 0
    for _ in range(200):
        # 30 problems drawn from a pool of mixed difficulty, 16 samples each: the interval is about
        # the pool's accuracy, so it must hold both the problem draw and the sample draw.
        planted = [rng.choice([0.2, 0.5, 0.9]) for _ in range(30)]
        correct = [[rng.random() < p for _ in range(16)] for p in planted]
        est = pass_at_1(correct)
        covered += est.contains((0.2 + 0.5 + 0.9) / 3)
        assert est.ci_low <= est.mean <= est.ci_high and est.problems == 30
    assert 0.90 <= covered / 200 <= 0.99  # a 95% interval, empirically


def test_pass_at_1_never_claims_certainty_from_a_finite_draw() -> None:
    est = pass_at_1([[True] * 8, [True] * 8])
    assert est.mean == 1.0 and est.ci_low < 1.0
    assert pass_at_1([[False] * 4]).ci_high > 0.0


def test_pass_at_k_grows_with_k() -> None:
    correct = [[True, False, False, False]] * 3 + [[False] * 4]
    assert pass_at_k(correct, 1).mean == pytest.approx(0.75 * 0.25)
    assert pass_at_k(correct, 4).mean == pytest.approx(0.75)


def test_majority_vote_ignores_missing_answers_and_breaks_ties_by_first_seen() -> None:
    assert majority_vote([None, "3", "5", "5", None, "3"]) == 1  # 3 and 5 tie: 3 came first
    assert majority_vote([None, "", None]) is None
    assert majority_vote(["7", "2", "2"]) == 1


def test_cons_at_k_scores_the_majority_answer_with_its_verdict() -> None:
    answers = [["1", "2", "2", "2"], ["9", "9", "4", None], [None, None]]
    correct = [[True, False, False, False], [False, False, True, False], [False, False]]
    est = cons_at_k(answers, correct)
    assert est.mean == 0.0  # the majority is wrong on both, nothing voted on the third
    assert cons_at_k(answers[:1], [[False, True, True, True]]).mean == 1.0


def test_t_quantile_for_small_benchmarks() -> None:
    exact = {
        3: 3.182446305,
        5: 2.570581836,
        6: 2.446911851,
        10: 2.228138852,
        29: 2.045229642,
        499: 1.964726835,
    }
    for df, q in exact.items():
        assert t95(df) == pytest.approx(q, abs=5e-4)
