"""The filter stage's decontamination: n-gram, semantic and judge passes, and the evidence they leave.

Per prompt (once per prompt_id), in order:

    exact      the prompt's normalised tokens equal a benchmark item's            score 1.0
    ngram      it shares the item's 8-grams (learned boilerplate left out) AND    score = coverage
               states the item's numbers (a template sibling with other numbers is not a copy)
    semantic   a reworded item: TF-IDF candidates scored by a model fit on        score = cosine
               lexical, number, formula and answer agreement (filters/decontam_semantic.py)
    judge      the optional LLM judge said "same problem" for a pair in the       score = cosine
               uncertain band (`decontam_judge`; verdicts stored under run/judge/)

Reasoning and answers get the n-gram pass with the same number check. Every flagged row carries
CONTAMINATED_BY (benchmark:item), CONTAMINATION_METHOD, CONTAMINATION_SCORE and CONTAMINATION_SPANS
(the longest shared token runs), and stats.json "decontamination" counts flags by benchmark and
method with examples.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from distill import schema
from distill.errors import ConfigError

if TYPE_CHECKING:
    from distill.filtering.config import FilterConfig
    from distill.filtering.report import FilterReport
    from distill.run import RunDir
    from filters.decontam import BenchmarkIndex
    from filters.decontam_semantic import SemanticIndex

log = logging.getLogger(__name__)
FIELDS = ("prompt", "answer", "reasoning")  # evidence is taken from the first field that matched
METHODS = ("exact", "ngram", "semantic", "judge")
SAME_PROBLEM_PROMPT_NAME = "decontam-same-problem"


def same_problem_prompt() -> Any:
    """The fixed, versioned judge question (bump the version when the wording changes)."""
    from distill.judge import JudgePrompt

    return JudgePrompt(
        name=SAME_PROBLEM_PROMPT_NAME,
        version=1,
        fields=("candidate", "benchmark"),
        template=(
            "You check training data for benchmark contamination. Are these two texts the same math "
            "problem, possibly reworded: the same quantities, the same conditions and the same question, "
            "so that they have the same answer? A problem that only shares a template or topic, or that "
            "changes any number, condition or the thing asked for, is NOT the same problem.\n\n"
            "PROBLEM A (training data):\n{candidate}\n\nPROBLEM B (benchmark):\n{benchmark}\n\n"
            "Explain briefly, then end with `Judgement: yes` or `Judgement: no`."
        ),
    )


@dataclass
class Decontaminator:
    """The benchmark indexes one filter run checks against."""

    ngram: BenchmarkIndex
    semantic: SemanticIndex

    @classmethod
    def build(cls, cfg: FilterConfig) -> Decontaminator | None:
        """Load the configured benchmarks and index them; None when decontamination is off."""
        from distill.evaluation.benchmarks import canonical_name, load_benchmark
        from filters.decontam import DEFAULT_STOP_PHRASES, build_index
        from filters.decontam_semantic import SemanticIndex

        names = list(dict.fromkeys(canonical_name(n) for n in [*cfg.benchmarks, *cfg.benchmark_paths]))
        if not names or not cfg.decontaminate:
            return None
        paths = {canonical_name(n): p for n, p in cfg.benchmark_paths.items()}
        meta = {canonical_name(n): m for n, m in cfg.benchmarks_meta.items()}
        loaded = [load_benchmark(n, paths.get(n), meta=meta.get(n)) for n in names]
        stops = [
            *(cfg.stop_phrases if cfg.stop_phrases is not None else DEFAULT_STOP_PHRASES),
            *cfg.extra_stop_phrases,
        ]
        ngram = build_index(
            loaded,
            n=cfg.ngram,
            stop_phrases=stops,
            max_item_frequency=cfg.max_item_frequency,
            stop_ngram=cfg.stop_ngram,
            stop_min_items=cfg.stop_min_items,
        )
        items = pl.concat(
            [
                b.rows.select(
                    pl.lit(b.spec.name).alias("benchmark"),
                    pl.col("id").cast(pl.String),
                    pl.col("problem").cast(pl.String),
                    (pl.col("answer") if "answer" in b.rows.columns else pl.lit(None)).cast(pl.String),
                )
                for b in loaded
            ]
        )
        return cls(ngram, SemanticIndex.build(items))

    # ── passes ─────────────────────────────────────────────────────────────
    def check_prompts(
        self,
        cfg: FilterConfig,
        ids: pl.Series,
        texts: pl.Series,
        answers: pl.Series | None,
        run: RunDir,
        report: FilterReport,
    ) -> pl.DataFrame:
        """Per prompt: the evidence columns of field "prompt" (null where clean)."""
        from filters.decontam import find_matches
        from filters.decontam_semantic import find_semantic_matches

        m = find_matches(
            texts, self.ngram, min_matches=cfg.min_matches, min_coverage=cfg.min_coverage, whole_text=True
        )
        item, score = self._confirmed(cfg, texts, m.item), m.coverage.copy()
        method = _where_ngram(item)
        method[self._exact(texts, item)] = "exact"
        score[method == "exact"] = 1.0
        labels = self._labels_of(item, self.ngram)
        if cfg.decontam_semantic is not None:
            rest = np.flatnonzero(item < 0)
            sem = find_semantic_matches(
                texts.gather(rest),
                self.semantic,
                cfg.decontam_semantic.thresholds(),
                answers=answers.gather(rest) if answers is not None else None,
            )
            hit = sem.item >= 0
            labels[rest[hit]] = [self.semantic.label(int(i)) for i in sem.item[hit]]
            method[rest[hit]], score[rest[hit]] = "semantic", sem.score[hit]
            band = np.flatnonzero(sem.uncertain >= 0)
            report.decontamination["_uncertain"] = len(band)
            if cfg.decontam_judge is not None and len(band):
                said = self._judge(cfg, ids, texts, rest[band], sem.uncertain[band], run, report)
                yes = rest[band][said]
                labels[yes] = [self.semantic.label(int(i)) for i in sem.uncertain[band][said]]
                method[yes], score[yes] = "judge", sem.score[band][said]
        return pl.DataFrame(
            {
                schema.PROMPT_ID: ids,
                **self._evidence("prompt", texts, labels, method, score),
            },
            schema_overrides=_evidence_schema("prompt"),
        )

    def check_field(
        self, cfg: FilterConfig, field: str, tokens: Any, texts: pl.Series
    ) -> dict[str, pl.Series]:
        """N-gram evidence columns of one text field (answer / reasoning) of a batch."""
        from filters.decontam import find_matches

        n = len(texts)
        if field not in cfg.decontaminate:
            return {c: pl.Series(c, [None] * n, dtype=t) for c, t in _evidence_schema(field).items()}
        m = find_matches(tokens, self.ngram, min_matches=cfg.min_matches, min_coverage=cfg.min_coverage)
        item = self._confirmed(cfg, texts, m.item)
        method = _where_ngram(item)
        return self._evidence(field, texts, self._labels_of(item, self.ngram), method, m.coverage)

    # ── internals ──────────────────────────────────────────────────────────
    def _confirmed(self, cfg: FilterConfig, texts: pl.Series, item: np.ndarray) -> np.ndarray:
        """N-gram matches whose text also states the item's numbers (item indexes are shared)."""
        from filters.decontam_semantic import confirm_by_numbers

        if cfg.ngram_min_number_recall is None:
            return item
        ok = confirm_by_numbers(texts, item, self.semantic, min_recall=cfg.ngram_min_number_recall)
        return np.where(ok, item, -1)

    def _exact(self, texts: pl.Series, item: np.ndarray) -> np.ndarray:
        rows = np.flatnonzero(item >= 0)
        mine = pl.DataFrame({"t": texts.gather(rows)}).select(_norm(pl.col("t")))["t"].to_numpy()
        theirs = self.ngram.items.select(_norm(pl.col("problem")))["problem"].to_numpy()[item[rows]]
        out = np.zeros(len(item), dtype=bool)
        out[rows] = (mine == theirs) & (mine != "")
        return out

    def _labels_of(self, item: np.ndarray, index: Any) -> np.ndarray:
        labels = np.full(len(item), None, dtype=object)
        for i in np.flatnonzero(item >= 0):
            labels[i] = index.label(int(item[i]))
        return labels

    def _evidence(
        self, field: str, texts: pl.Series, labels: np.ndarray, method: np.ndarray, score: np.ndarray
    ) -> dict[str, pl.Series]:
        from filters.decontam_semantic import shared_spans

        problems = dict(
            zip(
                self.semantic.items.select(pl.format("{}:{}", "benchmark", "id"))["benchmark"].to_list(),
                self.semantic.items["problem"].to_list(),
                strict=True,
            )
        )
        spans = np.full(len(labels), None, dtype=object)
        hit = np.flatnonzero(labels != None)  # noqa: E711 - numpy object comparison
        spans[hit] = shared_spans(texts.gather(hit).to_list(), [problems[lab] for lab in labels[hit]])
        flagged = labels != None  # noqa: E711
        cols = _evidence_schema(field)
        rounded = np.full(len(labels), None, dtype=object)
        rounded[flagged] = np.round(score, 4)[flagged]
        values = (labels, method, rounded, spans)
        return {c: pl.Series(c, list(v), dtype=t) for (c, t), v in zip(cols.items(), values, strict=True)}

    def _judge(
        self,
        cfg: FilterConfig,
        ids: pl.Series,
        texts: pl.Series,
        rows: np.ndarray,
        items: np.ndarray,
        run: RunDir,
        report: FilterReport,
    ) -> np.ndarray:
        """Ask the judge about each uncertain pair; True where it said "same problem"."""
        from distill.judge import JudgeRequest, judge

        prompt = same_problem_prompt()
        problems = self.semantic.items["problem"]
        requests = [
            JudgeRequest(
                f"{ids[int(r)]}:{self.semantic.label(int(i))}",
                {"candidate": texts[int(r)], "benchmark": problems[int(i)]},
            )
            for r, i in zip(rows, items, strict=True)
        ]
        if cfg.decontam_judge is None:  # the caller checks; this narrows the optional section
            raise ConfigError("filter: decontam_judge is not configured")
        results, judged = judge(cfg.decontam_judge, prompt, requests, run.judge / prompt.name)
        report.decontamination["_judge"] = judged.as_stats()
        return np.array([r.verdict is True for r in results], dtype=bool)


def evidence_columns(fields: list[str]) -> list[pl.Expr]:
    """The row's evidence: the four columns of the first field (prompt, answer, reasoning) that matched."""
    present = [f for f in FIELDS if f in fields]
    out = []
    for target, suffix in zip(_EVIDENCE, ("", "_method", "_score", "_spans"), strict=True):
        expr: Any = pl.lit(None, dtype=_EVIDENCE[target])
        for f in reversed(present):
            expr = (
                pl.when(pl.col(f"_contam_{f}").is_not_null())
                .then(pl.col(f"_contam_{f}{suffix}"))
                .otherwise(expr)
            )
        out.append(expr.alias(target))
    return out


def decontamination_section(
    cfg: FilterConfig, rows: pl.DataFrame, dc: Decontaminator | None, report: FilterReport
) -> dict[str, Any]:
    """stats.json "decontamination": flags by benchmark and method, examples with their evidence."""
    uncertain = report.decontamination.pop("_uncertain", 0)
    judged = report.decontamination.pop("_judge", None)
    if dc is None:
        return {"benchmarks": {}, "skipped": report.skipped.get("contaminated", "off")}
    flagged = rows.filter(pl.col(schema.CONTAMINATED_BY).is_not_null()).with_columns(
        pl.col(schema.CONTAMINATED_BY).str.split(":").list.first().alias("_bench")
    )
    out: dict[str, Any] = {
        "ngram": cfg.ngram,
        "min_coverage": cfg.min_coverage,
        "fields": cfg.decontaminate,
        "methods": list(METHODS),
        "semantic": cfg.decontam_semantic.model_dump() if cfg.decontam_semantic is not None else None,
        "ngram_min_number_recall": cfg.ngram_min_number_recall,
        "stop_ngrams_dropped": dc.ngram.dropped_stop,
        "frequent_ngrams_dropped": dc.ngram.dropped_frequent,
        "uncertain_prompts": uncertain,
        "judge": judged,
        "benchmarks": {},
    }
    for name, meta in dc.ngram.benchmarks.items():
        mine = flagged.filter(pl.col("_bench") == name)
        by_method = {m: int((mine[schema.CONTAMINATION_METHOD] == m).sum()) for m in METHODS}
        examples = (
            mine.unique(schema.CONTAMINATED_BY, keep="first", maintain_order=True)
            .head(cfg.examples)
            .select(
                pl.col("_row_id").alias("row"),
                pl.col(schema.CONTAMINATED_BY).alias("item"),
                pl.col(schema.CONTAMINATION_METHOD).alias("method"),
                pl.col(schema.CONTAMINATION_SCORE).alias("score"),
                pl.col(schema.CONTAMINATION_SPANS).alias("shared"),
            )
            .to_dicts()
        )
        out["benchmarks"][name] = {
            **meta,
            "flagged_rows": mine.height,
            "by_method": by_method,
            "examples": examples,
        }
    return out


_EVIDENCE = {
    schema.CONTAMINATED_BY: pl.String,
    schema.CONTAMINATION_METHOD: pl.String,
    schema.CONTAMINATION_SCORE: pl.Float64,
    schema.CONTAMINATION_SPANS: pl.String,
}


def _evidence_schema(field: str) -> dict[str, Any]:
    return dict(
        zip(
            (
                f"_contam_{field}",
                f"_contam_{field}_method",
                f"_contam_{field}_score",
                f"_contam_{field}_spans",
            ),
            _EVIDENCE.values(),
            strict=True,
        )
    )


def _norm(expr: pl.Expr) -> pl.Expr:
    from filters._ngrams import tokens_expr

    return tokens_expr(expr).list.join(" ")


def _where_ngram(item: np.ndarray) -> np.ndarray:
    """ "ngram" where an item matched (index >= 0), None elsewhere: the method column of the evidence."""
    method = np.full(len(item), None, dtype=object)
    method[item >= 0] = "ngram"
    return method
