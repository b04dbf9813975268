"""Decontamination in the filter stage: every method leaves its evidence on the row, stats.json and the
card count flags by benchmark and method, and the optional judge (a real local server) settles the
uncertain band, resumably."""

from __future__ import annotations

import json
import re

import polars as pl
import pytest

from distill import schema
from distill.filtering.config import FilterConfig
from distill.filtering.decontamination import SAME_PROBLEM_PROMPT_NAME
from distill.filtering.stage import apply_filters
from distill.judge import JudgeConfig
from distill.publishing.card import CardConfig, write_card
from distill.testing.local_server import Reply
from filters.decontam_semantic import SemanticIndex, find_semantic_matches


def _reworded(shared_data, item_id: str) -> dict:
    rows = pl.read_ndjson(shared_data / "decontam" / "reworded.jsonl").filter(pl.col("id") == item_id)
    return rows.row(0, named=True)


def _lookalike(shared_data, item_id: str, made_from: str) -> str:
    rows = pl.read_ndjson(shared_data / "decontam" / "lookalikes.jsonl")
    return rows.filter((pl.col("id") == item_id) & (pl.col("made_from") == made_from))["text"][0]


@pytest.fixture
def prompts(shared_data) -> dict[str, dict]:
    math500 = [json.loads(line) for line in (shared_data / "benchmarks" / "math500_test.jsonl").open()]
    unrelated = json.loads((shared_data / "benchmarks" / "mario_math_test5000_answer_types.json").read_text())
    reworded = _reworded(shared_data, "test/algebra/187.json")
    with_answer = _reworded(shared_data, "test/number_theory/521.json")
    band = _reworded(shared_data, "test/number_theory/753.json")
    return {
        "copy": {"problem": math500[7]["problem"], "answer": None},
        "quote": {
            "problem": f"Solve this carefully.\n\n{math500[9]['problem']}\n\nShow your work.",
            "answer": None,
        },
        "reworded": {"problem": reworded["text"], "answer": None},
        "same-answer": {"problem": with_answer["text"], "answer": with_answer["answer"]},
        "band": {"problem": band["text"], "answer": None},
        "lookalike": {
            "problem": _lookalike(shared_data, "test/precalculus/34.json", "reworded"),
            "answer": None,
        },
        "template": {"problem": _lookalike(shared_data, "test/algebra/187.json", "original"), "answer": None},
        "foreign": {
            "problem": "小明有16个苹果，吃了3个，又买了4个，每个2元。他现在有多少个苹果？",
            "answer": "17",
        },
        "unrelated": {"problem": unrelated[1]["question"], "answer": unrelated[1]["answer"]},
    }


def _write(run_dir, prompts: dict[str, dict]) -> None:
    rows = [
        {
            schema.PROMPT_ID: pid,
            schema.SAMPLE: s,
            "problem": p["problem"],
            "answer": p["answer"],
            schema.MESSAGES: [
                {"role": "user", "content": p["problem"]},
                {"role": "assistant", "content": "<think>\nLet me think.\n</think>\n\n$\\boxed{7}$"},
            ],
            schema.REASONING: "Let me think about it step by step.",
            schema.ANSWER_TEXT: "The answer is $\\boxed{7}$.",
            schema.ERROR: None,
        }
        for pid, p in prompts.items()
        for s in range(2)
    ]
    run_dir.ensure().write_rows(pl.DataFrame(rows, infer_schema_length=None))


def _verdicts(run_dir) -> dict[str, tuple]:
    out = run_dir.read().filter(pl.col(schema.SAMPLE) == 0)
    cols = (
        schema.CONTAMINATED_BY,
        schema.CONTAMINATION_METHOD,
        schema.CONTAMINATION_SCORE,
        schema.CONTAMINATION_SPANS,
    )
    return {r[schema.PROMPT_ID]: tuple(r[c] for c in cols) for r in out.iter_rows(named=True)}


def _config(shared_data, **kw) -> FilterConfig:
    bench = shared_data / "benchmarks"
    return FilterConfig(
        benchmark_paths={"math500": bench / "math500_test.jsonl", "gsm8k": bench / "gsm8k_test.jsonl"},
        near_dup_prompts=None,
        dedup_traces=False,
        near_dup_traces=None,
        language=None,
        **kw,
    )


def test_each_method_leaves_its_evidence_and_look_alikes_stay(run_dir, shared_data, prompts, tmp_path):
    _write(run_dir, prompts)
    report = apply_filters(_config(shared_data), run_dir)
    assert ("contaminated, by method", "exact 2 · ngram 2 · semantic 4 · judge 0") in report.table_rows()
    v = _verdicts(run_dir)
    assert v["copy"][:3] == ("math500:test/precalculus/927.json", "exact", 1.0)
    assert v["quote"][1] == "ngram" and v["quote"][0] == "math500:test/prealgebra/1139.json"
    assert v["reworded"][:2] == ("math500:test/algebra/187.json", "semantic") and 0 < v["reworded"][2] < 1
    assert "25 x 2 38 x 17" in v["reworded"][3]  # the shared span of the formula
    assert v["same-answer"][:2] == ("math500:test/number_theory/521.json", "semantic")  # answers agree: 18
    for clean in ("band", "lookalike", "template", "foreign", "unrelated"):
        assert v[clean] == (None, None, None, None), clean
    out = run_dir.read()
    assert (
        out.filter(pl.col(schema.CONTAMINATED_BY).is_not_null())[schema.REJECT_REASON] == "contaminated"
    ).all()

    stats = json.loads(run_dir.stats.read_text())["decontamination"]
    assert stats["benchmarks"]["math500"]["by_method"] == {"exact": 2, "ngram": 2, "semantic": 4, "judge": 0}
    assert stats["benchmarks"]["gsm8k"]["flagged_rows"] == 0
    assert stats["uncertain_prompts"] >= 1 and stats["judge"] is None
    example = stats["benchmarks"]["math500"]["examples"][0]
    assert {"row", "item", "method", "score", "shared"} <= set(example)

    card = write_card(CardConfig(), run_dir).read_text()
    assert "| math500 | 1 | 500 | 8 | 2 | 2 | 4 | 0 |" in card


def _same_numbers_judge(messages: list[dict], params: dict, index: int) -> Reply:
    """A judge that calls two problems the same when they state the same numbers."""
    text = messages[-1]["content"]
    a = re.search(r"PROBLEM A \(training data\):\n(.*?)\n\nPROBLEM B", text, re.S).group(1)
    b = re.search(r"PROBLEM B \(benchmark\):\n(.*?)\n\nExplain", text, re.S).group(1)
    same = set(re.findall(r"\d+", a)) == set(re.findall(r"\d+", b))
    return Reply(
        content=f"The numbers {'agree' if same else 'differ'}.\nJudgement: {'yes' if same else 'no'}"
    )


def test_the_judge_settles_the_uncertain_band(run_dir, shared_data, prompts, make_teacher_server):
    server = make_teacher_server(_same_numbers_judge, model="judge-1")
    _write(run_dir, prompts)
    cfg = _config(shared_data, decontam_judge=JudgeConfig(base_url=server.base_url))
    apply_filters(cfg, run_dir)
    v = _verdicts(run_dir)
    assert v["band"][:2] == ("math500:test/number_theory/753.json", "judge")
    assert v["lookalike"][0] is None and v["template"][0] is None  # asked or not, never "same"
    asked = server.request_count
    assert asked >= 1 and "PROBLEM B (benchmark)" in server.requests[0]["messages"][-1]["content"]
    stats = json.loads(run_dir.stats.read_text())["decontamination"]
    assert stats["judge"]["prompt"] == f"{SAME_PROBLEM_PROMPT_NAME}-v1" and stats["judge"]["yes"] >= 1
    assert stats["benchmarks"]["math500"]["by_method"]["judge"] == 2
    assert (run_dir.judge / SAME_PROBLEM_PROMPT_NAME).is_dir()

    # a rerun reuses the stored verdicts: nothing is sent again
    apply_filters(cfg, run_dir)
    assert server.request_count == asked
    assert _verdicts(run_dir)["band"][1] == "judge"


def test_semantic_mode_can_be_switched_off(run_dir, shared_data, prompts):
    _write(run_dir, prompts)
    apply_filters(_config(shared_data, decontam_semantic=None), run_dir)
    v = _verdicts(run_dir)
    assert v["copy"][1] == "exact" and v["reworded"][0] is None
    stats = json.loads(run_dir.stats.read_text())["decontamination"]
    assert stats["semantic"] is None and stats["benchmarks"]["math500"]["by_method"]["semantic"] == 0


def test_prompt_answers_come_from_the_gold_column(shared_data):
    """GSM8K-style gold ("… #### 18") agrees with the benchmark's answer."""
    bench = json.loads((shared_data / "benchmarks" / "math500_test.jsonl").open().readline())
    index = SemanticIndex.build(
        pl.DataFrame(
            {
                "benchmark": ["math500"],
                "id": ["x"],
                "problem": [bench["problem"]],
                "answer": [bench["answer"]],
            }
        )
    )
    m = find_semantic_matches(pl.Series(["unrelated words only"]), index, answers=pl.Series(["\\boxed{3}"]))
    assert m.item.tolist() == [-1]
