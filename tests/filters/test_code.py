"""Code verification on real benchmarks: canonical solutions pass, mutated ones fail, kinds are right."""

from __future__ import annotations

import gzip
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from filters.code import extract_program, outputs_match, parse_tests, verify_code
from filters.sandbox import Limits, Sandbox


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(Limits(cpu_s=5, wall_s=8.0, memory_mb=1024))


def _humaneval(shared_data: Path) -> list[dict]:
    with gzip.open(shared_data / "benchmarks" / "humaneval.jsonl.gz", "rt") as f:
        return [json.loads(line) for line in f]


def test_extracts_the_last_python_block() -> None:
    answer = (
        "First try:\n```python\ndef f(): return 1\n```\nOutput:\n```text\n1\n```\n"
        "Better:\n```py\ndef f(): return 2\n```\nRun it with:\n```bash\npython f.py\n```"
    )
    assert extract_program(answer) == "def f(): return 2\n"
    assert extract_program("```\nprint(1)\n```") == "print(1)\n"
    assert extract_program("no code at all") is None
    assert verify_code("no code", ["assert True"]).kind == "no_program"


def test_every_humaneval_canonical_solution_passes(shared_data: Path, sandbox: Sandbox) -> None:
    tasks = _humaneval(shared_data)

    def check(item: tuple[int, dict]) -> tuple[str, str]:
        slot, task = item
        tests = {"test": task["test"], "entry_point": task["entry_point"]}
        verdict = verify_code(
            task["prompt"] + task["canonical_solution"], tests, sandbox=sandbox, slot=slot % 2, extract=False
        )
        return task["task_id"], verdict.kind

    with ThreadPoolExecutor(2) as pool:
        kinds = dict(pool.map(check, enumerate(tasks)))
    assert len(kinds) == 164
    assert {k for k in kinds.values()} == {"passed"}, {t: k for t, k in kinds.items() if k != "passed"}


def test_mutated_humaneval_solutions_fail_with_the_right_kind(shared_data: Path, sandbox: Sandbox) -> None:
    task = _humaneval(shared_data)[0]
    tests = {"test": task["test"], "entry_point": task["entry_point"]}
    body = (
        task["canonical_solution"].replace("return True", "return @").replace("return False", "return True")
    )
    answer = f"```python\n{task['prompt']}{body.replace('return @', 'return False')}\n```"  # verdicts swapped
    wrong = verify_code(answer, tests, sandbox=sandbox)
    assert (wrong.ok, wrong.kind) == (False, "wrong_answer")
    crash = verify_code(f"```python\n{task['prompt']}    return 1 / 0\n```", tests, sandbox=sandbox)
    assert (crash.ok, crash.kind) == (False, "runtime_error") and "ZeroDivisionError" in crash.detail
    with Sandbox(Limits(cpu_s=1, wall_s=2.0)) as short:  # closed: its uids go back at once, not at exit
        slow = verify_code(f"```python\n{task['prompt']}    while True: pass\n```", tests, sandbox=short)
    assert (slow.ok, slow.kind) == (False, "timeout")


def test_mbpp_canonical_passes_and_each_assert_is_reported(shared_data: Path, sandbox: Sandbox) -> None:
    rows = [
        json.loads(line) for line in (shared_data / "benchmarks" / "mbpp.jsonl").read_text().splitlines()[:30]
    ]
    for row in rows:
        tests = {"test_list": row["test_list"], "test_setup_code": row["test_setup_code"]}
        verdict = verify_code(f"```python\n{row['code']}\n```", tests, sandbox=sandbox)
        assert verdict.ok, (row["task_id"], verdict.detail)
        assert [t.kind for t in verdict.tests] == ["passed"] * len(row["test_list"])
    for row in rows[:10]:  # mutated: the function is replaced by one that returns None
        name = re.match(r"assert\s+\(?\s*(?:not\s+)?\(?(?:set\()?(\w+)\(", row["test_list"][0]).group(1)
        mutated = f"```python\n{row['code']}\ndef {name}(*args, **kwargs):\n    return None\n```"
        verdict = verify_code(mutated, {"test_list": row["test_list"]}, sandbox=sandbox)
        assert verdict.ok is False and verdict.kind in ("wrong_answer", "runtime_error"), row["task_id"]
    row = rows[1]
    first_assert_only = [row["test_list"][0], "assert False, 'second fails'", row["test_list"][2]]
    verdict = verify_code(f"```python\n{row['code']}\n```", first_assert_only, sandbox=sandbox)
    assert [t.kind for t in verdict.tests] == ["passed", "wrong_answer", "passed"]
    assert verdict.kind == "wrong_answer" and "(2/3 passed)" in verdict.detail
    syntax = verify_code("```python\ndef broken(:\n```", row["test_list"], sandbox=sandbox)
    assert syntax.kind == "runtime_error" and "SyntaxError" in syntax.detail


def test_stdin_stdout_cases_from_nemo(shared_data: Path, sandbox: Sandbox) -> None:
    sample = json.loads(
        (shared_data / "verify" / "nemo_code_execution_stdin_sample.jsonl").read_text().splitlines()[0]
    )
    good = verify_code(sample["code"], sample["test_cases"], sandbox=sandbox, extract=False)
    assert good.ok is sample["is_correct"] is True and len(good.tests) == len(sample["test_cases"])
    bad = verify_code("print(0)", sample["test_cases"], sandbox=sandbox, extract=False)
    assert bad.kind == "wrong_answer" and all(t.kind == "wrong_answer" for t in bad.tests)
    as_json = json.dumps(
        {
            "inputs": [c["input"] for c in sample["test_cases"]],
            "outputs": [c["output"] for c in sample["test_cases"]],
        }
    )
    assert verify_code(sample["code"], as_json, sandbox=sandbox, extract=False).ok


def test_output_comparison_is_whitespace_tolerant_with_optional_float_tolerance() -> None:
    assert outputs_match("1 2\n3  \n\n", "1 2 3")
    assert not outputs_match("1 2", "1 2 3")
    assert not outputs_match("0.3333333", "0.3333334")
    assert outputs_match("0.3333333", "0.3333334", float_tol=1e-6)
    assert not outputs_match("yes", "no", float_tol=1e-6)


def test_rows_without_tests_are_not_applicable() -> None:
    assert parse_tests(None) is None and parse_tests("") is None and parse_tests([]) is None
    verdict = verify_code("```python\nprint(1)\n```", None)
    assert verdict.ok is None and verdict.kind == "no_tests"


def test_hostile_program_in_a_test_suite_is_recorded_and_contained(sandbox: Sandbox) -> None:
    with Sandbox(Limits(cpu_s=1, wall_s=2.0, memory_mb=512, output_bytes=1024**2)) as small:
        flood = verify_code(
            "```python\nimport sys\nwhile True: sys.stdout.write('x' * 9999)\n```",
            [{"input": "", "output": "1"}],
            sandbox=small,
        )
        memory = verify_code("```python\nx = bytearray(50 * 1024**3)\n```", ["assert True"], sandbox=small)
    assert flood.kind == "output_limit"
    assert memory.kind == "memory"
