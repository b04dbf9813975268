"""Exact and near-duplicate detection for prompts and traces.

Exact: texts are normalised (case, whitespace) and hashed; every later copy points to the first.
Near: MinHash (rensa, in Rust) over word k-shingles, then LSH banding and a signature check in numpy.
Memory stays bounded: texts are read batch by batch and only their signatures are kept
(num_perm × 4 bytes per text), never the texts themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import polars as pl

from filters._ngrams import TokenHashes, hash_tokens, shingles

SIG_DTYPE = np.uint32


def exact_keys(texts: pl.Series) -> pl.Series:
    """A 64-bit hash of each text after lower-casing and collapsing whitespace (null stays null)."""
    frame = pl.DataFrame({"t": texts})
    norm = pl.col("t").str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars()
    return frame.select(pl.when(pl.col("t").is_null()).then(None).otherwise(norm.hash(seed=7)).alias("k"))[
        "k"
    ]


def token_keys(tok: TokenHashes) -> pl.Series:
    """A 64-bit key per text from its normalised tokens (case, whitespace, punctuation and LaTeX spacing
    ignored), computed from token hashes already at hand; empty texts get null."""
    if tok.rows == 0:
        return pl.Series([], dtype=pl.UInt64)
    lengths = tok.lengths
    row_of = np.repeat(np.arange(tok.rows, dtype=np.int64), lengths)
    position = np.arange(len(tok.hashes), dtype=np.uint64) - tok.offsets[:-1][row_of].astype(np.uint64)
    with np.errstate(over="ignore"):
        # a different odd multiplier per position makes the sum order-sensitive
        weighted = tok.hashes * ((position + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15) | np.uint64(1))
        keys = np.zeros(tok.rows, dtype=np.uint64)
        np.add.at(keys, row_of, weighted)
        keys ^= lengths.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
    return (
        pl.Series(keys).scatter(np.flatnonzero(lengths == 0), None)
        if (lengths == 0).any()
        else pl.Series(keys)
    )


def find_exact_duplicates(keys: pl.Series, ids: pl.Series) -> pl.Series:
    """For each row, the id of the first row with the same key (null for that first row and null keys)."""
    frame = pl.DataFrame({"k": keys, "id": ids}).with_row_index("i")
    first = (
        frame.filter(pl.col("k").is_not_null())
        .group_by("k")
        .agg(pl.col("id").first().alias("rep"), pl.col("i").min().alias("ri"))
    )
    out = frame.join(first, on="k", how="left").sort("i")
    return out.select(
        pl.when(pl.col("i") != pl.col("ri")).then(pl.col("rep")).otherwise(None).alias("dup_of")
    )["dup_of"]


@dataclass(frozen=True)
class MinHashParams:
    """MinHash LSH settings: Jaccard `threshold` over word `shingle`-grams with `num_perm` permutations."""

    num_perm: int = 128
    shingle: int = 5
    threshold: float = 0.8
    seed: int = 42

    def bands(self) -> tuple[int, int]:
        """(bands, rows per band) that put the LSH S-curve's midpoint nearest the threshold."""
        best, best_err = (self.num_perm, 1), float("inf")
        for b in range(1, self.num_perm + 1):
            if self.num_perm % b:
                continue
            r = self.num_perm // b
            err = abs((1 / b) ** (1 / r) - self.threshold)
            if err < best_err:
                best, best_err = (b, r), err
        return best


def minhash_signatures(tok: TokenHashes, params: MinHashParams) -> np.ndarray:
    """MinHash signatures (rows × num_perm, uint32) of tokenised texts; empty texts get all-max rows."""
    import rensa

    grams, offsets = shingles(tok, params.shingle)
    if tok.rows == 0:
        return np.zeros((0, params.num_perm), dtype=SIG_DTYPE)
    matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(
        grams, offsets.astype(np.uint64), params.num_perm, params.seed
    )
    sig = np.asarray(matrix.to_rows(), dtype=SIG_DTYPE).reshape(tok.rows, params.num_perm)
    sig[np.diff(offsets) == 0] = np.iinfo(SIG_DTYPE).max
    return sig


class NearDuplicateFinder:
    """Feed texts batch by batch; `representatives()` maps every row to its cluster's first row."""

    def __init__(self, params: MinHashParams | None = None) -> None:
        self.params = params or MinHashParams()
        self._sigs: list[np.ndarray] = []
        self._empty: list[np.ndarray] = []

    def add(self, texts: pl.Series | TokenHashes) -> None:
        tok = texts if isinstance(texts, TokenHashes) else hash_tokens(texts)
        self._sigs.append(minhash_signatures(tok, self.params))
        self._empty.append(tok.lengths == 0)

    @property
    def rows(self) -> int:
        return sum(len(s) for s in self._sigs)

    def representatives(self, active: np.ndarray | None = None) -> np.ndarray:
        """Row index of each row's representative (itself when unique).

        Only `active` rows (default: all) are compared, so a representative is never a row that an
        earlier rule already rejected; inactive and empty rows are their own representatives.
        """
        if not self._sigs:
            return np.zeros(0, dtype=np.int64)
        sig = np.concatenate(self._sigs)
        empty = np.concatenate(self._empty)
        if active is not None:
            empty = empty | ~np.asarray(active, dtype=bool)
        n = len(sig)
        parent = np.arange(n, dtype=np.int64)
        bands, r = self.params.bands()
        candidates = []
        for b in range(bands):
            keys = _band_keys(sig[:, b * r : (b + 1) * r])
            frame = pl.DataFrame({"k": keys, "i": np.arange(n)}).filter(pl.Series(~empty))
            firsts = (
                frame.group_by("k")
                .agg(pl.col("i").min().alias("rep"), pl.len().alias("n"))
                .filter(pl.col("n") > 1)
            )
            pairs = frame.join(firsts, on="k").filter(pl.col("i") != pl.col("rep"))
            candidates.append(pairs.select("i", "rep"))
        if not candidates:
            return parent
        pairs = pl.concat(candidates).unique()
        if pairs.height:
            i, rep = pairs["i"].to_numpy(), pairs["rep"].to_numpy()
            similar = (sig[i] == sig[rep]).mean(axis=1) >= self.params.threshold
            for a, b in zip(i[similar].tolist(), rep[similar].tolist(), strict=True):
                _union(parent, a, b)
        while True:  # pointer jumping: every row ends pointing at its root
            nxt = parent[parent]
            if np.array_equal(nxt, parent):
                return parent
            parent = nxt


def find_near_duplicates(batches: Iterable[pl.Series], params: MinHashParams | None = None) -> np.ndarray:
    """Representative row of each row over all batches (a row whose representative is itself is kept)."""
    finder = NearDuplicateFinder(params)
    for batch in batches:
        finder.add(batch)
    return finder.representatives()


def _band_keys(band: np.ndarray) -> np.ndarray:
    """One uint64 per row for a band of signature columns."""
    acc = np.full(len(band), 0xCBF29CE484222325, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(band.shape[1]):
            acc ^= band[:, j].astype(np.uint64)
            acc *= np.uint64(0x100000001B3)
    return acc


def _find(parent: np.ndarray, x: int) -> int:
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:
        parent[x], x = root, parent[x]
    return int(root)


def _union(parent: np.ndarray, a: int, b: int) -> None:
    ra, rb = _find(parent, a), _find(parent, b)
    if ra != rb:  # the smaller index (the earlier row) stays the representative
        parent[max(ra, rb)] = min(ra, rb)
