"""The numbers behind the data card, computed from the run's own columns where they exist.

Each section falls back to the matching stats.json section ("generate", "verify", "filter",
"decontamination"; shapes in the cross-area contract) when the columns are missing, and is None
when neither exists, which the card shows as "this stage did not run".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from distill import schema
from distill.filtering.config import RULES
from distill.filtering.report import FilterReport
from distill.generation.report import GenerateReport
from distill.publishing.dataset import scan_all, sft_selection
from distill.publishing.disclosure import PublicView
from distill.run import RunDir
from distill.verification.report import VerifyReport

if TYPE_CHECKING:
    import polars as pl

VERIFIERS = {"math": schema.MATH_VERIFIED, "code": schema.CODE_VERIFIED, "format": schema.FORMAT_OK}
# Settings shown in the card's summary table, when the generate section has them.
GENERATION_KEYS = (
    "model",
    "base_url",
    "n",
    "temperature",
    "top_p",
    "max_tokens",
    "seed",
    "system",
    "template",
    "prompts",
    "prompt_column",
)


@dataclass
class SourceCount:
    source: str
    prompts: int
    samples: int
    kept: int


@dataclass
class VerifierResult:
    source: str  # "(all)" for the total row
    verifier: str
    true: int
    false: int
    null: int

    @property
    def pass_rate(self) -> float | None:
        judged = self.true + self.false
        return self.true / judged if judged else None


@dataclass
class Benchmark:
    name: str
    version: str | None
    items: int | None
    flagged_rows: int
    by_method: dict[str, int] | None = None  # exact / ngram / semantic / judge → flagged samples


@dataclass
class CardStats:
    """Everything the card template shows; None marks a stage that did not run."""

    rows_all: int
    rows_sft: int
    prompts: int
    selection: str
    samples_per_prompt: dict[str, float]
    sources: list[SourceCount]
    teachers: list[str]
    generation: dict[str, Any] | None  # the generate section of run.yaml, secrets stripped
    errors: int | None
    finish_reasons: dict[str, int]
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    verification: list[VerifierResult] | None
    verification_from: str | None  # "columns" or "stats.json"
    prompt_pass_rates: list[float] | None  # one per prompt: share of its samples verified correct
    verdict_reasons: dict[str, int] | None  # math rows per verdict_reason (parsed, …, judge)
    judge: dict[str, Any] | None  # rules vs judge: {"rules": n, "judge": n, "judge_true": n, "model": …}
    filter_rules: dict[str, int] | None
    filter_from: str | None
    filter_flagged: dict[str, int] | None  # samples each rule flagged, first failing or not (stats.json)
    decontamination: list[Benchmark] | None
    token_lengths: dict[str, float] | None
    token_values: list[int] = field(default_factory=list)
    token_method: str | None = None
    tokenizer: str | None = None
    example: dict[str, str] | None = None

    @property
    def prompts_solved(self) -> int | None:
        rates = self.prompt_pass_rates
        return sum(1 for r in rates if r > 0) if rates is not None else None


def collect(run: RunDir, *, example_chars: int = 600, view: PublicView | None = None) -> CardStats:
    """Read `data/all`, `data/sft`, stats.json and run.yaml into the card's numbers, as `view` may show them."""
    import polars as pl

    stats = run.read_json(run.stats)
    recipe = run.read_settings()
    view = view or PublicView()
    generation = view.apply((recipe or {}).get("generate")) or None

    lazy = scan_all(run)
    names = lazy.collect_schema().names()
    rule, selection = sft_selection(names)
    small = [
        c
        for c in (
            schema.PROMPT_ID,
            schema.SOURCE,
            schema.TEACHER,
            schema.ERROR,
            schema.FINISH_REASON,
            schema.PROMPT_TOKENS,
            schema.COMPLETION_TOKENS,
            schema.KEEP,
            schema.REJECT_REASON,
            schema.CONTAMINATED_BY,
            schema.CORRECT,
            schema.VERDICT_REASON,
            schema.JUDGE_VERDICT,
            *VERIFIERS.values(),
        )
        if c in names
    ]
    frame = lazy.select(*small, rule.alias("_kept")).collect()  # never the long text columns
    if schema.SOURCE not in frame.columns:
        frame = frame.with_columns(pl.lit("(unknown)").alias(schema.SOURCE))
    frame = frame.with_columns(pl.col(schema.SOURCE).cast(pl.String).fill_null("(unknown)"))
    gen = GenerateReport.from_stats(stats["generate"]) if stats.get("generate") else None
    verify = VerifyReport.from_stats(stats["verify"]) if stats.get("verify") else None
    filtered = FilterReport.from_stats(stats["filter"]) if stats.get("filter") else None

    per_prompt = frame.group_by(schema.PROMPT_ID).len()["len"]
    sources = (
        frame.group_by(schema.SOURCE)
        .agg(
            pl.col(schema.PROMPT_ID).n_unique().alias("prompts"),
            pl.len().alias("samples"),
            pl.col("_kept").sum().alias("kept"),
        )
        .sort(schema.SOURCE)
    )
    verification, verification_from = _verification(frame, verify)
    filter_rules, filter_from = _filter_rules(frame, filtered)
    # from data/sft only the token counts and one conversation: never the whole text into memory
    sft = run.scan("sft") if run.has_rows("sft") else pl.LazyFrame()
    sft_names = sft.collect_schema().names()
    counts = sft.select(schema.NUM_TOKENS).collect() if schema.NUM_TOKENS in sft_names else None
    rows_sft = int(sft.select(pl.len()).collect().item()) if sft_names else 0
    tokens = counts[schema.NUM_TOKENS] if counts is not None and counts.height else None
    first = sft.select(schema.MESSAGES).head(1).collect() if schema.MESSAGES in sft_names else pl.DataFrame()
    record = run.stage_record("dataset") or {}

    return CardStats(
        rows_all=frame.height,
        rows_sft=rows_sft,
        prompts=per_prompt.len(),
        selection=selection,
        samples_per_prompt=_summary(per_prompt) if per_prompt.len() else {},
        sources=[SourceCount(**row) for row in sources.iter_rows(named=True)],
        teachers=[view.apply(t) for t in _teachers(frame, gen, generation)],
        generation=generation,
        errors=int(frame[schema.ERROR].is_not_null().sum())
        if schema.ERROR in names
        else (gen.error_rows if gen else None),
        finish_reasons=_counts(frame, schema.FINISH_REASON) or dict(gen.finish_reasons if gen else {}),
        prompt_tokens=_total(frame, schema.PROMPT_TOKENS, gen and gen.prompt_tokens),
        completion_tokens=_total(frame, schema.COMPLETION_TOKENS, gen and gen.completion_tokens),
        cost_usd=gen.cost_usd if gen else None,
        verification=verification,
        verification_from=verification_from,
        prompt_pass_rates=_prompt_pass_rates(frame),
        verdict_reasons=_verdict_reasons(frame, verify),
        judge=_judge(frame, verify),
        filter_rules=filter_rules,
        filter_from=filter_from,
        filter_flagged=_filter_flagged(filtered, filter_rules),
        decontamination=_decontamination(frame, stats.get("decontamination")),
        token_lengths=_summary(tokens) if tokens is not None else None,
        token_values=tokens.to_list() if tokens is not None else [],
        token_method=record.get("token_method"),
        tokenizer=record.get("tokenizer"),
        example=_example(first, example_chars),
    )


def _summary(values: pl.Series) -> dict[str, float]:
    return {
        "mean": float(cast(float, values.mean())),
        "median": float(cast(float, values.median())),
        "p95": float(cast(float, values.quantile(0.95, interpolation="nearest"))),
        "max": float(cast(float, values.max())),
        "min": float(cast(float, values.min())),
        "total": float(cast(float, values.sum())),
    }


def _counts(frame: pl.DataFrame, column: str) -> dict[str, int]:
    if column not in frame.columns:
        return {}
    counts = frame[column].drop_nulls().cast(str).value_counts(sort=True)
    return {str(k): int(v) for k, v in counts.iter_rows()}


def _total(frame: pl.DataFrame, column: str, fallback: Any) -> int | None:
    if column in frame.columns and frame[column].null_count() < frame.height:
        return int(frame[column].sum())
    return int(fallback) if fallback is not None else None


def _teachers(
    frame: pl.DataFrame, gen: GenerateReport | None, generation: dict[str, Any] | None
) -> list[str]:
    if schema.TEACHER in frame.columns:
        found = sorted(str(t) for t in frame[schema.TEACHER].drop_nulls().unique())
        if found:
            return found
    teacher = (gen.teacher if gen else None) or (generation or {}).get("model")
    return [str(teacher)] if teacher else []


def _verification(
    frame: pl.DataFrame, report: VerifyReport | None
) -> tuple[list[VerifierResult] | None, str | None]:
    import polars as pl

    present = {name: col for name, col in VERIFIERS.items() if col in frame.columns}
    if present:
        results = []
        for name, col in present.items():
            per_source = (
                frame.group_by(schema.SOURCE)
                .agg(
                    (pl.col(col) == True).sum().alias("true"),  # noqa: E712 - polars expression
                    (pl.col(col) == False).sum().alias("false"),  # noqa: E712
                    pl.col(col).is_null().sum().alias("null"),
                )
                .sort(schema.SOURCE)
            )
            rows = [
                VerifierResult(r[schema.SOURCE], name, r["true"], r["false"], r["null"])
                for r in per_source.iter_rows(named=True)
            ]
            if all(r.true + r.false == 0 for r in rows):
                continue  # this verifier never applied (e.g. code checks on a math-only run)
            results.extend(rows)
            if len(rows) > 1:
                results.append(
                    VerifierResult(
                        "(all)",
                        name,
                        sum(r.true for r in rows),
                        sum(r.false for r in rows),
                        sum(r.null for r in rows),
                    )
                )
        return results, "columns"
    if report is None:
        return None, None
    results = []
    for source, verifiers in sorted(report.by_source.items()):
        verifiers = verifiers or {}
        if isinstance(verifiers.get("verifiers"), dict):  # {source: {"verifiers": {name: counts}, ...}}
            verifiers = verifiers["verifiers"]
        for name, c in sorted(verifiers.items()):
            if isinstance(c, dict):
                results.append(
                    VerifierResult(
                        str(source),
                        str(name),
                        int(c.get("true", 0)),
                        int(c.get("false", 0)),
                        int(c.get("null", 0)) + int(c.get("timeout", 0)),
                    )
                )
    for name, c in sorted(report.counts.items()):
        if isinstance(c, dict):
            results.append(
                VerifierResult(
                    "(all)",
                    str(name),
                    int(c.get("true", 0)),
                    int(c.get("false", 0)),
                    int(c.get("null", 0)) + int(c.get("timeout", 0)),
                )
            )
    return results, "stats.json"


def _verdict_reasons(frame: pl.DataFrame, report: VerifyReport | None) -> dict[str, int] | None:
    from distill.verification.report import reason_counts

    counts = reason_counts(frame) or dict(report.reasons if report else {})
    return counts or None


def _judge(frame: pl.DataFrame, report: VerifyReport | None) -> dict[str, Any] | None:
    """How many math verdicts the rules gave and how many the LLM judge gave (None: no judge ran)."""
    recorded = (report.judge if report else None) or {}
    if schema.JUDGE_VERDICT not in frame.columns and not recorded:
        return None
    reasons = _verdict_reasons(frame, report) or {}
    judged = frame[schema.JUDGE_VERDICT] if schema.JUDGE_VERDICT in frame.columns else None
    return {
        "rules": sum(v for k, v in reasons.items() if k in ("parsed", "no_answer")),
        "judge": reasons.get("judge", 0),
        "judge_true": int(judged.fill_null(False).sum()) if judged is not None else recorded.get("yes", 0),
        "model": recorded.get("model"),
        "prompt": recorded.get("prompt"),
    }


def _prompt_pass_rates(frame: pl.DataFrame) -> list[float] | None:
    import polars as pl

    column = (
        schema.CORRECT
        if schema.CORRECT in frame.columns
        else (schema.MATH_VERIFIED if schema.MATH_VERIFIED in frame.columns else None)
    )
    if column is None or frame[column].null_count() == frame.height:
        return None
    rates = frame.group_by(schema.PROMPT_ID).agg(pl.col(column).fill_null(False).cast(pl.Float64).mean())
    return sorted(rates[column].to_list())


def _filter_rules(
    frame: pl.DataFrame, report: FilterReport | None
) -> tuple[dict[str, int] | None, str | None]:
    import polars as pl

    if schema.KEEP in frame.columns:
        rejected = frame.filter(~pl.col(schema.KEEP).fill_null(False))
        if schema.REJECT_REASON in frame.columns:
            counts = _counts(rejected, schema.REJECT_REASON)
            unnamed = rejected.height - sum(counts.values())
            if unnamed:
                counts["(no reason recorded)"] = unnamed
            return counts, "columns"
        return ({"(no reason recorded)": rejected.height} if rejected.height else {}), "columns"
    if report is not None:
        return dict(report.rules), "stats.json"
    return None, None


def _filter_flagged(report: FilterReport | None, rules: dict[str, int] | None) -> dict[str, int] | None:
    """Per rule, the samples it flagged (a sample can fail several), in the filter's order; only rules that fired."""
    if report is None or rules is None:
        return None
    flagged = report.flagged
    order = [r for r in RULES if r in flagged] + sorted(set(flagged) - set(RULES))
    return {str(r): int(flagged[r]) for r in order if flagged[r] or rules.get(r)}


def _decontamination(frame: pl.DataFrame, section: dict[str, Any] | None) -> list[Benchmark] | None:
    if section and section.get("benchmarks") is not None:
        return [
            Benchmark(
                str(name),
                b.get("version"),
                b.get("items"),
                int(b.get("flagged_rows") or 0),
                {str(m): int(n) for m, n in b["by_method"].items()} if b.get("by_method") else None,
            )
            for name, b in sorted(section["benchmarks"].items())
        ]
    if schema.CONTAMINATED_BY in frame.columns:
        return [Benchmark(name, None, None, n) for name, n in _counts(frame, schema.CONTAMINATED_BY).items()]
    return None


def _example(sft: pl.DataFrame, limit: int) -> dict[str, str] | None:
    if not sft.height or schema.MESSAGES not in sft.columns:
        return None
    turns = {m["role"]: m["content"] or "" for m in sft[schema.MESSAGES][0]}

    def cut(text: str) -> str:
        return text if len(text) <= limit else text[: limit // 2] + "\n[…]\n" + text[-limit // 2 :]

    return {"user": cut(turns.get("user", "")), "assistant": cut(turns.get("assistant", ""))}
