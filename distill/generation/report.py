"""The generation stage's report: what one call did and what the run holds, as stats.json's "generate"."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distill.reports import key_value_table

__all__ = ["GenerateReport"]


@dataclass
class GenerateReport:
    """What a generate call did (this call) and what the run holds (all calls)."""

    run: Path
    teacher: str
    prompts: int
    duplicates: int
    requested: int
    written: int
    errors: int
    retries: int
    samples: int
    error_rows: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    elapsed_s: float
    stopped: str | None = None
    failures: str = ""  # the first distinct reasons requests failed, with counts
    finish_reasons: dict[str, int] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    settings: dict[str, Any] = field(default_factory=dict)  # the settings that decide the output

    def summary(self) -> str:
        stop = f"; stopped: {self.stopped} (rerun to resume)" if self.stopped else ""
        stop += f"; failures: {self.failures}" if self.failures else ""
        return (
            f"generate: {self.written:,}/{self.requested:,} new samples ({self.errors:,} errors, "
            f"{self.retries:,} retries) in {self.elapsed_s:.1f}s; run holds {self.samples:,} samples "
            f"({self.error_rows:,} with errors); tokens in {self.prompt_tokens:,} out "
            f"{self.completion_tokens:,}; cost ${self.cost_usd:,.4f}{stop} → {self.run}"
        )

    def table_rows(self) -> list[tuple[str, str]]:
        rows = [
            ("teacher", self.teacher),
            ("prompts", f"{self.prompts:,} ({self.duplicates:,} duplicates dropped)"),
            (
                "this run",
                f"{self.written:,}/{self.requested:,} samples, {self.errors:,} errors, "
                f"{self.retries:,} retries, {self.elapsed_s:.1f}s",
            ),
            ("run total", f"{self.samples:,} samples, {self.error_rows:,} with errors"),
            ("tokens", f"in {self.prompt_tokens:,}  out {self.completion_tokens:,}"),
            ("cost", f"${self.cost_usd:,.4f}"),
            (
                "finish reasons",
                ", ".join(f"{k} {v:,}" for k, v in sorted(self.finish_reasons.items())) or "-",
            ),
        ]
        if self.stopped:
            rows.append(("stopped", f"{self.stopped}: rerun the same command to resume"))
        if self.failures:
            rows.append(("failures", self.failures))
        return rows

    def as_table(self) -> Any:
        return key_value_table(f"generate → {self.run}", self.table_rows())

    def to_stats(self) -> dict[str, Any]:
        return {
            "teacher": self.teacher,
            "settings": self.settings,
            "prompts": self.prompts,
            "duplicates": self.duplicates,
            "samples": self.samples,
            "errors": self.error_rows,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": self.cost_usd,
            "finish_reasons": self.finish_reasons,
            "retries": self.retries,
            "elapsed_s": round(self.elapsed_s, 3),
        }

    @classmethod
    def from_stats(cls, stats: Mapping[str, Any]) -> GenerateReport:
        """What the run holds, from stats.json (the counts of one call are not kept there: 0)."""
        return cls(
            run=Path(stats.get("run") or "."),
            teacher=str(stats.get("teacher") or ""),
            prompts=int(stats.get("prompts") or 0),
            duplicates=int(stats.get("duplicates") or 0),
            requested=0,
            written=0,
            errors=0,
            retries=int(stats.get("retries") or 0),
            samples=int(stats.get("samples") or 0),
            error_rows=int(stats.get("errors") or 0),
            prompt_tokens=int(stats.get("prompt_tokens") or 0),
            completion_tokens=int(stats.get("completion_tokens") or 0),
            cost_usd=float(stats.get("cost_usd") or 0.0),
            elapsed_s=float(stats.get("elapsed_s") or 0.0),
            finish_reasons=dict(stats.get("finish_reasons") or {}),
            settings=dict(stats.get("settings") or {}),
        )
