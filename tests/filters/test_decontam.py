"""Decontamination on real benchmarks: MATH-500 inside the 5,000-problem MATH test set, stock AIME
wording, lightly edited copies, and traces that quote a problem."""

from __future__ import annotations

import random

import numpy as np
import polars as pl
import pytest

from distill.evaluation.benchmarks import load_benchmark
from filters.decontam import build_index, find_matches, labels
from filters.dedup import MinHashParams, NearDuplicateFinder
from tests.filters._data import EDITS, traces


@pytest.fixture(scope="module")
def math500(shared_data):
    return load_benchmark("math500", shared_data / "benchmarks" / "math500_test.jsonl")


@pytest.fixture(scope="module")
def index500(math500):
    return build_index([math500])


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


def test_every_math500_problem_is_found_in_the_full_math_test_set(shared_data, math500, index500):
    full = load_benchmark("math", shared_data / "benchmarks" / "mario_math_test5000_answer_types.json").rows
    truth = {_norm(p): i for i, p in zip(math500.rows["id"], math500.rows["problem"], strict=True)}
    is500 = np.array([_norm(p) in truth for p in full["problem"]])
    assert is500.sum() == 500
    m = find_matches(full["problem"], index500, min_coverage=0.2, whole_text=True)
    flagged = m.item >= 0
    found = labels(m, index500)
    short = np.array([len(p.split()) < 8 for p in full["problem"]])
    assert flagged[is500].all(), "every MATH-500 problem, short ones included, must be found"
    assert (is500 & short).sum() >= 10  # the short problems are really in the test
    right_item = [
        found[int(i)] == f"math500:{truth[_norm(full['problem'][int(i)])]}" for i in np.flatnonzero(is500)
    ]
    assert np.mean(right_item) > 0.99
    false_flag = flagged[~is500].mean()
    print(
        f"\nMATH-500 in MATH-5000: recall {flagged[is500].mean():.3f}, false-flag rate on the 4,500 others "
        f"{false_flag:.3%} ({flagged[~is500].sum()} rows)"
    )
    assert false_flag < 0.05


def test_aime_boilerplate_alone_is_not_a_match(shared_data):
    aime = load_benchmark("aime24", shared_data / "benchmarks" / "aime24_test.jsonl")
    index = build_index([aime])
    stock = pl.Series(
        [
            "A fair coin is tossed until two heads appear in a row. The probability that this takes an odd number "
            "of tosses is $\\frac{m}{n}$, where $m$ and $n$ are relatively prime positive integers. Find $m+n$.",
            "Let $x$ be the largest root of $x^2-7x+3$. Then $x^2 = \\tfrac{m}{n}$ where m and n are relatively "
            "prime positive integers. Find m+n. Find the remainder when it is divided by 1000.",
        ]
    )
    assert (find_matches(stock, index, min_coverage=0.2).item == -1).all()
    # ...while the real problem that ends with that wording is still caught
    real = aime.rows.filter(pl.col("problem").str.contains("relatively prime positive integers"))["problem"]
    assert real.len() > 3
    assert (find_matches(real, index, min_coverage=0.2).item >= 0).all()


def test_lightly_edited_copies_are_caught(math500, index500):
    rng = random.Random(0)
    problems = math500.rows["problem"].to_list()
    finder_params = MinHashParams(num_perm=128, shingle=3, threshold=0.5)
    lines = []
    for name, edit in EDITS.items():
        edited = pl.Series([edit(p, rng) for p in problems])
        decontam = find_matches(edited, index500, min_coverage=0.2, whole_text=True).item >= 0
        finder = NearDuplicateFinder(finder_params)
        finder.add(math500.rows["problem"])
        finder.add(edited)
        near = finder.representatives()[len(problems) :] < len(problems)
        recall, either = decontam.mean(), (decontam | near).mean()
        lines.append(f"{name}: n-gram recall {recall:.3f}, with near-dup {either:.3f}")
        assert either >= 0.9, lines[-1]
    print("\n" + "\n".join(lines))


def test_traces_and_answers_that_quote_a_problem_are_caught(shared_data, index500):
    rows = traces(shared_data, "skyt1_27b_math500_outputs.jsonl")[:100]
    quoted = pl.Series([f"Okay, so the problem says: {r['question']} Let me think." for r in rows])
    assert (find_matches(quoted, index500, min_coverage=0.2).item >= 0).all()
    # Minerva traces are about other problems: few are flagged against MATH-500
    minerva = [r["responses"][0] for r in traces(shared_data, "skyt1_27b_minerva_outputs.jsonl")]
    rate = (find_matches(pl.Series(minerva), index500, min_coverage=0.2).item >= 0).mean()
    print(f"\nMinerva traces flagged against MATH-500: {rate:.2%}")
    assert rate < 0.05
