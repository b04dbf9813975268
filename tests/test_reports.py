"""Every stage's report has one shape: a line, table rows, and its stats.json section both ways."""

from __future__ import annotations

from pathlib import Path

import pytest

from distill.evaluation.metrics import Estimate as Score
from distill.evaluation.report import BenchmarkResult, EvalReport
from distill.filtering.report import FilterReport
from distill.generation.report import GenerateReport
from distill.generation.sampling import SamplingReport
from distill.publishing.dataset import DatasetReport
from distill.publishing.push import PushReport
from distill.reports import StageReport
from distill.training.estimate import Estimate, MemoryEstimate
from distill.training.report import SFTReport
from distill.training.template import TemplateCheck
from distill.verification.report import VerifyReport


def _reports(tmp_path: Path) -> list[StageReport]:
    counts = {"true": 7, "false": 2, "null": 1, "timeout": 0}
    return [
        GenerateReport(
            run=Path("."), teacher="deepseek-reasoner", prompts=5, duplicates=1, requested=0, written=0,
            errors=0, retries=3, samples=10, error_rows=1, prompt_tokens=500, completion_tokens=9000,
            cost_usd=0.0213, elapsed_s=1.5, finish_reasons={"stop": 9, "length": 1}, settings={"n": 2},
        ),
        SamplingReport(until_correct=2, max_samples=8, rounds=3, prompts=5, reached=4, exhausted=1,
                       samples=20, correct=9, samples_per_round=[10, 8, 2], pass_rate_histogram=[1] * 10),
        VerifyReport(rows=10, counts={"math": counts},
                     by_source={"gsm8k": {"rows": 10, "verifiers": {"math": counts}}}, workers=2),
        FilterReport(rows_in=10, rows_kept=6, rules={"incorrect": 3, "too_long": 1},
                     flagged={"incorrect": 3, "too_long": 2}, skipped={"contaminated": "no benchmarks"}),
        DatasetReport(rows_all=10, rows_sft=6, prompts=5, selection="keep", token_method="tokenizer",
                      tokenizer="tok"),
        PushReport(repo_id="org/data", url="https://hf.co/datasets/org/data", revision="main", private=True,
                   commit_url="https://hf.co/c/1", files=["README.md"], bytes=10, retries=1),
        SFTReport(
            output_dir=tmp_path / "student", dry_run=False, batch_plan="8 = 1 × 8 × 1",
            template=TemplateCheck("chatml-think", "<|im_end|>", 2, "<pad>", 0), example="…",
            estimate=Estimate(rows=6, dropped_long=0, truncated=0, tokens=900, target_tokens=800, max_sample=200,
                              packed_rows=2, steps=2, params=144_000,
                              memory=MemoryEstimate(1.0, 2.0, 0.5, False), tokens_per_s_per_gpu=1000.0,
                              throughput_source="measured", gpu_hours=0.1, gpus=1, fits=True),
            rope=None, attention="sdpa", loss="chunked", gradient_checkpointing=False, steps=2,
            final_loss=6.5, losses=[6.9, 6.5],
        ),
        EvalReport(
            out=tmp_path, model="student", settings={"temperature": 0.6},
            results=[BenchmarkResult("gsm8k", "v1", "math", 4, 2, 8, Score(0.25, 0.1, 0.05, 0.45, 4),
                                     cons_at_k=Score(0.5, 0.2, 0.1, 0.9, 4),
                                     pass_at_k={2: Score(0.5, 0.2, 0.1, 0.9, 4)}, truncated=1)],
        ),
    ]


@pytest.mark.parametrize("index", range(8))
def test_each_report_round_trips_through_its_stats_section(tmp_path: Path, index: int) -> None:
    report = _reports(tmp_path)[index]
    assert isinstance(report, StageReport)
    stats = report.to_stats()
    again = type(report).from_stats(stats)
    assert again.to_stats() == stats  # what the card reads back is what the stage wrote
    assert again.summary() and report.summary()
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in report.table_rows())


def test_summaries_read_like_the_pipeline_table(tmp_path: Path) -> None:
    reports = {type(r).__name__: r for r in _reports(tmp_path)}
    assert reports["SFTReport"].summary() == f"2 steps, loss 6.900 → 6.500 → {tmp_path / 'student'}"
    assert reports["EvalReport"].summary().startswith("gsm8k pass@1 25.0% (k=2, 4 problems) →")
    assert reports["FilterReport"].summary() == "kept 6/10, incorrect 3, too_long 1"
    assert reports["VerifyReport"].summary() == "verified 10 rows: math 7/10 true"
