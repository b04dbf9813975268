"""Verification stage: runs the verifiers of filters/ over a run and adds verdict columns.

    verify(cfg, run)         data/all gains math_verified, code_verified, format_ok, complete,
                             verify_detail, verdict_reason, code_results, correct, pass_rate, and
                             with verify.judge judge_verdict/model/reason (no row is ever dropped)
    verify_frame(cfg, frame) the same columns on an in-memory frame (used by eval and the pipeline)

Math runs in worker processes with a hard wall-clock limit per row (filters/_pool.py); code runs
in sandboxed subprocesses, one slot per core (filters/sandbox.py); format checks are cheap and run
here. Verdicts are true / false / null, null meaning "does not apply" (no gold, no tests) or
"could not tell" (timeout, unparseable gold); `verify_detail` says which and `verdict_reason` names it
(parsed, partial_parse, no_answer, gold_unparsed, timeout; judge when the LLM judge decided a null
row, see judging.py).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from queue import Queue
from typing import TYPE_CHECKING, Any

from distill import schema
from distill.run import writes_run
from distill.verification.config import VerifyConfig
from distill.verification.report import VerifyReport, build_report

if TYPE_CHECKING:
    from pathlib import Path

    import polars as pl

    from distill.progress import Progress
    from distill.run import RunDir

__all__ = ["VerifyConfig", "VerifyReport", "build_report", "verify", "verify_frame"]

log = logging.getLogger(__name__)
STAGE = "verify"


# ── the stage ──────────────────────────────────────────────────────────────
OUTPUT_COLUMNS = (
    schema.MATH_VERIFIED,
    schema.CODE_VERIFIED,
    schema.FORMAT_OK,
    schema.COMPLETE,
    schema.VERIFY_DETAIL,
    schema.VERDICT_REASON,
    schema.JUDGE_VERDICT,
    schema.JUDGE_MODEL,
    schema.JUDGE_REASON,
    schema.CODE_RESULTS,
    schema.CORRECT,
    schema.PASS_RATE,
)


@writes_run("verify")
def verify(
    cfg: VerifyConfig, run: RunDir, *, progress: Progress | None = None, force: bool = False
) -> VerifyReport:
    """Verify every row of the run's data/all and add the verdict columns (rows are never dropped).

    A second call with the same settings on the same rows returns the recorded report (`force` reruns).
    """
    frame = run.read("all")
    fingerprint = cfg.fingerprint()
    record = run.stage_record(STAGE) or {}
    if (
        not force
        and run.is_done(STAGE, fingerprint)
        and record.get("rows") == frame.height
        and schema.CORRECT in frame.columns
    ):
        return replace(VerifyReport.from_stats(run.read_json(run.stats).get(STAGE, {})), skipped=True)
    if cfg.math and cfg.judge is not None:
        from distill.judge import preflight

        preflight(cfg.judge)  # a dead judge endpoint stops the stage here, before any work or request
    start = time.monotonic()
    verified, isolation, extras = _verify(cfg, frame, progress, judge_folder=run.judge)
    produced = [c for c in OUTPUT_COLUMNS if c in verified.columns]
    run.update_rows(verified.select(*schema.KEY, *produced))
    report = build_report(
        verified, seconds=time.monotonic() - start, workers=_workers(cfg), isolation=isolation, **extras
    )
    run.update_stats(STAGE, report.to_stats())
    run.mark_done(STAGE, fingerprint, rows=frame.height)
    log.info("%s in %.1fs", report.summary(), report.seconds)
    return report


def verify_frame(cfg: VerifyConfig, frame: pl.DataFrame, *, progress: Progress | None = None) -> pl.DataFrame:
    """`frame` with the verdict columns added (or replaced); same rows, same order (rules only: no judge)."""
    return _verify(cfg, frame, progress)[0]


def _verify(
    cfg: VerifyConfig, frame: pl.DataFrame, progress: Progress | None, *, judge_folder: Path | None = None
) -> tuple[pl.DataFrame, str | None, dict[str, Any]]:
    import polars as pl

    from distill.progress import NullProgress
    from distill.verification.judging import judge_rows, warn_about_golds
    from distill.verification.math_rows import run_math

    progress = progress or NullProgress()
    n = frame.height
    answers = (
        _column(frame, schema.ANSWER_TEXT)
        if schema.ANSWER_TEXT in frame.columns
        else _answers_from_messages(frame)
    )
    tests = _tests(cfg, frame) if cfg.code else [None] * n
    golds = _golds(cfg, frame)
    details: list[list[str]] = [[] for _ in range(n)]
    math_v: list[bool | None] = [None] * n
    code_v: list[bool | None] = [None] * n
    code_json: list[str | None] = [None] * n
    reasons: list[str | None] = [None] * n
    extras: dict[str, Any] = {}
    isolation = None
    code_rows = sum(t is not None for t in tests)
    progress.start("verify", total=code_rows + (n - code_rows if cfg.math else 0))
    if cfg.code and any(t is not None for t in tests):
        isolation = _run_code(
            cfg, answers, tests, _prefixes(cfg, frame), code_v, code_json, details, progress
        )
    if cfg.math:
        reasoning = _column(frame, schema.REASONING) if cfg.answer_source == "answer_or_boxed" else [None] * n
        run_math(cfg, answers, reasoning, golds, tests, math_v, reasons, details, progress)
        sources = [str(s) if s is not None else "unknown" for s in _column(frame, schema.SOURCE)]
        math_rows = [i for i in range(n) if tests[i] is None]
        extras["gold"] = warn_about_golds(sources, golds, reasons, math_rows, cfg.gold_column).as_stats()
    columns: dict[str, tuple[list[Any], Any]] = {
        schema.MATH_VERIFIED: (math_v, pl.Boolean),
        schema.CODE_VERIFIED: (code_v, pl.Boolean),
        schema.VERDICT_REASON: (reasons, pl.String),
    }
    if cfg.math and cfg.judge is not None and judge_folder is not None:
        outcome = judge_rows(
            cfg.judge, judge_folder, problems=_problems(frame), golds=golds, answers=answers, reasons=reasons
        )
        reasons[:] = ["judge" if v is not None else r for v, r in zip(outcome.verdict, reasons, strict=True)]
        columns[schema.JUDGE_VERDICT] = (outcome.verdict, pl.Boolean)
        columns[schema.JUDGE_MODEL] = (outcome.model, pl.String)
        columns[schema.JUDGE_REASON] = (outcome.reason, pl.String)
        extras["judge"] = {"asked": outcome.asked, **(outcome.report.as_stats() if outcome.report else {})}
    if cfg.format:
        fmt_ok, complete = _run_format(cfg, frame, answers, golds, tests, details)
        columns[schema.FORMAT_OK] = (fmt_ok, pl.Boolean)
        if schema.COMPLETE not in frame.columns:  # generation's value is the truth when it exists
            columns[schema.COMPLETE] = (complete, pl.Boolean)
    columns[schema.CODE_RESULTS] = (code_json, pl.String)
    columns[schema.VERIFY_DETAIL] = (["; ".join(d) or None for d in details], pl.String)
    progress.finish()
    out = frame.with_columns(
        [pl.Series(name, values, dtype=dtype) for name, (values, dtype) in columns.items()]
    )
    out = out.with_columns(pl.coalesce(schema.CODE_VERIFIED, schema.MATH_VERIFIED).alias(schema.CORRECT))
    rate = pl.col(schema.CORRECT).cast(pl.Float64)
    if schema.PROMPT_ID in out.columns:  # the mean over the prompt's samples that have a verdict
        rate = rate.mean().over(schema.PROMPT_ID)
    out = out.with_columns(rate.alias(schema.PASS_RATE))
    return out, isolation, extras


# ── inputs ─────────────────────────────────────────────────────────────────
def _column(frame: pl.DataFrame, name: str) -> list[Any]:
    return frame[name].to_list() if name in frame.columns else [None] * frame.height


def _assistant(messages: Any) -> str | None:
    for message in reversed(messages or []):
        if message and message.get("role") == "assistant":
            return message.get("content")
    return None


def _answers_from_messages(frame: pl.DataFrame) -> list[str | None]:
    from distill.reasoning import normalise

    return [
        None if (c := _assistant(m)) is None else normalise(c).answer_text
        for m in _column(frame, schema.MESSAGES)
    ]


def _problems(frame: pl.DataFrame) -> list[Any]:
    """The problem text the judge sees: the rendered prompt, else a problem/question column."""
    for name in (schema.PROMPT, "problem", "question"):
        if name in frame.columns:
            return frame[name].to_list()
    return [None] * frame.height


def _golds(cfg: VerifyConfig, frame: pl.DataFrame) -> list[Any]:
    from filters.math import gold_from_solution

    golds = _column(frame, cfg.gold_column)
    if cfg.solution_column and cfg.solution_column in frame.columns:
        solutions = frame[cfg.solution_column].to_list()
        golds = [g if g is not None else gold_from_solution(s) for g, s in zip(golds, solutions, strict=True)]
    return golds


def _tests(cfg: VerifyConfig, frame: pl.DataFrame) -> list[Any]:
    """Each row's tests in a shape filters.code.parse_tests understands, or None."""
    plain = _column(frame, cfg.tests_column)
    test, entry = _column(frame, cfg.test_column), _column(frame, cfg.entry_point_column)
    tlist, setup = _column(frame, cfg.test_list_column), _column(frame, cfg.test_setup_column)
    out: list[Any] = []
    for i in range(frame.height):
        if plain[i] is not None:
            out.append(plain[i])
        elif test[i] and entry[i]:
            out.append({"test": test[i], "entry_point": entry[i]})
        elif tlist[i] is not None:
            out.append({"test_list": list(tlist[i]), "test_setup_code": setup[i] or ""})
        else:
            out.append(None)
    return out


def _prefixes(cfg: VerifyConfig, frame: pl.DataFrame) -> list[str | None]:
    return _column(frame, cfg.code_prefix_column) if cfg.code_prefix_column else [None] * frame.height


def _workers(cfg: VerifyConfig) -> int:
    from filters._pool import default_workers

    return cfg.workers if cfg.workers is not None else default_workers()


# ── verifiers ──────────────────────────────────────────────────────────────
def _run_code(
    cfg: VerifyConfig,
    answers: list[Any],
    tests: list[Any],
    prefixes: list[Any],
    out: list[bool | None],
    results_json: list[str | None],
    details: list[list[str]],
    progress: Progress,
) -> str:
    from filters.code import extract_program, verify_code
    from filters.sandbox import Limits, Sandbox

    slots: Queue[int] = Queue()
    for slot in range(max(1, _workers(cfg))):
        slots.put(slot)
    limits = Limits(
        cpu_s=cfg.code_cpu_s, wall_s=cfg.code_wall_s, memory_mb=cfg.code_memory_mb, disk_mb=cfg.code_disk_mb
    )
    sandbox = Sandbox(limits)  # logs what isolation is in force (and what the host lacks) once

    def one(i: int) -> None:
        program = extract_program(answers[i])
        if program is not None and prefixes[i]:
            program = f"{prefixes[i]}\n{program}"
        slot = slots.get()
        try:
            verdict = verify_code(
                program, tests[i], sandbox=sandbox, slot=slot, float_tol=cfg.float_tol, extract=False
            )
        finally:
            slots.put(slot)
        out[i] = verdict.ok
        results_json[i] = verdict.results_json()
        if not verdict.ok:
            details[i].append(f"code: {verdict.kind}: {verdict.detail}"[:300])
        progress.advance(1)

    rows = [i for i, t in enumerate(tests) if t is not None]
    with sandbox, ThreadPoolExecutor(max_workers=max(1, _workers(cfg))) as pool:
        list(pool.map(one, rows))
    return sandbox.isolation


def _run_format(
    cfg: VerifyConfig,
    frame: pl.DataFrame,
    answers: list[Any],
    golds: list[Any],
    tests: list[Any],
    details: list[list[str]],
) -> tuple[list[bool | None], list[bool | None]]:
    from filters.format import check_format

    messages = _column(frame, schema.MESSAGES)
    reasoning = _column(frame, schema.REASONING)
    finish = _column(frame, schema.FINISH_REASON)
    fmt_ok: list[bool | None] = []
    complete: list[bool | None] = []
    for i in range(frame.height):
        content = _assistant(messages[i])
        if content is None and reasoning[i] is not None:
            content = f"<think>\n{reasoning[i]}\n</think>\n\n{answers[i] or ''}"
        if content is None:  # no trace to judge (e.g. a non-reasoning student's answer only)
            fmt_ok.append(None)
            complete.append(None)
            continue
        is_math = tests[i] is None and golds[i] is not None
        verdict = check_format(
            content,
            finish_reason=finish[i],
            math=is_math,
            min_loop_tokens=cfg.loop_min_tokens,
            min_loop_repeats=cfg.loop_min_repeats,
        )
        fmt_ok.append(verdict.format_ok)
        complete.append(verdict.complete)
        if verdict.problems:
            details[i].append(f"format: {verdict.detail}")
    return fmt_ok, complete
