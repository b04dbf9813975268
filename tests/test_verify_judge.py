"""verify.judge: rows the rules leave null go to an LLM judge (the local server plays it); the filter,
the report and the card show which verdicts came from rules and which from the judge."""

from __future__ import annotations

import logging
import re
import socket
from pathlib import Path

import polars as pl
import pytest

from distill import schema
from distill.errors import TeacherError
from distill.filtering.stage import FilterConfig, apply_filters
from distill.judge import JudgeConfig
from distill.publishing.card import CardConfig, write_card
from distill.run import RunDir
from distill.testing.local_server import Reply
from distill.verification.stage import VerifyConfig, verify


def science_judge(messages: list[dict], params: dict, index: int) -> Reply:
    """Says yes when the reference's letters and digits all appear, in order, in the response's answer."""
    text = messages[-1]["content"]
    gold = re.search(r"REFERENCE ANSWER:\n(.*?)\n\nRESPONSE", text, re.S).group(1)
    answer = re.search(r"RESPONSE \(its answer section\):\n(.*?)\n\nDecide", text, re.S).group(1)
    key = [c for c in gold if c.isalnum()]
    it = iter(c for c in answer if c.isalnum())
    same = all(c in it for c in key)
    return Reply(
        content=f"The reference {gold!r} {'matches' if same else 'differs'}.\nJudgement: {'yes' if same else 'no'}"
    )


ROWS = [
    # (prompt_id, source, gold, answer) — the rules grade the first two, the judge the rest
    ("p-rule-yes", "math", "7", "So \\boxed{7}."),
    ("p-rule-no", "math", "7", "So \\boxed{8}."),
    ("p-free-yes", "minerva", "E_{1},E_{2}", "\\boxed{E_1 \\text{ or } E_2}"),
    ("p-free-no", "minerva", "E_{1},E_{2}", "\\boxed{E_3}"),
    ("p-partial", "math", "1, 2, \\ldots, n", "\\boxed{1, 2, 3, \\ldots, n}"),
]


def _write(run: RunDir, rows: list[tuple[str, str, str | None, str]]) -> None:
    run.ensure()
    run.write_rows(
        pl.DataFrame(
            [
                {
                    schema.PROMPT_ID: pid,
                    schema.SAMPLE: 0,
                    schema.SOURCE: source,
                    schema.PROMPT: f"Problem {pid}",
                    schema.MESSAGES: [
                        {"role": "user", "content": f"Problem {pid}"},
                        {"role": "assistant", "content": f"<think>\nthinking\n</think>\n\n{answer}"},
                    ],
                    schema.REASONING: "thinking",
                    schema.ANSWER_TEXT: answer,
                    schema.COMPLETE: True,
                    "answer": gold,
                }
                for pid, source, gold, answer in rows
            ]
        )
    )


def test_judge_grades_what_rules_cannot_and_filter_accepts_it_when_asked(
    make_teacher_server, run_dir: RunDir
) -> None:
    server = make_teacher_server(science_judge, model="judge-9")
    _write(run_dir, ROWS)
    cfg = VerifyConfig(format=False, workers=1, judge=JudgeConfig(base_url=server.base_url))
    report = verify(cfg, run_dir)
    rows = {r[schema.PROMPT_ID]: r for r in run_dir.read("all").iter_rows(named=True)}

    assert (
        rows["p-rule-yes"][schema.MATH_VERIFIED] is True and rows["p-rule-no"][schema.MATH_VERIFIED] is False
    )
    assert rows["p-rule-yes"][schema.JUDGE_VERDICT] is None  # rules decided: the judge was not asked
    assert [rows[p][schema.VERDICT_REASON] for p in ("p-rule-yes", "p-rule-no")] == ["parsed", "parsed"]
    for pid, expected in (("p-free-yes", True), ("p-free-no", False), ("p-partial", True)):
        row = rows[pid]
        assert row[schema.MATH_VERIFIED] is None  # the rule verdict stays null, beside the judge's
        assert row[schema.JUDGE_VERDICT] is expected and row[schema.JUDGE_MODEL] == "judge-9"
        assert row[schema.VERDICT_REASON] == "judge" and "reference" in row[schema.JUDGE_REASON]
        assert "gold answer" in row[schema.VERIFY_DETAIL]  # why the rules gave none
    assert server.request_count == 3
    assert "Problem p-free-yes" in server.requests[0]["messages"][-1]["content"]
    assert report.reasons == {"parsed": 2, "judge": 3} and report.by_rules == 2 and report.by_judge == 3
    assert report.judge["asked"] == 3 and report.judge["yes"] == 2 and report.judge["model"] == "judge-9"
    assert run_dir.read_json(run_dir.stats)["verify"]["judge"]["sent"] == 3

    # a forced rerun reuses every stored verdict: nothing is sent twice
    verify(cfg, run_dir, force=True)
    assert server.request_count == 3

    def kept() -> set[str]:
        return {r[schema.PROMPT_ID] for r in run_dir.read("all").iter_rows(named=True) if r[schema.KEEP]}

    only_correctness = dict(drop_errors=False, require_format=False, dedup_traces=False, near_dup_traces=None)
    apply_filters(FilterConfig(**only_correctness), run_dir)
    assert "p-free-no" in kept() and "p-rule-no" not in kept()  # a null rule verdict passes by default
    apply_filters(FilterConfig(**only_correctness, accept_judge=True), run_dir)
    assert kept() == {"p-rule-yes", "p-free-yes", "p-partial"}

    card = write_card(CardConfig(), run_dir).read_text()
    assert "| judge | 3 |" in card and "| parsed | 2 |" in card
    assert "Verdicts from rules: 2; from the LLM judge (judge-9" in card and "of which 2 correct" in card


def test_judge_endpoint_down_stops_before_anything_is_sent_or_written(run_dir: RunDir) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _write(run_dir, ROWS)
    cfg = VerifyConfig(format=False, workers=1, judge=JudgeConfig(base_url=f"http://127.0.0.1:{port}/v1"))
    with pytest.raises(TeacherError) as e:
        verify(cfg, run_dir)
    assert f"judge endpoint http://127.0.0.1:{port}/v1" in str(e.value) and "\n" not in str(e.value)
    assert schema.MATH_VERIFIED not in run_dir.read("all").columns  # the stage did not run
    assert not run_dir.judge.exists()


def test_a_source_without_usable_gold_gets_one_warning_with_counts(
    run_dir: RunDir, caplog: pytest.LogCaptureFixture
) -> None:
    rows = [(f"a{i}", "broken", None if i % 2 else "\\frac{", "\\boxed{3}") for i in range(6)]
    rows += [(f"b{i}", "fine", "3", "\\boxed{3}") for i in range(3)]
    rows += [("c0", "mixed", None, "\\boxed{3}"), ("c1", "mixed", "3", "\\boxed{3}")]
    _write(run_dir, rows)
    with caplog.at_level(logging.WARNING, logger="distill.verification.judging"):
        report = verify(VerifyConfig(format=False, workers=1), run_dir)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # one line for the whole source, none for a source with some usable gold
    assert "'broken'" in warnings[0] and "6 rows (3 empty, 3 unparseable in column 'answer')" in warnings[0]
    assert report.gold["broken"] == {"rows": 6, "gold_empty": 3, "gold_unparsed": 3}
    assert report.gold["mixed"] == {"rows": 2, "gold_empty": 1, "gold_unparsed": 0}
    assert "fine" not in report.gold
    assert report.reasons == {"parsed": 4, "gold_unparsed": 7}


def test_verify_stage_writes_no_judge_columns_without_a_judge(run_dir: RunDir, tmp_path: Path) -> None:
    _write(run_dir, ROWS[:2])
    report = verify(VerifyConfig(format=False, workers=1), run_dir)
    data = run_dir.read("all")
    assert (
        schema.JUDGE_VERDICT not in data.columns and data[schema.VERDICT_REASON].to_list() == ["parsed"] * 2
    )
    assert report.judge is None


def test_cli_names_a_dead_judge_endpoint_in_one_line(run_dir: RunDir) -> None:
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _write(run_dir, ROWS[:2])
    url = f"http://127.0.0.1:{port}/v1"
    done = subprocess.run(
        [sys.executable, "-m", "distill.cli", "verify", str(run_dir.root), "--quiet",
         "--set", f"verify.judge.base_url={url}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().startswith(f"error: judge endpoint {url} is not usable: cannot reach {url}")
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
