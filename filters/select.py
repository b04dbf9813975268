"""Selection among verified samples: at most k correct samples per prompt, and a pass-rate band."""

from __future__ import annotations

from typing import Literal

import polars as pl

Prefer = Literal["shortest", "first", "random"]


def select_top_k(
    frame: pl.DataFrame,
    k: int | None,
    *,
    group: str,
    eligible: str,
    length: str,
    order: str,
    prefer: Prefer = "shortest",
    seed: int = 0,
) -> pl.Series:
    """True for the rows chosen: among `eligible` rows of each `group`, the k preferred ones.

    `prefer`: "shortest" (by `length`, ties by `order`), "first" (by `order`), or "random" (seeded).
    k=None keeps every eligible row.
    """
    if k is None:
        return frame[eligible].fill_null(False)
    if prefer == "shortest":
        keys = [pl.col(length), pl.col(order)]
    elif prefer == "first":
        keys = [pl.col(order)]
    else:
        keys = [pl.col(order).hash(seed=seed)]
    indexed = frame.select(group, eligible, *{c for c in (length, order) if c}).with_row_index("_i")
    chosen = (
        indexed.filter(pl.col(eligible).fill_null(False))
        .sort([group, *keys, "_i"])
        .with_columns(pl.int_range(pl.len()).over(group).alias("_rank"))
        .filter(pl.col("_rank") < k)["_i"]
    )
    return indexed.select(pl.col("_i").is_in(chosen.implode()).alias("chosen"))["chosen"]


def in_pass_rate_band(pass_rate: pl.Series, low: float | None, high: float | None) -> pl.Series:
    """True where the prompt's pass rate lies in [low, high] (a null pass rate is outside any band)."""
    ok = pl.Series([True] * len(pass_rate))
    if low is not None:
        ok = ok & (pass_rate >= low).fill_null(False)
    if high is not None:
        ok = ok & (pass_rate <= high).fill_null(False)
    return ok
