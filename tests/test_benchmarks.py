"""The benchmark registry: local files of every shape, column detection, offline errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest

from distill.errors import ConfigError, InputError
from distill.evaluation.benchmarks import BENCHMARKS, file_checksum, load_benchmark, parse_benchmark_option

FILES = {
    "math500": ("math500_test.jsonl", 500, "test/precalculus/807.json"),
    "aime24": ("aime24_test.jsonl", 30, None),
    "aime25": ("aime25_test.json", 30, None),
    "amc23": ("amc23_test.jsonl", 40, None),
    "gsm8k": ("gsm8k_test.jsonl", 1319, None),
    "humaneval": ("humaneval.jsonl.gz", 164, "HumanEval/0"),
    "mbpp": ("mbpp.jsonl", 974, None),
    "math": ("mario_math_test5000_answer_types.json", 5000, None),
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_shared_copies_load_with_normalised_columns_and_match_the_registry_checksum(shared_data, name):
    file, items, first_id = FILES[name]
    bench = load_benchmark(name, shared_data / "benchmarks" / file)
    assert bench.rows.height == items
    assert bench.rows.columns[:3] == ["id", "problem", "answer"]
    assert bench.rows["id"].dtype == pl.String and bench.rows["id"].n_unique() == items
    assert bench.rows["problem"].null_count() == 0
    assert file_checksum(bench.path) == BENCHMARKS[name].checksum
    if first_id:
        assert bench.rows["id"][0] == first_id


def test_answers_are_gold_strings(shared_data):
    bench = shared_data / "benchmarks"
    assert load_benchmark("gsm8k", bench / "gsm8k_test.jsonl").rows["answer"][0] == "18"  # after '####'
    assert load_benchmark("amc23", bench / "amc23_test.jsonl").rows["answer"][0] == "27"  # not "27.0"
    assert load_benchmark("aime25", bench / "aime25_test.json").rows["answer"][0] == "70"  # int → str


def test_code_benchmarks_pass_their_tests_through(shared_data):
    he = load_benchmark("humaneval", shared_data / "benchmarks" / "humaneval.jsonl.gz").rows
    assert {"test", "entry_point", "prompt"} <= set(he.columns)
    assert he["entry_point"][0] == "has_close_elements"
    mbpp = load_benchmark("mbpp", shared_data / "benchmarks" / "mbpp.jsonl").rows
    assert mbpp["test_list"].dtype == pl.List(pl.String) and mbpp["test_list"][0][0].startswith("assert")


def test_user_files_in_any_format_with_detected_or_named_text_column(tmp_path):
    rows = [
        {"uid": "a", "question": "What is 1+1?", "answer": 2},
        {"uid": "b", "question": "2+2?", "answer": 4},
    ]
    pl.DataFrame(rows).write_parquet(tmp_path / "g.parquet")
    (tmp_path / "g.json").write_text(json.dumps(rows))
    with gzip.open(tmp_path / "g.jsonl.gz", "wt") as f:
        f.write("\n".join(json.dumps(r) for r in rows))
    for file in ("g.parquet", "g.json", "g.jsonl.gz"):
        bench = load_benchmark("gpqa_diamond", tmp_path / file)
        assert bench.rows["problem"].to_list() == ["What is 1+1?", "2+2?"]
        assert bench.rows["answer"].to_list() == ["2", "4"]
    custom = [{"stem": "Why?", "gold": "because"}]
    (tmp_path / "c.jsonl").write_text(json.dumps(custom)[1:-1])
    with pytest.raises(InputError, match="no text column"):
        load_benchmark("aime24", tmp_path / "c.jsonl")
    assert load_benchmark("aime24", tmp_path / "c.jsonl", text_column="stem").rows["problem"][0] == "Why?"


def test_option_parsing_and_errors_name_what_to_do(tmp_path):
    (tmp_path / "m.jsonl").write_text('{"problem": "x"}\n')
    assert parse_benchmark_option(f"MATH-500={tmp_path / 'm.jsonl'}") == ("math500", tmp_path / "m.jsonl")
    assert parse_benchmark_option(f"heldout={tmp_path / 'm.jsonl'}") == ("heldout", tmp_path / "m.jsonl")
    with pytest.raises(ConfigError, match="letters, digits"):
        parse_benchmark_option(f"../up={tmp_path / 'm.jsonl'}")
    with pytest.raises(ConfigError, match="pass --benchmark nope=PATH, or one of aime24, aime25"):
        load_benchmark("nope")
    with pytest.raises(ConfigError, match="NAME=PATH"):
        parse_benchmark_option("math500")
    with pytest.raises(ConfigError, match="does not exist"):
        parse_benchmark_option(f"math500={tmp_path / 'missing.jsonl'}")
    (tmp_path / "bad.jsonl").write_text('{"problem": "x"}\n{oops\n')
    with pytest.raises(InputError, match="row 2"):
        load_benchmark("math500", tmp_path / "bad.jsonl")


def test_offline_without_a_cached_copy_tells_the_user_to_pass_a_file(tmp_path):
    with pytest.raises(ConfigError, match=r"--benchmark aime24=PATH"):
        load_benchmark("aime24", cache_dir=tmp_path)


def test_a_cached_hub_copy_is_used_offline(tmp_path, shared_data):
    from distill.evaluation.benchmark_hub import cache_file

    rows = load_benchmark("aime24", shared_data / "benchmarks" / "aime24_test.jsonl").rows
    rows.write_parquet(cache_file(BENCHMARKS["aime24"], tmp_path))
    assert load_benchmark("aime24", cache_dir=tmp_path).rows.equals(rows)


def test_registry_defaults():
    assert {
        "math500",
        "aime24",
        "aime25",
        "amc23",
        "gsm8k",
        "humaneval",
        "mbpp",
        "gpqa_diamond",
        "livecodebench",
    } <= set(BENCHMARKS)
    assert BENCHMARKS["aime24"].default_k == 64 and BENCHMARKS["math500"].default_k == 16
    assert BENCHMARKS["gpqa_diamond"].default_k == 64 and BENCHMARKS["livecodebench"].default_k == 8
    assert all(isinstance(Path(s.name), Path) and s.version for s in BENCHMARKS.values())
