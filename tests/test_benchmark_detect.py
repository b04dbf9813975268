"""A user's own benchmark by name and path: kind and columns from real files, overrides, bad files, eval."""

from __future__ import annotations

import gzip
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from distill.errors import ConfigError, InputError
from distill.evaluation.benchmark_detect import BenchmarkMeta
from distill.evaluation.benchmarks import BENCHMARKS, load_benchmark
from distill.evaluation.prompts import prompt_rows
from distill.evaluation.stage import EvalConfig, evaluate
from distill.testing.local_server import Reply

ROOT = Path(__file__).resolve().parents[1]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _rows(path: Path, n: int) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line, _ in zip(f, range(n), strict=False)]


def test_gsm8k_shaped_file_is_math_with_the_number_after_hashes(
    shared_data: Path, tmp_path: Path, caplog
) -> None:
    rows = _rows(shared_data / "benchmarks" / "gsm8k_test.jsonl", 20)
    file = _jsonl(tmp_path / "heldout.jsonl", rows)
    with caplog.at_level(logging.WARNING, logger="distill.evaluation.benchmark_detect"):
        bench = load_benchmark("heldout", file)
    assert (bench.spec.kind, bench.spec.text_column, bench.spec.answer_column) == (
        "math",
        "question",
        "answer",
    )
    assert bench.rows["answer"].to_list() == [
        r["answer"].split("####")[-1].strip().replace(",", "") for r in rows
    ]
    assert bench.rows["id"].to_list() == [str(i) for i in range(20)]  # no id column: the row number
    (note,) = [r.getMessage() for r in caplog.records]
    assert "heldout is not in the registry" in note and "(the number after ####)" in note and "\n" not in note
    assert "--set eval.benchmarks_meta.heldout.kind=… to change" in note


def test_worked_solutions_give_their_last_boxed_answer(shared_data: Path, tmp_path: Path) -> None:
    rows = _rows(shared_data / "benchmarks" / "math500_test.jsonl", 60)
    file = _jsonl(
        tmp_path / "mine.jsonl", [{"problem": r["problem"], "solution": r["solution"]} for r in rows]
    )
    bench = load_benchmark("mine", file)
    assert bench.spec.answer_column == "solution" and bench.spec.answer_format == "boxed"
    same = sum(got == r["answer"] for got, r in zip(bench.rows["answer"], rows, strict=True))
    assert same >= 57, same  # the registry's own answers, from the solutions (a few differ in spacing)


def test_humaneval_shaped_file_is_code_with_its_tests(shared_data: Path, tmp_path: Path) -> None:
    rows = _rows(shared_data / "benchmarks" / "humaneval.jsonl.gz", 5)
    bench = load_benchmark("mycode", _jsonl(tmp_path / "code.jsonl", rows))
    assert bench.spec.kind == "code" and bench.spec.answer_column == "canonical_solution"
    assert {"test", "entry_point", "prompt"} <= set(bench.rows.columns)
    assert bench.rows["id"].to_list() == [r["task_id"] for r in rows]


def test_multiple_choice_file_renders_its_options_and_a_letter_gold(tmp_path: Path) -> None:
    items = [
        {"question": "2 + 2 = ?", "choices": ["3", "4", "5"], "answer": 1},
        {"question": "Capital of France?", "choices": ["Lyon", "Nice", "Paris"], "answer": "Paris"},
        {"question": "Pick C", "choices": ["x", "y", "z", "w"], "answer": "c"},
    ]
    bench = load_benchmark("quiz", _jsonl(tmp_path / "quiz.jsonl", items))
    assert bench.spec.kind == "choice"
    rows = prompt_rows(EvalConfig(), bench)
    assert [r["answer"] for r in rows] == ["B", "C", "C"]
    assert "A) 3\nB) 4\nC) 5" in rows[0]["eval_prompt"]


def test_meta_overrides_detection_and_known_names_keep_the_registry(
    shared_data: Path, tmp_path: Path
) -> None:
    rows = [{"q": f"What is {i} + {i}?", "target": str(2 * i), "test": "unrelated"} for i in range(5)]
    file = _jsonl(tmp_path / "odd.jsonl", rows)
    meta = BenchmarkMeta(kind="math", text_column="q", answer_column="target", k=2)
    bench = load_benchmark("odd", file, meta=meta)
    assert (bench.spec.kind, bench.spec.default_k) == ("math", 2)  # `test` alone would have meant code
    assert bench.rows["answer"].to_list() == ["0", "2", "4", "6", "8"]
    known = load_benchmark("gsm8k", shared_data / "benchmarks" / "gsm8k_test.jsonl")
    assert known.spec == BENCHMARKS["gsm8k"]


def test_a_file_without_a_problem_or_answer_column_is_one_line(tmp_path: Path) -> None:
    file = _jsonl(tmp_path / "notes.jsonl", [{"title": "a", "body": "b"}])
    with pytest.raises(InputError) as err:
        load_benchmark("notes", file)
    message = str(err.value)
    assert "\n" not in message and str(file) in message and "no problem column" in message
    assert "its columns are title, body" in message
    no_answer = _jsonl(tmp_path / "q.jsonl", [{"question": "Why?", "notes": "n"}])
    with pytest.raises(InputError, match="no answer column .* its columns are question, notes"):
        load_benchmark("q", no_answer)
    with pytest.raises(InputError, match="text_column 'stem' is not a column"):
        load_benchmark("q", no_answer, meta=BenchmarkMeta(text_column="stem"))


def test_eval_scores_a_users_own_benchmark(make_teacher_server, shared_data: Path, tmp_path: Path) -> None:
    rows = _rows(shared_data / "benchmarks" / "gsm8k_test.jsonl", 8)
    gold = {r["question"].strip(): r["answer"].split("####")[-1].strip() for r in rows}

    def student(messages: list[dict], params: dict, index: int) -> Reply:
        question = next(q for q in gold if messages[-1]["content"].startswith(q))
        right = list(gold).index(question) % 2 == 0  # every other problem right
        return Reply(
            content=f"The answer is $\\boxed{{{gold[question] if right else '-1'}}}$.", reasoning="Add."
        )

    server = make_teacher_server(student)
    file = _jsonl(tmp_path / "heldout.jsonl", rows)
    cfg = EvalConfig(base_url=server.base_url, benchmarks=["heldout"], benchmark_paths={"heldout": file})
    (result,) = evaluate(cfg, tmp_path / "eval").results
    assert (result.name, result.kind, result.k, result.samples) == ("heldout", "math", 4, 32)
    assert result.pass_at_1.mean == pytest.approx(0.5)

    # The same from the command line, in a subprocess: the note is one line on stderr.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "400"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "distill.cli",
            "eval",
            "--base-url",
            server.base_url,
            "--model",
            "local-teacher",
            "--benchmark",
            f"heldout={file}",
            "--set",
            "eval.benchmarks_meta.heldout.k=2",
            "--out",
            str(tmp_path / "cli"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if "not in the registry" in line]
    assert len(notes) == 1 and "heldout.jsonl read as math" in notes[0]
    results = json.loads((tmp_path / "cli" / "results.json").read_text())
    assert list(results["benchmarks"]) == ["heldout"] and results["benchmarks"]["heldout"]["k"] == 2


def test_the_cache_name_carries_the_pinned_revision(tmp_path: Path) -> None:
    from distill.evaluation.benchmark_hub import cache_file

    pinned = BENCHMARKS["math500"]
    assert pinned.revision and pinned.revision[:12] in cache_file(pinned, tmp_path).name
    frame = pl.DataFrame({"id": ["1"], "problem": ["p"], "answer": ["a"]})
    frame.write_parquet(cache_file(pinned, tmp_path))
    assert load_benchmark("math500", cache_dir=tmp_path).rows.equals(frame)  # offline: the cache serves


def test_a_registry_benchmark_is_fetched_at_its_pinned_commit_and_cached(
    fake_hub, shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.plugins.hub import TOKEN, FakeRepo

    spec = BENCHMARKS["math500"]
    pinned = (shared_data / "benchmarks" / "math500_test.jsonl").read_bytes()
    later = b'{"problem": "changed after the pin", "answer": "0", "unique_id": "x"}\n'
    fake_hub.repos[spec.hub_id] = FakeRepo(
        spec.hub_id,
        "dataset",
        False,
        branches={
            "main": {"test.jsonl": later, "README.md": b"# MATH-500"},
            spec.revision: {"test.jsonl": pinned},
        },
        commits=[{"oid": spec.revision}],
    )
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    bench = load_benchmark("math500", cache_dir=tmp_path)
    assert len(bench) == 500 and bench.rows["id"][0] == "test/precalculus/807.json"
    reads = [(kind, path) for _, kind, path in fake_hub.requests if kind in ("info", "tree", "resolve")]
    assert ("GET", "resolve") in [(m, k) for m, k, _ in fake_hub.requests]
    assert reads and all(spec.revision in path for _, path in reads)  # never main: the pinned commit only

    # Offline afterwards: the cached rows serve; a benchmark never fetched is one line naming the file to pass.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = len(fake_hub.requests)
    assert load_benchmark("math500", cache_dir=tmp_path).rows.equals(bench.rows)
    assert len(fake_hub.requests) == before
    with pytest.raises(ConfigError) as err:
        load_benchmark("aime24", cache_dir=tmp_path)
    assert "\n" not in str(err.value) and "--benchmark aime24=PATH" in str(err.value)
