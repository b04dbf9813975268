"""One function per page: read the source, return the template's context. No HTML is built here.

Every value handed to a template is plain data (strings, numbers, lists); the templates escape all of
it. Only `text.highlight` produces markup, from Pygments' escaping formatter.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distill import schema
from distill.viewer.evidence import contamination_page, duplicate_page
from distill.viewer.overview import card_numbers, eval_scores, verdict_counts
from distill.viewer.query import (
    CHOICE_FILTERS,
    FLAG_FILTERS,
    NONE,
    Query,
    display_order,
    page_rows,
    tokens_column,
)
from distill.viewer.source import PREVIEW, ROW, TEXT_COLUMNS, EvalSource, NotFound, RunSource, find_row
from distill.viewer.text import segments

if TYPE_CHECKING:
    import polars as pl

__all__ = ["Pages"]

VERIFIER_COLUMNS = (
    schema.CORRECT,
    schema.MATH_VERIFIED,
    schema.CODE_VERIFIED,
    schema.FORMAT_OK,
    schema.COMPLETE,
    schema.PASS_RATE,
    schema.VERIFY_DETAIL,
)
SHOWN_ELSEWHERE = {
    *TEXT_COLUMNS,
    *VERIFIER_COLUMNS,
    *schema.FILTER_COLUMNS,
    schema.MESSAGES,
    schema.CODE_RESULTS,
    schema.PROMPT_ID,
    schema.SAMPLE,
    ROW,
}
SEARCH_CACHE = 16
MAX_CELL_CHARS = 4000


@dataclass
class Pages:
    """The viewer's pages over one opened run or eval directory."""

    source: RunSource | EvalSource
    _searches: OrderedDict[tuple[str, str], pl.Series] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)  # the server answers from several threads

    # ── which run ──────────────────────────────────────────────────────────
    def pick(self, name: str) -> tuple[RunSource, list[str]]:
        """The run a URL's `run=` names (an eval directory holds one per benchmark), with a notice if unknown."""
        if isinstance(self.source, RunSource):
            return self.source, ([f"ignored run={name[:40]!r}: this is a single run"] if name else [])
        runs = self.source.runs
        if name in runs:
            return runs[name], []
        first = next(iter(runs))
        return runs[first], (
            [f"ignored run={name[:40]!r}: no such benchmark; showing {first}"] if name else []
        )

    def run_names(self) -> list[str]:
        return list(self.source.runs) if isinstance(self.source, EvalSource) else []

    # ── overview ───────────────────────────────────────────────────────────
    def overview(self, run_name: str) -> dict[str, Any]:
        import polars as pl

        if isinstance(self.source, EvalSource) and not run_name:
            return {"eval": eval_scores(self.source), "notices": list(self.source.notices)}
        run, notices = self.pick(run_name)
        index = run.index
        by_rule: list[tuple[str, int]] = []
        sources: list[str] = []
        table: dict[str, dict[str, int]] = {}
        if schema.REJECT_REASON in index.columns:
            src = (
                pl.col(schema.SOURCE).cast(pl.String).fill_null("(none)")
                if schema.SOURCE in index.columns
                else pl.lit("all")
            )
            counts = index.group_by(src.alias("s"), pl.col(schema.REJECT_REASON).alias("r")).len()
            for s, r, n in counts.iter_rows():
                table.setdefault(r or "", {})[s] = int(n)
            sources = sorted({s for row in table.values() for s in row})
            by_rule = sorted(((r, sum(v.values())) for r, v in table.items() if r), key=lambda x: -x[1])
        return {
            "run": run,
            "samples": run.size,
            "notices": [*run.notices, *notices],
            "prompts": index[schema.PROMPT_ID].n_unique() if schema.PROMPT_ID in index.columns else None,
            "kept": int(index[schema.KEEP].sum()) if schema.KEEP in index.columns else None,
            "verdicts": verdict_counts(index),
            "unsolved": _unsolved(index),
            "by_rule": by_rule,
            "sources": sources,
            "by_source": table,
            "numbers": card_numbers(run.stats),
            "plots": run.plots(),
        }

    # ── samples table ──────────────────────────────────────────────────────
    def samples(self, q: Query) -> dict[str, Any]:
        run, notices = self.pick(q.run)
        frame, masks, matched = self._match(run, q)
        pages = max(1, -(-matched.height // q.size))
        if q.page > pages:
            notices.append(f"page {q.page} is past the last page ({pages}); showing page {pages}")
            q.page = pages
        page = page_rows(matched, q, run)
        facets = {
            c: _facet(frame.get_column(c), _all(masks, skip=c))
            for c in (*CHOICE_FILTERS, *FLAG_FILTERS)
            if run.has(c)
        }
        return {
            "run": run,
            "q": q,
            "notices": [*run.notices, *notices, *q.notices],
            "total": run.size,
            "matched": matched.height,
            "pages": pages,
            "rows": page.to_dicts(),
            "facets": facets,
            "tokens": tokens_column(run),
            "has": set(run.columns) | {PREVIEW},
        }

    def _match(self, run: RunSource, q: Query) -> tuple[pl.DataFrame, pl.DataFrame | None, pl.DataFrame]:
        """(the searched index, one mask per filter, the matching rows)."""
        frame = run.index
        if q.text:
            frame = frame.filter(frame[ROW].is_in(self._search(run, q.text).implode()))
        # Each filter's mask is computed once; a facet's counts use every mask but its own column's,
        # so the counts beside an option say how many samples choosing it would leave.
        terms = q.terms(run)
        masks = frame.select(**terms) if terms else None
        mask = _all(masks, skip=None)
        return frame, masks, frame if mask is None else frame.filter(mask)

    def neighbours(self, run: RunSource, q: Query, position: int) -> dict[str, Any] | None:
        """Where a sample sits in the list `q` describes: its rank, the previous and next samples, its page."""
        _, _, matched = self._match(run, q)
        order = display_order(matched, q, run)
        rows = matched.select(ROW, schema.PROMPT_ID, schema.SAMPLE)
        if order is not None:
            rows = rows[order]
        hits = (rows.get_column(ROW) == position).arg_true()
        if not hits.len():
            return None
        at = int(hits[0])

        def key(i: int) -> tuple[str, int] | None:
            return (rows[schema.PROMPT_ID][i], int(rows[schema.SAMPLE][i])) if 0 <= i < rows.height else None

        return {
            "rank": at + 1,
            "of": rows.height,
            "prev": key(at - 1),
            "next": key(at + 1),
            "page": at // q.size + 1,
        }

    def _search(self, run: RunSource, text: str) -> pl.Series:
        key = (run.label, text)
        with self._lock:
            hit = self._searches.get(key)
        if hit is None:
            hit = run.search(text)
            with self._lock:
                self._searches[key] = hit
                while len(self._searches) > SEARCH_CACHE:
                    self._searches.popitem(last=False)
        return hit

    # ── one sample and its evidence ────────────────────────────────────────
    def sample(self, q: Query, prompt_id: str, sample: str) -> dict[str, Any]:
        """One sample; `q` is the list it was opened from (previous / next follow its filters and order)."""
        run, notices = self.pick(q.run)
        row = find_row(run, prompt_id, sample)
        gold_column = _gold_column(run)
        results, results_error = _code_results(row.get(schema.CODE_RESULTS))
        reasoning = row.get(schema.REASONING) or ""
        other = [(k, _cell(v)) for k, v in row.items() if k not in SHOWN_ELSEWHERE and k != gold_column]
        return {
            "run": run,
            "row": row,
            "notices": [*run.notices, *notices, *q.notices],
            "q": q,
            "nav": self.neighbours(run, q, row[ROW]),
            "prompt": segments(row.get(schema.PROMPT)),
            "reasoning": segments(reasoning),
            "reasoning_chars": len(reasoning),
            "answer": segments(row.get(schema.ANSWER_TEXT)),
            "gold_column": gold_column,
            "gold": _cell(row.get(gold_column)) if gold_column in row else None,
            "verifier": [(c, row[c]) for c in VERIFIER_COLUMNS if c in row],
            "filters": [(c, row[c]) for c in schema.FILTER_COLUMNS if c in row],
            "code_results": results,
            "code_results_raw": results_error,
            "other": other,
            "tokens": row.get(tokens_column(run)),
        }

    def prompt(self, run_name: str, prompt_id: str) -> dict[str, Any]:
        import polars as pl

        run, notices = self.pick(run_name)
        if schema.PROMPT_ID not in run.index.columns:
            raise NotFound("this run has no prompt_id column")
        hits = run.index.filter(pl.col(schema.PROMPT_ID) == prompt_id).sort(schema.SAMPLE)
        if not hits.height:
            raise NotFound(f"no prompt {prompt_id!r} in this run")
        rows = run.rows(hits[ROW].to_list(), [schema.PROMPT, schema.ANSWER_TEXT, schema.REASONING])
        for row, short in zip(rows, hits.to_dicts(), strict=True):
            row.update(short)
            row["reasoning_chars"] = len(row.pop(schema.REASONING, None) or "")
        correct = hits[schema.CORRECT] if schema.CORRECT in hits.columns else None
        return {
            "run": run,
            "notices": [*run.notices, *notices],
            "prompt_id": prompt_id,
            "rows": rows,
            "prompt": segments(rows[0].get(schema.PROMPT)),
            "tokens": tokens_column(run),
            "pass_rate": None
            if correct is None or correct.null_count() == len(correct)
            else correct.sum() / (len(correct) - correct.null_count()),
            "solved": None if correct is None else int(correct.sum()),
        }

    def duplicate(self, run_name: str, prompt_id: str, sample: str) -> dict[str, Any]:
        run, notices = self.pick(run_name)
        page = duplicate_page(run, prompt_id, sample)
        return {**page, "notices": [*page["notices"], *notices]}

    def contamination(self, run_name: str, prompt_id: str, sample: str) -> dict[str, Any]:
        run, notices = self.pick(run_name)
        page = contamination_page(run, prompt_id, sample)
        return {**page, "notices": [*page["notices"], *notices]}

    def plot(self, run_name: str, name: str) -> Path:
        run, _ = self.pick(run_name)
        if name not in run.plots():  # only names listed from the folder: no path reaches outside it
            raise NotFound(f"no plot {name!r}")
        return run.run.plots / name


# ── helpers ────────────────────────────────────────────────────────────────
def _all(masks: pl.DataFrame | None, *, skip: str | None) -> pl.Series | None:
    """The AND of the filter masks, leaving out `skip`'s; None when nothing is filtered."""
    kept = [] if masks is None else [masks.get_column(k) for k in masks.columns if k != skip]
    if not kept:
        return None
    out = kept[0]
    for mask in kept[1:]:
        out = out & mask
    return out


def _facet(column: pl.Series, mask: pl.Series | None) -> list[tuple[str, int]]:
    """Values of `column` where `mask` holds, with their counts, most frequent first."""
    import polars as pl

    values = (column if mask is None else column.filter(mask)).cast(pl.String)
    if column.name == schema.CONTAMINATED_BY:  # one option per benchmark, not per item
        values = values.str.split(":").list.first()
    counts = values.value_counts(sort=True, name="n").head(200)
    missing = "null" if column.name in FLAG_FILTERS else NONE
    return [(missing if v is None else str(v), int(n)) for v, n in counts.iter_rows()]


def _unsolved(index: pl.DataFrame) -> tuple[int, int] | None:
    """(prompts, samples) of the prompts no sample of which was verified correct."""
    import polars as pl

    if schema.PASS_RATE not in index.columns:
        return None
    rows = index.filter(pl.col(schema.PASS_RATE) == 0)
    return rows[schema.PROMPT_ID].n_unique(), rows.height


def _gold_column(run: RunSource) -> str:
    from distill.verification.stage import VerifyConfig

    configured = run.run_settings().get("verify")
    if isinstance(configured, dict) and isinstance(configured.get("gold_column"), str):
        return configured["gold_column"]
    return VerifyConfig.model_fields["gold_column"].default


def _code_results(raw: Any) -> tuple[dict[str, Any] | None, str | None]:
    """The sandbox's per-test results, or (None, the raw text) when they do not parse."""
    if not raw:
        return None, None
    try:
        data = json.loads(raw)
    except (TypeError, ValueError):
        return None, _cell(raw)
    if not isinstance(data, dict):
        return None, _cell(raw)
    tests = data.get("tests")
    data["tests"] = [t for t in tests if isinstance(t, dict)] if isinstance(tests, list) else []
    return data, None


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= MAX_CELL_CHARS else text[:MAX_CELL_CHARS] + f"… ({len(text):,} chars)"
