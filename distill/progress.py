"""Progress reporting for long stages: a tiny protocol, a silent default and a rich live bar.

Library code never prints: a stage takes an optional `progress` and calls it; the CLI passes a
`RichProgress` (rate, ETA and the stage's own counters such as tokens/s or cost) or, with
`--quiet`, nothing.
"""

from __future__ import annotations

import time
from typing import Any, Protocol


class Progress(Protocol):
    def start(self, description: str, total: int | None) -> None: ...

    def advance(self, n: int = 1, **fields: Any) -> None:
        """Count `n` finished items and refresh the extra fields shown beside the bar."""

    def finish(self) -> None: ...


class NullProgress:
    """Reports nothing."""

    def start(self, description: str, total: int | None) -> None:
        pass

    def advance(self, n: int = 1, **fields: Any) -> None:
        pass

    def finish(self) -> None:
        pass


class RichProgress:
    """A rich live bar on stderr: done/total, rate, ETA, and `fields` as `key value` pairs."""

    def __init__(self, console: Any = None, min_interval: float = 0.1) -> None:
        from rich.console import Console

        self._console = console or Console(stderr=True)
        self._bar: Any = None
        self._task: Any = None
        self._fields: dict[str, Any] = {}
        self._min_interval = min_interval
        self._last = 0.0

    def start(self, description: str, total: int | None) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[extra]}"),
            console=self._console,
            transient=False,
        )
        self._bar.start()
        self._fields = {}
        self._task = self._bar.add_task(description, total=total, rate="", extra="")
        self._started = time.monotonic()
        self._done = 0

    def advance(self, n: int = 1, **fields: Any) -> None:
        if self._bar is None:
            return
        self._done += n
        self._fields.update(fields)
        now = time.monotonic()
        if now - self._last < self._min_interval:
            self._bar.advance(self._task, n)
            return
        self._last = now
        rate = self._done / max(now - self._started, 1e-9)
        extra = "  ".join(f"{k} {_fmt(v)}" for k, v in self._fields.items())
        self._bar.update(self._task, advance=n, rate=f"{rate:,.1f}/s", extra=extra)

    def finish(self) -> None:
        if self._bar is not None:
            extra = "  ".join(f"{k} {_fmt(v)}" for k, v in self._fields.items())
            self._bar.update(self._task, extra=extra)
            self._bar.stop()
            self._bar = None


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
