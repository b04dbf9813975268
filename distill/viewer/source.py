"""What the viewer reads from a run: a small in-memory index of verdicts, and rows fetched on demand.

Opening a run reads only the short columns (ids, verdicts, lengths, a prompt preview), so a run with
gigabytes of reasoning opens in about a second; filtering, counting and paging then work on that index
in memory. The text of a sample is read from the one row group that holds it, when it is shown.

Nothing here writes. `RunDir.shard_files` may finish an interrupted swap (a rename), so the shards are
listed here by globbing instead; when `data/all` is missing but the previous complete shards survive in
`data/.all.old`, those are read, and the page says so.
"""

from __future__ import annotations

import bisect
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distill import schema
from distill.errors import InputError, StageError
from distill.run import RunDir

if TYPE_CHECKING:
    import polars as pl

__all__ = ["ROW", "EvalSource", "NotFound", "RunSource", "find_row", "open_source"]

log = logging.getLogger(__name__)

ROW = "_row"  # the sample's position in the run (shards in name order), the index's key to its text
PREVIEW = "_preview"
PREVIEW_CHARS = 160
TEXT_COLUMNS = (schema.PROMPT, schema.REASONING, schema.ANSWER_TEXT)
# Short columns kept in memory: everything a filter, a facet or the samples table needs, with the type
# each is read as (a column that is null throughout may be stored as Null, a source as Categorical).
INDEX_COLUMNS = {
    **dict.fromkeys(
        (
            schema.PROMPT_ID,
            schema.SOURCE,
            schema.TEACHER,
            schema.FINISH_REASON,
            schema.ERROR,
            schema.REJECT_REASON,
            schema.LANGUAGE,
            schema.CONTAMINATED_BY,
            schema.CONTAMINATION_METHOD,
            schema.DUP_OF,
        ),
        "str",
    ),
    **dict.fromkeys(
        (
            schema.COMPLETE,
            schema.CORRECT,
            schema.MATH_VERIFIED,
            schema.CODE_VERIFIED,
            schema.FORMAT_OK,
            schema.KEEP,
        ),
        "bool",
    ),
    **dict.fromkeys((schema.SAMPLE, schema.NUM_TOKENS, schema.COMPLETION_TOKENS), "int"),
    schema.PASS_RATE: "float",
}


class NotFound(Exception):
    """The page names a sample, prompt or file that is not there (rendered as a 404 page)."""


@dataclass(frozen=True)
class _Shard:
    path: Path
    start: int  # ROW of its first row
    group_starts: tuple[int, ...]  # ROW of each row group's first row


@dataclass
class RunSource:
    """One run directory opened for reading: its index, its shards and what the page should warn about."""

    root: Path
    label: str = ""
    notices: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        import polars as pl
        import pyarrow.parquet as pq

        run = RunDir(self.root)
        self.run = run
        files = self._complete_shards(run)
        shards, start = [], 0
        for path in files:
            try:
                meta = pq.read_metadata(path)
            except (OSError, ValueError) as e:  # a shard cut short: skip it, say so
                self.notices.append(f"{path.name} is unreadable ({type(e).__name__}); its rows are not shown")
                continue
            groups, at = [], start
            for i in range(meta.num_row_groups):
                groups.append(at)
                at += meta.row_group(i).num_rows
            shards.append(_Shard(path, start, tuple(groups)))
            start += meta.num_rows
        if not shards:
            raise StageError(
                f"{self.root} is not a readable run: no shard of {run.config_dir('all')} can be read"
            )
        self.shards = shards
        self.columns: list[str] = pq.read_schema(shards[0].path).names
        types = {"str": pl.String, "bool": pl.Boolean, "int": pl.Int64, "float": pl.Float64}
        wanted = [
            pl.col(c).cast(types[t], strict=False) for c, t in INDEX_COLUMNS.items() if c in self.columns
        ]
        preview = (
            [pl.col(schema.PROMPT).cast(pl.String).str.slice(0, PREVIEW_CHARS).alias(PREVIEW)]
            if schema.PROMPT in self.columns
            else [pl.lit("", dtype=pl.String).alias(PREVIEW)]
        )
        self.index: pl.DataFrame = (
            pl.scan_parquet([str(s.path) for s in shards], row_index_name=ROW)
            .select(ROW, *wanted, *preview)
            .collect()
        )
        self.stats: dict[str, Any] = _read_json(run.stats)

    # ── opening ────────────────────────────────────────────────────────────
    def _complete_shards(self, run: RunDir) -> list[Path]:
        folder = run.config_dir("all")
        old = run.data / ".all.old"  # RunDir's swap keeps the previous shards here between two renames
        if not folder.is_dir() and old.is_dir():
            self.notices.append("data/all is being replaced: showing the previous complete shards")
            folder = old
        files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
        if not files:
            if run.store.exists():
                raise StageError(
                    f"{self.root}: generation has not written data/all yet (samples are still in "
                    f"{run.store.relative_to(self.root)}); wait for the generate stage to finish"
                )
            raise StageError(f"{self.root} is not a run: {folder} holds no Parquet shards")
        if any(run.data.glob(".all.new-*")):
            self.notices.append("a stage is writing this run: showing the last complete shards of data/all")
        elif run.store.exists() and run.store.stat().st_mtime > max(f.stat().st_mtime for f in files):
            self.notices.append(
                "generations/ is newer than data/all (a stage may still be running): "
                "showing the last complete shards"
            )
        return files

    # ── reading ────────────────────────────────────────────────────────────
    @property
    def size(self) -> int:
        return self.index.height

    def has(self, column: str) -> bool:
        return column in self.columns

    def position(self, prompt_id: str, sample: int) -> int | None:
        """The ROW of (prompt_id, sample), or None."""
        import polars as pl

        hit = self.index.filter((pl.col(schema.PROMPT_ID) == prompt_id) & (pl.col(schema.SAMPLE) == sample))
        return int(hit[ROW][0]) if hit.height else None

    def rows(self, positions: list[int], columns: list[str] | None = None) -> list[dict[str, Any]]:
        """Full rows (every column unless `columns`) at these ROWs, in that order; each row group is read once."""
        import pyarrow.parquet as pq

        wanted = None if columns is None else [c for c in columns if c in self.columns]
        by_group: dict[tuple[int, int], list[int]] = {}
        for pos in positions:
            s = bisect.bisect_right([sh.start for sh in self.shards], pos) - 1
            if s < 0 or pos >= self.size:
                continue
            g = bisect.bisect_right(self.shards[s].group_starts, pos) - 1
            by_group.setdefault((s, g), []).append(pos)
        found: dict[int, dict[str, Any]] = {}
        for (s, g), wanted_rows in by_group.items():
            shard = self.shards[s]
            with open(shard.path, "rb") as f:  # read-only, closed at once: the viewer holds no files open
                table = pq.ParquetFile(f).read_row_group(g, columns=wanted)
                first = shard.group_starts[g]
                picked = table.take([p - first for p in wanted_rows]).to_pylist()
            for pos, row in zip(wanted_rows, picked, strict=True):
                found[pos] = {ROW: pos, **row}
        return [found[p] for p in positions if p in found]

    def row(self, prompt_id: str, sample: int) -> dict[str, Any] | None:
        pos = self.position(prompt_id, sample)
        return self.rows([pos])[0] if pos is not None else None

    def search(self, text: str) -> pl.Series:
        """ROWs whose prompt, reasoning or answer contains `text` (case-insensitive, literal)."""
        import re

        import polars as pl

        pattern = "(?i)" + re.escape(text)
        present = [c for c in TEXT_COLUMNS if c in self.columns]
        if not present:
            return pl.Series(ROW, [], dtype=pl.UInt32)
        hit = pl.any_horizontal(
            [pl.col(c).cast(pl.String).str.contains(pattern).fill_null(False) for c in present]
        )
        return (
            pl.scan_parquet([str(s.path) for s in self.shards], row_index_name=ROW)
            .filter(hit)
            .select(ROW)
            .collect()[ROW]
        )

    def plots(self) -> list[str]:
        """File names of the card's PNG plots."""
        folder = self.run.plots
        return sorted(p.name for p in folder.glob("*.png")) if folder.is_dir() else []

    def run_settings(self) -> dict[str, Any]:
        """RUN/run.yaml as a mapping ({} when absent or unreadable)."""
        import yaml

        try:
            data = yaml.safe_load(self.run.run_yaml.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            return {}
        return data if isinstance(data, dict) else {}


@dataclass
class EvalSource:
    """An evaluation directory: results.json and one run per benchmark."""

    root: Path
    results: dict[str, Any]
    runs: dict[str, RunSource]
    notices: list[str] = field(default_factory=list)


def open_source(root: Path) -> RunSource | EvalSource:
    """A run or an eval directory; a one-line StageError/InputError says what is missing otherwise."""
    root = Path(root)
    if not root.is_dir():
        raise InputError("no such folder", path=root)
    if not (root / "data").is_dir():
        results = root / "results.json"
        benchmarks = sorted(p.parent.parent.name for p in root.glob("*/data/all"))
        if results.is_file() or benchmarks:
            return _open_eval(root, results, benchmarks)
        raise StageError(f"{root} is not a run: it has no data/all/ (nor results.json of an eval directory)")
    return RunSource(root)


def _open_eval(root: Path, results: Path, benchmarks: list[str]) -> EvalSource:
    data = _read_json(results)
    notices = (
        [] if results.is_file() else ["results.json is not written yet (the evaluation may still be running)"]
    )
    runs: dict[str, RunSource] = {}
    for name in sorted({*data.get("benchmarks", {}), *benchmarks}):
        try:
            runs[name] = RunSource(root / name, label=name)
        except StageError as e:
            notices.append(f"{name}: {e}")
    if not runs:
        raise StageError(
            f"{root} is an eval directory with no readable benchmark runs "
            f"(expected {root}/<benchmark>/data/all/*.parquet)"
        )
    return EvalSource(root, data, runs, notices)


def find_row(run: RunSource, prompt_id: str, sample: str) -> dict[str, Any]:
    """The full row of (prompt_id, sample), or NotFound (a 404 page, never an error)."""
    if not sample.lstrip("-").isdigit():
        raise NotFound(f"sample {sample[:40]!r} is not a number")
    row = run.row(prompt_id, int(sample))
    if row is None:
        raise NotFound(f"no sample {prompt_id[:40]}/{sample} in this run")
    return row


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
