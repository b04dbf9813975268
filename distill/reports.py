"""The one shape of a stage's report: a line, a table, and its stats.json section, both ways.

Every stage returns a report that implements `StageReport`, so the CLI prints any of them the same
way, the pipeline records `summary()` without knowing which stage ran, and the card reads stats.json
back through `from_stats` instead of re-parsing raw dicts:

    report.summary()          one line (the pipeline's table, --quiet, logs)
    report.table_rows()       (label, value) pairs: the CLI's table
    report.to_stats()         the section the stage writes to stats.json
    Report.from_stats(d)      the report again from that section (missing keys → defaults)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol, TypeVar, runtime_checkable

__all__ = ["StageReport", "key_value_table"]

R = TypeVar("R", bound="StageReport")


@runtime_checkable
class StageReport(Protocol):
    """What every stage returns."""

    def summary(self) -> str: ...

    def table_rows(self) -> list[tuple[str, str]]: ...

    def to_stats(self) -> dict[str, Any]: ...

    @classmethod
    def from_stats(cls: type[R], stats: Mapping[str, Any]) -> R: ...


def key_value_table(title: str, rows: Iterable[tuple[str, str]]) -> Any:
    """A two-column rich table (label, value) with no header: how the CLI shows a report's rows."""
    from rich.table import Table

    table = Table(title=title, show_header=False)
    for key, value in rows:
        table.add_row(key, value)
    return table
