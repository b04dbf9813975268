"""Vectorised text → normalised tokens → hashed n-grams, shared by dedup, decontamination and readability.

Texts never go through a Python loop: polars normalises and tokenises them (Rust regexes), each token
becomes a 64-bit hash, and numpy builds rolling n-gram hashes over the flat token buffer. The output is
a flat array of hashes plus row offsets (CSR layout), the shape rensa's MinHash takes directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

SEED = 0x5EED  # fixed: hashes must agree between a run's rows and the benchmark index
_PRIME = np.uint64(0x100000001B3)  # FNV-64 prime: the base of the polynomial rolling hash

# LaTeX that changes spacing, sizing or font but not content: dropped before tokenising.
_LATEX_NOISE = (
    r"\\(?:left|right|displaystyle|textstyle|scriptstyle|[bB]igg?[lr]?|quad|qquad|text|mathrm|mathbf|textbf|"
    r"mathit|textit|operatorname|mbox|hbox|boldsymbol|cdot|ldots|cdots|dots)\b|\\[,;:! ]"
)
# One token per run of letters or of digits: "2x" and "2 x" give the same tokens.
_TOKEN = r"\p{L}+|\p{N}+"


def normalize_expr(expr: pl.Expr) -> pl.Expr:
    """Lower-case, drop LaTeX spacing/font commands, unify \\dfrac/\\tfrac, collapse whitespace."""
    return (
        expr.fill_null("")
        .str.to_lowercase()
        .str.replace_all(_LATEX_NOISE, " ")
        .str.replace_all(r"\\[dt]frac", r"\frac")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
    )


def tokens_expr(expr: pl.Expr) -> pl.Expr:
    """The normalised word tokens of a text column (a list column); punctuation is gone."""
    # whitespace needs no collapsing here: tokens are extracted from between it
    lowered = expr.fill_null("").str.to_lowercase().str.replace_all(_LATEX_NOISE, " ")
    return lowered.str.replace_all(r"\\[dt]frac", r"\frac").str.extract_all(_TOKEN)


@dataclass
class TokenHashes:
    """Hashed tokens of many texts: `hashes[offsets[i]:offsets[i+1]]` are text i's tokens."""

    hashes: np.ndarray  # uint64
    offsets: np.ndarray  # int64, len = rows + 1

    @property
    def rows(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def hash_tokens(texts: pl.Series) -> TokenHashes:
    """Tokenise and hash a string Series (nulls count as empty texts)."""
    tokens = pl.DataFrame({"t": texts}).select(tokens_expr(pl.col("t")).alias("t"))["t"]
    lengths = tokens.list.len().fill_null(0).to_numpy().astype(np.int64)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = tokens.explode().drop_nulls()
    hashes = flat.hash(seed=SEED).to_numpy() if flat.len() else np.zeros(0, dtype=np.uint64)
    return TokenHashes(hashes.astype(np.uint64, copy=False), offsets)


def rolling_ngrams(tok: TokenHashes, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every n-gram of every text and the row each came from (texts shorter than n give none)."""
    h, total = tok.hashes, len(tok.hashes)
    if total < n:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    count = total - n + 1
    out = np.zeros(count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(n):
            out *= _PRIME
            out += h[j : j + count]
    row_of = np.repeat(np.arange(tok.rows, dtype=np.int64), tok.lengths)
    # an n-gram starting at i is valid when it ends inside the same text
    valid = row_of[:count] == row_of[n - 1 : n - 1 + count]
    return out[valid], row_of[:count][valid]


def whole_text_hashes(tok: TokenHashes, max_len: int | None = None) -> np.ndarray:
    """One hash per text over its whole token sequence (the same function as an n-gram of its length).

    Texts longer than `max_len` tokens get 0 (callers only need the short ones).
    """
    out = np.zeros(tok.rows, dtype=np.uint64)
    lengths = tok.lengths if max_len is None else np.where(tok.lengths <= max_len, tok.lengths, 0)
    with np.errstate(over="ignore"):
        for i in range(int(lengths.max(initial=0))):
            has = lengths > i
            out[has] = out[has] * _PRIME + tok.hashes[tok.offsets[:-1][has] + i]
    return out


def shingles(tok: TokenHashes, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Word k-shingle hashes per text in CSR form (hashes, offsets); a text shorter than k is one shingle."""
    grams, rows = rolling_ngrams(tok, k)
    counts = np.bincount(rows, minlength=tok.rows).astype(np.int64)
    short = (counts == 0) & (tok.lengths > 0)
    if short.any():
        whole = whole_text_hashes(tok, max_len=k)
        grams = np.concatenate([grams, whole[short]])
        rows = np.concatenate([rows, np.flatnonzero(short)])
        order = np.argsort(rows, kind="stable")
        grams, rows = grams[order], rows[order]
        counts[short] = 1
    offsets = np.zeros(tok.rows + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return grams, offsets
