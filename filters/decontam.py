"""N-gram decontamination of prompts, traces and answers against evaluation benchmarks.

An index holds the hashed word n-grams (n = 8 by default; DeepSeek-R1 used 10) of every benchmark
problem after normalisation (case, punctuation, LaTeX spacing). A text is contaminated by a benchmark
item when it shares at least `min_matches` of that item's n-grams. Two refinements over the usual
"exact 8-gram of the prompt" check:

* problems shorter than n words are matched whole: a text contaminates when it contains the problem's
  entire token sequence (at least `min_short_tokens` tokens; shorter ones must equal the prompt);
* stock wording is not evidence: n-grams made mostly of stop-list phrases ("where m and n are
  relatively prime positive integers. Find m+n"), and n-grams shared by more than
  `max_item_frequency` benchmark items, are removed from the index;
* the stop list is also learned from the benchmark itself: a word `stop_ngram`-gram found in at least
  `stop_min_items` items (and in 0.2% of them) is boilerplate ("the sum of the coefficients", "what
  is the probability that"), so an 8-gram made mostly of such words is no evidence either. With
  MATH-500 alone this takes the false flags on the 4,500 other MATH test problems from 2.5% to 1.9%;
  the rest are mostly template siblings that the filter stage tells apart by their numbers
  (filters.decontam_semantic.confirm_by_numbers: 0.87%, all 500 MATH-500 problems still caught).
  An item made only of such boilerplate keeps its n-grams but must be matched in full.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, cast

import numpy as np
import polars as pl

from filters._ngrams import _PRIME, TokenHashes, hash_tokens, tokens_expr, whole_text_hashes


class _Spec(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...


class _Benchmark(Protocol):
    """What the index reads of a `distill.evaluation.benchmarks.Benchmark` (filters import nothing above them)."""

    @property
    def spec(self) -> _Spec: ...
    @property
    def rows(self) -> pl.DataFrame: ...


DEFAULT_STOP_PHRASES: tuple[str, ...] = (
    "where m and n are relatively prime positive integers find m n",
    "where m and n are relatively prime positive integers",
    "m and n are relatively prime positive integers find m n",
    "where p and q are relatively prime positive integers find p q",
    "find the remainder when it is divided by 1000",
    "is divided by 1000",
    "express your answer as a common fraction",
    "express your answer in simplest radical form",
    "express your answer in terms of pi",
    "express your answer as a decimal to the nearest tenth",
    "express your answer as a mixed number",
    "express your answer in simplest form",
    "enter all the solutions separated by commas",
    "enter your answer as an ordered pair",
    "please reason step by step and put your final answer within boxed",
    "let's think step by step",
    "return your final response within boxed",
    "what is the value of",
    "how many positive integers",
    "what is the sum of all",
    "find the number of ordered pairs",
    "find the greatest integer less than or equal to",
    "the diagram below",
    "as shown in the figure",
)


@dataclass
class BenchmarkIndex:
    """Hashed n-grams of benchmark problems, each pointing at one item."""

    n: int
    ngrams: np.ndarray  # sorted unique uint64
    ngram_item: np.ndarray  # int64, item index of each n-gram
    short: dict[int, tuple[np.ndarray, np.ndarray]]  # token length k < n → (sorted hashes, item index)
    whole: tuple[np.ndarray, np.ndarray]  # whole-problem hash of every item → item index (sorted)
    items: pl.DataFrame  # benchmark, id, problem, tokens
    bitmap: np.ndarray  # bool prefilter over the top bits of every indexed hash (n-grams and short problems)
    item_ngrams: np.ndarray  # int64 per item: how many distinct indexed n-grams it has (short items: 1)
    item_min_coverage: np.ndarray  # float64 per item: least coverage it needs (1.0: all boilerplate)
    benchmarks: dict[str, dict] = field(default_factory=dict)  # name → {"version", "items"}
    dropped_stop: int = 0
    dropped_frequent: int = 0

    def label(self, item: int) -> str:
        return f"{self.items['benchmark'][item]}:{self.items['id'][item]}"


def build_index(
    benchmarks: Sequence[_Benchmark | tuple[str, str, pl.DataFrame]],
    *,
    n: int = 8,
    stop_phrases: Sequence[str] = DEFAULT_STOP_PHRASES,
    max_item_frequency: int = 5,
    min_short_tokens: int = 3,
    stop_ngram: int | None = 3,
    stop_min_items: int = 3,
) -> BenchmarkIndex:
    """Index benchmark problems (`distill.evaluation.benchmarks.Benchmark` objects, or (name, version, frame) tuples)."""
    frames, meta = [], {}
    for b in benchmarks:
        if hasattr(b, "spec"):
            bench = cast(_Benchmark, b)
            name, version, rows = bench.spec.name, bench.spec.version, bench.rows
        else:
            name, version, rows = cast("tuple[str, str, pl.DataFrame]", b)
        frames.append(rows.select(pl.lit(name).alias("benchmark"), pl.col("id").cast(pl.String), "problem"))
        meta[name] = {"version": version, "items": rows.height}
    items = (
        pl.concat(frames)
        if frames
        else pl.DataFrame(schema={"benchmark": pl.String, "id": pl.String, "problem": pl.String})
    )
    items = items.with_columns(tokens=tokens_expr(pl.col("problem")))
    tok = hash_tokens(items["problem"])
    stop_mask = _stop_token_mask(tok, stop_phrases)
    grams, rows, masked = _ngrams_with_mask(tok, stop_mask, n)
    keep = masked * 2 < n  # mostly stock wording → not evidence
    item_min_coverage = np.zeros(tok.rows)
    if stop_ngram:
        learned = stop_mask | _learned_stop_mask(
            tok, stop_ngram, max(stop_min_items, int(np.ceil(0.002 * tok.rows)))
        )
        strict = _ngrams_with_mask(tok, learned, n)[2] * 2 < n
        # An item made only of learned boilerplate keeps its n-grams but must be matched in full
        # (coverage 1): matching it whole token by token would make passes over long traces slow.
        kept_items = np.bincount(rows[strict], minlength=tok.rows) > 0
        fallback = keep & ~kept_items[rows]
        item_min_coverage[np.unique(rows[fallback])] = 1.0
        keep = strict | fallback
    dropped_stop = int((~keep).sum())
    grams, rows = grams[keep], rows[keep]
    # n-grams spread over many items are template wording of the benchmark itself
    pairs = pl.DataFrame({"g": grams, "r": rows}).unique()
    freq = pairs.group_by("g").agg(pl.len().alias("items"), pl.col("r").min().alias("r"))
    frequent = freq.filter(pl.col("items") > max_item_frequency)
    freq = freq.filter(pl.col("items") <= max_item_frequency).sort("g")

    lengths = tok.lengths
    item_ngrams = np.bincount(freq["r"].to_numpy(), minlength=tok.rows).astype(np.int64)
    whole = whole_text_hashes(tok, max_len=int(lengths.max(initial=0)))
    # short problems, and problems whose every n-gram was stock wording, are matched whole
    whole_match = (lengths >= min_short_tokens) & ((lengths < n) | (item_ngrams == 0))
    item_ngrams[whole_match] = 1
    short: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for k in sorted(set(lengths[whole_match].tolist())):
        idx = np.flatnonzero(whole_match & (lengths == k))
        order = np.argsort(whole[idx])
        short[int(k)] = (whole[idx][order], idx[order])
    nonempty = np.flatnonzero(lengths > 0)  # an empty item (blank, null, punctuation) matches nothing
    order = nonempty[np.argsort(whole[nonempty])]
    return BenchmarkIndex(
        n=n,
        ngrams=freq["g"].to_numpy(),
        ngram_item=freq["r"].to_numpy().astype(np.int64),
        short=short,
        whole=(whole[order], order.astype(np.int64)),
        items=items,
        item_ngrams=item_ngrams,
        item_min_coverage=item_min_coverage,
        benchmarks=meta,
        bitmap=_prefilter(np.concatenate([freq["g"].to_numpy(), *(t for t, _ in short.values())])),
        dropped_stop=dropped_stop,
        dropped_frequent=frequent.height,
    )


@dataclass
class Matches:
    """Per text: the best-matching item (or -1) and how many of its n-grams matched."""

    item: np.ndarray  # int64, -1 when clean
    count: np.ndarray  # int64: distinct shared n-grams
    coverage: np.ndarray  # float64: share of the item's n-grams found in the text


def find_matches(
    texts: pl.Series | TokenHashes,
    index: BenchmarkIndex,
    *,
    min_matches: int = 1,
    min_coverage: float = 0.0,
    whole_text: bool = False,
) -> Matches:
    """Match texts against the index; `whole_text` also counts a text equal to a (however short) problem.

    A text matches an item when it shares at least `min_matches` distinct n-grams with it and they
    cover at least `min_coverage` of the item's indexed n-grams.
    """
    tok = texts if isinstance(texts, TokenHashes) else hash_tokens(texts)
    rows_hit, items_hit, grams_hit = [], [], []
    wanted = set(index.short) | {index.n}
    total = len(tok.hashes)
    if total:
        row_of = np.repeat(np.arange(tok.rows, dtype=np.int64), tok.lengths)
        h = np.concatenate([tok.hashes, np.zeros(max(wanted), dtype=np.uint64)])
        acc = np.zeros(total, dtype=np.uint64)
        top = np.empty(total, dtype=np.uint64)
        shift = np.uint64(64 - _BITS)
        with np.errstate(over="ignore"):
            for j in range(max(wanted)):
                acc *= _PRIME
                acc += h[j : j + total]
                k = j + 1
                if k not in wanted:
                    continue
                # the bitmap rules out almost every k-gram with one gather; only the rest is checked
                np.right_shift(acc, shift, out=top)  # < 2^_BITS, so the int64 view is exact
                start = np.flatnonzero(index.bitmap[top.view(np.int64)])
                end = start + j
                start = start[(end < total) & (row_of[np.minimum(end, total - 1)] == row_of[start])]
                tables = [index.short[k]] if k in index.short else []
                if k == index.n:  # an n-token item whose one n-gram was boilerplate sits in short[n]
                    tables.append((index.ngrams, index.ngram_item))
                for table, item_of in tables:
                    hit_rows, hit_items, hit_grams = _lookup(acc[start], row_of[start], table, item_of)
                    rows_hit.append(hit_rows)
                    items_hit.append(hit_items)
                    grams_hit.append(hit_grams)
    if whole_text and len(index.whole[0]):
        # texts longer than index.n get hash 0 from whole_text_hashes: only the short, non-empty ones are looked up
        fits = np.flatnonzero((tok.lengths > 0) & (tok.lengths <= index.n))
        hit_rows, hit_items, hit_grams = _lookup(
            whole_text_hashes(tok, max_len=index.n)[fits], fits.astype(np.int64), *index.whole
        )
        rows_hit.append(hit_rows)
        items_hit.append(hit_items)
        grams_hit.append(hit_grams)
    item = np.full(tok.rows, -1, dtype=np.int64)
    count = np.zeros(tok.rows, dtype=np.int64)
    coverage = np.zeros(tok.rows, dtype=np.float64)
    if rows_hit and sum(len(r) for r in rows_hit):
        hits = pl.DataFrame(
            {
                "row": np.concatenate(rows_hit),
                "item": np.concatenate(items_hit),
                "g": np.concatenate(grams_hit),
            }
        )
        best = hits.group_by("row", "item").agg(pl.col("g").n_unique().alias("n"))
        of_item = best["item"].to_numpy()
        best = (
            best.with_columns(
                cov=(best["n"] / np.maximum(index.item_ngrams[of_item], 1)).clip(upper_bound=1.0),
                need=np.maximum(min_coverage, index.item_min_coverage[of_item]),
            )
            .filter((pl.col("n") >= min_matches) & (pl.col("cov") >= pl.col("need")))
            .sort(["row", "cov", "n", "item"], descending=[False, True, True, False])
            .unique("row", keep="first")
        )
        rows = best["row"].to_numpy()
        item[rows], count[rows], coverage[rows] = best["item"].to_numpy(), best["n"].to_numpy(), best["cov"]
    return Matches(item, count, coverage)


def labels(matches: Matches, index: BenchmarkIndex) -> pl.Series:
    """ "benchmark:item_id" per text, null when clean."""
    bench = index.items["benchmark"].to_numpy()
    ids = index.items["id"].to_numpy()
    out = [None if i < 0 else f"{bench[i]}:{ids[i]}" for i in matches.item]
    return pl.Series(out, dtype=pl.String)


def shared_snippet(text: str, item: int, index: BenchmarkIndex, width: int = 12) -> str:
    """The first stretch of the item's normalised words that also occurs in `text` (for reports)."""
    item_tokens = index.items["tokens"][item].to_list()
    text_tokens = pl.DataFrame({"t": [text]}).select(tokens_expr(pl.col("t")))["t"][0].to_list()
    k = min(index.n, len(item_tokens))
    seen = {tuple(text_tokens[i : i + k]) for i in range(len(text_tokens) - k + 1)}
    for i in range(len(item_tokens) - k + 1):
        if tuple(item_tokens[i : i + k]) in seen:
            return " ".join(item_tokens[i : i + max(k, width)])
    return " ".join(item_tokens[:width])


# ── internals ──────────────────────────────────────────────────────────────
def _rolling(tok: TokenHashes, n: int, wanted: set[int]):
    """Yield (k, hashes, rows) of the k-grams for each wanted k ≤ n, computed in one incremental pass."""
    total = len(tok.hashes)
    if total == 0:
        return
    row_of = np.repeat(np.arange(tok.rows, dtype=np.int64), tok.lengths)
    row_pad = np.concatenate([row_of, np.full(n, -1, dtype=np.int64)])
    h = np.concatenate([tok.hashes, np.zeros(n, dtype=np.uint64)])
    acc = np.zeros(total, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(n):
            acc *= _PRIME
            acc += h[j : j + total]
            k = j + 1
            if k in wanted:
                valid = row_of == row_pad[j : j + total]
                yield k, acc[valid], row_of[valid]


_BITS = 26  # prefilter bitmap of 2^26 bits (8 MB): one gather rules out almost every n-gram


def _prefilter(table: np.ndarray) -> np.ndarray:
    bitmap = np.zeros(1 << _BITS, dtype=bool)
    bitmap[(table >> np.uint64(64 - _BITS)).astype(np.int64)] = True
    return bitmap


def _lookup(
    grams: np.ndarray,
    rows: np.ndarray,
    table: np.ndarray,
    item_of: np.ndarray,
    bitmap: np.ndarray | None = None,
):
    if len(table) == 0 or len(grams) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint64)
    if bitmap is not None:
        maybe = bitmap[(grams >> np.uint64(64 - _BITS)).astype(np.int64)]
        grams, rows = grams[maybe], rows[maybe]
    pos = np.searchsorted(table, grams)
    pos[pos == len(table)] = 0
    hit = table[pos] == grams
    return rows[hit], item_of[pos[hit]], grams[hit]


def _stop_token_mask(tok: TokenHashes, phrases: Sequence[str]) -> np.ndarray:
    """True for every token covered by an occurrence of a stop phrase."""
    mask = np.zeros(len(tok.hashes), dtype=bool)
    if not phrases or not len(tok.hashes):
        return mask
    ptok = hash_tokens(pl.Series(list(phrases)))
    by_len: dict[int, set[int]] = {}
    for i, k in enumerate(ptok.lengths.tolist()):
        if k:
            sub = TokenHashes(ptok.hashes[ptok.offsets[i] : ptok.offsets[i + 1]], np.array([0, k]))
            by_len.setdefault(k, set()).add(int(whole_text_hashes(sub)[0]))
    row_of = np.repeat(np.arange(tok.rows, dtype=np.int64), tok.lengths)
    starts = np.arange(len(tok.hashes))
    for k, grams, _rows in _rolling(tok, max(by_len), set(by_len)):
        valid_starts = starts[row_of == np.concatenate([row_of, np.full(k, -1)])[k - 1 : k - 1 + len(row_of)]]
        hit = np.isin(grams, np.fromiter(by_len[k], dtype=np.uint64))
        for offset in range(k):
            mask[valid_starts[hit] + offset] = True
    return mask


def _learned_stop_mask(tok: TokenHashes, k: int, min_items: int) -> np.ndarray:
    """True for every token covered by a k-gram that occurs in at least `min_items` items."""
    mask = np.zeros(len(tok.hashes), dtype=bool)
    row_of = np.repeat(np.arange(tok.rows, dtype=np.int64), tok.lengths)
    for _k, grams, rows in _rolling(tok, k, {k}):
        starts = np.flatnonzero(
            row_of == np.concatenate([row_of, np.full(k, -1)])[k - 1 : k - 1 + len(row_of)]
        )
        spread = pl.DataFrame({"g": grams, "r": rows}).unique().group_by("g").len()
        frequent = spread.filter(pl.col("len") >= min_items)["g"].to_numpy()
        hit = starts[np.isin(grams, frequent)]
        for offset in range(k):
            mask[hit + offset] = True
    return mask


def _ngrams_with_mask(tok: TokenHashes, mask: np.ndarray, n: int):
    """All n-grams with their row and the number of stop-masked tokens in each."""
    total = len(tok.hashes)
    for _k, grams, rows in _rolling(tok, n, {n}):
        row_of = np.repeat(np.arange(tok.rows, dtype=np.int64), tok.lengths)
        row_pad = np.concatenate([row_of, np.full(n, -1, dtype=np.int64)])
        valid = row_of == row_pad[n - 1 : n - 1 + total]
        csum = np.concatenate([[0], np.cumsum(mask.astype(np.int64))])
        starts = np.flatnonzero(valid)
        masked = csum[starts + n] - csum[starts]
        return grams, rows, masked
    return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
