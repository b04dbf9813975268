"""Exact and near-duplicate detection on real problems."""

from __future__ import annotations

import random

import numpy as np
import polars as pl

from distill.evaluation.benchmarks import load_benchmark
from filters.dedup import (
    MinHashParams,
    NearDuplicateFinder,
    exact_keys,
    find_exact_duplicates,
    find_near_duplicates,
)
from tests.filters._data import reorder_clauses


def test_exact_duplicates_ignore_case_and_whitespace_and_point_to_the_first():
    texts = pl.Series(["Find  x.", "find x.\n", None, "Find y.", "FIND X."])
    dup_of = find_exact_duplicates(exact_keys(texts), pl.Series(["a", "b", "c", "d", "e"]))
    assert dup_of.to_list() == [None, "a", None, None, "a"]


def test_near_duplicates_group_reordered_copies_under_the_original(shared_data):
    problems = load_benchmark("math500", shared_data / "benchmarks" / "math500_test.jsonl").rows["problem"]
    rng = random.Random(1)
    edited = pl.Series([reorder_clauses(p, rng) for p in problems[:200]])
    # batches of any size give the same answer: signatures, not texts, are kept between batches
    one = find_near_duplicates([pl.concat([problems, edited])], MinHashParams(shingle=3, threshold=0.7))
    many = find_near_duplicates(
        [problems[:250], problems[250:], edited[:100], edited[100:]], MinHashParams(shingle=3, threshold=0.7)
    )
    assert np.array_equal(one, many)
    copies = many[500:]
    assert (copies == np.arange(200)).mean() > 0.85  # a reordered copy points at its original
    assert (many[:500] == np.arange(500)).mean() > 0.97  # distinct problems stay their own


def test_finder_memory_is_signatures_only(shared_data):
    rng = random.Random(0)
    body = " ".join(f"w{rng.randrange(10_000)}" for _ in range(4000))
    texts = pl.Series([f"{body} end{i}" for i in range(50)])  # 50 × 24 KB, equal but for the last word
    finder = NearDuplicateFinder(MinHashParams(num_perm=64))
    finder.add(texts)
    held = sum(s.nbytes for s in finder._sigs) + sum(e.nbytes for e in finder._empty)
    assert held <= 50 * (64 * 4 + 1)
    assert (finder.representatives() == 0).all()  # identical but for one word: one cluster
