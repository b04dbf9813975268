"""The learned decision of semantic decontamination: a logistic model over the signals of a candidate pair.

A first version decided with hand-set thresholds (cosine ≥ 0.30 and number recall and precision ≥ 0.9
…); it missed rewrites whose signals were all good but none perfect: the numbers all there but one
extra ("the first six primes" → "two numbers"), a cosine of 0.26 standing far above every other
candidate. A weighted sum of all the signals says that; hard cuts on each cannot. The weights are
fit (numpy Newton steps, L2-regularised, no new dependency) on the CALIBRATION half of
tests/data/decontam against the calibration halves of the negatives (look-alikes, MATH outside
MATH-500, GSM8K half against half) by `python -m tests.filters._fit_decontam`, which also sets the
thresholds; tests/filters/test_decontam_semantic.py refits and checks the constants below.

Two models: PROMPT_ONLY reads the prompt; SAME_ANSWER also knows that the pair's final answers
agree and applies only to such pairs, so a wrong answer never hides a reworded prompt.

Every feature is a share, a cosine or a count, never a raw idf sum: idf grows with the benchmark's
size, and a model fit on ~2,000 items must still read a benchmark of two (the demo's) the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FEATURES", "PROMPT_ONLY", "SAME_ANSWER", "Logistic", "PairSignals", "features", "fit_logistic"]

FEATURES = (
    "cosine",  # TF-IDF cosine of the pair
    "word_cosine",  # cosine of the letter terms alone
    "margin",  # cosine minus the best other candidate's: a rewrite stands out from the crowd
    "number_recall",  # idf share of the item's numbers in the text (0.5 where the item has none)
    "no_item_numbers",
    "number_precision",  # idf share of the text's numbers in the item
    "no_text_numbers",
    "symbol_recall",  # … of the item's formula symbols
    "no_item_symbols",
    "symbol_precision",
    "no_text_symbols",
    "number_evidence",  # log(1 + how many numbers the item states) × recall: many numbers agree
    "rare_number_evidence",  # log(1 + their idf mass in units of the largest idf) × recall
    "same_answer",  # 1 where both answers are known and equal
    "top",  # the best candidate of its text
)


@dataclass
class PairSignals:
    """Per candidate pair (text `row`, benchmark `item`): the signals the models read."""

    row: np.ndarray  # int64
    item: np.ndarray  # int64
    rank: np.ndarray  # int64: 0 = the text's best candidate by cosine
    cosine: np.ndarray
    word_cosine: np.ndarray
    margin: np.ndarray
    number_recall: np.ndarray  # NaN where the item states no number
    number_precision: np.ndarray  # NaN where the text states none
    symbol_recall: np.ndarray
    symbol_precision: np.ndarray
    item_numbers: np.ndarray  # how many distinct numbers the item states
    item_number_weight: np.ndarray  # their idf mass over the largest idf (any corpus size: ≤ item_numbers)
    answer: np.ndarray  # int8: 1 same answer, -1 different, 0 unknown


def features(p: PairSignals) -> np.ndarray:
    """The pairs × FEATURES matrix."""
    nan = np.isnan
    return np.column_stack(
        [
            p.cosine,
            p.word_cosine,
            p.margin,
            np.nan_to_num(p.number_recall, nan=0.5),
            nan(p.number_recall),
            np.nan_to_num(p.number_precision, nan=0.5),
            nan(p.number_precision),
            np.nan_to_num(p.symbol_recall, nan=0.5),
            nan(p.symbol_recall),
            np.nan_to_num(p.symbol_precision, nan=0.5),
            nan(p.symbol_precision),
            np.log1p(p.item_numbers) * np.nan_to_num(p.number_recall),
            np.log1p(p.item_number_weight) * np.nan_to_num(p.number_recall),
            p.answer == 1,
            p.rank == 0,
        ]
    ).astype(np.float64)


@dataclass(frozen=True)
class Logistic:
    """score = bias + Σ weight·(x − mean)/scale: a log-odds, compared with a threshold."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float

    def score(self, x: np.ndarray) -> np.ndarray:
        if not len(x):
            return np.zeros(0)
        return (x - np.asarray(self.mean)) / np.asarray(self.scale) @ np.asarray(self.weights) + self.bias

    def rounded(self, digits: int = 4) -> Logistic:
        """The model as the constants below print it (refit and constants compare equal)."""

        def r(values: tuple[float, ...]) -> tuple[float, ...]:
            return tuple(round(float(v), digits) for v in values)

        return Logistic(r(self.mean), r(self.scale), r(self.weights), round(float(self.bias), digits))


def fit_logistic(
    x: np.ndarray, y: np.ndarray, *, positive_weight: float, l2: float = 1.0, use: np.ndarray | None = None
) -> Logistic:
    """L2-regularised logistic regression by Newton steps; `use`: features that may get a weight."""
    use = np.ones(x.shape[1], dtype=bool) if use is None else use
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    z = np.column_stack([((x - mean) / scale)[:, use], np.ones(len(x))])
    w = np.where(y > 0, positive_weight, 1.0)
    penalty = l2 * np.r_[np.ones(use.sum()), 0.0]
    beta = np.zeros(z.shape[1])
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(z @ beta)))
        grad = z.T @ (w * (p - y)) + penalty * beta
        step = np.linalg.solve((z * (w * p * (1 - p))[:, None]).T @ z + np.diag(penalty), grad)
        beta -= step
        if np.abs(step).max() < 1e-10:
            break
    weights = np.zeros(x.shape[1])
    weights[use] = beta[:-1]
    return Logistic(tuple(mean), tuple(scale), tuple(weights), float(beta[-1])).rounded()


# fitted by `python -m tests.filters._fit_decontam` (calibration halves only)
PROMPT_ONLY = Logistic(
    mean=(
        0.1894,
        0.238,
        -0.071,
        0.1672,
        0.0221,
        0.1726,
        0.0178,
        0.4422,
        0.3769,
        0.4742,
        0.3817,
        0.2249,
        0.1133,
        0.0,
        0.2089,
    ),
    scale=(
        0.1229,
        0.1625,
        0.1545,
        0.2198,
        0.147,
        0.2304,
        0.1321,
        0.2749,
        0.4846,
        0.2899,
        0.4858,
        0.293,
        0.15,
        1.0,
        0.4065,
    ),
    weights=(
        0.7518,
        -1.1938,
        0.4961,
        2.1328,
        0.5639,
        0.8355,
        -0.7249,
        0.4731,
        0.0341,
        0.6088,
        0.1907,
        -1.5795,
        1.5889,
        0.0,
        1.2151,
    ),
    bias=-12.0922,
)
SAME_ANSWER = Logistic(
    mean=(
        0.1894,
        0.238,
        -0.071,
        0.1672,
        0.0221,
        0.1726,
        0.0178,
        0.4422,
        0.3769,
        0.4742,
        0.3817,
        0.2249,
        0.1133,
        0.0161,
        0.2089,
    ),
    scale=(
        0.1229,
        0.1625,
        0.1545,
        0.2198,
        0.147,
        0.2304,
        0.1321,
        0.2749,
        0.4846,
        0.2899,
        0.4858,
        0.293,
        0.15,
        0.126,
        0.4065,
    ),
    weights=(
        0.6355,
        -0.829,
        0.4881,
        1.0644,
        0.5824,
        0.8707,
        -0.798,
        0.2656,
        -0.4388,
        -0.3021,
        0.3124,
        -0.2177,
        0.9608,
        1.6027,
        1.2224,
    ),
    bias=-19.0662,
)
