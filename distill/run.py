"""The run directory: the only code that knows where a run's files live (DESIGN.md).

    RUN/
      run.yaml            the resolved recipe, secrets stripped
      manifest.json       which stages finished, with which settings (written last by each stage)
      generations/        the crash-safe store of raw samples
      data/all/           every sample with verdict and filter columns (Parquet shards)
      data/sft/           kept rows only, TRL-ready
      README.md           the data card
      stats.json, plots/  numbers and pictures behind the card
      judge/              the crash-safe stores of LLM-judge verdicts
      logs/               server and stage logs

Every write is atomic (temporary file, then `os.replace`), so a crash never leaves a file that looks
complete but is not.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distill import schema
from distill.errors import StageError

if TYPE_CHECKING:
    import polars as pl

SHARD_BYTES = 400 * 1024**2  # ≈ the Hub's advice of 200–500 MB per Parquet file
ROW_GROUP_BYTES = 64 * 1024**2  # small enough to stream, large enough to compress well
CONFIGS = ("all", "sft")


class RunDir:
    """A run's folder, with a property per path and atomic writers."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"

    # ── paths ──────────────────────────────────────────────────────────────
    @property
    def run_yaml(self) -> Path:
        return self.root / "run.yaml"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def generations(self) -> Path:
        return self.root / "generations"

    @property
    def store(self) -> Path:
        return self.generations / "store.sqlite"

    @property
    def data(self) -> Path:
        return self.root / "data"

    def config_dir(self, config: str = "all") -> Path:
        return self.data / config

    @property
    def card(self) -> Path:
        return self.root / "README.md"

    @property
    def stats(self) -> Path:
        return self.root / "stats.json"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def judge(self) -> Path:
        """Stores of LLM-judge requests, one folder per judge prompt (distill/judge.py)."""
        return self.root / "judge"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def student(self) -> Path:
        """The student `distill run` trains, unless the recipe's sft.output_dir puts it elsewhere."""
        return self.root / "student"

    @property
    def student_base(self) -> Path:
        """The demo's tiny random student before training."""
        return self.root / "student-base"

    @property
    def evals(self) -> Path:
        """Where `distill run` evaluates the student (an EVALDIR, one run folder per benchmark)."""
        return self.root / "eval"

    # An EVALDIR is a run folder too: its settings and results, and each benchmark's prompt file.
    @property
    def eval_settings(self) -> Path:
        return self.root / "eval.yaml"

    @property
    def results_json(self) -> Path:
        return self.root / "results.json"

    @property
    def results_md(self) -> Path:
        return self.root / "results.md"

    def benchmark(self, name: str) -> RunDir:
        """EVALDIR/<benchmark>: the run folder of one benchmark of an evaluation."""
        return RunDir(self.root / name)

    @property
    def prompts_file(self) -> Path:
        """The prompts a benchmark's run was generated from (written by the evaluation)."""
        return self.root / "prompts.jsonl"

    @property
    def lock(self) -> Path:
        """Held (flock) by the process running stages on this run, so two runs never interleave."""
        return self.root / ".lock"

    def ensure(self) -> RunDir:
        """Create the run folder and its sub-folders; returns self."""
        for folder in (self.root, self.generations, self.data, self.plots, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        return self

    # ── atomic writes ──────────────────────────────────────────────────────
    def write_text(self, path: Path, text: str) -> Path:
        """Write `text` to `path` atomically."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes owner-only files; a run is for sharing
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def write_json(self, path: Path, data: Any) -> Path:
        return self.write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")

    def read_json(self, path: Path) -> Any:
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}

    # ── run.yaml: the settings the run was made with ────────────────────────
    def read_settings(self) -> dict[str, Any]:
        """RUN/run.yaml as a mapping of sections ({} when there is none)."""
        import yaml

        text = self.run_yaml.read_text(encoding="utf-8") if self.run_yaml.exists() else ""
        data = yaml.safe_load(text) if text else None
        return data if isinstance(data, dict) else {}

    def write_settings(self, sections: dict[str, Any], *, keep: Iterable[str] | None = None) -> None:
        """The one writer of RUN/run.yaml: `sections` (secrets stripped) replace theirs.

        Of the sections already there, those named in `keep` stay as they are; with `keep` None, every
        section not given stays. The file is rewritten only when its text changes.
        """
        import yaml

        from distill.config import redact

        old_text = self.run_yaml.read_text(encoding="utf-8") if self.run_yaml.exists() else ""
        old = self.read_settings()
        data = redact({**old, **sections} if keep is None else dict(sections))
        for key in keep or ():
            if key in old:
                data[key] = old[key]
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        if text != old_text:
            self.write_text(self.run_yaml, text)

    # ── the dataset ────────────────────────────────────────────────────────
    def has_rows(self, config: str = "all") -> bool:
        self._recover(config)
        return any(self.config_dir(config).glob("*.parquet"))

    def shard_files(self, config: str = "all") -> list[Path]:
        self._recover(config)
        return sorted(self.config_dir(config).glob("*.parquet"))

    def scan(self, config: str = "all") -> pl.LazyFrame:
        """A lazy view over a config's shards; raises StageError when there are none."""
        import polars as pl

        files = self.shard_files(config)
        if not files:
            raise StageError(f"{self.config_dir(config)} has no Parquet shards: run `distill generate` first")
        return pl.scan_parquet([str(f) for f in files])

    def read(self, config: str = "all") -> pl.DataFrame:
        return self.scan(config).collect()

    def write_rows(self, frame: pl.DataFrame | Iterator[pl.DataFrame], config: str = "all",
                   split: str = "train", *, shard_bytes: int | None = None,
                   row_group_bytes: int | None = None) -> list[Path]:
        """Replace a config's shards with `frame`, in the Hub layout `<split>-NNNNN-of-NNNNN.parquet`.

        Shards roll over at `shard_bytes` (default SHARD_BYTES) of compressed Parquet on disk, and
        each row group holds about `row_group_bytes` (default ROW_GROUP_BYTES) of in-memory data,
        so a reader streams one row group at a time. Several frames are written as one table (their
        columns unified), never as one tiny shard each. The new shards are written into a temporary
        folder that then takes the old one's place, so readers see either the old rows or the new
        ones, never a mix.
        """
        import polars as pl

        frames = [frame] if isinstance(frame, pl.DataFrame) else list(frame)
        table = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else (
            frames[0] if frames else pl.DataFrame())
        rows = _rows_for_bytes(table, row_group_bytes or ROW_GROUP_BYTES)
        groups = (table.slice(start, rows) for start in range(0, max(table.height, 1), rows))
        return self.write_rows_stream(groups, config, split, shard_bytes=shard_bytes)

    def write_rows_stream(self, frames: Iterable[pl.DataFrame], config: str = "all", split: str = "train", *,
                          shard_bytes: int | None = None) -> list[Path]:
        """Like `write_rows`, but each frame is written as it arrives (memory stays flat in the row count).

        Every frame must have the first one's columns (cast to its types); each becomes one row group,
        so callers hand over frames of a sensible size. The shards replace the old ones atomically at
        the end; if the iterator raises, the old shards stay untouched.
        """
        import pyarrow.parquet as pq

        final = self.config_dir(config)
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{config}.new-"))
        limit = shard_bytes or SHARD_BYTES
        paths: list[Path] = []
        writer: pq.ParquetWriter | None = None
        arrow_schema = None
        try:
            for frame in frames:
                table = frame.to_arrow()
                if arrow_schema is None:
                    arrow_schema = table.schema
                if table.num_rows == 0:  # no empty row groups: some readers reject them
                    continue
                table = table.select(arrow_schema.names).cast(arrow_schema)
                if writer is None:
                    paths.append(staging / f"part-{len(paths):05d}.parquet")
                    writer = pq.ParquetWriter(paths[-1], arrow_schema, compression="zstd", write_statistics=True)
                writer.write_table(table, row_group_size=max(1, table.num_rows))
                if paths[-1].stat().st_size >= limit:
                    writer.close()
                    writer = None
            if writer is not None:
                writer.close()
                writer = None
            if arrow_schema is None:
                raise ValueError("write_rows_stream needs at least one frame (it carries the schema)")
            if not paths:  # zero rows still get one file, so the schema survives
                paths.append(staging / "part-00000.parquet")
                pq.write_table(arrow_schema.empty_table(), paths[-1], compression="zstd")
            for i, path in enumerate(paths):
                path.rename(staging / f"{split}-{i:05d}-of-{len(paths):05d}.parquet")
            _swap_dir(staging, final)
        except BaseException:
            if writer is not None:
                writer.close()
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return sorted(final.glob("*.parquet"))

    def update_rows(self, columns: pl.DataFrame) -> None:
        """Add or replace columns of the `all` config, matched on (prompt_id, sample).

        The rows are rewritten one row group at a time, so memory grows with `columns` (keys and
        verdicts) and one row group, never with the whole run's text.
        """
        import polars as pl
        import pyarrow.parquet as pq

        new_cols = [c for c in columns.columns if c not in schema.KEY]

        def merged() -> Iterator[pl.DataFrame]:
            for shard in self.shard_files("all"):
                parquet = pq.ParquetFile(shard)
                groups = range(parquet.num_row_groups) or [None]
                for i in groups:
                    table = parquet.schema_arrow.empty_table() if i is None else parquet.read_row_group(i)
                    part = pl.from_arrow(table)
                    assert isinstance(part, pl.DataFrame)
                    yield part.drop([c for c in new_cols if c in part.columns]).join(
                        columns, on=list(schema.KEY), how="left", maintain_order="left")

        if not self.shard_files("all"):
            raise StageError(f"{self.config_dir('all')} has no Parquet shards: run `distill generate` first")
        self.write_rows_stream(merged(), "all")

    def _recover(self, config: str) -> None:
        """Finish a swap that a crash interrupted between its two renames."""
        final, old = self.config_dir(config), self.data / f".{config}.old"
        if not final.exists() and old.exists():
            os.replace(old, final)

    # ── stages and stats ───────────────────────────────────────────────────
    @property
    def run_id(self) -> str:
        """A random id given to the run on first use (kept in manifest.json); its card carries it, so a push
        can tell the run's own Hub repo from one that holds another dataset."""
        manifest = self.read_json(self.manifest)
        if "run_id" not in manifest:
            manifest["run_id"] = uuid.uuid4().hex[:16]
            self.write_json(self.manifest, manifest)
        return str(manifest["run_id"])

    def stage_record(self, stage: str) -> dict[str, Any] | None:
        return self.read_json(self.manifest).get("stages", {}).get(stage)

    def is_done(self, stage: str, fingerprint: str) -> bool:
        record = self.stage_record(stage)
        return bool(record and record.get("fingerprint") == fingerprint)

    def mark_done(self, stage: str, fingerprint: str, **info: Any) -> None:
        """Record that `stage` finished with settings `fingerprint` (written after its outputs)."""
        manifest = self.read_json(self.manifest)
        manifest.setdefault("schema_version", schema.SCHEMA_VERSION)
        manifest.setdefault("stages", {})[stage] = {"fingerprint": fingerprint, "finished_at": time.time(), **info}
        self.write_json(self.manifest, manifest)

    def forget(self, *stages: str) -> None:
        """Mark stages as not done (their inputs changed)."""
        manifest = self.read_json(self.manifest)
        for stage in stages:
            manifest.get("stages", {}).pop(stage, None)
        if manifest:
            self.write_json(self.manifest, manifest)

    def update_stats(self, section: str, data: Any) -> None:
        """Replace one section of stats.json, keeping the others."""
        stats = self.read_json(self.stats)
        stats[section] = data
        self.write_json(self.stats, stats)


def _rows_for_bytes(frame: pl.DataFrame, target: int) -> int:
    if frame.height == 0:
        return 1
    per_row = max(1, int(frame.estimated_size()) // frame.height)
    return max(1, min(frame.height, target // per_row))


def _swap_dir(staging: Path, final: Path) -> None:
    old = final.parent / f".{final.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(staging, final)
    shutil.rmtree(old, ignore_errors=True)
