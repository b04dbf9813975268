"""The verify stage's report: true/false/null/timeout counts per verifier, overall and per source.

Built from verified rows alone (`build_report`), so `distill verify RUN --report` can print it
again from data/all, and stored as stats.json's "verify" section.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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

    def summary(self) -> str:
        parts = [f"{name} {c['true']}/{sum(c.values())} true" for name, c in self.counts.items()]
        line = f"verified {self.rows} rows: " + ", ".join(parts) if parts else f"verified {self.rows} rows"
        return line + (" (already verified with these settings; --force redoes it)" if self.skipped else "")

    def table_rows(self) -> list[tuple[str, str]]:
        return [
            (name, ", ".join(f"{k} {c[k]}" for k in ("true", "false", "null", "timeout")))
            for name, c in self.counts.items()
        ]

    def to_stats(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "verifiers": self.counts,
            "by_source": self.by_source,
            "isolation": self.isolation,
            "seconds": round(self.seconds, 3),
            "workers": self.workers,
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
        if self.isolation:
            parts.append(f"code sandbox: {self.isolation}")
        return Group(*parts)


_VERDICT_COLUMNS = {"math": schema.MATH_VERIFIED, "code": schema.CODE_VERIFIED, "format": schema.FORMAT_OK}


def build_report(
    frame: pl.DataFrame, *, seconds: float = 0.0, workers: int = 0, isolation: str | None = None
) -> VerifyReport:
    """Counts of true/false/null/timeout per verifier, overall and per source, from verified rows."""
    import polars as pl

    source = pl.col(schema.SOURCE) if schema.SOURCE in frame.columns else pl.lit("all")
    frame = frame.with_columns(source.fill_null("unknown").cast(pl.String).alias("_source"))
    report = VerifyReport(rows=frame.height, seconds=seconds, workers=workers, isolation=isolation)
    report.counts = _counts(frame)
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
            "pass_rate_mean": None if rates.is_empty() else round(float(rates.mean()), 4),
            "prompts_all_wrong": int((rates == 0).sum()),
            "prompts_all_right": int((rates == 1).sum()),
        }
    return report


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


