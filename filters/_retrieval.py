"""TF-IDF candidate retrieval of benchmark items for many texts at once (sparse matrices, no Python loop).

Why our own and not scikit-learn's TfidfVectorizer: the texts are tokenised by `_ngrams.tokens_expr`
(the n-gram pass's normalisation, in polars' Rust regexes), scikit-learn would be a new heavy
dependency, and its vectoriser tokenises in Python, the slow part at 100,000 prompts
(bench/decontam.py measures both paths).

Vectors hold runs of letters and runs of digits, weighted tf·idf with scikit-learn's smooth idf
`ln((1+N)/(1+df)) + 1` (never zero, so a benchmark of one item works) and L2-normalised. Short math
items are mostly numbers and symbols, so digits must be in the vector for retrieval; the decision
also gets the cosine of the word (letter) part alone, so that a prompt in another language never
looks similar through shared digits. Terms found in more than `max_df` of the items (and in at
least 50) are left out of the product: stop words carry almost no weight and make it slow. They
still count in the norms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from filters._ngrams import _PRIME, SEED, tokens_expr

if TYPE_CHECKING:
    import scipy.sparse as sp


_UNITS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
]
NUMBER_WORDS: dict[str, str] = {
    **{w: str(i) for i, w in enumerate(_UNITS)},
    **{
        w: str(10 * i)
        for i, w in enumerate(["thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"], 3)
    },
    "hundred": "100",
    "thousand": "1000",
    "dozen": "12",
}


@dataclass
class Tokens:
    """Hashed terms of many texts: normalised tokens and adjacent-token bigrams, with their row."""

    hashes: np.ndarray  # uint64
    is_digit: np.ndarray  # bool per term: has a digit run (a number, or a bigram with one)
    row: np.ndarray  # int64 per term
    rows: int

    @classmethod
    def of(cls, texts: pl.Series, *, max_chars: int | None = None, bigrams: bool = True) -> Tokens:
        """Tokenise a string Series; `max_chars` bounds the work per text (the head is kept).

        Number words become digits ("three" = "3"). Bigrams ("x 3", "3 2", "remainder when") carry the order of a math expression that the
        bag of unigrams loses: "x^3 - 2x + 1" and "3x^2 + 1" share every unigram.
        """
        col = pl.col("t") if max_chars is None else pl.col("t").str.slice(0, max_chars)
        col = col.str.replace_all(r"(\d),(\d{3})(?-u:\b)", "$1$2")  # 9,300 = 9300
        tokens = pl.DataFrame({"t": texts}, schema={"t": pl.String}).select(
            tokens_expr(col).list.eval(pl.element().replace(NUMBER_WORDS)).alias("t")
        )["t"]
        lengths = tokens.list.len().fill_null(0).to_numpy().astype(np.int64)
        flat = tokens.explode().drop_nulls()
        if not flat.len():
            return cls(
                np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=bool), np.zeros(0, np.int64), len(lengths)
            )
        hashes = flat.hash(seed=SEED).to_numpy().astype(np.uint64, copy=False)
        is_digit = flat.str.contains(r"^\p{N}").to_numpy()
        row = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
        if bigrams and len(hashes) > 1:
            same = row[1:] == row[:-1]
            with np.errstate(over="ignore"):
                pairs = (hashes[:-1] * _PRIME + hashes[1:])[same]
            hashes = np.concatenate([hashes, pairs])
            is_digit = np.concatenate([is_digit, (is_digit[:-1] | is_digit[1:])[same]])
            row = np.concatenate([row, row[:-1][same]])
        return cls(hashes, is_digit, row, len(lengths))

    def subset(self, rows: np.ndarray) -> Tokens:
        """The terms of the given rows only (row numbers unchanged)."""
        keep = np.isin(self.row, rows)
        return Tokens(self.hashes[keep], self.is_digit[keep], self.row[keep], self.rows)


@dataclass
class TfidfIndex:
    """L2-normalised tf-idf rows of the benchmark items over their vocabulary."""

    vocab: np.ndarray  # sorted uint64 token hashes
    idf: np.ndarray  # float64 per vocab entry
    kept: np.ndarray  # bool per vocab entry: in the product (not a stop word)
    is_word: np.ndarray  # bool per KEPT column: a letter token (not digits)
    oov_idf: float  # weight of a token no item has (counts in a text's norm only)
    matrix: sp.csr_matrix  # items × kept vocabulary
    word_share: np.ndarray  # per item: L2 norm of its word part (≤ 1)

    @property
    def items(self) -> int:
        return self.matrix.shape[0]


def build_tfidf(tokens: Tokens, *, max_df: float = 0.05) -> TfidfIndex:
    """Index benchmark items; any number of items works, zero included."""
    import scipy.sparse as sp

    vectors = _weighted_counts(tokens)
    rows, tok, tf, is_digit = vectors
    n = tokens.rows
    vocab, col = np.unique(tok, return_inverse=True)
    digit_of = np.zeros(len(vocab), dtype=bool)
    digit_of[col] = is_digit
    df = np.bincount(col, minlength=len(vocab))  # (row, token) pairs are unique: df per token
    idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
    kept = ~((df > max_df * n) & (df >= 50))
    weight = tf * idf[col]
    norm = _row_norm(rows, weight, n)
    remap = np.cumsum(kept) - 1
    use = kept[col]
    matrix = sp.csr_matrix(
        (weight[use] / norm[rows[use]], (rows[use], remap[col[use]])), shape=(n, int(kept.sum()))
    )
    words = ~digit_of[col]
    word_share = _row_norm(rows[words], weight[words], n) / norm
    return TfidfIndex(vocab, idf, kept, ~digit_of[kept], float(np.log(1.0 + n) + 1.0), matrix, word_share)


@dataclass
class Vectors:
    """Texts as tf-idf rows over an index's kept vocabulary, normalised by their full norm."""

    matrix: sp.csr_matrix
    word_share: np.ndarray  # per text: L2 norm of its word part (≤ 1)


def text_vectors(tokens: Tokens, index: TfidfIndex) -> Vectors:
    """Vectorise texts against an index. Tokens outside the vocabulary count in the norm (at the
    largest idf), so a long text that merely contains a problem scores lower than the problem."""
    import scipy.sparse as sp

    rows, tok, tf, is_digit = _weighted_counts(tokens)
    n, v = tokens.rows, len(index.vocab)
    pos = np.minimum(np.searchsorted(index.vocab, tok), max(v - 1, 0)) if v else np.zeros(len(tok), np.int64)
    known = index.vocab[pos] == tok if v else np.zeros(len(tok), dtype=bool)
    weight = tf * (np.where(known, index.idf[pos], index.oov_idf) if v else index.oov_idf)
    norm = _row_norm(rows, weight, n)
    word_share = _row_norm(rows[~is_digit], weight[~is_digit], n) / norm
    use = known & index.kept[pos] if v else known
    remap = np.cumsum(index.kept) - 1
    matrix = sp.csr_matrix(
        (weight[use] / norm[rows[use]], (rows[use], remap[pos[use]])), shape=(n, int(index.kept.sum()))
    )
    return Vectors(matrix, word_share)


def top_candidates(
    vectors: Vectors, index: TfidfIndex, k: int, *, min_score: float = 0.0, query_terms: int | None = 32
) -> tuple[np.ndarray, np.ndarray]:
    """The k most similar items per text with cosine ≥ min_score: (items int64 rows×k, exact cosine
    float64 rows×k); -1 where none.

    Retrieval uses only each text's `query_terms` heaviest terms (rare terms have short posting
    lists, so the sparse product is several times cheaper); the 2k best items it finds are then
    re-scored with the full vectors, so the cosines returned are exact.
    """
    n = vectors.matrix.shape[0]
    k = max(1, min(k, index.items))
    items = np.full((n, k), -1, dtype=np.int64)
    scores = np.zeros((n, k), dtype=np.float64)
    if not index.items or not n:
        return items, scores
    query = _heaviest(vectors.matrix, query_terms) if query_terms else vectors.matrix
    wide = min(2 * k, index.items) if query_terms else k
    # the pruned query scores lower than the full one: a lower floor, then exact cosines
    rows, cand = _top_per_row((query @ index.matrix.T).tocsr(), wide, min_score * 0.5)
    return _fill(rows, cand, _pair_dots(vectors.matrix, index.matrix, rows, cand), n, k, min_score)


def word_cosine(vectors: Vectors, index: TfidfIndex, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Cosine of the word (letter) parts of text `rows[i]` and item `items[i]`, pair by pair."""
    import scipy.sparse as sp

    if not len(rows):
        return np.zeros(0)
    words = sp.csr_matrix(index.is_word.astype(np.float64)[None, :])  # broadcast over the rows
    dots = np.asarray(
        vectors.matrix[rows].multiply(words).multiply(index.matrix[items]).sum(axis=1), dtype=np.float64
    ).ravel()
    denom = vectors.word_share[rows] * index.word_share[items]
    return np.clip(np.divide(dots, denom, out=np.zeros_like(dots), where=denom > 0), 0.0, 1.0)


# ── internals ──────────────────────────────────────────────────────────────
def _heaviest(matrix: sp.csr_matrix, m: int) -> sp.csr_matrix:
    """Each row's m largest entries (ties arbitrary)."""
    import scipy.sparse as sp

    counts = np.diff(matrix.indptr)
    if not len(counts) or counts.max(initial=0) <= m:
        return matrix
    row_of = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), counts)
    order = _by_row_best_first(row_of, matrix.data)
    rank = np.arange(len(order)) - matrix.indptr[row_of[order]]
    keep = np.sort(order[rank < m])
    return sp.csr_matrix((matrix.data[keep], (row_of[keep], matrix.indices[keep])), shape=matrix.shape)


def _top_per_row(sims: sp.csr_matrix, k: int, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """(row, item) of each row's k largest entries ≥ floor."""
    if floor > 0:
        sims.data[sims.data < floor] = 0.0
        sims.eliminate_zeros()
    counts = np.diff(sims.indptr)
    row_of = np.repeat(np.arange(sims.shape[0], dtype=np.int64), counts)
    order = _by_row_best_first(row_of, sims.data)
    rank = np.arange(len(order)) - sims.indptr[row_of[order]]
    take = order[rank < k]
    return row_of[take], sims.indices[take].astype(np.int64)


def _by_row_best_first(rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Order grouping the entries by (ascending) row, largest value first; values in [0, 1].

    One float argsort on `2·row − value` instead of a two-key lexsort (twice as fast)."""
    return np.argsort(2.0 * rows - np.clip(values, 0.0, 1.0), kind="stable")


def _pair_dots(a: sp.csr_matrix, b: sp.csr_matrix, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
    """a[rows[i]] · b[items[i]] for every pair."""
    if not len(rows):
        return np.zeros(0)
    return np.asarray(a[rows].multiply(b[items]).sum(axis=1), dtype=np.float64).ravel()


def _fill(
    rows: np.ndarray, items: np.ndarray, score: np.ndarray, n: int, k: int, floor: float
) -> tuple[np.ndarray, np.ndarray]:
    """rows×k arrays of the k best (item, score ≥ floor) per row, best first; -1 / 0 elsewhere."""
    out_items = np.full((n, k), -1, dtype=np.int64)
    out_scores = np.zeros((n, k), dtype=np.float64)
    ok = score >= max(floor, 1e-12)
    rows, items, score = rows[ok], items[ok], score[ok]
    order = _by_row_best_first(rows, score)
    rows, items, score = rows[order], items[order], score[order]
    starts = np.searchsorted(rows, rows, side="left")
    rank = np.arange(len(rows)) - starts
    keep = rank < k
    out_items[rows[keep], rank[keep]] = items[keep]
    out_scores[rows[keep], rank[keep]] = np.clip(score[keep], 0.0, 1.0)
    return out_items, out_scores


def _weighted_counts(tokens: Tokens) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(row, term hash, term frequency, has digit) per distinct term of each text."""
    order = np.lexsort((tokens.hashes, tokens.row))
    rows, hashes = tokens.row[order], tokens.hashes[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (rows[1:] != rows[:-1]) | (hashes[1:] != hashes[:-1])
    starts = np.flatnonzero(new)
    tf = np.diff(np.append(starts, len(order))).astype(np.float64)
    return rows[starts], hashes[starts], tf, tokens.is_digit[order][starts]


def _row_norm(rows: np.ndarray, weight: np.ndarray, n: int) -> np.ndarray:
    return np.sqrt(np.maximum(np.bincount(rows, weights=weight**2, minlength=n), 1e-24))
