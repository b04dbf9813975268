"""`distill eval` end to end: a local teacher with planted accuracies stands in for the student."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest

from distill.errors import ConfigError
from distill.evaluation.reference_table import load_reference, match_reference
from distill.evaluation.stage import EvalConfig, evaluate, read_settings, rescore_run
from distill.testing.local_server import Reply

STUDENT = "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"  # so the report shows DeepSeek's published row
K = 8


def _draw(prompt: str, j: int) -> float:
    """A fixed pseudo-random number per (prompt, j-th sample of it): the same answers on every run."""
    return random.Random(hashlib.sha256(f"{prompt}|{j}".encode()).digest()).random()


class PlantedStudent:
    """Answers each AIME problem right with a planted probability; its wrong answers are planted too.

    Problems cycle through four kinds (by position in the benchmark):
      0 "strong"  right with p=0.9, wrong answers scattered          → majority right
      1 "plural"  right with p=0.45, wrong answers spread over 8 values → plurality right
      2 "misled"  right with p=0.2, one fixed wrong answer             → majority wrong
      3 "cut"     like "strong", but every sample with j % 4 == 0 is cut off at max_tokens
                  while showing the right answer                       → those count wrong
    """

    P = {0: 0.9, 1: 0.45, 2: 0.2, 3: 0.9}

    def __init__(self, rows: list[dict]) -> None:
        self.kind = {r["problem"].strip(): (i % 4, r["answer"]) for i, r in enumerate(rows)}
        self.seen: dict[str, int] = {}
        self.planted_correct = 0
        self.samples = 0

    def problem_of(self, prompt: str) -> str:
        return next(p for p in self.kind if prompt.startswith(p))

    def __call__(self, messages: list[dict], params: dict, index: int) -> Reply:
        prompt = messages[-1]["content"]
        problem = self.problem_of(prompt)
        kind, gold = self.kind[problem]
        j = self.seen[problem] = self.seen.get(problem, 0) + 1
        right = _draw(prompt, j) < self.P[kind]
        if kind == 3 and j % 4 == 0:
            self.samples += 1
            if j % 8 == 0:  # cut inside the reasoning: the server sends it all as reasoning, no answer
                return Reply(
                    content="", finish_reason="length", reasoning=f"Maybe \\boxed{{{gold}}}? Check " * 20
                )
            return Reply(
                content=f"So far the answer looks like \\boxed{{{gold}}} but",
                finish_reason="length",
                reasoning="Long thinking " * 20,
            )  # cut inside the answer
        if right:
            answer = gold
        elif kind == 2:
            answer = str(int(gold) + 1)
        else:
            answer = str(int(gold) + 2 + int(_draw(prompt, -j) * 8))
        self.samples += 1
        self.planted_correct += right
        return Reply(content=f"The answer is $\\boxed{{{answer}}}$.", reasoning=f"Think about it ({j}).")


@pytest.fixture
def aime_rows(shared_data: Path) -> list[dict]:
    return [
        json.loads(line)
        for line in (shared_data / "benchmarks" / "aime24_test.jsonl").read_text().splitlines()
    ]


def _cfg(server, shared_data: Path, **kw) -> EvalConfig:  # noqa: ANN001
    return EvalConfig(
        model=STUDENT,
        base_url=server.base_url,
        benchmarks=["aime24"],
        k=K,
        benchmark_paths={"aime24": shared_data / "benchmarks" / "aime24_test.jsonl"},
        engine={"concurrency": 16},
        **kw,
    )


def test_eval_reports_planted_accuracy_majority_and_truncation(
    make_teacher_server, shared_data: Path, aime_rows: list[dict], tmp_path: Path
) -> None:
    student = PlantedStudent(aime_rows)
    server = make_teacher_server(student, model=STUDENT)
    out = tmp_path / "eval"
    report = evaluate(_cfg(server, shared_data, pass_k=[4]), out)

    (aime,) = report.results
    assert (aime.problems, aime.k, aime.samples) == (30, K, 30 * K)
    # The protocol went to the student: DeepSeek-R1's sampling and the math instruction, no system turn.
    body = server.requests[0]
    assert body["temperature"] == 0.6 and body["top_p"] == 0.95 and body["max_tokens"] == 32768
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert body["messages"][0]["content"].endswith(
        "\nPlease reason step by step, and put your final answer within \\boxed{}."
    )

    planted = student.planted_correct / student.samples
    assert aime.pass_at_1.mean == pytest.approx(planted)  # every planted right answer was scored right …
    population = sum(PlantedStudent.P[i % 4] * (0.75 if i % 4 == 3 else 1) for i in range(30)) / 30
    assert aime.pass_at_1.contains(population)  # … and the interval holds the planted accuracy
    # Majority: right on "strong", "plural" and "cut" problems, wrong on the "misled" ones.
    misled = sum(1 for i in range(30) if i % 4 == 2)
    assert aime.cons_at_k.mean == pytest.approx(1 - misled / 30)
    # Truncated samples showed the right answer, yet count as wrong, and are reported.
    cut = sum(1 for i in range(30) if i % 4 == 3) * (K // 4)
    assert aime.truncated == cut and aime.truncation_rate == pytest.approx(cut / (30 * K))
    assert 4 in aime.pass_at_k and aime.pass_at_k[4].mean >= aime.pass_at_1.mean

    results = json.loads((out / "results.json").read_text())
    assert results["benchmarks"]["aime24"]["truncated"] == cut
    # Half the cut samples never closed their reasoning.
    assert results["benchmarks"]["aime24"]["reasoning_closed_rate"] == pytest.approx(1 - cut / 2 / (30 * K))
    assert results["reference"]["model"] == "DeepSeek-R1-Distill-Qwen-7B"
    assert results["benchmarks"]["aime24"]["reference"] == {"pass@1": 55.5, "cons@64": 83.3}
    md = (out / "results.md").read_text()
    assert "| aime24 | 30 | 8 |" in md and "could not be verified" not in md and "55.5" in md and "83.3" in md

    # Every sample is kept with its verdict and vote, so the score can be audited …
    import polars as pl

    from distill.run import RunDir

    rows = RunDir(out / "aime24").read("all")
    assert rows.height == 30 * K and {
        "correct",
        "scored_correct",
        "vote_answer",
        "finish_reason",
        "seed",
    } <= set(rows.columns)
    # … resumed (nothing asked again) …
    asked = server.request_count
    again = evaluate(_cfg(server, shared_data, pass_k=[4]), out)
    assert server.request_count == asked and again.results[0].pass_at_1 == aime.pass_at_1
    # … and re-scored without generating: another pass@k, same pass@1.
    rescored = rescore_run(out, read_settings(out, overrides=["eval.pass_k=[2,8]"]))
    assert server.request_count == asked
    assert rescored.results[0].pass_at_1 == aime.pass_at_1 and set(rescored.results[0].pass_at_k) == {2, 8}
    cut_rows = rows.filter(pl.col("finish_reason") == "length")
    assert (
        cut_rows.height == cut
        and not cut_rows["scored_correct"].any()
        and cut_rows["vote_answer"].is_null().all()
    )


def test_unknown_benchmark_is_one_line_listing_the_available_ones(teacher_server, tmp_path: Path) -> None:
    cfg = EvalConfig(base_url=teacher_server.base_url, model="m", benchmarks=["aime24", "aime2099"])
    with pytest.raises(ConfigError) as err:
        evaluate(cfg, tmp_path / "eval")
    message = str(err.value)
    assert "\n" not in message and "aime2099" in message and "math500" in message and "humaneval" in message
    assert teacher_server.request_count == 0 and not (tmp_path / "eval" / "aime24").exists()


def test_reference_row_matches_model_ids_and_checkpoint_paths() -> None:
    table = load_reference()
    assert (
        match_reference("deepseek-ai/DeepSeek-R1-Distill-Llama-70B", table) == "DeepSeek-R1-Distill-Llama-70B"
    )
    assert match_reference("/ckpt/deepseek-r1-distill-qwen-1.5b/", table) == "DeepSeek-R1-Distill-Qwen-1.5B"
    assert match_reference("Qwen/Qwen2.5-Math-7B", table) is None
    assert table["models"]["DeepSeek-R1-Distill-Qwen-32B"]["aime24"] == {"pass@1": 72.6, "cons@64": 83.3}


def test_humaneval_end_to_end_runs_the_programs(
    make_teacher_server, shared_data: Path, tmp_path: Path
) -> None:
    import gzip

    with gzip.open(shared_data / "benchmarks" / "humaneval.jsonl.gz", "rt") as f:
        tasks = [json.loads(line) for line in f][:3]
    planted = {0: (True, True), 1: (True, False), 2: (False, False)}  # task → are its 2 samples right?
    calls: dict[int, int] = {}

    def student(messages: list[dict], params: dict, index: int) -> Reply:
        task = next(i for i, t in enumerate(tasks) if t["prompt"].strip() in messages[-1]["content"])
        j = calls[task] = calls.get(task, 0) + 1
        body = tasks[task]["canonical_solution"] if planted[task][j - 1] else "    return None\n"
        # The function without the stub's imports: the verifier puts HumanEval's stub first.
        header = tasks[task]["prompt"][tasks[task]["prompt"].index("def ") :]
        return Reply(content=f"Here it is.\n```python\n{header}{body}```", reasoning="Write the function.")

    server = make_teacher_server(student)
    cfg = EvalConfig(
        base_url=server.base_url,
        benchmarks=["humaneval"],
        k=2,
        limit=3,
        benchmark_paths={"humaneval": shared_data / "benchmarks" / "humaneval.jsonl.gz"},
    )
    report = evaluate(cfg, tmp_path / "eval")
    (he,) = report.results
    assert (he.problems, he.samples, he.subset_of, he.cons_at_k) == (3, 6, 164, None)
    assert he.pass_at_1.mean == pytest.approx(0.5) and he.unverified == 0
    assert "3 of 164" in (tmp_path / "eval" / "results.md").read_text()


def test_cli_serves_a_checkpoint_and_reports_beside_its_reference(shared_data: Path, tmp_path: Path) -> None:
    """`--vllm CHECKPOINT`: the engine's server class starts it (here the local teacher stands in for vllm)."""
    import subprocess
    import sys

    checkpoint = tmp_path / "DeepSeek-R1-Distill-Qwen-1.5B"
    checkpoint.mkdir()
    out = tmp_path / "eval"
    stand_in = json.dumps(
        {
            "vllm": {
                "command": [sys.executable, "-m", "distill.testing.local_server"],
                "startup_timeout_s": 60,
            }
        }
    )
    cmd = [
        sys.executable,
        "-m",
        "distill.cli",
        "eval",
        "--vllm",
        str(checkpoint),
        "--out",
        str(out),
        "--benchmark",
        f"aime24={shared_data / 'benchmarks' / 'aime24_test.jsonl'}",
        "--k",
        "2",
        "--seed",
        "7",
        "--set",
        "eval.limit=3",
        "--set",
        f"eval.engine={stand_in}",
        "--quiet",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "aime24" in done.stdout and "results.json" in done.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["model"] == "DeepSeek-R1-Distill-Qwen-1.5B" and results["settings"]["seed"] == 7
    assert results["reference"]["model"] == "DeepSeek-R1-Distill-Qwen-1.5B"
    assert (
        results["benchmarks"]["aime24"]["samples"] == 6 and results["benchmarks"]["aime24"]["subset_of"] == 30
    )
    assert (out / "logs" / "vllm.log").exists()

    # Another checkpoint into the same EVALDIR is refused, not mixed with these samples.
    other = tmp_path / "other-student"
    other.mkdir()
    refused = subprocess.run([*cmd[:5], str(other), *cmd[6:]], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "other settings" in refused.stderr
    assert json.loads((out / "results.json").read_text())["model"] == "DeepSeek-R1-Distill-Qwen-1.5B"

    # An unknown benchmark without a file is one line on stderr: pass its file, or a known name; exit code 1.
    bad = subprocess.run(
        [
            *cmd[:3],
            "eval",
            "--base-url",
            "http://127.0.0.1:9/v1",
            "--model",
            "m",
            "--benchmarks",
            "aime2099",
            "--out",
            str(tmp_path / "bad"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1
    assert (
        bad.stderr.startswith(
            "error: unknown benchmark 'aime2099' and no file given: pass --benchmark aime2099=PATH"
        )
        and "math500" in bad.stderr
    )


def test_multiple_choice_gold_letter_follows_the_shuffled_options(
    make_teacher_server, tmp_path: Path
) -> None:
    """GPQA-style items: options shuffled per item (seeded), the gold is the letter of the right one."""
    items = [
        {
            "Record ID": f"q{i}",
            "Question": f"Which value fits case {i}?",
            "Correct Answer": f"right {i}",
            "Incorrect Answer 1": f"wrong {i}a",
            "Incorrect Answer 2": f"wrong {i}b",
            "Incorrect Answer 3": f"wrong {i}c",
        }
        for i in range(4)
    ]
    local = tmp_path / "gpqa.jsonl"
    local.write_text("".join(json.dumps(item) + "\n" for item in items))

    def student(messages: list[dict], params: dict, index: int) -> Reply:
        prompt = messages[-1]["content"]
        options = dict(line.split(") ", 1) for line in prompt.splitlines() if line[1:3] == ") ")
        pick = next(letter for letter, text in options.items() if text.startswith("right"))
        if "case 0" in prompt:  # always picks a wrong option on the first question
            pick = next(letter for letter, text in options.items() if text.startswith("wrong"))
        return Reply(content=f"The answer is \\boxed{{{pick}}}.", reasoning="Compare the options.")

    server = make_teacher_server(student)
    cfg = EvalConfig(
        base_url=server.base_url,
        benchmarks=["gpqa_diamond"],
        k_by_benchmark={"GPQA-Diamond": 2},  # the registry's 64 would be overkill here
        benchmark_paths={"gpqa_diamond": local},
    )
    (result,) = evaluate(cfg, tmp_path / "eval").results
    assert (result.k, result.samples) == (2, 8)
    assert result.pass_at_1.mean == pytest.approx(0.75) and result.cons_at_k.mean == pytest.approx(0.75)
    letters = {
        line[0]
        for body in server.requests
        for line in body["messages"][0]["content"].splitlines()
        if line[1:9] == ") right "
    }
    assert len(letters) > 1  # the right option is not always in the same place


def test_livecodebench_stdin_and_leetcode_cases_are_run(make_teacher_server, tmp_path: Path) -> None:
    import base64
    import os
    import pickle
    import zlib

    def packed(cases: list[dict]) -> str:  # LiveCodeBench's private_test_cases encoding
        return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(cases)))).decode()

    items = [
        {
            "question_id": "sum",
            "question_content": "Read two integers and print their sum.",
            "starter_code": "",
            "public_test_cases": json.dumps([{"input": "1 2\n", "output": "3\n", "testtype": "stdin"}]),
            "private_test_cases": packed([{"input": "5 7\n", "output": "12\n", "testtype": "stdin"}]),
            "metadata": "{}",
        },
        {
            "question_id": "add",
            "question_content": "Return a + b.",
            "starter_code": "class Solution:\n    def addTwo(self, a: int, b: int) -> int:\n        ",
            "public_test_cases": json.dumps([{"input": "1\n2", "output": "3", "testtype": "functional"}]),
            "private_test_cases": packed([{"input": "10\n-4", "output": "6", "testtype": "functional"}]),
            "metadata": json.dumps({"func_name": "addTwo"}),
        },
    ]
    local = tmp_path / "lcb.jsonl"
    local.write_text("".join(json.dumps(item) + "\n" for item in items))
    programs = {
        "sum": ["a, b = map(int, input().split())\nprint(a + b)"] * 2,
        "add": [
            "class Solution:\n    def addTwo(self, a, b):\n        return a + b",
            "class Solution:\n    def addTwo(self, a, b):\n        return a - b",
        ],
    }
    calls: dict[str, int] = {}

    def student(messages: list[dict], params: dict, index: int) -> Reply:
        qid = "add" if "starter code" in messages[-1]["content"] else "sum"
        j = calls[qid] = calls.get(qid, 0) + 1
        return Reply(content=f"```python\n{programs[qid][j - 1]}\n```", reasoning="Plan the code.")

    server = make_teacher_server(student)
    cfg = EvalConfig(
        base_url=server.base_url, benchmarks=["livecodebench"], k=2, benchmark_paths={"livecodebench": local}
    )
    (result,) = evaluate(cfg, tmp_path / "eval").results
    assert result.pass_at_1.mean == pytest.approx(0.75) and result.unverified == 0

    # The private cases are unpickled with every class and function refused: the data is not trusted.
    from distill.errors import InputError
    from distill.evaluation.prompts import livecodebench_tests

    evil = base64.b64encode(zlib.compress(pickle.dumps(os.getcwd))).decode()
    with pytest.raises(InputError, match="refused to load"):
        livecodebench_tests({"id": "x", "private_test_cases": evil})
