"""The overview's numbers: verdict counts, the card's stats.json sections, an eval directory's scores."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from distill.viewer.query import FLAG_FILTERS
from distill.viewer.source import EvalSource

if TYPE_CHECKING:
    import polars as pl

__all__ = ["card_numbers", "eval_scores", "verdict_counts"]


def verdict_counts(index: pl.DataFrame) -> list[tuple[str, int, int, int]]:
    """(column, true, false, null) for each verdict column present."""
    out = []
    for column in FLAG_FILTERS:
        if column in index.columns:
            s = index[column]  # Boolean: RunSource casts the index's columns
            out.append((column, int(s.sum()), int((~s).sum()), s.null_count()))
    return out


def card_numbers(stats: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    """The scalar numbers of each stats.json section (what the card's tables show)."""
    out = []
    for section, values in stats.items():
        if isinstance(values, dict):
            scalars = [(k, _number(v)) for k, v in values.items() if isinstance(v, int | float | str | bool)]
            if scalars:
                out.append((section, scalars))
    return out


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:,.4g}"


def eval_scores(source: EvalSource) -> dict[str, Any]:
    rows = []
    for name, result in source.results.get("benchmarks", {}).items():
        metrics = [(k, v) for k, v in result.items() if isinstance(v, dict) and "mean" in v]
        rows.append(
            {
                "name": name,
                "linked": name in source.runs,
                "samples": result.get("samples"),
                "problems": result.get("problems"),
                "k": result.get("k"),
                "metrics": [
                    (k, _number(v["mean"] * 100), _number(v.get("stderr", 0) * 100)) for k, v in metrics
                ],
            }
        )
    return {"model": source.results.get("model"), "rows": rows, "root": source.root}
