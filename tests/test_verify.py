"""The verify stage on a run: verdict columns, pass rates, report, bad rows, timeouts, CLI."""

from __future__ import annotations

import gzip
import json
import threading
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from distill import schema
from distill.cli import app
from distill.reasoning import build_messages, normalise
from distill.run import RunDir
from distill.verification.stage import VerifyConfig, verify, verify_frame
from filters._pool import run_pool


def _row(prompt_id: str, sample: int, source: str, content: str, **extra: object) -> dict:
    trace = normalise(content)
    messages = build_messages([{"role": "user", "content": "q"}], trace)
    return {
        schema.PROMPT_ID: prompt_id,
        schema.SAMPLE: sample,
        schema.SOURCE: source,
        schema.MESSAGES: messages,
        schema.REASONING: trace.reasoning,
        schema.ANSWER_TEXT: trace.answer_text,
        schema.FINISH_REASON: "stop" if trace.complete else "length",
        **extra,
    }


def _rows(shared_data: Path) -> list[dict]:
    """Real Sky-T1 MATH-500 traces (two samples per prompt: the real one and a wrong one), plus bad rows."""
    rows = []
    lines = (shared_data / "traces" / "skyt1_27b_math500_outputs.jsonl").read_text().splitlines()
    for i, line in enumerate(lines[:6]):
        item = json.loads(line)
        real = (
            item["code"][0]
            .replace("<|begin_of_thought|>", "<think>")
            .replace("<|end_of_thought|>", "</think>")
        )
        rows.append(_row(f"m{i}", 0, "math500", real, answer=item["answer"]))
        rows.append(
            _row(
                f"m{i}", 1, "math500", "<think>\nguess\n</think>\n\n\\boxed{123456789}", answer=item["answer"]
            )
        )
    rows.append(_row("nogold", 0, "misc", "<think>\nx\n</think>\n\n\\boxed{1}", answer=None))
    rows.append(_row("badgold", 0, "misc", "<think>\nx\n</think>\n\n\\boxed{1}", answer="\\frac{"))
    with gzip.open(shared_data / "benchmarks" / "humaneval.jsonl.gz", "rt") as f:
        task = json.loads(f.readline())
    program = f"<think>\nok\n</think>\n\n```python\n{task['prompt']}{task['canonical_solution']}\n```"
    rows.append(
        _row("he0", 0, "humaneval", program, answer=None, test=task["test"], entry_point=task["entry_point"])
    )
    rows.append(
        _row(
            "he0",
            1,
            "humaneval",
            "<think>\nok\n</think>\n\n```python\nimport os\nos.fork()\nwhile True: os.fork()\n```",
            answer=None,
            test=task["test"],
            entry_point=task["entry_point"],
        )
    )
    return rows


def test_verify_a_run_adds_columns_keeps_rows_and_reports(shared_data: Path, run_dir: RunDir) -> None:
    run_dir.ensure()
    rows = _rows(shared_data)
    run_dir.write_rows(pl.DataFrame(rows))
    # wall: a backstop (the fork bomb ends on its own failed fork); 3 s let a loaded box time out he0
    cfg = VerifyConfig(code=True, code_cpu_s=2, code_wall_s=20.0)
    report = verify(cfg, run_dir)
    data = run_dir.read("all").sort(schema.PROMPT_ID, schema.SAMPLE)
    assert data.height == len(rows) and "problem" not in data.columns and "answer" in data.columns
    by_key = {(r[schema.PROMPT_ID], r[schema.SAMPLE]): r for r in data.iter_rows(named=True)}

    assert all(by_key[(f"m{i}", 1)][schema.MATH_VERIFIED] is False for i in range(6))
    assert sum(bool(by_key[(f"m{i}", 0)][schema.MATH_VERIFIED]) for i in range(6)) >= 5
    assert by_key[("nogold", 0)][schema.MATH_VERIFIED] is None
    assert "no gold" in by_key[("nogold", 0)][schema.VERIFY_DETAIL]
    assert by_key[("badgold", 0)][schema.MATH_VERIFIED] is None
    assert by_key[("he0", 0)][schema.CODE_VERIFIED] is True and by_key[("he0", 0)][schema.CORRECT] is True
    bomb = by_key[("he0", 1)]
    assert bomb[schema.CODE_VERIFIED] is False  # a fork bomb: contained, recorded, and the run went on
    assert json.loads(bomb[schema.CODE_RESULTS])["kind"] in ("timeout", "runtime_error")
    assert by_key[("he0", 0)][schema.PASS_RATE] == 0.5
    assert by_key[("he0", 0)][schema.MATH_VERIFIED] is None  # a code row is not graded as math
    assert by_key[("m0", 1)][schema.FORMAT_OK] is True and by_key[("m0", 1)][schema.COMPLETE] is True

    assert report.counts["math"]["null"] == 4 and report.counts["math"]["false"] >= 6
    assert report.counts["code"] == {"true": 1, "false": 1, "null": 14, "timeout": 0}
    assert report.by_source["humaneval"]["pass_rate_mean"] == 0.5
    assert report.isolation and "rlimits" in report.isolation
    stats = run_dir.read_json(run_dir.stats)["verify"]
    assert stats["verifiers"]["math"] == report.counts["math"] and "math500" in stats["by_source"]

    again = verify(cfg, run_dir)  # same settings, same rows: nothing to redo
    assert again.skipped and again.counts == report.counts


def test_boxed_fallback_only_when_configured() -> None:
    rows = [_row("p", 0, "s", "<think>\nso it is \\boxed{7}", answer="7")]  # never closed its thoughts
    frame = pl.DataFrame(rows)
    assert verify_frame(VerifyConfig(), frame)[schema.MATH_VERIFIED].to_list() == [False]
    fallback = verify_frame(VerifyConfig(answer_source="answer_or_boxed"), frame)
    assert fallback[schema.MATH_VERIFIED].to_list() == [True]
    assert fallback[schema.FORMAT_OK].to_list() == [False]  # still an incomplete trace


def test_gold_from_solution_or_gsm8k_when_the_answer_column_is_missing() -> None:
    frame = pl.DataFrame(
        [
            {
                schema.PROMPT_ID: "a",
                schema.SAMPLE: 0,
                schema.ANSWER_TEXT: "\\boxed{18}",
                "solution": "... #### 18",
            },
            {
                schema.PROMPT_ID: "b",
                schema.SAMPLE: 0,
                schema.ANSWER_TEXT: "\\boxed{5}",
                "solution": "so $\\boxed{5}$.",
            },
            {schema.PROMPT_ID: "c", schema.SAMPLE: 0, schema.ANSWER_TEXT: "\\boxed{5}", "solution": None},
        ]
    )
    out = verify_frame(VerifyConfig(format=False), frame)
    assert out[schema.MATH_VERIFIED].to_list() == [True, True, None]
    assert out[schema.PASS_RATE].to_list() == [1.0, 1.0, None]


def test_a_pathological_row_times_out_and_the_run_goes_on() -> None:
    frame = pl.DataFrame(
        [
            {
                schema.PROMPT_ID: "slow",
                schema.SAMPLE: 0,
                schema.ANSWER_TEXT: "\\boxed{(10^{10^{8}})!}",
                "answer": "5",
            },
            *(
                {
                    schema.PROMPT_ID: f"ok{i}",
                    schema.SAMPLE: 0,
                    schema.ANSWER_TEXT: f"\\boxed{{{i}}}",
                    "answer": str(i),
                }
                for i in range(6)
            ),
        ]
    )
    out = verify_frame(VerifyConfig(item_timeout_s=1.5, workers=2, format=False), frame)
    assert out[schema.MATH_VERIFIED].to_list() == [None] + [True] * 6
    assert "math: timeout" in out[schema.VERIFY_DETAIL][0]
    from distill.verification.stage import build_report

    assert build_report(out).counts["math"] == {"true": 6, "false": 0, "null": 0, "timeout": 1}


def _block_forever(x: int) -> int:
    if x < 0:
        threading.Event().wait()  # never set: only the pool's kill ends this
    return x * 10


def test_pool_kills_a_stuck_worker_and_keeps_order() -> None:
    results = run_pool(_block_forever, [1, -1, 2, 3, 4], workers=2, timeout_s=1.0)
    assert [r.status for r in results] == ["ok", "timeout", "ok", "ok", "ok"]
    assert [r.value for r in results if r.status == "ok"] == [10, 20, 30, 40]


def test_cli_verify_and_report(shared_data: Path, run_dir: RunDir) -> None:
    run_dir.ensure()
    run_dir.write_rows(pl.DataFrame(_rows(shared_data)[:4]))
    runner = CliRunner()
    done = runner.invoke(
        app, ["verify", str(run_dir.root), "--no-format", "--quiet", "--set", "verify.workers=2"]
    )
    assert done.exit_code == 0, done.output
    assert "verified 4 rows" in done.output
    shown = runner.invoke(app, ["verify", str(run_dir.root), "--report"])
    assert shown.exit_code == 0 and "math500" in shown.output and "timeout" in shown.output
    bad = runner.invoke(app, ["verify", str(run_dir.root), "--set", "verify.gold_colum=x"])
    assert bad.exit_code != 0


@pytest.mark.parametrize("flag", ["--code", "--no-math"])
def test_cli_flags_reach_the_config(flag: str, run_dir: RunDir) -> None:
    run_dir.ensure()
    run_dir.write_rows(
        pl.DataFrame(
            [{schema.PROMPT_ID: "a", schema.SAMPLE: 0, schema.ANSWER_TEXT: "\\boxed{1}", "answer": "1"}]
        )
    )
    done = CliRunner().invoke(app, ["verify", str(run_dir.root), flag, "--quiet"])
    assert done.exit_code == 0, done.output
    stage = run_dir.read("all")
    assert stage[schema.MATH_VERIFIED].to_list() == ([True] if flag == "--code" else [None])


def test_bad_programs_each_get_a_verdict_with_its_reason_and_the_stage_goes_on() -> None:
    programs = {
        "good": "print(6 * 7)",
        "error-words": "import sys\nprint('MemoryError', file=sys.stderr)\nprint('File too large', file=sys.stderr)\nprint(42)",
        "quiet": "pass",
        "flood": "import sys\nprint(42, flush=True)\nwhile True:\n    sys.stderr.write('e' * 65536)",
        "own-cpu-limit": (
            "import resource\nhard = resource.getrlimit(resource.RLIMIT_CPU)[1]\n"
            "resource.setrlimit(resource.RLIMIT_CPU, (1, hard))\nwhile True:\n    pass"
        ),
    }
    frame = pl.DataFrame(
        [
            {
                schema.PROMPT_ID: name,
                schema.SAMPLE: 0,
                schema.ANSWER_TEXT: f"```python\n{code}\n```",
                "tests": json.dumps([{"input": "", "output": "42"}]),
            }
            for name, code in programs.items()
        ]
    )
    # wall: a backstop, as in production; own-cpu-limit's 1 s of CPU took over 8 s of wall at load 15
    cfg = VerifyConfig(math=False, format=False, code=True, code_cpu_s=5, code_wall_s=60.0, workers=2)
    rows = {r[schema.PROMPT_ID]: r for r in verify_frame(cfg, frame).iter_rows(named=True)}
    assert rows["good"][schema.CODE_VERIFIED] is True
    assert rows["error-words"][schema.CODE_VERIFIED] is True  # what a program prints is never the verdict
    expected = {
        "quiet": ("wrong_answer", "got ''"),
        "flood": ("output_limit", "bytes of output"),
        "own-cpu-limit": ("timeout", "SIGXCPU"),
    }
    for name, (kind, reason) in expected.items():
        assert rows[name][schema.CODE_VERIFIED] is False
        assert json.loads(rows[name][schema.CODE_RESULTS])["kind"] == kind
        assert kind in rows[name][schema.VERIFY_DETAIL] and reason in rows[name][schema.VERIFY_DETAIL]
