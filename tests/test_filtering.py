"""The filter stage end to end on a run built from real traces: reasons in rule order, rejected rows
kept, stats.json sections, skipped rules, and the CLI."""

from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from distill import schema
from distill.cli import app
from distill.filtering.config import RULES, FilterConfig
from distill.filtering.stage import apply_filters
from tests.filters._data import traces


def _write_run(run_dir, shared_data, *, verified: bool):
    rows = []
    for name in ("skyt1_32b_aime24_outputs.jsonl", "qwen25math_math_cot_100_samples.jsonl"):
        for i, r in enumerate(traces(shared_data, name)[:30]):
            for j, text in enumerate(r["responses"][:4]):
                rows.append(
                    {
                        schema.PROMPT_ID: f"{name[:9]}-{i}",
                        schema.SAMPLE: j,
                        "problem": r["question"],
                        schema.REASONING: text,
                        schema.ANSWER_TEXT: f"The answer is {r['gt']}.",
                        schema.SOURCE: name.split("_")[0],
                        schema.ERROR: None,
                    }
                )
    rows.append({**rows[-1], schema.SAMPLE: 9, schema.REASONING: None, schema.ERROR: "timeout"})
    frame = pl.DataFrame(rows, infer_schema_length=None)
    if verified:
        frame = frame.with_columns(
            pl.lit(True).alias(schema.COMPLETE),
            pl.lit(True).alias(schema.FORMAT_OK),
            (pl.col(schema.SAMPLE) % 2 == 0).alias(schema.CORRECT),
            pl.lit(0.5).alias(schema.PASS_RATE),
        )
    run_dir.ensure().write_rows(frame)
    return frame


def test_filter_marks_every_row_with_the_first_failing_rule(run_dir, shared_data):
    frame = _write_run(run_dir, shared_data, verified=True)
    bench = shared_data / "benchmarks" / "aime24_test.jsonl"
    report = apply_filters(FilterConfig(benchmark_paths={"aime24": bench}, k=1), run_dir)
    out = run_dir.read()
    assert out.height == frame.height  # rejected rows stay
    assert report.rows_in == frame.height and report.rows_kept == int(out[schema.KEEP].sum())
    assert out.filter(pl.col(schema.KEEP))[schema.REJECT_REASON].null_count() == report.rows_kept
    by_pid = out.filter(pl.col(schema.PROMPT_ID) == "skyt1_32b-4")  # the trace that drifts into Chinese
    assert (
        by_pid[schema.CONTAMINATED_BY][0] == "aime24:64" and by_pid[schema.REJECT_REASON][0] == "contaminated"
    )
    assert by_pid[schema.LANGUAGE_SHARE][0] < 0.8  # flagged too, though contamination comes first
    assert out.filter(pl.col(schema.ERROR).is_not_null())[schema.REJECT_REASON].to_list() == ["error"]
    assert (out.filter(pl.col(schema.CORRECT) == False)[schema.REJECT_REASON] != "over_k").all()  # noqa: E712
    kept = out.filter(pl.col(schema.KEEP))
    assert kept[schema.CORRECT].all() and kept[schema.PROMPT_ID].is_unique().all()  # k=1 correct per prompt
    assert set(out[schema.REJECT_REASON].drop_nulls()) <= set(RULES)
    order = [r for r in RULES if r in report.rules]
    assert order == [r for r in RULES if r in report.flagged]
    stats = json.loads(run_dir.stats.read_text())
    assert stats["filter"]["rows_in"] == frame.height and stats["filter"]["by_source"]["skyt1"]["in"] == 30
    assert stats["filter"]["rules"]["contaminated"] == 30  # Sky-T1 answered AIME 2024 itself
    aime = stats["decontamination"]["benchmarks"]["aime24"]
    assert aime["version"] == "1" and aime["items"] == 30 and aime["flagged_rows"] == 30
    assert aime["examples"] and aime["examples"][0]["item"].startswith("aime24:")


def test_rules_without_their_inputs_are_skipped_and_said_so(run_dir, shared_data):
    _write_run(run_dir, shared_data, verified=False)
    report = apply_filters(FilterConfig(min_pass_rate=0.1), run_dir)
    assert {"incomplete", "format", "incorrect", "contaminated", "pass_rate"} <= set(report.skipped)
    assert "near_duplicate_trace" in report.flagged  # the Qwen samples repeat each other
    out = run_dir.read()
    dup = out.filter(pl.col(schema.REJECT_REASON) == "duplicate_trace")
    assert dup.height and dup[schema.DUP_OF].str.contains("/").all()


def test_cli_filter_prints_the_table_and_takes_a_users_own_benchmark(run_dir, shared_data):
    _write_run(run_dir, shared_data, verified=True)
    runner = CliRunner()
    bench = shared_data / "benchmarks" / "aime24_test.jsonl"
    result = runner.invoke(
        app, ["filter", str(run_dir.root), "--benchmark", f"aime24={bench}", "--quiet", "--set", "filter.k=2"]
    )
    assert result.exit_code == 0, result.output
    assert "kept" in result.output and "contaminated 30" in result.output
    # A name the registry does not know is the user's own set: its file decides the columns.
    mine = runner.invoke(app, ["filter", str(run_dir.root), "--benchmark", f"heldout={bench}", "--quiet"])
    assert mine.exit_code == 0, mine.output
    assert "contaminated 30" in mine.output
    assert run_dir.read()[schema.CONTAMINATED_BY].drop_nulls().str.starts_with("heldout:").all()
    bad = runner.invoke(app, ["filter", str(run_dir.root), "--benchmark", "heldout=missing.jsonl"])
    assert bad.exit_code != 0


@pytest.mark.parametrize("override", ["filter.ngram=2", "filter.unknown=1"])
def test_bad_settings_are_config_errors(override):
    from distill.config import load_config
    from distill.errors import ConfigError

    with pytest.raises(ConfigError):
        load_config(FilterConfig, None, [override.split(".", 1)[1]])


def test_a_duplicate_points_to_a_row_that_can_still_be_kept(run_dir, shared_data):
    text = traces(shared_data, "skyt1_27b_math500_outputs.jsonl")[0]["responses"][0]
    rows = [
        {
            schema.PROMPT_ID: "p",
            schema.SAMPLE: i,
            "problem": "Convert the point to polar form.",
            schema.REASONING: text + tail,
            schema.ANSWER_TEXT: "3",
            schema.CORRECT: ok,
        }
        for i, (tail, ok) in enumerate([("", False), ("", True), (" Done.", True), ("", True)])
    ]
    run_dir.ensure().write_rows(pl.DataFrame(rows))
    apply_filters(FilterConfig(), run_dir)
    out = run_dir.read().sort(schema.SAMPLE)
    # sample 0 is wrong, so sample 1 (its exact copy) is the representative the others point to
    assert out[schema.REJECT_REASON].to_list() == [
        "incorrect",
        None,
        "near_duplicate_trace",
        "duplicate_trace",
    ]
    assert out[schema.DUP_OF].to_list() == [None, None, "p/1", "p/1"]
