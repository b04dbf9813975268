r"""Cheap agreement signals between a text and a benchmark item: the math they state and their answers.

A reworded benchmark problem keeps its numbers and formulas ("16 eggs", "$x^3 - 2x + 1$") and its
answer; a template sibling keeps the wording and changes them ("arccos" for "arcsin", another
polynomial, other numbers). So after retrieval the decisive signal is the agreement of the *math
terms*: every number, and the tokens and token bigrams inside $…$, \[…\] and \(…\). Two shares,
weighted by how rare a term is among the benchmark's items (an item's "2016" is strong evidence,
its "2" is not):

    recall     of the item's math terms found anywhere in the text (a rewrite may drop the $…$),
    precision  of the text's math terms found anywhere in the item (a sibling adds a term "x^6").

Number words count as digits ("three" = "3", "a dozen" = "12") and thousands separators are
dropped ("9,300" = "9300"): `_retrieval.Tokens` does both, for retrieval and here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import polars as pl

from filters._ngrams import SEED
from filters._retrieval import NUMBER_WORDS, Tokens

# ASCII word boundaries: Unicode ones make the Rust regex several times slower on long texts
_NUMBER = r"(?i)\d+|(?-u:\b)(?:" + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True)) + r")(?-u:\b)"
_PROSE = r"[A-Za-z]{3,}[,.]? [A-Za-z]{3,}"
_MATH_SPAN = r"\$\$.+?\$\$|\$[^$]+\$|\\\[.+?\\\]|\\\(.+?\\\)"
_ASY = re.compile(r"\[asy\](.*?)(?:\[/asy\]|$)", re.S)
_ASY_LABEL = re.compile(r'label\s*\(\s*"([^"]*)"')


def strip_figures(texts: pl.Series) -> pl.Series:
    """Each [asy]…[/asy] figure replaced by the texts of its labels.

    A figure's drawing code (coordinates, pens, sizes) is most of a MATH geometry item's numbers
    and terms; a rewrite states what the figure shows ("the angle at F is 105°") and keeps only
    what its labels say. Python regexes on the few texts that have a figure: the rest pass untouched.
    """
    texts = texts.cast(pl.String)
    rows = np.flatnonzero(texts.str.contains("[asy]", literal=True).fill_null(False).to_numpy())
    if not len(rows):
        return texts
    out = texts.to_list()
    for r in rows:
        out[r] = _ASY.sub(lambda m: " " + " ".join(_ASY_LABEL.findall(m.group(1))) + " ", out[r])
    return pl.Series(texts.name, out, dtype=pl.String)


def math_tokens(texts: pl.Series, *, max_chars: int | None = None) -> tuple[Tokens, Tokens]:
    """(all terms, math terms) of texts. Math terms: the tokens and bigrams of each formula span
    (no bigram across two spans) and every number of the prose as a unigram."""
    frame = pl.DataFrame({"t": texts}, schema={"t": pl.String}).with_columns(pl.col("t").fill_null(""))
    if max_chars is not None:
        frame = frame.select(pl.col("t").str.slice(0, max_chars))
    text = pl.col("t").str.replace_all(r"(\d),(\d{3})(?-u:\b)", "$1$2")
    parts = frame.select(
        spans=text.str.replace_all(r"\s+", " ").str.extract_all(_MATH_SPAN),
        numbers=text.str.extract_all(_NUMBER).list.join(" "),
    )
    spans = parts.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("row"), "spans").explode("spans")
    # "$4 each and $2 per can": dollar amounts in prose, not a formula
    spans = spans.drop_nulls("spans").filter(~pl.col("spans").str.contains(_PROSE))
    in_spans = Tokens.of(spans["spans"])
    numbers = Tokens.of(parts["numbers"], bigrams=False)
    span_row = spans["row"].to_numpy()
    math = Tokens(
        np.concatenate([in_spans.hashes, numbers.hashes]),
        np.concatenate([in_spans.is_digit, numbers.is_digit]),
        np.concatenate([span_row[in_spans.row], numbers.row]),
        frame.height,
    )
    return Tokens.of(frame["t"]), math


@dataclass
class MathTerms:
    """The benchmark's math terms: each item's distinct terms with their idf, and all its terms."""

    item_math: pl.DataFrame  # item (int64), term (uint64), digit (bool), idf (float64)
    item_all: pl.DataFrame  # item (int64), term (uint64): every term of the item
    idf: pl.DataFrame  # term, idf
    max_idf: float  # idf of a term no item has

    @classmethod
    def build(cls, every: Tokens, math: Tokens) -> MathTerms:
        n = every.rows
        pairs = _distinct(math).rename({"row": "item"})
        idf = (
            pairs.group_by("term").len().select("term", idf=(((1.0 + n) / (1.0 + pl.col("len"))).log() + 1.0))
        )
        return cls(
            pairs.join(idf, on="term", how="left"),
            _distinct(every).rename({"row": "item"}).drop("digit"),
            idf,
            float(np.log(1.0 + n) + 1.0),
        )


@dataclass
class Agreement:
    """Per candidate pair, idf-weighted shares; NaN where the side has no such term.

    `number_*` are the terms with a digit ("16", "x 3"), `symbol_*` the other math terms
    ("arcsin", "sqrt", "x y").
    """

    number_recall: np.ndarray
    number_precision: np.ndarray
    symbol_recall: np.ndarray
    symbol_precision: np.ndarray


def math_agreement(pairs: pl.DataFrame, every: Tokens, math: Tokens, terms: MathTerms) -> Agreement:
    """Agreement of the math terms of each candidate pair (columns pair 0..n-1, row, item).

    recall: share of the item's math terms found anywhere in the text; precision: share of the
    text's math terms found anywhere in the item.
    """
    n = pairs.height
    rows = pairs.select("row").unique()
    # a semi join needs no distinct rows: only the text's math terms are summed, and deduplicated
    text_all = pl.DataFrame({"row": every.row, "term": every.hashes}).join(rows, on="row", how="semi")
    text_math = (
        _distinct(math.subset(rows["row"].to_numpy()))
        .join(terms.idf, on="term", how="left")
        .with_columns(pl.col("idf").fill_null(terms.max_idf))
    )
    recall = _shares(pairs.join(terms.item_math, on="item"), text_all, ["row", "term"], n)
    precision = _shares(pairs.join(text_math, on="row"), terms.item_all, ["item", "term"], n)
    return Agreement(recall[1], precision[1], recall[0], precision[0])


def _shares(candidates: pl.DataFrame, found_in: pl.DataFrame, on: list[str], n: int) -> list[np.ndarray]:
    """Per kind (symbol, number): idf share of the candidates' terms present in `found_in`."""
    totals = candidates.group_by("pair", "digit").agg(pl.col("idf").sum().alias("total"))
    hits = (
        candidates.join(found_in, on=on, how="semi")
        .group_by("pair", "digit")
        .agg(pl.col("idf").sum().alias("hit"))
    )
    joined = totals.join(hits, on=["pair", "digit"], how="left").with_columns(pl.col("hit").fill_null(0.0))
    out = []
    for digit in (False, True):
        share = np.full(n, np.nan)
        part = joined.filter(pl.col("digit") == digit)
        share[part["pair"].to_numpy()] = np.minimum(part["hit"].to_numpy() / part["total"].to_numpy(), 1.0)
        out.append(share)
    return out


def number_terms(texts: pl.Series, *, words: bool = True) -> pl.DataFrame:
    """(row, term) for every distinct number of each text, hashed as `Tokens` hashes them.

    A regex pass only (no tokenising, no bigrams). `words=False` reads digit runs only, a much
    cheaper regex for 20 KB reasoning traces.
    """
    text = pl.col("t").fill_null("")
    if words:
        text = text.str.to_lowercase()  # then the word alternation needs no (?i): 3x faster
    found = text.str.replace_all(r"(\d),(\d{3})(?-u:\b)", "$1$2").str.extract_all(
        _NUMBER.removeprefix("(?i)") if words else r"\d+"
    )
    if words:
        found = found.list.eval(pl.element().replace(NUMBER_WORDS))
    numbers = pl.DataFrame({"t": texts}, schema={"t": pl.String}).select(found.list.unique().alias("term"))
    frame = numbers.with_row_index("row").explode("term").drop_nulls("term")
    return frame.select(pl.col("row").cast(pl.Int64), pl.col("term").hash(seed=SEED))


def number_recall(
    text_numbers: pl.DataFrame, items: np.ndarray, item_numbers: pl.DataFrame, weight: np.ndarray
) -> np.ndarray:
    """Per text row i: idf share of item `items[i]`'s numbers that text i states (NaN: item has none)."""
    pairs = pl.DataFrame({"row": np.arange(len(items), dtype=np.int64), "item": items})
    found = (
        pairs.join(item_numbers, on="item")
        .join(text_numbers, on=["row", "term"], how="semi")
        .group_by("row")
        .agg(pl.col("idf").sum())
    )
    hit = np.zeros(len(items))
    hit[found["row"].to_numpy()] = found["idf"].to_numpy()
    total = weight[items]
    out = np.full(len(items), np.nan)
    np.divide(hit, total, out=out, where=total > 0)
    return np.minimum(out, 1.0)


def _distinct(tokens: Tokens) -> pl.DataFrame:
    return pl.DataFrame({"row": tokens.row, "term": tokens.hashes, "digit": tokens.is_digit}).unique(
        ["row", "term"]
    )


_BOXED = re.compile(r"\\boxed\s*\{")


def final_answer(text: str | None) -> str | None:
    """The content of the last \\boxed{…} of a text, or None."""
    if not text:
        return None
    starts = [m.end() for m in _BOXED.finditer(text)]
    if not starts:
        return None
    depth, i = 1, starts[-1]
    for j in range(i, min(len(text), i + 1000)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i:j]
    return None


def normalize_answer_expr(expr: pl.Expr) -> pl.Expr:
    """A comparable form of a final answer: no spacing, $, \\left/\\right, \\text, degrees, leading zeros."""
    return (
        expr.cast(pl.String)
        .str.to_lowercase()
        .str.replace_all(r"\\boxed\s*\{(.*)\}", "$1")
        .str.replace_all(
            r"\\(?:left|right|displaystyle|text|mathrm|mbox|!|,|;|:)|\$|\s|\^\\circ|\^\{\\circ\}", ""
        )
        .str.replace_all(r"\\[dt]frac", r"\frac")
        .str.replace_all(r"\\frac(\d)(\d)", r"\frac{$1}{$2}")
        .str.replace_all(r"[{}]", "")
        .str.replace(r"^0+(\d)", "$1")
        .str.replace(r"(\.\d*?)0+$", "$1")
        .str.replace(r"\.$", "")
    )
