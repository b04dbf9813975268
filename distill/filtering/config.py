"""Settings of the filter stage, and the order its rules are applied in (the first failing rule is the reason).

Rule order (RULES) and why: generation and verification verdicts first (cheap and final); then
decontamination (a contaminated row must never become a duplicate's representative); then duplicates
(prompts before traces); then R1's readability rules; then the per-prompt choices (pass-rate band,
at most k per prompt), which pick among the rows that passed everything else.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from distill.config import NameList, StageConfig
from distill.evaluation.benchmark_detect import BenchmarkMeta
from distill.judge import JudgeConfig
from filters.decontam_semantic import SemanticThresholds

__all__ = ["RULES", "FilterConfig", "MinHashSettings", "SemanticDecontam"]

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


_T = SemanticThresholds  # the calibrated defaults live with the rule, once


class SemanticDecontam(BaseModel):
    """Reworded benchmark problems: TF-IDF candidates scored from lexical, number and answer agreement.

    Defaults calibrated on tests/data/decontam (filters/decontam_semantic.py: DECONTAM_CALIBRATION).
    """

    model_config = ConfigDict(extra="forbid")
    candidates: int = Field(
        _T.candidates, ge=1, description="Benchmark items retrieved and scored per prompt."
    )
    min_score: float = Field(
        _T.min_score, description="Least log-odds of the prompt-only model (filters/_decision.py)."
    )
    min_score_same_answer: float = Field(
        _T.min_score_same_answer,
        description="Least log-odds of the same-answer model, where the answers agree.",
    )
    min_word_cosine: float = Field(
        _T.min_word_cosine,
        ge=0,
        le=1,
        description="Least cosine of the words alone (no match by digits only).",
    )
    band: float = Field(
        _T.band, ge=0, description="Uncertain band (sent to the judge): log-odds this far below min_score."
    )
    max_chars: int = Field(
        _T.max_chars, ge=100, description="Characters of a prompt compared (time per row)."
    )

    def thresholds(self) -> SemanticThresholds:
        return SemanticThresholds(**self.model_dump())


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
    accept_judge: bool = Field(
        False,
        description="With require_correct: where the rules gave no verdict, use the LLM judge's "
        "(judge_verdict; verify.judge) — its false rejects, its true keeps.",
    )
    # decontamination
    benchmarks: NameList = Field([], description="Registry names to decontaminate against (Hub cache).")
    benchmark_paths: dict[str, Path] = Field(
        {},
        description="Local files by name (what --benchmark NAME=PATH sets): a registry copy or the user's own.",
    )
    benchmarks_meta: dict[str, BenchmarkMeta] = Field(
        {}, description="Kind and columns of a benchmark by name, over what is detected from its file."
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
    stop_ngram: int | None = Field(
        3, ge=2, description="Learn boilerplate: word k-grams frequent across benchmark items; null: off."
    )
    stop_min_items: int = Field(3, ge=2, description="...found in at least this many items (and 0.2%).")
    ngram_min_number_recall: float | None = Field(
        0.8, ge=0, le=1, description="An n-gram match must also state this share of the item's numbers."
    )
    decontam_semantic: SemanticDecontam | None = Field(
        default_factory=SemanticDecontam, description="Reworded prompts (semantic mode); null: off."
    )
    decontam_answer_column: str | None = Field(
        "answer", description="Gold answer column for answer agreement (else a correct sample's answer)."
    )
    decontam_judge: JudgeConfig | None = Field(
        None, description="LLM judge for the uncertain band: {base_url, model, ...}; null: off."
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

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str | None) -> str | None:
        from filters.language import KNOWN_LANGUAGES

        if value is not None and value not in KNOWN_LANGUAGES:
            raise ValueError(
                f"{value!r} is not a language code the detector knows (ISO 639-1, e.g. en, zh, fr)"
            )
        return value

    @model_validator(mode="after")
    def _pass_rate_range(self) -> FilterConfig:
        low, high = self.min_pass_rate, self.max_pass_rate
        if low is not None and high is not None and low > high:
            raise ValueError(f"min_pass_rate {low} > max_pass_rate {high}: no prompt could be kept")
        return self
