"""DeepSeek-R1's readability rules: long paragraphs, code blocks in non-code reasoning, repetition
loops and token-length bounds. Every function takes a column and returns a column (no row loops)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from filters._ngrams import TokenHashes, hash_tokens, rolling_ngrams

CODE_FENCE = r"```"
CHARS_PER_TOKEN = 3.6  # rough average for English reasoning with LaTeX under BPE tokenizers


def longest_paragraph(texts: pl.Series) -> pl.Series:
    """Characters of each text's longest run without a line break."""
    frame = pl.DataFrame({"t": texts})
    return frame.select(
        pl.col("t")
        .fill_null("")
        .str.split("\n")
        .list.eval(pl.element().str.len_chars())
        .list.max()
        .fill_null(0)
        .alias("n")
    )["n"]


def has_code_block(texts: pl.Series) -> pl.Series:
    """True where the text contains a Markdown code fence."""
    return pl.DataFrame({"t": texts}).select(
        pl.col("t").fill_null("").str.contains(CODE_FENCE, literal=True).alias("c")
    )["c"]


def repetition_share(texts: pl.Series | TokenHashes, n: int = 20) -> pl.Series:
    """Share of each text's word n-grams that repeat an n-gram seen earlier in the same text.

    Healthy reasoning stays near 0 (median 0.002 on Sky-T1 MATH-500 traces); a generation stuck in a
    loop climbs past 0.9 (Sky-T1-14B runaway AIME traces).
    """
    tok = texts if isinstance(texts, TokenHashes) else hash_tokens(texts)
    grams, rows = rolling_ngrams(tok, n)
    share = np.zeros(tok.rows, dtype=np.float64)
    if len(grams):
        agg = (
            pl.DataFrame({"r": rows, "g": grams})
            .group_by("r")
            .agg(pl.len().alias("total"), pl.col("g").n_unique().alias("unique"))
        )
        share[agg["r"].to_numpy()] = 1.0 - agg["unique"].to_numpy() / agg["total"].to_numpy()
    return pl.Series(share)


def count_tokens(texts: pl.Series, tokenizer: str | Path | None = None, *, batch: int = 1024) -> pl.Series:
    """Token count per text with a Hugging Face tokenizer (a local path or cached name), else chars/3.6."""
    if tokenizer is None:
        return pl.DataFrame({"t": texts}).select(
            (pl.col("t").fill_null("").str.len_chars() / CHARS_PER_TOKEN).ceil().cast(pl.Int64).alias("n")
        )["n"]
    from transformers import AutoTokenizer

    from distill.errors import ConfigError

    try:
        tok = AutoTokenizer.from_pretrained(str(tokenizer))
    except (OSError, ValueError) as e:
        raise ConfigError(f"tokenizer {tokenizer}: cannot load ({str(e).splitlines()[0][:120]})") from e
    values = texts.fill_null("").to_list()
    counts: list[int] = []
    for i in range(0, len(values), batch):
        enc = tok(values[i : i + batch], add_special_tokens=False)["input_ids"]
        counts.extend(len(ids) for ids in enc)
    return pl.Series(counts, dtype=pl.Int64)
