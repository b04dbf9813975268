"""The filter stage's engine: one batched pass over data/all computing every rule's column.

Texts are read `batch_rows` at a time; each batch is tokenised once and the token hashes feed
decontamination, MinHash and the repetition measure. Only small per-row results (and MinHash
signatures) are kept between batches, so memory does not grow with the length of the traces.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import polars as pl

from distill import schema
from distill.filtering.config import RULES, FilterConfig
from distill.filtering.decontamination import Decontaminator, decontamination_section, evidence_columns
from distill.filtering.report import FilterReport

if TYPE_CHECKING:
    from distill.progress import Progress
    from distill.run import RunDir

log = logging.getLogger(__name__)
PROMPT_CANDIDATES = (schema.PROMPT, "problem", "question")
CODE_TEST_COLUMNS = ("tests", "test", "test_list", "input_output")


def evaluate_rules(
    cfg: FilterConfig, run: RunDir, *, progress: Progress | None = None
) -> tuple[pl.DataFrame, FilterReport]:
    """Every rule's verdict per row: (KEY + filter columns, report)."""
    from filters._ngrams import hash_tokens
    from filters.dedup import NearDuplicateFinder, token_keys
    from filters.language import LanguageIdentifier, language_share
    from filters.readability import count_tokens, has_code_block, longest_paragraph, repetition_share

    lf = run.scan("all")
    names = lf.collect_schema().names()
    total = lf.select(pl.len()).collect().item()
    report = FilterReport(rows_in=total)
    prompt_col = cfg.prompt_column or next((c for c in PROMPT_CANDIDATES if c in names), None)
    has = set(names)
    index = Decontaminator.build(cfg)

    base = lf.select(
        *schema.KEY,
        *[
            c
            for c in (
                schema.SOURCE,
                schema.ERROR,
                schema.COMPLETE,
                schema.FORMAT_OK,
                schema.CORRECT,
                schema.JUDGE_VERDICT,
                schema.PASS_RATE,
                schema.CODE_VERIFIED,
            )
            if c in has
        ],
        _is_code_expr(has).alias("_is_code"),
    ).collect()
    prompts = _prompt_verdicts(cfg, lf, prompt_col, index, run, report)

    # ── per-row pass over the texts ──────────────────────────────────────
    finder = NearDuplicateFinder(_params(cfg.near_dup_traces)) if cfg.near_dup_traces else None
    identifier = LanguageIdentifier() if cfg.language and cfg.detect_language else None
    text_cols = [c for c in (schema.REASONING, schema.ANSWER_TEXT, prompt_col) if c and c in has]
    parts: list[pl.DataFrame] = []
    if progress:
        progress.start("filter", total)
    for offset in range(0, total, cfg.batch_rows):
        batch = lf.slice(offset, cfg.batch_rows).select(*schema.KEY, *text_cols).collect()
        reasoning = (
            batch[schema.REASONING]
            if schema.REASONING in batch.columns
            else pl.Series([None] * batch.height, dtype=pl.String)
        )
        answer = (
            batch[schema.ANSWER_TEXT]
            if schema.ANSWER_TEXT in batch.columns
            else pl.Series([None] * batch.height, dtype=pl.String)
        )
        tok = hash_tokens(reasoning)
        out: dict[str, Any] = {c: batch[c] for c in schema.KEY}
        out["_trace_key"] = token_keys(tok)
        if finder:
            finder.add(tok)
        out[schema.REPETITION] = repetition_share(tok, cfg.repetition_ngram)
        out["_paragraph"] = longest_paragraph(reasoning)
        out["_code_block"] = has_code_block(reasoning)
        if cfg.language:
            out[schema.LANGUAGE_SHARE] = language_share(reasoning, cfg.language)
        if identifier:
            out[schema.LANGUAGE], out["_lang_p"] = identifier.identify(reasoning)
            out[schema.ANSWER_LANGUAGE], out["_alang_p"] = identifier.identify(answer)
        if cfg.min_tokens is not None or cfg.max_tokens is not None:
            texts = pl.DataFrame(
                {"p": batch[prompt_col] if prompt_col else None, "r": reasoning, "a": answer}
            )
            joined = texts.select(
                pl.concat_str([pl.col(c).fill_null("") for c in ("p", "r", "a")], separator="\n").alias("t")
            )["t"]
            out["_tokens"] = count_tokens(joined, cfg.tokenizer)
        if index is not None:
            out.update(index.check_field(cfg, "answer", answer, answer))
            out.update(index.check_field(cfg, "reasoning", tok, reasoning))
        parts.append(pl.DataFrame(out))
        if progress:
            progress.advance(batch.height)
    if progress:
        progress.finish()
    rows = (
        pl.concat(parts, how="diagonal_relaxed")
        if parts
        else pl.DataFrame(schema={k: pl.String for k in schema.KEY})
    )
    rows = base.join(rows, on=list(schema.KEY), how="left", maintain_order="left")
    if prompts is not None:
        rows = rows.join(prompts, on=schema.PROMPT_ID, how="left", maintain_order="left")
    rows = rows.with_columns(
        pl.concat_str(
            [pl.col(schema.PROMPT_ID).cast(pl.String), pl.col(schema.SAMPLE).cast(pl.String)], separator="/"
        ).alias("_row_id")
    )
    fails = _rule_masks(cfg, rows, has, report)
    rows = _with_trace_duplicates(cfg, rows, fails, finder)
    fails.update(
        {
            rule: rows[col].is_not_null()
            for rule, col in (("duplicate_trace", "_dup_trace"), ("near_duplicate_trace", "_near_trace"))
            if col in rows.columns
        }
    )
    if cfg.k is not None:
        fails["over_k"] = _over_k(cfg, rows, fails, has, report)
    return _finish(cfg, rows, fails, report, index)


# ── prompts ────────────────────────────────────────────────────────────────
def _prompt_verdicts(
    cfg: FilterConfig,
    lf: pl.LazyFrame,
    prompt_col: str | None,
    index: Decontaminator | None,
    run: RunDir,
    report: FilterReport,
) -> pl.DataFrame | None:
    """Per prompt_id: contamination and (near-)duplicate representative among prompts."""
    from filters.dedup import exact_keys, find_exact_duplicates, find_near_duplicates

    if prompt_col is None:
        for rule in ("duplicate_prompt", "near_duplicate_prompt"):
            report.skipped[rule] = "no prompt column"
        return None
    prompts = (
        lf.select(schema.PROMPT_ID, prompt_col, _answer_expr(cfg, lf).alias("_answer"))
        .with_row_index("_i")
        .group_by(schema.PROMPT_ID)
        .agg(pl.col(prompt_col).first(), pl.col("_answer").drop_nulls().first(), pl.col("_i").min())
        .sort("_i")
        .drop("_i")
        .collect()
    )
    ids, texts = prompts[schema.PROMPT_ID].cast(pl.String), prompts[prompt_col].cast(pl.String)
    out = prompts.select(schema.PROMPT_ID)
    if cfg.dedup_prompts:
        out = out.with_columns(find_exact_duplicates(exact_keys(texts), ids).alias("_dup_prompt"))
    if cfg.near_dup_prompts:
        rep = find_near_duplicates([texts], _params(cfg.near_dup_prompts))
        out = out.with_columns(
            pl.Series(
                "_near_prompt",
                [None if r == i else ids[int(r)] for i, r in enumerate(rep.tolist())],
                dtype=pl.String,
            )
        )
    if index is not None and "prompt" in cfg.decontaminate:
        verdicts = index.check_prompts(cfg, ids, texts, prompts["_answer"], run, report)
        out = out.with_columns(verdicts.drop(schema.PROMPT_ID))
    return out


# ── rules ──────────────────────────────────────────────────────────────────
def _rule_masks(
    cfg: FilterConfig, rows: pl.DataFrame, has: set[str], report: FilterReport
) -> dict[str, pl.Series]:
    """rule → True where the row fails it (rules that cannot run are recorded in report.skipped)."""
    c = pl.col
    false = pl.lit(False)
    exprs: dict[str, pl.Expr] = {}

    def verdict(rule: str, column: str, on: bool) -> None:
        if not on:
            return
        if column in has:
            exprs[rule] = (c(column) == False).fill_null(False)  # noqa: E712 - a null verdict passes
        else:
            report.skipped[rule] = f"no {column} column (run `distill verify`)"

    if cfg.drop_errors:
        err = c(schema.ERROR).is_not_null() if schema.ERROR in has else false
        no_trace = c("_trace_key").is_null() if schema.REASONING in has else false
        exprs["error"] = err | no_trace
    verdict("incomplete", schema.COMPLETE, cfg.require_complete)
    verdict("format", schema.FORMAT_OK, cfg.require_format)
    if cfg.require_correct and cfg.accept_judge and schema.CORRECT in has and schema.JUDGE_VERDICT in has:
        # the rule verdict where there is one, else the judge's; null (neither) still passes
        judged = pl.coalesce(c(schema.CORRECT), c(schema.JUDGE_VERDICT))
        exprs["incorrect"] = (judged == False).fill_null(False)  # noqa: E712 - polars expression
    else:
        verdict("incorrect", schema.CORRECT, cfg.require_correct)
    contam = [f"_contam_{f}" for f in ("prompt", "answer", "reasoning") if f"_contam_{f}" in rows.columns]
    if contam:
        exprs["contaminated"] = pl.any_horizontal([c(x).is_not_null() for x in contam])
    elif "contaminated" not in report.skipped:
        report.skipped["contaminated"] = "no benchmarks (pass --benchmark NAME=PATH)"
    for rule, col in (("duplicate_prompt", "_dup_prompt"), ("near_duplicate_prompt", "_near_prompt")):
        if col in rows.columns:
            exprs[rule] = c(col).is_not_null()
    for rule, col in (("duplicate_trace", "_dup_trace"), ("near_duplicate_trace", "_near_trace")):
        if col in rows.columns:
            exprs[rule] = c(col).is_not_null()
    if schema.LANGUAGE in rows.columns:
        conf = cfg.min_language_confidence
        exprs["language"] = ((c(schema.LANGUAGE) != cfg.language) & (c("_lang_p") >= conf)).fill_null(
            False
        ) | ((c(schema.ANSWER_LANGUAGE) != cfg.language) & (c("_alang_p") >= conf)).fill_null(False)
    if cfg.min_language_share is not None and schema.LANGUAGE_SHARE in rows.columns:
        exprs["language_mixing"] = (c(schema.LANGUAGE_SHARE) < cfg.min_language_share).fill_null(False)
    if cfg.max_paragraph_chars is not None:
        exprs["long_paragraph"] = (c("_paragraph") > cfg.max_paragraph_chars).fill_null(False)
    if cfg.reject_code_blocks:
        exprs["code_block"] = c("_code_block").fill_null(False) & ~c("_is_code")
    if cfg.max_repetition is not None:
        exprs["repetition"] = (c(schema.REPETITION) > cfg.max_repetition).fill_null(False)
    if cfg.min_tokens is not None:
        exprs["too_short"] = (c("_tokens") < cfg.min_tokens).fill_null(False)
    if cfg.max_tokens is not None:
        exprs["too_long"] = (c("_tokens") > cfg.max_tokens).fill_null(False)
    if cfg.min_pass_rate is not None or cfg.max_pass_rate is not None:
        if schema.PASS_RATE in has:
            from filters.select import in_pass_rate_band

            band = in_pass_rate_band(rows[schema.PASS_RATE], cfg.min_pass_rate, cfg.max_pass_rate)
            exprs["pass_rate"] = ~pl.lit(band)
        else:
            report.skipped["pass_rate"] = "no pass_rate column (run `distill verify`)"
    return {rule: rows.select(e.alias(rule))[rule] for rule, e in exprs.items()}


def _with_trace_duplicates(
    cfg: FilterConfig, rows: pl.DataFrame, fails: dict[str, pl.Series], finder: Any
) -> pl.DataFrame:
    """Add _dup_trace / _near_trace, looking for duplicates only among rows that passed the earlier rules.

    So the representative a duplicate points to is always a row that can still be kept.
    """
    from filters.dedup import find_exact_duplicates

    earlier = [fails[r] for r in RULES[: RULES.index("duplicate_trace")] if r in fails]
    alive = (
        ~pl.DataFrame(earlier).select(pl.any_horizontal(pl.all())).to_series()
        if earlier
        else pl.Series([True] * rows.height)
    )
    if cfg.dedup_traces:
        keys = rows.select(pl.when(pl.lit(alive)).then(pl.col("_trace_key"))).to_series()
        rows = rows.with_columns(find_exact_duplicates(keys, rows["_row_id"]).alias("_dup_trace"))
    if finder:
        rep = finder.representatives(active=alive.to_numpy())
        ids = rows["_row_id"]
        near = [None if r == i else ids[int(r)] for i, r in enumerate(rep.tolist())]
        rows = rows.with_columns(pl.Series("_near_trace", near, dtype=pl.String))
    return rows


def _over_k(
    cfg: FilterConfig, rows: pl.DataFrame, fails: dict[str, pl.Series], has: set[str], report: FilterReport
) -> pl.Series:
    from filters.select import select_top_k

    alive = (
        ~pl.DataFrame(fails).select(pl.any_horizontal(pl.all())).to_series()
        if fails
        else pl.Series([True] * rows.height)
    )
    correct = rows[schema.CORRECT].fill_null(False) if schema.CORRECT in has else None
    if correct is None:
        log.info("filter: no correct column; k applies to every surviving sample")
    eligible = alive & correct if correct is not None else alive
    frame = rows.select(schema.PROMPT_ID, schema.SAMPLE, pl.col("_paragraph").alias("_len")).with_columns(
        _eligible=eligible
    )
    if "_tokens" in rows.columns:
        frame = frame.with_columns(_len=rows["_tokens"])
    chosen = select_top_k(
        frame,
        cfg.k,
        group=schema.PROMPT_ID,
        eligible="_eligible",
        length="_len",
        order=schema.SAMPLE,
        prefer=cfg.prefer,
        seed=cfg.seed,
    )
    return eligible & ~chosen


def _finish(
    cfg: FilterConfig,
    rows: pl.DataFrame,
    fails: dict[str, pl.Series],
    report: FilterReport,
    index: Decontaminator | None,
) -> tuple[pl.DataFrame, FilterReport]:
    order = [r for r in RULES if r in fails]
    masks = (
        pl.DataFrame({r: fails[r] for r in order}) if order else pl.DataFrame({"_": [False] * rows.height})
    )
    reason_frame = masks.select(
        pl.coalesce([pl.when(pl.col(r)).then(pl.lit(r)) for r in order])
        if order
        else pl.lit(None, dtype=pl.String)
    )  # the first failing rule wins
    reason = (
        reason_frame.to_series() if reason_frame.width else pl.Series([None] * rows.height, dtype=pl.String)
    )
    rows = rows.with_columns(reason.alias(schema.REJECT_REASON)).with_columns(
        pl.col(schema.REJECT_REASON).is_null().alias(schema.KEEP)
    )
    dup_cols = [x for x in ("_dup_prompt", "_near_prompt", "_dup_trace", "_near_trace") if x in rows.columns]
    fields = [f for f in ("prompt", "answer", "reasoning") if f"_contam_{f}" in rows.columns]
    rows = rows.with_columns(
        (pl.coalesce(dup_cols) if dup_cols else pl.lit(None, dtype=pl.String)).alias(schema.DUP_OF),
        *(evidence_columns(fields) if fields else []),
    )
    report.rows_kept = int(rows[schema.KEEP].sum())
    report.rules = {r: int((rows[schema.REJECT_REASON] == r).sum()) for r in order}
    report.flagged = {r: int(fails[r].sum()) for r in order}
    source = (
        rows[schema.SOURCE].cast(pl.String).fill_null("unknown")
        if schema.SOURCE in rows.columns
        else pl.Series(["all"] * rows.height)
    )
    summary = pl.DataFrame({"s": source, "r": rows[schema.REJECT_REASON]})
    for s in sorted(set(source.to_list())):
        sub = summary.filter(pl.col("s") == s)
        counts = {r: n for r, n in sub.group_by("r").len().iter_rows() if r is not None}
        report.by_source[s] = {"in": sub.height, "kept": int(sub["r"].null_count()), **counts}
    if schema.CONTAMINATED_BY not in rows.columns:
        rows = rows.with_columns(pl.lit(None, dtype=pl.String).alias(schema.CONTAMINATED_BY))
    report.decontamination = decontamination_section(cfg, rows, index, report)
    return rows.select(*schema.KEY, *[x for x in rule_columns() if x in rows.columns]), report


# ── decontamination helpers ────────────────────────────────────────────────
def _answer_expr(cfg: FilterConfig, lf: pl.LazyFrame) -> pl.Expr:
    """A row's final answer for answer agreement: the gold column, else a verified-correct answer."""
    names = set(lf.collect_schema().names())
    gold = cfg.decontam_answer_column
    candidates = []
    if gold and gold in names:
        # GSM8K's worked solutions end in "#### N"
        candidates.append(pl.col(gold).cast(pl.String).str.split("####").list.last().str.strip_chars())
    if schema.ANSWER_TEXT in names and schema.CORRECT in names:
        candidates.append(pl.when(pl.col(schema.CORRECT)).then(pl.col(schema.ANSWER_TEXT)))
    return pl.coalesce(candidates) if candidates else pl.lit(None, dtype=pl.String)


def _params(settings: Any) -> Any:
    from filters.dedup import MinHashParams

    return MinHashParams(num_perm=settings.num_perm, shingle=settings.shingle, threshold=settings.threshold)


def _is_code_expr(has: set[str]) -> pl.Expr:
    """A row is a code task when verify ran code on it or it carries tests."""
    signals = [pl.col(c).is_not_null() for c in (schema.CODE_VERIFIED, *CODE_TEST_COLUMNS) if c in has]
    return pl.any_horizontal(signals) if signals else pl.lit(False)


def rule_columns() -> tuple[str, ...]:
    """The columns this stage writes."""
    return schema.FILTER_COLUMNS
