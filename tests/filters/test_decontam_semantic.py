"""Semantic decontamination on our reworded / look-alike sets (tests/data/decontam) and on real unrelated
problems: the calibration and held-out numbers of DECONTAM_CALIBRATION are measured here."""

from __future__ import annotations

import time

import numpy as np
import polars as pl
import pytest

from distill.evaluation.benchmarks import load_benchmark
from filters.decontam import build_index, find_matches
from filters.decontam_semantic import (
    DECONTAM_CALIBRATION,
    SemanticIndex,
    SemanticThresholds,
    confirm_by_numbers,
    find_semantic_matches,
    shared_spans,
)
from tests.filters._fit_decontam import FILES, frame


@pytest.fixture(scope="module")
def benchmarks(shared_data):
    return {name: load_benchmark(name, shared_data / "benchmarks" / f) for name, f in FILES.items()}


@pytest.fixture(scope="module")
def index(benchmarks):
    return SemanticIndex.build(pl.concat([frame(b) for b in benchmarks.values()]))


@pytest.fixture(scope="module")
def reworded(shared_data):
    return pl.read_ndjson(shared_data / "decontam" / "reworded.jsonl")


@pytest.fixture(scope="module")
def lookalikes(shared_data):
    return pl.read_ndjson(shared_data / "decontam" / "lookalikes.jsonl")


@pytest.fixture(scope="module")
def math_others(shared_data, benchmarks):
    """The 4,500 MATH test problems that are not in MATH-500, and a mask of the 500 that are."""
    full = load_benchmark("math", shared_data / "benchmarks" / "mario_math_test5000_answer_types.json").rows
    norm = pl.col("problem").str.replace_all(r"\s+", " ").str.strip_chars().str.to_lowercase()
    in500 = full.select(norm.is_in(benchmarks["math500"].rows.select(norm)["problem"].implode()))["problem"]
    return full, in500.to_numpy()


def _caught(index, data, answers: bool) -> np.ndarray:
    m = find_semantic_matches(data["text"], index, answers=data["answer"] if answers else None)
    want = (data["benchmark"] + ":" + data["id"]).to_list()
    return np.array([i >= 0 and index.label(int(i)) == w for i, w in zip(m.item, want, strict=True)])


def test_the_test_sets_are_what_the_readme_says(reworded, lookalikes, benchmarks):
    assert reworded.height >= 150 and lookalikes.height >= 150
    assert set(reworded["benchmark"]) == {"math500", "gsm8k", "aime24", "aime25"}
    # every reworded item points at a real benchmark item and is not a copy of it
    for name, part in reworded.group_by("benchmark"):
        problems = dict(zip(benchmarks[name[0]].rows["id"], benchmarks[name[0]].rows["problem"], strict=True))
        assert all(problems[i] != t for i, t in zip(part["id"], part["text"], strict=True))
    # our rewrites really are rewrites: the n-gram pass misses most of them
    ngram = build_index(list(benchmarks.values()))
    share = (find_matches(reworded["text"], ngram, min_coverage=0.2).item >= 0).mean()
    print(f"\nreworded items the 8-gram pass catches: {share:.1%}")
    assert share < 0.5


def test_reworded_items_are_caught_on_calibration_and_held_out_halves(index, reworded):
    cal = (reworded["split"] == "calibration").to_numpy()
    with_answer, prompt_only = _caught(index, reworded, True), _caught(index, reworded, False)
    print(
        f"\nreworded caught, answers known: calibration {with_answer[cal].mean():.3f}, "
        f"held-out {with_answer[~cal].mean():.3f}; prompt only: calibration {prompt_only[cal].mean():.3f}, "
        f"held-out {prompt_only[~cal].mean():.3f}"
    )
    expected = DECONTAM_CALIBRATION["reworded_caught_with_answer"]
    assert with_answer[cal].mean() == pytest.approx(expected["calibration"], abs=0.005)
    assert with_answer[~cal].mean() == pytest.approx(expected["held_out"], abs=0.005)
    assert with_answer[~cal].mean() >= 0.9  # the goal, on items no threshold was set on
    only = DECONTAM_CALIBRATION["reworded_caught_prompt_only"]
    assert prompt_only[cal].mean() == pytest.approx(only["calibration"], abs=0.005)
    assert prompt_only[~cal].mean() == pytest.approx(only["held_out"], abs=0.005)
    assert (prompt_only <= with_answer).all()  # a known answer only ever adds evidence


def test_lookalikes_and_unrelated_problems_are_left_alone(index, lookalikes, math_others, benchmarks):
    assert (find_semantic_matches(lookalikes["text"], index).item >= 0).sum() == 0
    full, in500 = math_others
    others = full.filter(~pl.lit(in500))
    assert others.height == 4500
    rate = (find_semantic_matches(others["problem"], index, answers=others["answer"]).item >= 0).mean()
    rate_prompt_only = (find_semantic_matches(others["problem"], index).item >= 0).mean()
    gsm = benchmarks["gsm8k"].rows
    half = SemanticIndex.build(frame(benchmarks["gsm8k"])[::2])
    gsm_rate = (
        find_semantic_matches(gsm[1::2]["problem"], half, answers=gsm[1::2]["answer"]).item >= 0
    ).mean()
    print(f"\nfalse flags: MATH outside MATH-500 {rate:.2%}, GSM8K odd half vs even half {gsm_rate:.2%}")
    assert rate <= 0.005 and rate_prompt_only <= 0.005 and gsm_rate <= 0.005
    assert rate == pytest.approx(DECONTAM_CALIBRATION["math_outside_math500_flagged"], abs=0.0005)
    assert rate_prompt_only == pytest.approx(
        DECONTAM_CALIBRATION["math_outside_math500_flagged_prompt_only"], abs=0.0005
    )
    assert gsm_rate == pytest.approx(DECONTAM_CALIBRATION["gsm8k_half_flagged"], abs=0.0005)


def test_the_8gram_pass_with_learned_boilerplate_and_numbers(index, math_others, benchmarks, lookalikes):
    from distill.filtering.config import FilterConfig

    need = FilterConfig().ngram_min_number_recall  # the filter stage's default
    full, in500 = math_others
    ngram = build_index([benchmarks["math500"]])
    m = find_matches(full["problem"], ngram, min_coverage=0.2, whole_text=True)
    # the n-gram index and the semantic index of MATH-500 alone share item numbers
    sem500 = SemanticIndex.build(frame(benchmarks["math500"]))
    flagged = (m.item >= 0) & confirm_by_numbers(full["problem"], m.item, sem500, min_recall=need)
    short = full["problem"].str.split(" ").list.len().to_numpy() < 8
    assert flagged[in500].all() and (in500 & short).sum() >= 10
    rate = flagged[~in500].mean()
    before = build_index([benchmarks["math500"]], stop_ngram=None)  # the pass as it was
    raw = (find_matches(full["problem"], before, min_coverage=0.2, whole_text=True).item >= 0)[~in500]
    print(f"\n8-gram false flags on the 4,500: {raw.mean():.2%} before, {rate:.2%} now")
    assert rate <= 0.01 < raw.mean()
    la = find_matches(lookalikes["text"], ngram, min_coverage=0.2, whole_text=True)
    assert not (
        (la.item >= 0) & confirm_by_numbers(lookalikes["text"], la.item, sem500, min_recall=need)
    ).any()


def test_tiny_benchmarks_other_languages_and_long_prompts(index, benchmarks):
    duck = benchmarks["gsm8k"].rows["problem"][0]
    for rows in (1, 2, 3):  # retrieval over a few items must not divide by zero
        tiny = SemanticIndex.build(frame(benchmarks["gsm8k"]).head(rows))
        m = find_semantic_matches(pl.Series([duck, "What is 2+2?", "", None]), tiny)
        assert m.item.tolist()[1:] == [-1, -1, -1] and np.isfinite(m.score).all()
    empty = SemanticIndex.build(frame(benchmarks["gsm8k"]).head(0))
    assert find_semantic_matches(pl.Series([duck]), empty).item.tolist() == [-1]
    # an empty benchmark item matches nothing (not even an empty prompt)
    blank = pl.DataFrame(
        {"benchmark": ["b", "b"], "id": ["0", "1"], "problem": ["", "   "], "answer": [None, "3"]}
    )
    blank_index = SemanticIndex.build(blank)
    assert (
        find_semantic_matches(pl.Series([duck, "", "3"]), blank_index, answers=pl.Series(["3"] * 3)).item
        == -1
    ).all()
    # the same numbers in another language and another story are no evidence
    foreign = pl.Series(
        [
            "小明的鸭子每天下16个蛋。他早上吃3个，用4个做松饼，剩下的每个卖2元。他每天赚多少钱？",
            "Ein Bauer hat 16 Kühe. Er verkauft 3 und kauft 4 dazu, jede kostet 2 Euro. Wie viele hat er?",
        ]
    )
    assert (find_semantic_matches(foreign, index).item == -1).all()
    # a very long prompt: only its head is compared, so time per row is bounded
    long = pl.Series([duck + " " + "lorem ipsum dolor sit amet " * 200_000])
    started = time.perf_counter()
    find_semantic_matches(long, index)
    assert time.perf_counter() - started < 5


def test_shared_spans_name_the_common_text(benchmarks):
    duck = benchmarks["gsm8k"].rows["problem"][0]
    text = "Every day Janet's ducks lay 16 eggs per day, she eats three for breakfast"
    spans = shared_spans([text, None], [duck, duck])
    assert "ducks lay 16 eggs per day" in spans[0] and spans[1] == ""


def test_the_models_are_refit_from_the_calibration_halves_alone():
    """The constants in filters/_decision.py are what the fit gives; blanking every held-out row
    (reworded, look-alikes, odd rows of the unrelated sets) changes nothing: it never reads them."""
    from dataclasses import replace

    from filters import _decision
    from filters import decontam_semantic as sem
    from tests.filters import _fit_decontam as fitting

    s = fitting.sets()
    f = fitting.fit(s)
    assert f.prompt_only == _decision.PROMPT_ONLY and f.same_answer == _decision.SAME_ANSWER
    assert (f.min_score, f.min_score_same_answer) == (sem.PROMPT_ONLY_MIN_SCORE, sem.SAME_ANSWER_MIN_SCORE)

    def blank(frame: pl.DataFrame, column: str, held: np.ndarray) -> pl.DataFrame:
        return frame.with_columns(
            pl.when(pl.lit(held)).then(pl.lit("")).otherwise(pl.col(column)).alias(column)
        )

    blind = replace(
        s,
        reworded=blank(s.reworded, "text", (s.reworded["split"] == "held_out").to_numpy()),
        lookalikes=blank(s.lookalikes, "text", (s.lookalikes["split"] == "held_out").to_numpy()),
        math_others=blank(s.math_others, "problem", ~fitting.calibration_rows(s.math_others.height)),
        gsm_odd=blank(s.gsm_odd, "problem", ~fitting.calibration_rows(s.gsm_odd.height)),
    )
    assert fitting.fit(blind) == f


def test_fit_logistic_learns_the_direction_and_leaves_unused_features_at_zero():
    from filters._decision import fit_logistic

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2))
    y = x[:, 0] + 0.3 * rng.normal(size=400) > 0
    m = fit_logistic(x, y.astype(np.float64), positive_weight=1.0, use=np.array([True, False]))
    assert m.weights[0] > 1.0 and m.weights[1] == 0.0
    assert ((m.score(x) > 0) == y).mean() > 0.85
    assert len(m.score(np.zeros((0, 2)))) == 0


def test_thresholds_are_the_config_defaults():
    from distill.filtering.config import FilterConfig

    assert FilterConfig().decontam_semantic.thresholds() == SemanticThresholds()
