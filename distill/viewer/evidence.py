"""The evidence behind a rejection: a duplicate beside its representative, a contaminated sample
beside the benchmark item it matched. Shared spans are marked by `text.shared_spans`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distill import schema
from distill.viewer.source import ROW, TEXT_COLUMNS, NotFound, RunSource, find_row
from distill.viewer.text import shared_spans

__all__ = ["contamination_page", "duplicate_page"]


def duplicate_page(run: RunSource, prompt_id: str, sample: str) -> dict[str, Any]:
    """A sample beside the one its `dup_of` names, with the spans they share marked."""
    row = find_row(run, prompt_id, sample)
    target = row.get(schema.DUP_OF)
    if not target:
        raise NotFound("this sample is not marked as a duplicate (dup_of is empty)")
    other_id, _, other_sample = str(target).partition("/")
    if other_sample:  # a trace duplicate: "prompt_id/sample"
        other, field_ = find_row(run, other_id, other_sample), "trace"
        left_text = _trace(row)
        right_text = _trace(other)
    else:  # a prompt duplicate: the prompt's first sample stands for it
        other, field_ = _first_of_prompt(run, other_id), "prompt"
        left_text, right_text = row.get(schema.PROMPT) or "", other.get(schema.PROMPT) or ""
    left, right = shared_spans(left_text, right_text)
    return {
        "run": run,
        "notices": list(run.notices),
        "row": row,
        "other": other,
        "field": field_,
        "left": left,
        "right": right,
        "target": target,
    }


def contamination_page(run: RunSource, prompt_id: str, sample: str) -> dict[str, Any]:
    """A contaminated sample beside the benchmark item it matched, with the shared spans marked."""
    row = find_row(run, prompt_id, sample)
    label = row.get(schema.CONTAMINATED_BY)
    if not label:
        raise NotFound("this sample is not marked as contaminated (contaminated_by is empty)")
    bench, _, item_id = str(label).partition(":")
    item, why = _benchmark_item(run, bench, item_id)
    sides = []
    if item is not None:
        for column in TEXT_COLUMNS:
            left, right = shared_spans(row.get(column) or "", item)
            if any(shared for _, shared in left):
                sides.append((column, left, right))
    return {
        "run": run,
        "notices": list(run.notices),
        "row": row,
        "label": label,
        "benchmark": bench,
        "item_id": item_id,
        "item": item,
        "missing": why,
        "sides": sides,
        # the filter's own evidence (runs filtered before these columns existed have none)
        "method": row.get(schema.CONTAMINATION_METHOD),
        "score": row.get(schema.CONTAMINATION_SCORE),
        "shared_runs": [s for s in str(row.get(schema.CONTAMINATION_SPANS) or "").split(" | ") if s.strip()],
    }


def _first_of_prompt(run: RunSource, prompt_id: str) -> dict[str, Any]:
    import polars as pl

    hits = run.index.filter(pl.col(schema.PROMPT_ID) == prompt_id)
    if not hits.height:
        raise NotFound(f"no prompt {prompt_id!r} in this run")
    return run.rows([min(hits[ROW].to_list())])[0]


def _trace(row: dict[str, Any]) -> str:
    return "\n\n".join(t for t in (row.get(schema.REASONING), row.get(schema.ANSWER_TEXT)) if t)


def _benchmark_item(run: RunSource, bench: str, item_id: str) -> tuple[str | None, str | None]:
    """The benchmark item's text from the local file the filter stage used, or why it cannot be shown."""
    from distill.errors import DistillError
    from distill.evaluation.benchmarks import load_benchmark

    settings = run.run_settings().get("filter")
    paths = settings.get("benchmark_paths", {}) if isinstance(settings, dict) else {}
    path = paths.get(bench) if isinstance(paths, dict) else None
    if not path:
        return None, f"run.yaml names no local file for {bench} (filter.benchmark_paths)"
    candidates = [Path(path)] if Path(path).is_absolute() else [Path.cwd() / path, run.root / path]
    file = next((c for c in candidates if c.is_file()), None)
    if file is None:
        return None, f"the benchmark file {path} is not here"
    try:
        items = load_benchmark(bench, file).rows
    except DistillError as e:
        return None, str(e)
    import polars as pl

    hit = items.filter(pl.col("id").cast(pl.String) == item_id)
    if not hit.height:
        return None, f"{file} has no item {item_id!r}"
    answer = hit["answer"][0]
    return str(hit["problem"][0]) + (f"\n\nAnswer: {answer}" if answer else ""), None
