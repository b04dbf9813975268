"""Scores of one evaluation: per-benchmark results from scored rows, and the report written to
EVALDIR/results.json and EVALDIR/results.md (DeepSeek's published numbers beside them: reference_table.py).

A sample counts as correct only when the verifier said so, the response finished (a `length`
finish is a truncated answer, and it is wrong however close it got) and the request did not fail.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from distill import schema
from distill.evaluation.metrics import Estimate, cons_at_k, pass_at_1, pass_at_k

if TYPE_CHECKING:
    import polars as pl

log = logging.getLogger(__name__)

ITEM_ID = "id"  # the benchmark's own item id, passed through generation from the prompt file
VOTE_ANSWER = "vote_answer"  # the normalised final answer a sample votes for in cons@k (null: no vote)
SCORED_CORRECT = "scored_correct"  # the verdict the score counts: verified, finished, no request error


@dataclass
class BenchmarkResult:
    """The scores of one benchmark."""

    name: str
    version: str
    kind: str
    problems: int
    k: int
    samples: int
    pass_at_1: Estimate
    cons_at_k: Estimate | None = None
    pass_at_k: dict[int, Estimate] = field(default_factory=dict)
    mean_completion_tokens: float | None = None
    truncated: int = 0
    errors: int = 0
    unverified: int = 0  # samples the verifier could not judge (null verdict): counted wrong
    reasoning_closed_rate: float | None = None  # share of answered samples whose <think> block was closed
    subset_of: int | None = None  # the benchmark's full size when only a subset was run
    reference: dict[str, float] = field(default_factory=dict)

    @property
    def truncation_rate(self) -> float:
        return self.truncated / self.samples if self.samples else 0.0

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": self.version,
            "kind": self.kind,
            "problems": self.problems,
            "k": self.k,
            "samples": self.samples,
            "pass@1": self.pass_at_1.as_dict(),
            "mean_completion_tokens": self.mean_completion_tokens,
            "truncated": self.truncated,
            "truncation_rate": self.truncation_rate,
            "errors": self.errors,
            "unverified": self.unverified,
            "reasoning_closed_rate": self.reasoning_closed_rate,
        }
        if self.cons_at_k is not None:
            out[f"cons@{self.k}"] = self.cons_at_k.as_dict()
        for k, est in sorted(self.pass_at_k.items()):
            out[f"pass@{k}"] = est.as_dict()
        if self.subset_of is not None:
            out["subset_of"] = self.subset_of
        if self.reference:
            out["reference"] = self.reference
        return _finite(out)

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> BenchmarkResult:
        """One benchmark's scores again from its `as_dict()` (results.json, stats.json)."""

        def estimate(value: Any) -> Estimate | None:
            return Estimate(**value) if isinstance(value, dict) else None

        cons = next((estimate(v) for key, v in data.items() if key.startswith("cons@")), None)
        pass_k = {
            int(key.split("@")[1]): e
            for key, v in data.items()
            if key.startswith("pass@") and key != "pass@1" and (e := estimate(v)) is not None
        }
        return cls(
            name=name,
            version=str(data.get("version") or ""),
            kind=str(data.get("kind") or ""),
            problems=int(data.get("problems") or 0),
            k=int(data.get("k") or 0),
            samples=int(data.get("samples") or 0),
            pass_at_1=estimate(data.get("pass@1")) or Estimate(0.0, 0.0, 0.0, 0.0, 0),
            cons_at_k=cons,
            pass_at_k=pass_k,
            mean_completion_tokens=data.get("mean_completion_tokens"),
            truncated=int(data.get("truncated") or 0),
            errors=int(data.get("errors") or 0),
            unverified=int(data.get("unverified") or 0),
            reasoning_closed_rate=data.get("reasoning_closed_rate"),
            subset_of=data.get("subset_of"),
            reference=dict(data.get("reference") or {}),
        )


def mark_scored(frame: pl.DataFrame) -> pl.DataFrame:
    """Add `scored_correct`: the verdict the score uses (verified right, finished, no request error).

    Truncated or failed samples also lose their vote: an answer cut off at max_tokens is no answer.
    """
    import polars as pl

    cols = frame.columns
    truncated = pl.col(schema.FINISH_REASON).fill_null("") == "length"
    failed = pl.col(schema.ERROR).is_not_null() if schema.ERROR in cols else pl.lit(False)
    verdict = pl.col(schema.CORRECT) if schema.CORRECT in cols else pl.lit(None, dtype=pl.Boolean)
    vote = pl.col(VOTE_ANSWER) if VOTE_ANSWER in cols else pl.lit(None, dtype=pl.String)
    return frame.with_columns(
        (verdict.fill_null(False) & ~truncated & ~failed).alias(SCORED_CORRECT),
        pl.when(truncated | failed).then(None).otherwise(vote).alias(VOTE_ANSWER),
    )


def score_frame(
    frame: pl.DataFrame,
    *,
    name: str,
    version: str,
    kind: str,
    k: int,
    pass_k: tuple[int, ...] = (),
    cons: bool = True,
    item_id: str = ITEM_ID,
) -> BenchmarkResult:
    """Scores of one benchmark from its rows (one per sample, with `correct` and `vote_answer`)."""
    import polars as pl

    cols = frame.columns
    if SCORED_CORRECT not in cols:
        frame = mark_scored(frame)
    truncated = pl.col(schema.FINISH_REASON).fill_null("") == "length"
    failed = pl.col(schema.ERROR).is_not_null() if schema.ERROR in cols else pl.lit(False)
    verdict = pl.col(schema.CORRECT) if schema.CORRECT in cols else pl.lit(None, dtype=pl.Boolean)
    scored = frame.with_columns(
        truncated.alias("_truncated"),
        failed.alias("_failed"),
        (verdict.is_null() & ~truncated & ~failed).alias("_unverified"),
    ).sort([item_id, schema.SAMPLE])
    groups = scored.group_by(item_id, maintain_order=True).agg(pl.col(SCORED_CORRECT), pl.col(VOTE_ANSWER))
    correct = groups[SCORED_CORRECT].to_list()
    votes = groups[VOTE_ANSWER].to_list()

    tokens = (
        scored.filter(~pl.col("_failed"))[schema.COMPLETION_TOKENS]
        if schema.COMPLETION_TOKENS in cols
        else None
    )
    mean_tokens = (
        float(cast(float, tokens.mean())) if tokens is not None and tokens.drop_nulls().len() else None
    )
    min_k = min((len(c) for c in correct), default=0)
    if too_big := [j for j in pass_k if j > min_k]:
        log.warning(
            "%s: pass@%s not reported: needs that many samples per problem (have %d)",
            name,
            ",".join(map(str, too_big)),
            min_k,
        )
    answered = scored.filter(~pl.col("_failed"))
    closed = (
        float(cast(float, answered[schema.COMPLETE].fill_null(False).mean()))
        if schema.COMPLETE in cols and answered.height
        else None
    )
    return BenchmarkResult(
        name=name,
        version=version,
        kind=kind,
        problems=groups.height,
        k=k,
        samples=scored.height,
        pass_at_1=pass_at_1(correct),
        cons_at_k=cons_at_k(votes, correct) if cons and kind != "code" and k > 1 else None,
        pass_at_k={j: pass_at_k(correct, j) for j in pass_k if 1 < j <= min_k},
        mean_completion_tokens=mean_tokens,
        truncated=int(scored["_truncated"].sum()),
        errors=int(scored["_failed"].sum()),
        unverified=int(scored["_unverified"].sum()),
        reasoning_closed_rate=closed,
    )


def add_votes(frame: pl.DataFrame, kind: str) -> pl.DataFrame:
    """The normalised final answer of every math sample: what it votes for in cons@k."""
    import polars as pl

    if kind == "code":
        return frame.with_columns(pl.lit(None, dtype=pl.String).alias(VOTE_ANSWER))
    from filters.math import extract_answer, normalize_answer

    def vote(text: str | None) -> str | None:
        answer = extract_answer(text) if text else None
        return normalize_answer(answer) if answer else None

    return frame.with_columns(
        pl.col(schema.ANSWER_TEXT).map_elements(vote, return_dtype=pl.String).alias(VOTE_ANSWER)
    )


# ── the report ────────────────────────────────────────────────────────────────
@dataclass
class EvalReport:
    """What `evaluate` measured, where it wrote it, and how to show it."""

    out: Path
    model: str | None
    results: list[BenchmarkResult]
    settings: dict[str, Any]
    reference_model: str | None = None
    reference_source: str | None = None
    results_json: Path | None = None
    results_md: Path | None = None
    generated: int = 0  # samples generated by this call (0 when everything was resumed or re-scored)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "settings": self.settings,
            "reference": {"model": self.reference_model, "source": self.reference_source}
            if self.reference_model
            else None,
            "benchmarks": {r.name: r.as_dict() for r in self.results},
        }

    def summary(self) -> str:
        scores = ", ".join(
            f"{r.name} pass@1 {100 * r.pass_at_1.mean:.1f}% (k={r.k}, {r.problems} problems)"
            for r in self.results
        )
        return f"{scores} → {self.results_md}"

    def table_rows(self) -> list[tuple[str, str]]:
        return [
            (r.name, f"pass@1 {100 * r.pass_at_1.mean:.1f}% ± {100 * r.pass_at_1.stderr:.1f} (k={r.k})")
            for r in self.results
        ]

    def to_stats(self) -> dict[str, Any]:
        """What results.json holds."""
        return self.as_dict()

    @classmethod
    def from_stats(cls, stats: Mapping[str, Any], out: Path | None = None) -> EvalReport:
        """The report from results.json (`out`: the EVALDIR it lies in)."""
        reference = stats.get("reference") or {}
        from distill.run import RunDir

        evaldir = RunDir(out) if out is not None else None
        return cls(
            out=evaldir.root if evaldir else Path("."),
            model=stats.get("model"),
            results=[BenchmarkResult.from_dict(n, d) for n, d in (stats.get("benchmarks") or {}).items()],
            settings=dict(stats.get("settings") or {}),
            reference_model=reference.get("model"),
            reference_source=reference.get("source"),
            results_json=evaldir.results_json if evaldir else None,
            results_md=evaldir.results_md if evaldir else None,
        )

    def rows(self) -> tuple[list[str], list[list[str]]]:
        """Header and cells of the summary table (the same for markdown and the terminal)."""
        ks = sorted({k for r in self.results for k in r.pass_at_k})
        header = [
            "benchmark",
            "problems",
            "k",
            "pass@1 (%)",
            "95% CI",
            "cons@k (%)",
            *[f"pass@{k} (%)" for k in ks],
            "mean tokens",
            "truncated",
            "think closed",
            "errors",
            "unverified",
        ]
        if self.reference_model:
            header += ["DeepSeek pass@1", "DeepSeek cons@64"]
        rows = []
        for r in self.results:
            p = r.pass_at_1
            problems = f"{r.problems}" + (f" of {r.subset_of}" if r.subset_of else "")
            row = [
                r.name,
                problems,
                str(r.k),
                f"{_pct(p.mean)} ± {_pct(p.stderr)}",
                f"{_pct(p.ci_low)}–{_pct(p.ci_high)}",
                f"{_pct(r.cons_at_k.mean)} (@{r.k})" if r.cons_at_k else "–",
                *[_pct(r.pass_at_k[k].mean) if k in r.pass_at_k else "–" for k in ks],
                f"{r.mean_completion_tokens:,.0f}" if r.mean_completion_tokens is not None else "–",
                f"{r.truncated} ({r.truncation_rate:.1%})",
                "–" if r.reasoning_closed_rate is None else f"{r.reasoning_closed_rate:.1%}",
                str(r.errors),
                str(r.unverified),
            ]
            if self.reference_model:
                row += [_ref(r.reference.get("pass@1")), _ref(r.reference.get("cons@64"))]
            rows.append(row)
        return header, rows

    def to_markdown(self) -> str:
        header, rows = self.rows()
        s = self.settings
        lines = [
            f"# Evaluation of `{self.model or 'unknown model'}`",
            "",
            f"Sampling: temperature {s.get('temperature')}, top-p {s.get('top_p')}, "
            f"max {s.get('max_tokens')} tokens, seed {s.get('seed')}; pass@1 is the mean accuracy over "
            "k samples per problem (± standard error over problems); truncated or failed samples count "
            "as wrong.",
            "",
        ]
        lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        if self.reference_model:
            lines += [
                "",
                f"DeepSeek columns: published scores of {self.reference_model} ({self.reference_source}).",
            ]
        for r in self.results:
            if r.unverified:
                lines += [
                    "",
                    f"{r.name}: {r.unverified} samples could not be verified (no gold, verifier timeout or "
                    "crash) and count as wrong: see `verify_detail` in its data/all.",
                ]
        if any(r.subset_of for r in self.results):
            lines += [
                "",
                "Some benchmarks ran on a subset of their problems: do not compare those to published scores.",
            ]
        return "\n".join(lines) + "\n"

    def as_table(self) -> Any:
        """A compact terminal table (fits 80 columns for a few pass@k); results.md has every column."""
        from rich import box
        from rich.table import Table

        ks = sorted({k for r in self.results for k in r.pass_at_k})
        table = Table(
            title=f"eval · {self.model or ''}",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            caption_justify="left",
        )
        table.add_column("benchmark", no_wrap=True)
        for name in ("n×k", "pass@1 %", "cons %", *[f"p@{k} %" for k in ks], "tokens", "cut %"):
            table.add_column(name, justify="right", no_wrap=True)
        if any(r.errors or r.unverified for r in self.results):
            table.add_column("err/unver", justify="right", no_wrap=True)
        if self.reference_model:
            table.add_column("DeepSeek", justify="right", no_wrap=True)
        for r in self.results:
            p = r.pass_at_1
            row = [
                r.name,
                f"{r.problems}{'*' if r.subset_of else ''}×{r.k}",
                f"{_pct(p.mean)} ± {_pct(p.stderr)}",
                _pct(r.cons_at_k.mean) if r.cons_at_k else "–",
                *[_pct(r.pass_at_k[k].mean) if k in r.pass_at_k else "–" for k in ks],
                f"{r.mean_completion_tokens:,.0f}" if r.mean_completion_tokens is not None else "–",
                f"{100 * r.truncation_rate:.1f}",
            ]
            if any(x.errors or x.unverified for x in self.results):
                row.append(f"{r.errors}/{r.unverified}")
            if self.reference_model:
                ref = [_ref(r.reference.get(m)) for m in ("pass@1", "cons@64") if m in r.reference]
                row.append("/".join(ref) or "–")
            table.add_row(*row)
        notes = ["± standard error; 95% intervals in results.md"]
        if self.reference_model:
            notes.append(f"DeepSeek: published pass@1/cons@64 of {self.reference_model}")
        if any(r.subset_of for r in self.results):
            notes.append("* a subset of the benchmark")
        table.caption = "\n".join(notes)
        return table


def _pct(x: float) -> str:
    return "–" if x is None or math.isnan(x) else f"{100 * x:.1f}"


def _ref(x: float | None) -> str:
    return "–" if x is None else f"{x:.1f}"


def _finite(data: Any) -> Any:
    """NaN is not JSON: empty benchmarks report null."""
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, float) and math.isnan(data):
        return None
    return data
