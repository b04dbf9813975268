"""Verification in the loop: keep sampling a prompt until it has K verified-correct traces, or M samples.

Round 1 asks every prompt for `generate.n` samples. Each later round verifies only the samples it has
not seen yet, and asks the prompts still short of K correct for more: as many as their observed pass
rate says they need (a prompt right 1 time in 4 gets ~4 more per missing trace, one never right gets
what is left of its budget), capped at M per prompt. So budget goes to the prompts that need it, and
easy prompts stop after the first round. Rows with an error count towards M (the generator retries
them), so a prompt that always fails cannot loop forever.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from distill import schema

if TYPE_CHECKING:
    import polars as pl

    from distill.run import RunDir
    from distill.teachers.base import Teacher

log = logging.getLogger(__name__)

GenerateFn = Callable[..., Any]
VerifyFrameFn = Callable[[Any, "pl.DataFrame"], "pl.DataFrame"]


@dataclass
class SamplingReport:
    """What verification in the loop spent, and what it got."""

    until_correct: int
    max_samples: int
    rounds: int = 0
    prompts: int = 0
    reached: int = 0  # prompts with ≥ until_correct correct traces
    exhausted: int = 0  # prompts that used max_samples without reaching it
    samples: int = 0
    correct: int = 0
    samples_per_round: list[int] = field(default_factory=list)
    pass_rate_histogram: list[int] = field(default_factory=list)  # 10 bins over [0, 1]
    last: Any = field(default=None, repr=False)  # the last generate call's report

    def to_stats(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "last"}

    @classmethod
    def from_stats(cls, stats: Mapping[str, Any]) -> SamplingReport:
        known = {k: v for k, v in stats.items() if k in cls.__dataclass_fields__ and k != "last"}
        return cls(**{"until_correct": 0, "max_samples": 0, **known})

    def table_rows(self) -> list[tuple[str, str]]:
        return [
            ("rounds", f"{self.rounds} ({', '.join(str(n) for n in self.samples_per_round)} samples)"),
            ("prompts", f"{self.reached}/{self.prompts} reached {self.until_correct} correct"),
            ("exhausted", f"{self.exhausted} used max_samples={self.max_samples}"),
            ("samples", f"{self.samples} ({self.correct} correct)"),
        ]

    def summary(self) -> str:
        return (
            f"{self.rounds} rounds, {self.samples} samples, {self.reached}/{self.prompts} prompts reached "
            f"{self.until_correct} correct ({self.exhausted} hit max_samples={self.max_samples})"
        )


def more_samples_needed(samples: int, correct: int, until_correct: int, max_samples: int) -> int:
    """How many more samples a prompt should get: (missing correct) / (estimated pass rate), capped."""
    missing = until_correct - correct
    room = max_samples - samples
    if missing <= 0 or room <= 0:
        return 0
    rate = (correct + 0.5) / (samples + 1)  # Jeffreys-like prior: never zero, never one
    return max(1, min(room, math.ceil(missing / rate)))


def sample_until_correct(
    gen_cfg: Any,
    verify_cfg: Any,
    run: RunDir,
    *,
    until_correct: int,
    max_samples: int,
    generate: GenerateFn,
    verify_frame: VerifyFrameFn,
    teacher: Teacher | None = None,
    progress: Any = None,
) -> SamplingReport:
    """Run generation rounds until every prompt has `until_correct` correct samples or `max_samples`."""
    import polars as pl

    report = SamplingReport(until_correct, max_samples)
    report.last = generate(gen_cfg, run, teacher=teacher, progress=progress)
    verdicts = pl.DataFrame(schema={schema.PROMPT_ID: pl.String, schema.SAMPLE: pl.Int64, "_ok": pl.Boolean})
    previous_total = -1
    while True:
        report.rounds += 1
        rows = run.read("all")
        report.samples_per_round.append(rows.height)
        verdicts = _verify_new(rows, verdicts, verify_cfg, verify_frame)
        per_prompt = _per_prompt(rows, verdicts)
        extra = {
            row[schema.PROMPT_ID]: (row["samples"], more)
            for row in per_prompt.iter_rows(named=True)
            if (more := more_samples_needed(row["samples"], row["correct"], until_correct, max_samples))
        }
        if not extra:
            break
        if rows.height == previous_total:  # the generator made nothing new (budget cap, teacher gone)
            log.warning(
                "generation added no samples in round %d; stopping verification in the loop", report.rounds
            )
            break
        previous_total = rows.height
        log.info(
            "round %d: %d prompts short of %d correct traces; asking for %d more samples",
            report.rounds + 1,
            len(extra),
            until_correct,
            sum(more for _, more in extra.values()),
        )
        wanted = {prompt_id: have + more for prompt_id, (have, more) in extra.items()}
        report.last = generate(gen_cfg, run, teacher=teacher, progress=progress, n_per_prompt=wanted)

    report.prompts = per_prompt.height
    report.samples = int(per_prompt["samples"].sum() or 0)
    report.correct = int(per_prompt["correct"].sum() or 0)
    report.reached = per_prompt.filter(pl.col("correct") >= until_correct).height
    report.exhausted = per_prompt.filter(
        (pl.col("correct") < until_correct) & (pl.col("samples") >= max_samples)
    ).height
    rates = (per_prompt["correct"] / per_prompt["samples"]).to_list()
    report.pass_rate_histogram = [sum(1 for r in rates if min(int(r * 10), 9) == b) for b in range(10)]
    run.update_stats("sampling", report.to_stats())
    return report


def _verify_new(
    rows: pl.DataFrame, verdicts: pl.DataFrame, verify_cfg: Any, verify_frame: VerifyFrameFn
) -> pl.DataFrame:
    """Verdicts for every error-free row, verifying only the rows not verified in an earlier round."""
    import polars as pl

    fresh = rows.filter(pl.col(schema.ERROR).is_null()) if schema.ERROR in rows.columns else rows
    fresh = fresh.join(verdicts.select(schema.KEY), on=list(schema.KEY), how="anti")
    if fresh.is_empty():
        return verdicts
    scored = verify_frame(verify_cfg, fresh)
    new = scored.select(*schema.KEY, pl.col(schema.CORRECT).fill_null(False).cast(pl.Boolean).alias("_ok"))
    return pl.concat([verdicts, new.cast(verdicts.schema)])


def _per_prompt(rows: pl.DataFrame, verdicts: pl.DataFrame) -> pl.DataFrame:
    import polars as pl

    return (
        rows.select(schema.KEY)
        .join(verdicts, on=list(schema.KEY), how="left")
        .group_by(schema.PROMPT_ID)
        .agg(pl.len().alias("samples"), pl.col("_ok").fill_null(False).sum().alias("correct"))
    )
