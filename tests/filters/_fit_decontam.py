"""Fit the decision models of semantic decontamination on the calibration halves (filters/_decision.py).

    python -m tests.filters._fit_decontam     # prints the constants for _decision.py / decontam_semantic.py

Positives: the right candidate pair of each CALIBRATION reworded item (tests/data/decontam). Negatives:
every other candidate pair of those items and every candidate pair of the calibration halves of the
unrelated sets: the look-alikes of calibration items, the even rows of the 4,500 MATH test problems
outside MATH-500 (against MATH-500 + AIME 24/25 + AMC 23 + GSM8K), the even rows of GSM8K's odd half
(against its even half). Held-out rows are never read here. Each threshold is the least log-odds at
which at most TARGET of every calibration negative set is flagged (0.4%: a margin under the issue's
0.5%); the same-answer threshold is set after the prompt-only one, on the union of both.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import polars as pl

from distill.evaluation.benchmarks import load_benchmark
from filters._decision import FEATURES, Logistic, PairSignals, features, fit_logistic
from filters.decontam_semantic import SemanticIndex, SemanticThresholds, pair_signals
from tests.datafiles import data_dir

__all__ = ["TARGET", "Fit", "Sets", "fit", "sets"]

TARGET = 0.004
PROMPT_ONLY_TARGET = 0.0025  # of TARGET, the rest is left to the same-answer model
L2 = 1.0
POSITIVE_SHARE = 0.05  # the positives' total weight against the negatives'
FILES = {
    "math500": "math500_test.jsonl",
    "aime24": "aime24_test.jsonl",
    "aime25": "aime25_test.json",
    "amc23": "amc23_test.jsonl",
    "gsm8k": "gsm8k_test.jsonl",
}


def frame(benchmark) -> pl.DataFrame:
    return benchmark.rows.select(pl.lit(benchmark.spec.name).alias("benchmark"), "id", "problem", "answer")


@dataclass
class Sets:
    """The evaluation sets: texts, answers, and which rows are calibration rows."""

    index: SemanticIndex
    gsm_index: SemanticIndex  # GSM8K's even half
    reworded: pl.DataFrame
    lookalikes: pl.DataFrame
    math_others: pl.DataFrame  # the 4,500 MATH test problems outside MATH-500
    gsm_odd: pl.DataFrame  # GSM8K's odd half


@cache
def sets() -> Sets:
    data = data_dir()
    benchmarks = {n: load_benchmark(n, data / "benchmarks" / f) for n, f in FILES.items()}
    full = load_benchmark("math", data / "benchmarks" / "mario_math_test5000_answer_types.json").rows
    norm = pl.col("problem").str.replace_all(r"\s+", " ").str.strip_chars().str.to_lowercase()
    in500 = full.select(norm.is_in(benchmarks["math500"].rows.select(norm)["problem"].implode()))["problem"]
    gsm = benchmarks["gsm8k"].rows
    return Sets(
        SemanticIndex.build(pl.concat([frame(b) for b in benchmarks.values()])),
        SemanticIndex.build(frame(benchmarks["gsm8k"])[::2]),
        pl.read_ndjson(data / "decontam" / "reworded.jsonl"),
        pl.read_ndjson(data / "decontam" / "lookalikes.jsonl"),
        full.filter(~in500),
        gsm[1::2],
    )


def calibration_rows(height: int) -> np.ndarray:
    """Unrelated sets: the even rows calibrate, the odd rows are held out."""
    return np.arange(height) % 2 == 0


@dataclass
class Fit:
    prompt_only: Logistic
    same_answer: Logistic
    min_score: float
    min_score_same_answer: float


def _pairs(
    texts: pl.Series, index: SemanticIndex, answers: pl.Series | None, keep: np.ndarray
) -> PairSignals:
    p = pair_signals(texts, index, SemanticThresholds(), answers=answers)
    on = keep[p.row] & (p.word_cosine >= SemanticThresholds().min_word_cosine)
    return PairSignals(**{f: getattr(p, f)[on] for f in PairSignals.__dataclass_fields__})


def _right(p: PairSignals, index: SemanticIndex, reworded: pl.DataFrame) -> np.ndarray:
    want = (reworded["benchmark"] + ":" + reworded["id"]).to_numpy()
    return np.array([index.label(int(i)) == want[r] for r, i in zip(p.row, p.item, strict=True)], dtype=bool)


def _row_max(p: PairSignals, score: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Per row that has pairs: the best score (-inf where `mask` leaves none)."""
    mask = np.ones(len(score), dtype=bool) if mask is None else mask
    best = np.full(int(p.row.max(initial=-1)) + 1, -np.inf)
    np.maximum.at(best, p.row[mask], score[mask])
    return best


def _threshold(best: np.ndarray, allowed: int) -> float:
    """Least threshold (2 decimals, rounded up) that flags at most `allowed` of these rows."""
    m = allowed
    top = np.sort(best[np.isfinite(best)])[::-1]
    if len(top) <= m:
        return float(np.floor(top[-1] * 100) / 100) if len(top) else 0.0
    return float(np.floor(top[m] * 100) / 100 + 0.01)


def fit(s: Sets | None = None) -> Fit:
    s = sets() if s is None else s
    cal = (s.reworded["split"] == "calibration").to_numpy()
    la_cal = (s.lookalikes["split"] == "calibration").to_numpy()
    m_cal, g_cal = calibration_rows(s.math_others.height), calibration_rows(s.gsm_odd.height)
    rw = {a: _pairs(s.reworded["text"], s.index, s.reworded["answer"] if a else None, cal) for a in (0, 1)}
    look = _pairs(s.lookalikes["text"], s.index, None, la_cal)
    math = {
        a: _pairs(s.math_others["problem"], s.index, s.math_others["answer"] if a else None, m_cal)
        for a in (0, 1)
    }
    gsm = {
        a: _pairs(s.gsm_odd["problem"], s.gsm_index, s.gsm_odd["answer"] if a else None, g_cal)
        for a in (0, 1)
    }

    def model(a: int) -> Logistic:
        x = np.vstack([features(p) for p in (rw[a], look, math[a], gsm[a])])
        y = np.concatenate(
            [_right(rw[a], s.index, s.reworded), np.zeros(len(x) - len(rw[a].row), dtype=bool)]
        )
        use = np.array([f != "same_answer" or a == 1 for f in FEATURES])
        weight = POSITIVE_SHARE * (~y).sum() / max(y.sum(), 1)
        return fit_logistic(x, y.astype(np.float64), positive_weight=weight, l2=L2, use=use)

    prompt_only, same_answer = model(0), model(1)
    negatives = ((look, la_cal.sum()), (math[0], m_cal.sum()), (gsm[0], g_cal.sum()))
    t_p = max(
        _threshold(_row_max(p, prompt_only.score(features(p))), int(PROMPT_ONLY_TARGET * n))
        for p, n in negatives
    )
    t_a = -np.inf
    for p, n in ((math[1], m_cal.sum()), (gsm[1], g_cal.sum())):
        x = features(p)
        flagged = _row_max(p, prompt_only.score(x)) >= t_p
        extra = _row_max(p, same_answer.score(x), p.answer == 1)
        extra[flagged] = -np.inf  # already flagged without the answer
        t_a = max(t_a, _threshold(extra, int(TARGET * n) - int(flagged.sum())))
    return Fit(prompt_only, same_answer, round(t_p, 2), round(float(t_a), 2))


def main() -> None:
    f = fit()
    print("# filters/_decision.py")
    print(f"PROMPT_ONLY = {f.prompt_only!r}")
    print(f"SAME_ANSWER = {f.same_answer!r}")
    print("# filters/decontam_semantic.py")
    print(f"PROMPT_ONLY_MIN_SCORE = {f.min_score}")
    print(f"SAME_ANSWER_MIN_SCORE = {f.min_score_same_answer}")


if __name__ == "__main__":
    main()
