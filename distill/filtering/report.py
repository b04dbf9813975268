"""The filter stage's report: rows rejected per rule (first failing) and per source, and skipped rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from distill.filtering.config import RULES

__all__ = ["FilterReport"]


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

    def to_stats(self) -> dict[str, Any]:
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

    @classmethod
    def from_stats(cls, stats: Mapping[str, Any]) -> FilterReport:
        """The report recorded in stats.json's "filter" section."""
        return cls(
            rows_in=int(stats.get("rows_in") or 0),
            rows_kept=int(stats.get("rows_kept") or 0),
            rules={str(k): int(v) for k, v in (stats.get("rules") or {}).items()},
            flagged={str(k): int(v) for k, v in (stats.get("flagged") or {}).items()},
            by_source=dict(stats.get("by_source") or {}),
            skipped=dict(stats.get("skipped") or {}),
            seconds=float(stats.get("seconds") or 0.0),
        )

    def contamination_by_method(self) -> str | None:
        """ "exact 3 · ngram 1 · semantic 2 · judge 0" over every benchmark; None without decontamination."""
        benchmarks = (self.decontamination or {}).get("benchmarks") or {}
        totals: dict[str, int] = {}
        for b in benchmarks.values():
            for method, n in (b.get("by_method") or {}).items():
                totals[method] = totals.get(method, 0) + int(n)
        return " · ".join(f"{m} {n:,}" for m, n in totals.items()) if totals else None

    def table_rows(self) -> list[tuple[str, str]]:
        rows = [("rows in", f"{self.rows_in:,}")]
        rows += [(rule, f"{self.rules[rule]:,} rejected") for rule in RULES if self.rules.get(rule)]
        if methods := self.contamination_by_method():
            rows.append(("contaminated, by method", methods))
        rows += [(rule, f"skipped: {why}") for rule, why in self.skipped.items()]
        return [*rows, ("kept", f"{self.rows_kept:,}")]

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
        if methods := self.contamination_by_method():
            table.caption = f"contaminated samples by method: {methods}"
        return table

    def summary(self) -> str:
        top = sorted(self.rules.items(), key=lambda kv: -kv[1])[:3]
        return f"kept {self.rows_kept:,}/{self.rows_in:,}" + "".join(f", {r} {n:,}" for r, n in top)
