"""A realistic run for the dataset/card/push tests and bench: 840 real samples at chosen stages.

Rows follow distill/schema.py and are written with `RunDir.write_rows`, with verdict and filter
columns and the stats.json sections the card reads, so these tests do not wait for the other stages.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from distill import schema
from distill.run import RunDir

# ── a realistic run ───────────────────────────────────────────────────────
SECRET = "sk-live-DoNotPublishThis0123456789"


def _split_trace(text: str) -> tuple[str, str, bool]:
    """(reasoning, answer, complete) from a raw model response."""
    if "<|begin_of_thought|>" in text:
        thought, _, solution = text.partition("<|begin_of_solution|>")
        thought = thought.replace("<|begin_of_thought|>", "").replace("<|end_of_thought|>", "").strip()
        solution = solution.replace("<|end_of_solution|>", "").strip()
        return thought, solution, bool(solution)
    paragraphs = text.strip().split("\n\n")
    return "\n\n".join(paragraphs[:-1]).strip(), paragraphs[-1].strip(), len(paragraphs) > 1


def make_run(
    root: Path,
    shared_data: Path,
    *,
    stages: tuple[str, ...] = ("verify", "filter", "decontamination"),
    keep_none: bool = False,
    usage: bool = True,
) -> RunDir:
    """A run of 840 real samples (Qwen2.5-Math on MATH ×8, Sky-T1 on AMC23 ×1) at the chosen stages."""
    import polars as pl
    import yaml

    traces = shared_data / "traces"
    math500 = {
        json.loads(line)["problem"].strip()
        for line in (shared_data / "benchmarks" / "math500_test.jsonl").read_text().splitlines()
    }
    rows: list[dict[str, Any]] = []
    for source, file, teacher in (
        ("math", "qwen25math_math_cot_100_samples.jsonl", "Qwen/Qwen2.5-Math-7B-Instruct"),
        ("amc23", "skyt1_32b_amc23_outputs.jsonl", "NovaSky-AI/Sky-T1-32B-Preview"),
    ):
        for line in (traces / file).read_text().splitlines():
            item = json.loads(line)
            question = item["question"].strip()
            pid = hashlib.sha256(question.encode()).hexdigest()[:16]
            for i, (response, score) in enumerate(zip(item["code"], item["score"], strict=False)):
                reasoning, answer, complete = _split_trace(response)
                rows.append(
                    {
                        schema.PROMPT_ID: pid,
                        schema.SAMPLE: i,
                        "problem": question,
                        "answer": str(item["gt"]),
                        schema.SOURCE: source,
                        schema.PROMPT: question,
                        schema.MESSAGES: [
                            {"role": "user", "content": question},
                            {"role": "assistant", "content": f"<think>\n{reasoning}\n</think>\n\n{answer}"},
                        ],
                        schema.REASONING: reasoning,
                        schema.ANSWER_TEXT: answer,
                        schema.COMPLETE: complete,
                        schema.TEACHER: teacher,
                        schema.FINISH_REASON: "stop" if complete else "length",
                        schema.PROMPT_TOKENS: len(question) // 4 + 30 if usage else None,
                        schema.COMPLETION_TOKENS: len(response) // 4 if usage else None,
                        schema.LATENCY_S: 1.5,
                        schema.ATTEMPTS: 1,
                        schema.ERROR: None,
                        schema.TEMPERATURE: 0.6,
                        schema.MATH_VERIFIED: bool(score),
                        schema.FORMAT_OK: complete,
                        "_bench": question in math500,
                    }
                )
    frame = pl.DataFrame(rows)
    if "verify" not in stages:
        frame = frame.drop(schema.MATH_VERIFIED, schema.FORMAT_OK)
    else:
        frame = frame.with_columns(pl.col(schema.MATH_VERIFIED).alias(schema.CORRECT)).with_columns(
            pl.col(schema.CORRECT).cast(pl.Float64).mean().over(schema.PROMPT_ID).alias(schema.PASS_RATE)
        )
    if "decontamination" in stages:
        frame = frame.with_columns(
            pl.when(pl.col("_bench")).then(pl.lit("math500")).otherwise(None).alias(schema.CONTAMINATED_BY)
        )
    if "filter" in stages:
        reason = (
            pl.when(~pl.col(schema.COMPLETE))
            .then(pl.lit("incomplete"))
            .when(~pl.col(schema.MATH_VERIFIED))
            .then(pl.lit("wrong_answer"))
            .when(pl.col("_bench"))
            .then(pl.lit("contaminated"))
        )
        if keep_none:
            reason = reason.otherwise(pl.lit("too_long"))
        frame = frame.with_columns(reason.alias(schema.REJECT_REASON)).with_columns(
            pl.col(schema.REJECT_REASON).is_null().alias(schema.KEEP)
        )
    frame = frame.drop("_bench")

    run = RunDir(root).ensure()
    run.write_rows(frame, "all")
    run.write_text(
        run.run_yaml,
        yaml.safe_dump(
            {
                "run_dir": str(root),
                "generate": {
                    "model": "Qwen/Qwen2.5-Math-7B-Instruct",
                    "base_url": ["http://user:pw@127.0.0.1:8000/v1"],
                    "api_key_env": "DEEPSEEK_API_KEY",
                    "api_key": SECRET,
                    "n": 8,
                    "temperature": 0.6,
                    "top_p": 0.95,
                    "max_tokens": 32768,
                    "system": f"Think step by step. {SECRET}",
                },
                "card": {"license": "apache-2.0"},
            },
            sort_keys=False,
        ),
    )
    run.update_stats(
        "generate",
        {
            "teacher": "Qwen/Qwen2.5-Math-7B-Instruct",
            "settings": {"n": 8},
            "prompts": frame[schema.PROMPT_ID].n_unique(),
            "samples": frame.height,
            "errors": 0,
            "prompt_tokens": int(frame[schema.PROMPT_TOKENS].sum() or 0),
            "completion_tokens": int(frame[schema.COMPLETION_TOKENS].sum() or 0),
            "cost_usd": 1.2345,
            "finish_reasons": {"stop": 800, "length": 40},
        },
    )
    if "decontamination" in stages:
        flagged = int(frame[schema.CONTAMINATED_BY].is_not_null().sum())
        run.update_stats(
            "decontamination",
            {
                "benchmarks": {
                    "math500": {
                        "version": "HuggingFaceH4/MATH-500@main",
                        "items": 500,
                        "flagged_rows": flagged,
                        "examples": [],
                    }
                }
            },
        )
    return run
