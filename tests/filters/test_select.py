"""Selection: at most k correct samples per prompt, and the pass-rate band."""

from __future__ import annotations

import polars as pl

from filters.select import in_pass_rate_band, select_top_k


def test_keeps_the_k_shortest_correct_samples_per_prompt():
    frame = pl.DataFrame(
        {
            "p": ["a"] * 4 + ["b"] * 2,
            "ok": [True, True, False, True, False, True],
            "len": [30, 10, 1, 20, 1, 5],
            "s": [0, 1, 2, 3, 0, 1],
        }
    )

    def pick(prefer, k):
        kw = {"group": "p", "eligible": "ok", "length": "len", "order": "s", "prefer": prefer}
        return select_top_k(frame, k, **kw).to_list()

    assert pick("shortest", 2) == [False, True, False, True, False, True]  # never the incorrect 1-long one
    assert pick("first", 2) == [True, True, False, False, False, True]
    assert sum(pick("random", 2)) == 3
    assert pick("shortest", None) == [True, True, False, True, False, True]


def test_pass_rate_band():
    rates = pl.Series([0.0, 0.25, 0.5, 1.0, None])
    assert in_pass_rate_band(rates, 0.1, 0.9).to_list() == [False, True, True, False, False]
    assert in_pass_rate_band(rates, None, None).to_list() == [True] * 5
