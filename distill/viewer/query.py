"""The samples table's state, read from the URL: filters, search, sort and page.

All state lives in the query string, so a view can be shared and the back button works. A value that
does not parse (`correct=maybe`, `pass_min=abc`, `page=-1`, a column the run lacks) is dropped with a
notice shown on the page: a malformed link never becomes a server error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from distill import schema
from distill.viewer.source import RunSource

if TYPE_CHECKING:
    import polars as pl

__all__ = ["CHOICE_FILTERS", "FLAG_FILTERS", "Query", "parse_query"]

# string columns filtered by value; "(none)" matches null, "(any)" any non-null value
CHOICE_FILTERS = (
    schema.SOURCE,
    schema.TEACHER,
    schema.REJECT_REASON,
    schema.LANGUAGE,
    schema.FINISH_REASON,
    schema.CONTAMINATED_BY,
    schema.CONTAMINATION_METHOD,
)
# verdicts: true / false / null
FLAG_FILTERS = (
    schema.CORRECT,
    schema.MATH_VERIFIED,
    schema.CODE_VERIFIED,
    schema.FORMAT_OK,
    schema.COMPLETE,
    schema.KEEP,
)
NONE, ANY = "(none)", "(any)"
PAGE_SIZES = (10, 25, 50, 100, 200)
DEFAULT_SIZE = 50
SORTS = ("", "tokens", "-tokens", "pass_rate", "-pass_rate")
RANGES = {
    "pass_min": (schema.PASS_RATE, float),
    "pass_max": (schema.PASS_RATE, float),
    "tok_min": ("tokens", int),
    "tok_max": ("tokens", int),
}


@dataclass
class Query:
    """The valid part of a samples URL, and a notice per ignored part."""

    choices: dict[str, str] = field(default_factory=dict)
    flags: dict[str, str] = field(default_factory=dict)
    ranges: dict[str, float] = field(default_factory=dict)
    text: str = ""
    page: int = 1
    size: int = DEFAULT_SIZE
    sort: str = ""
    run: str = ""
    notices: list[str] = field(default_factory=list)

    def params(self, **changes: object) -> dict[str, str]:
        """The canonical query parameters, with `changes` applied (None removes a key)."""
        out: dict[str, str] = {"run": self.run} if self.run else {}
        out.update(self.choices)
        out.update(self.flags)
        out.update({k: _fmt(v) for k, v in self.ranges.items()})
        if self.text:
            out["q"] = self.text
        if self.sort:
            out["sort"] = self.sort
        if self.size != DEFAULT_SIZE:
            out["size"] = str(self.size)
        if self.page != 1:
            out["page"] = str(self.page)
        for key, value in changes.items():
            if value is None or value == "":
                out.pop(key, None)
            else:
                out[key] = str(value)
        return out

    def url(self, path: str = "/samples", **changes: object) -> str:
        params = self.params(**changes)
        return f"{path}?{urlencode(params)}" if params else path

    def is_filtered(self) -> bool:
        return bool(self.choices or self.flags or self.ranges or self.text)

    # ── applying it ────────────────────────────────────────────────────────
    def terms(self, source: RunSource) -> dict[str, pl.Expr]:
        """One boolean polars expression per filter, keyed by its column (or range parameter)."""
        import polars as pl

        terms: dict[str, pl.Expr] = {}
        for column, value in self.choices.items():
            col = pl.col(column).cast(pl.String)
            if value == NONE:
                terms[column] = col.is_null()
            elif value == ANY:
                terms[column] = col.is_not_null()
            elif column == schema.CONTAMINATED_BY:  # a benchmark name matches all its items
                terms[column] = ((col == value) | col.str.starts_with(value + ":")).fill_null(False)
            else:
                terms[column] = (col == value).fill_null(False)
        for column, value in self.flags.items():
            col = pl.col(column)
            terms[column] = col.is_null() if value == "null" else col.eq(value == "true").fill_null(False)
        for key, bound in self.ranges.items():
            column = tokens_column(source) if RANGES[key][0] == "tokens" else RANGES[key][0]
            col = pl.col(column)
            terms[key] = (col >= bound if key.endswith("_min") else col <= bound).fill_null(False)
        return terms


def tokens_column(source: RunSource) -> str:
    """The length column: exact token counts when the dataset stage wrote them, else the teacher's usage."""
    return schema.NUM_TOKENS if source.has(schema.NUM_TOKENS) else schema.COMPLETION_TOKENS


def parse_query(raw: dict[str, list[str]], source: RunSource | None) -> Query:
    """A Query from parsed query-string values; bad values are dropped with a notice."""
    q = Query()
    for key, values in raw.items():
        value = values[-1].strip() if values else ""
        if value == "":
            continue
        problem = _apply(q, key, value, source)
        if problem:
            q.notices.append(f"ignored {key}={value[:40]!r}: {problem}")
    return q


def _apply(q: Query, key: str, value: str, source: RunSource | None) -> str | None:
    """Set one parameter on `q`; returns why it was ignored, or None."""
    present = source.columns if source is not None else []
    if key in CHOICE_FILTERS:
        if key not in present:
            return f"this run has no {key} column"
        q.choices[key] = value[:500]
    elif key in FLAG_FILTERS:
        if key not in present:
            return f"this run has no {key} column"
        if value not in ("true", "false", "null"):
            return "expected true, false or null"
        q.flags[key] = value
    elif key in RANGES:
        column, kind = RANGES[key]
        if source is not None and column != "tokens" and column not in present:
            return f"this run has no {column} column"
        if source is not None and column == "tokens" and tokens_column(source) not in present:
            return "this run has no token counts"
        try:
            number = kind(value)
        except ValueError:
            return f"expected {'an integer' if kind is int else 'a number'}"
        if number != number or number in (float("inf"), float("-inf")):
            return "expected a finite number"
        q.ranges[key] = number
    elif key == "q":
        q.text = value[:500]
    elif key == "page":
        if not value.isdigit() or int(value) < 1:
            return "expected a page number from 1"
        q.page = min(int(value), 10**9)
    elif key == "size":
        if not value.isdigit() or int(value) not in PAGE_SIZES:
            return f"expected one of {', '.join(map(str, PAGE_SIZES))}"
        q.size = int(value)
    elif key == "sort":
        if value not in SORTS:
            return f"expected one of {', '.join(s for s in SORTS if s)}"
        q.sort = value
    elif key == "run":
        q.run = value
    else:
        return "unknown parameter"
    return None


def display_order(frame: pl.DataFrame, q: Query, source: RunSource) -> pl.Series | None:
    """Positions in `frame` in the order the query asks for; None for run order (nothing to sort).

    Only the sort key is sorted (stably, nulls last): the text previews of 100,000 rows never move.
    """
    import polars as pl

    column = tokens_column(source) if q.sort.lstrip("-") == "tokens" else schema.PASS_RATE
    if not q.sort or column not in frame.columns:
        return None
    return frame.select(
        pl.arg_sort_by(column, descending=q.sort.startswith("-"), nulls_last=True, maintain_order=True)
    ).to_series()


def page_rows(frame: pl.DataFrame, q: Query, source: RunSource) -> pl.DataFrame:
    """The rows of the query's page, in its order."""
    start = (q.page - 1) * q.size
    order = display_order(frame, q, source)
    return frame.slice(start, q.size) if order is None else frame[order.slice(start, q.size)]


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)
