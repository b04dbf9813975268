"""Filter stage: runs the filters of filters/ over a run and sets keep / reject_reason.

    apply_filters(cfg, run)   data/all gains keep, reject_reason (the FIRST failing rule in RULES
                              order), dup_of, contaminated_by, language, language_share,
                              answer_language, repetition; stats.json gains "filter" and
                              "decontamination". Rejected rows stay in data/all.

Rule order (RULES) and why: generation and verification verdicts first (cheap and final); then
decontamination (a contaminated row must never become a duplicate's representative); then duplicates
(prompts before traces); then R1's readability rules; then the per-prompt choices (pass-rate band,
at most k per prompt), which pick among the rows that passed everything else.
Rules whose inputs are missing (no verify columns, no benchmarks) are skipped and the report says so.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from distill import schema
from distill.config import NameList, StageConfig

if TYPE_CHECKING:
    from distill.progress import Progress
    from distill.run import RunDir

log = logging.getLogger(__name__)
STAGE = "filter"

RULES = (
    "error",  # generation failed or returned no reasoning
    "incomplete",  # verify: the reasoning was never closed
    "format",  # verify: format check failed
    "incorrect",  # verify: answer / tests wrong
    "contaminated",  # prompt, trace or answer overlaps a benchmark problem
    "duplicate_prompt",  # same problem text as an earlier prompt (all its samples go)
    "near_duplicate_prompt",
    "duplicate_trace",
    "near_duplicate_trace",
    "language",  # reasoning or answer not in the target language
    "language_mixing",  # too little of the trace in the target language's script
    "long_paragraph",
    "code_block",  # code fence inside the reasoning of a non-code prompt
    "repetition",  # a loop: many repeated n-grams
    "too_short",
    "too_long",
    "pass_rate",  # the prompt's pass rate is outside the band
    "over_k",  # more than k correct samples for this prompt
)


class MinHashSettings(BaseModel):
    """MinHash LSH for near-duplicates: Jaccard threshold over word shingles."""

    model_config = ConfigDict(extra="forbid")
    num_perm: int = Field(128, ge=8, description="Permutations per signature (memory: 4 bytes each per row).")
    shingle: int = Field(5, ge=1, description="Words per shingle.")
    threshold: float = Field(
        0.8, gt=0.0, le=1.0, description="Estimated Jaccard similarity that counts as duplicate."
    )


class FilterConfig(StageConfig):
    """Every rule's parameters; a rule set to null/false is off. Rule order: see RULES."""

    fingerprint_exclude: ClassVar[frozenset[str]] = frozenset({"batch_rows"})

    prompt_column: str | None = Field(
        None, description="Text of the problem; default: prompt, else problem/question."
    )
    # generation and verification gates
    drop_errors: bool = Field(True, description="Reject rows whose generation failed or has no reasoning.")
    require_complete: bool = Field(True, description="Reject rows verify marked incomplete.")
    require_format: bool = Field(True, description="Reject rows verify marked format_ok = false.")
    require_correct: bool = Field(
        True, description="Reject rows verify marked correct = false (null is kept)."
    )
    # decontamination
    benchmarks: NameList = Field([], description="Registry names to decontaminate against (Hub cache).")
    benchmark_paths: dict[str, Path] = Field(
        {}, description="Local copies by name (what --benchmark NAME=PATH sets)."
    )
    decontaminate: list[Literal["prompt", "reasoning", "answer"]] = Field(
        ["prompt", "reasoning", "answer"], description="Which texts of a row are checked."
    )
    ngram: int = Field(8, ge=3, description="Words per n-gram (8 as open-r1; DeepSeek-R1 used 10).")
    min_matches: int = Field(1, ge=1, description="Distinct shared n-grams needed for a match.")
    min_coverage: float = Field(
        0.2, ge=0.0, le=1.0, description="...and the share of the problem's n-grams they must cover."
    )
    stop_phrases: list[str] | None = Field(
        None, description="Boilerplate not counted as evidence; default: built-in list."
    )
    extra_stop_phrases: list[str] = Field([], description="Added to stop_phrases.")
    max_item_frequency: int = Field(
        5, ge=1, description="n-grams in more benchmark problems than this are boilerplate."
    )
    examples: int = Field(5, ge=0, description="Examples per benchmark in the report.")
    # duplicates
    dedup_prompts: bool = Field(True, description="Exact duplicate prompts (normalised case and whitespace).")
    near_dup_prompts: MinHashSettings | None = Field(MinHashSettings(shingle=3, threshold=0.7))
    dedup_traces: bool = Field(True, description="Exact duplicate reasoning traces.")
    near_dup_traces: MinHashSettings | None = Field(MinHashSettings(shingle=5, threshold=0.8))
    # language
    language: str | None = Field(
        "en", description="Target language (ISO 639-1) of reasoning and answer; null: off."
    )
    min_language_share: float | None = Field(
        0.95, ge=0.0, le=1.0, description="Least share of the trace in the target script."
    )
    detect_language: bool = Field(True, description="Identify the language with py3langid (sampled prose).")
    min_language_confidence: float = Field(0.9, description="Reject on language only when this confident.")
    # readability (DeepSeek-R1)
    max_paragraph_chars: int | None = Field(
        4000, ge=1, description="Longest run of characters without a line break."
    )
    reject_code_blocks: bool = Field(
        True, description="Reject ``` blocks in the reasoning of non-code prompts."
    )
    max_repetition: float | None = Field(
        0.5, ge=0.0, le=1.0, description="Most share of repeated word n-grams in the reasoning."
    )
    repetition_ngram: int = Field(20, ge=2, description="Words per n-gram for the repetition measure.")
    min_tokens: int | None = Field(
        None, ge=0, description="Shortest sample (prompt + reasoning + answer) in tokens."
    )
    max_tokens: int | None = Field(None, ge=1, description="Longest sample in tokens.")
    tokenizer: str | None = Field(
        None, description="The student's tokenizer (path or cached name); default: chars/3.6."
    )
    # selection
    k: int | None = Field(None, ge=1, description="Keep at most k correct samples per prompt; null: all.")
    prefer: Literal["shortest", "first", "random"] = Field("shortest", description="Which k samples to keep.")
    seed: int = Field(0, description="Seed for prefer=random.")
    min_pass_rate: float | None = Field(
        None, ge=0.0, le=1.0, description="Keep prompts with pass rate ≥ this."
    )
    max_pass_rate: float | None = Field(
        None, ge=0.0, le=1.0, description="Keep prompts with pass rate ≤ this."
    )
    batch_rows: int = Field(2000, ge=1, description="Rows processed at once (memory bound).")


@dataclass
class FilterReport:
    """What the filter did: counts per rule (first failing) and per source, and skipped rules."""

    rows_in: int = 0
    rows_kept: int = 0
    rules: dict[str, int] = field(default_factory=dict)  # rows rejected by this rule first
    flagged: dict[str, int] = field(default_factory=dict)  # rows failing this rule at all
    by_source: dict[str, dict[str, int]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # rule → why it did not run
    decontamination: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def stats(self) -> dict[str, Any]:
        return {
            "rows_in": self.rows_in,
            "rows_kept": self.rows_kept,
            "rules": self.rules,
            "flagged": self.flagged,
            "by_source": self.by_source,
            "skipped": self.skipped,
            "order": list(RULES),
            "seconds": round(self.seconds, 2),
        }

    def as_table(self) -> Any:
        from rich.table import Table

        sources = sorted(self.by_source)
        table = Table(title=f"filter: kept {self.rows_kept:,} of {self.rows_in:,} rows ({self.seconds:.1f}s)")
        table.add_column("rule")
        table.add_column("rejected", justify="right")
        table.add_column("flagged", justify="right")
        for s in sources:
            table.add_column(s, justify="right")
        table.add_row("rows in", f"{self.rows_in:,}", "", *[f"{self.by_source[s]['in']:,}" for s in sources])
        for rule in RULES:
            if rule in self.skipped:
                table.add_row(rule, "skipped", self.skipped[rule][:40], *["" for _ in sources])
            elif self.flagged.get(rule) or self.rules.get(rule):
                table.add_row(
                    rule,
                    f"{self.rules.get(rule, 0):,}",
                    f"{self.flagged.get(rule, 0):,}",
                    *[f"{self.by_source[s].get(rule, 0):,}" for s in sources],
                )
        table.add_row("kept", f"{self.rows_kept:,}", "", *[f"{self.by_source[s]['kept']:,}" for s in sources])
        return table

    def summary(self) -> str:
        top = sorted(self.rules.items(), key=lambda kv: -kv[1])[:3]
        return f"kept {self.rows_kept:,}/{self.rows_in:,}" + "".join(f", {r} {n:,}" for r, n in top)


def apply_filters(cfg: FilterConfig, run: RunDir, *, progress: Progress | None = None) -> FilterReport:
    """Run every rule over data/all, write the verdict columns back and the report to stats.json."""
    from distill.filtering.rules import evaluate_rules

    started = time.monotonic()
    columns, report = evaluate_rules(cfg, run, progress=progress)
    run.update_rows(columns)
    report.seconds = time.monotonic() - started
    run.update_stats("filter", report.stats())
    run.update_stats("decontamination", report.decontamination)
    run.mark_done(STAGE, cfg.fingerprint(), rows_in=report.rows_in, rows_kept=report.rows_kept)
    log.debug("filter: %s", report.summary())
    return report


def rule_columns() -> tuple[str, ...]:
    """The columns this stage writes."""
    return (
        schema.KEEP,
        schema.REJECT_REASON,
        schema.DUP_OF,
        schema.CONTAMINATED_BY,
        schema.LANGUAGE,
        schema.LANGUAGE_SHARE,
        schema.ANSWER_LANGUAGE,
        schema.REPETITION,
    )
