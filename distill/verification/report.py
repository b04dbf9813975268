"""The verify stage's report: true/false/null/timeout counts per verifier, overall and per source,
math verdicts by reason (which were graded by rules, which by the judge, which not at all).

Built from verified rows alone (`build_report`), so `distill verify RUN --report` can print it
again from data/all, and stored as stats.json's "verify" section.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from distill import schema

if TYPE_CHECKING:
    import polars as pl


@dataclass
class VerifyReport:
    """Counts per verifier (true/false/null/timeout), overall and per source."""

    rows: int = 0
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    by_source: dict[str, dict[str, Any]] = field(default_factory=dict)
    isolation: str | None = None
    seconds: float = 0.0
    workers: int = 0
    skipped: bool = False
    reasons: dict[str, int] = field(default_factory=dict)  # math rows per verdict_reason
    judge: dict[str, Any] | None = None  # what the LLM judge did (JudgeReport.as_stats + asked)
    gold: dict[str, dict[str, int]] = field(default_factory=dict)  # per source: empty/unparseable golds

    @property
    def by_rules(self) -> int:
        """Math rows that a rule graded true or false."""
        return sum(v for k, v in self.reasons.items() if k in ("parsed", "no_answer"))

    @property
    def by_judge(self) -> int:
        return self.reasons.get("judge", 0)

    def summary(self) -> str:
        parts = [f"{name} {c['true']}/{sum(c.values())} true" for name, c in self.counts.items()]
        line = f"verified {self.rows} rows: " + ", ".join(parts) if parts else f"verified {self.rows} rows"
        if self.judge is not None:
            line += f"; verdicts from rules {self.by_rules}, from the judge {self.by_judge}"
        return line + (" (already verified with these settings; --force redoes it)" if self.skipped else "")

    def table_rows(self) -> list[tuple[str, str]]:
        return [
            (name, ", ".join(f"{k} {c[k]}" for k in ("true", "false", "null", "timeout")))
            for name, c in self.counts.items()
        ] + (
            [("math by reason", ", ".join(f"{k} {v}" for k, v in self.reasons.items()))]
            if self.reasons
            else []
        )

    def to_stats(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "verifiers": self.counts,
            "by_source": self.by_source,
            "isolation": self.isolation,
            "seconds": round(self.seconds, 3),
            "workers": self.workers,
            "reasons": self.reasons,
            "judge": self.judge,
            "gold": self.gold,
        }

    @classmethod
    def from_stats(cls, stats: Mapping[str, Any]) -> VerifyReport:
        """The report recorded in stats.json's "verify" section."""
        return cls(
            rows=stats.get("rows", 0),
            counts=stats.get("verifiers", {}),
            by_source=stats.get("by_source", {}),
            isolation=stats.get("isolation"),
            seconds=stats.get("seconds", 0.0),
            workers=stats.get("workers", 0),
            reasons=dict(stats.get("reasons") or {}),
            judge=stats.get("judge"),
            gold=dict(stats.get("gold") or {}),
        )

    def as_table(self) -> Any:
        """Rich tables: verdict counts per verifier and per source, then pass rates per source."""
        from rich.console import Group
        from rich.table import Table

        counts = Table(title=f"verify: {self.rows} rows in {self.seconds:.1f}s ({self.workers} workers)")
        for col in ("source", "verifier", "true", "false", "null", "timeout"):
            counts.add_column(col, justify="left" if col in ("source", "verifier") else "right")
        for name, c in self.counts.items():
            counts.add_row("(all)", name, *(str(c[k]) for k in ("true", "false", "null", "timeout")))
        for source, info in self.by_source.items():
            for name, c in info["verifiers"].items():
                counts.add_row(source, name, *(str(c[k]) for k in ("true", "false", "null", "timeout")))
        rates = Table(title="per source: correct samples and per-prompt pass rate")
        for col in ("source", "rows", "correct", "prompts", "mean pass rate", "all wrong", "all right"):
            rates.add_column(col, justify="left" if col == "source" else "right")
        for source, info in self.by_source.items():
            mean = info["pass_rate_mean"]
            rates.add_row(
                source,
                str(info["rows"]),
                str(info["correct"]),
                str(info["prompts"]),
                "-" if mean is None else f"{mean:.3f}",
                str(info["prompts_all_wrong"]),
                str(info["prompts_all_right"]),
            )
        parts: list[Any] = [counts, rates]
        if self.reasons:
            reasons = Table(title="math verdicts by reason")
            reasons.add_column("reason")
            reasons.add_column("rows", justify="right")
            for reason, count in self.reasons.items():
                reasons.add_row(reason, str(count))
            parts.append(reasons)
        if self.judge is not None:
            j = self.judge
            parts.append(
                f"judge {j.get('model', '?')}: asked {j.get('asked', 0)}, yes {j.get('yes', 0)}, "
                f"no {j.get('no', 0)}, no verdict {j.get('no_verdict', 0) + j.get('errors', 0)}; "
                f"cost ${j.get('cost_usd', 0.0):,.4f}"
            )
        for source, g in self.gold.items():
            parts.append(
                f"source {source}: {g['gold_empty']} empty and {g['gold_unparsed']} unparseable gold answers "
                f"in {g['rows']} math rows"
            )
        if self.isolation:
            parts.append(f"code sandbox: {self.isolation}")
        return Group(*parts)


_VERDICT_COLUMNS = {"math": schema.MATH_VERIFIED, "code": schema.CODE_VERIFIED, "format": schema.FORMAT_OK}


def build_report(
    frame: pl.DataFrame,
    *,
    seconds: float = 0.0,
    workers: int = 0,
    isolation: str | None = None,
    judge: dict[str, Any] | None = None,
    gold: dict[str, dict[str, int]] | None = None,
) -> VerifyReport:
    """Counts of true/false/null/timeout per verifier, overall and per source, from verified rows."""
    import polars as pl

    source = pl.col(schema.SOURCE) if schema.SOURCE in frame.columns else pl.lit("all")
    frame = frame.with_columns(source.fill_null("unknown").cast(pl.String).alias("_source"))
    report = VerifyReport(rows=frame.height, seconds=seconds, workers=workers, isolation=isolation)
    report.counts = _counts(frame)
    report.reasons = reason_counts(frame)
    report.judge, report.gold = judge, gold or {}
    for (name,), part in frame.group_by("_source", maintain_order=True):
        if schema.PROMPT_ID in part.columns and schema.PASS_RATE in part.columns:
            rates = part.group_by(schema.PROMPT_ID).agg(pl.col(schema.PASS_RATE).first())[schema.PASS_RATE]
        else:
            rates = (
                part[schema.PASS_RATE]
                if schema.PASS_RATE in part.columns
                else pl.Series([], dtype=pl.Float64)
            )
        rates = rates.drop_nulls()
        report.by_source[str(name)] = {
            "rows": part.height,
            "verifiers": _counts(part),
            "correct": int(part[schema.CORRECT].fill_null(False).sum())
            if schema.CORRECT in part.columns
            else 0,
            "prompts": int(rates.len()),
            "pass_rate_mean": None if rates.is_empty() else round(float(cast(float, rates.mean())), 4),
            "prompts_all_wrong": int((rates == 0).sum()),
            "prompts_all_right": int((rates == 1).sum()),
        }
    return report


REASONS = ("parsed", "no_answer", "partial_parse", "gold_unparsed", "timeout", "judge")


def reason_counts(frame: pl.DataFrame) -> dict[str, int]:
    """Math rows per verdict_reason, in a fixed order (reasons with no row are left out)."""
    if schema.VERDICT_REASON not in frame.columns:
        return {}
    counts = frame[schema.VERDICT_REASON].drop_nulls().value_counts()
    found = dict(zip(counts[schema.VERDICT_REASON].to_list(), counts["count"].to_list(), strict=True))
    return {r: int(found[r]) for r in (*REASONS, *sorted(set(found) - set(REASONS))) if found.get(r)}


def _counts(frame: pl.DataFrame) -> dict[str, dict[str, int]]:
    import polars as pl

    detail = (
        frame[schema.VERIFY_DETAIL]
        if schema.VERIFY_DETAIL in frame.columns
        else pl.Series([None] * frame.height)
    )
    counts = {}
    for name, column in _VERDICT_COLUMNS.items():
        if column not in frame.columns or frame[column].null_count() == frame.height and name != "math":
            continue
        values = frame[column]
        timed_out = values.is_null() & detail.fill_null("").str.contains(f"{name}: timeout", literal=True)
        counts[name] = {
            "true": int(values.fill_null(False).sum()),
            "false": int((~values.fill_null(True)).sum()),
            "null": int((values.is_null() & ~timed_out).sum()),
            "timeout": int(timed_out.sum()),
        }
    return counts
