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
      inputs/             inputs the run made itself (the demo's generated problems and held-out set)

Every write is atomic (temporary file, then `os.replace`), so a crash never leaves a file that looks
complete but is not.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from distill import schema
from distill.errors import InputError, StageError

if TYPE_CHECKING:
    import polars as pl

# The run locks this process holds: {resolved root: [open lock file, depth]}. Process-wide on purpose:
# flock belongs to an open file, so `distill run` holding RUN's lock must not be refused by its own
# verify stage opening the lock again.
_HELD: dict[str, list[Any]] = {}
F = TypeVar("F", bound=Callable[..., Any])
_RUN_MARKERS = ("run.yaml", "manifest.json", "generations", "data", ".lock")

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
    def inputs(self) -> Path:
        """Inputs the run made itself (the demo's generated problems and their held-out set)."""
        return self.root / "inputs"

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

    def is_run(self) -> bool:
        """Whether the folder is (or may become) a run: missing, empty, or holding a run's files."""
        if not self.root.exists():
            return True
        if not self.root.is_dir():
            return False
        return any((self.root / m).exists() for m in _RUN_MARKERS) or not any(self.root.iterdir())

    def ensure(self) -> RunDir:
        """Create the run folder and its sub-folders; returns self.

        Refuses a path that is a file, or a non-empty folder that is not a run (its files are the user's).
        """
        if self.root.exists() and not self.root.is_dir():
            raise StageError(f"{self.root} is a file, not a run folder: choose another --out")
        if not self.is_run():
            raise StageError(
                f"{self.root} is not empty and is not a run (no run.yaml, manifest.json, generations/ or "
                "data/): choose an empty or new --out"
            )
        try:
            for folder in (self.root, self.generations, self.data, self.plots, self.logs):
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StageError(f"cannot create {self.root}: {e.strerror or e}") from e
        return self

    @contextlib.contextmanager
    def writing(self, command: str) -> Iterator[RunDir]:
        """Hold the run's lock while `command` writes to it; another writer is refused at once.

        Every stage that writes a run (generate, verify, filter, card, merge, `distill run`) takes it,
        so one never replaces data/all under another's feet. Re-entrant within a process.
        """
        import fcntl

        if not self.root.is_dir():
            raise StageError(
                f"{self.root}: no such run folder (check the path, or run `distill generate` first)"
            )
        key = str(self.root.resolve())
        if key in _HELD:
            _HELD[key][1] += 1
            try:
                yield self
            finally:
                _HELD[key][1] -= 1
            return
        try:
            handle = open(self.lock, "a+", encoding="utf-8")  # noqa: SIM115 - held until the block ends
        except OSError as e:
            raise StageError(f"cannot write to {self.root}: {e.strerror or e}") from e
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            handle.seek(0)
            holder = handle.read().strip() or "another distill command"
            handle.close()
            raise StageError(f"{self.root} is in use by {holder}: wait for it, or use another --out") from e
        handle.seek(0)
        handle.truncate()
        handle.write(f"`distill {command}` (pid {os.getpid()})")
        handle.flush()
        _HELD[key] = [handle, 1]
        try:
            yield self
        finally:
            del _HELD[key]
            handle.close()

    def lock_fd(self) -> int | None:
        """The file descriptor of this run's lock while this process holds it (a forked helper closes it)."""
        held = _HELD.get(str(self.root.resolve()))
        return None if held is None else held[0].fileno()

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
        """A JSON file of the run ({} when missing); a damaged one is an InputError naming it."""
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise InputError(
                f"not valid JSON ({str(e)[:120]}): fix it, or delete it to start over", path=path
            ) from e
        if not isinstance(data, dict):
            raise InputError(f"expected a JSON object, got {type(data).__name__}", path=path)
        return data

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

    def row_count(self, config: str = "all") -> int:
        """Rows in a config's shards, read from their Parquet footers (no pyarrow: generate may still fork).

        Raises InputError naming a shard that is not a complete Parquet file.
        """
        total = 0
        for shard in self.shard_files(config):
            try:
                total += _parquet_rows(shard)
            except (ValueError, IndexError, OSError) as e:
                raise InputError(f"not a readable Parquet file ({e})", path=shard) from e
        return total

    def scan(self, config: str = "all") -> pl.LazyFrame:
        """A lazy view over a config's shards; raises StageError when there are none."""
        import polars as pl

        files = self.shard_files(config)
        if not files:
            raise StageError(f"{self.config_dir(config)} has no Parquet shards: run `distill generate` first")
        for shard in files:  # a truncated or foreign file is named here, not deep inside polars
            try:
                _parquet_rows(shard)
            except (ValueError, IndexError, OSError) as e:
                raise InputError(
                    f"not a readable Parquet file ({e}); `distill generate` writes data/all again from its store",
                    path=shard,
                ) from e
        lazy = pl.scan_parquet([str(f) for f in files])
        try:
            types = lazy.collect_schema()
        except pl.exceptions.PolarsError as e:
            raise InputError(
                f"the shards do not share one schema ({str(e).splitlines()[0][:160]})",
                path=self.config_dir(config),
            ) from e
        for column, wanted in ((schema.PROMPT_ID, pl.String), (schema.SAMPLE, pl.Int64)):
            if column in types and types[column] != wanted:
                raise InputError(
                    f"type {types[column]}, expected {wanted}", path=self.config_dir(config), field=column
                )
        return lazy

    def read(self, config: str = "all") -> pl.DataFrame:
        return self.scan(config).collect()

    def write_rows(
        self,
        frame: pl.DataFrame | Iterator[pl.DataFrame],
        config: str = "all",
        split: str = "train",
        *,
        shard_bytes: int | None = None,
        row_group_bytes: int | None = None,
    ) -> list[Path]:
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
        table = (
            pl.concat(frames, how="diagonal_relaxed")
            if len(frames) > 1
            else (frames[0] if frames else pl.DataFrame())
        )
        rows = _rows_for_bytes(table, row_group_bytes or ROW_GROUP_BYTES)
        groups = (table.slice(start, rows) for start in range(0, max(table.height, 1), rows))
        return self.write_rows_stream(groups, config, split, shard_bytes=shard_bytes)

    def write_rows_stream(
        self,
        frames: Iterable[pl.DataFrame],
        config: str = "all",
        split: str = "train",
        *,
        shard_bytes: int | None = None,
    ) -> list[Path]:
        """Like `write_rows`, but each frame is written as it arrives (memory stays flat in the row count).

        Every frame must have the first one's columns (cast to its types); each becomes one row group,
        so callers hand over frames of a sensible size. The shards replace the old ones atomically at
        the end; if the iterator raises, the old shards stay untouched.
        """
        import pyarrow.parquet as pq

        final = self.config_dir(config)
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{config}.new-"))
        os.chmod(staging, 0o755)  # mkdtemp makes an owner-only folder; a run is for sharing
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
                    writer = pq.ParquetWriter(
                        paths[-1], arrow_schema, compression="zstd", write_statistics=True
                    )
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
        repeated = columns.select(schema.KEY).is_duplicated()
        if repeated.any():
            pid, sample = columns.filter(repeated).select(schema.KEY).row(0)
            raise InputError(
                f"{int(repeated.sum()):,} rows share a (prompt_id, sample) key, e.g. ({pid!r}, {sample}); "
                "every row needs its own key: remove the duplicates",
                path=self.config_dir("all"),
            )

        def merged() -> Iterator[pl.DataFrame]:
            for shard in self.shard_files("all"):
                parquet = pq.ParquetFile(shard)
                groups = range(parquet.num_row_groups) or [None]
                for i in groups:
                    table = parquet.schema_arrow.empty_table() if i is None else parquet.read_row_group(i)
                    part = pl.from_arrow(table)
                    assert isinstance(part, pl.DataFrame)
                    yield part.drop([c for c in new_cols if c in part.columns]).join(
                        columns, on=list(schema.KEY), how="left", maintain_order="left"
                    )

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
        manifest.setdefault("stages", {})[stage] = {
            "fingerprint": fingerprint,
            "finished_at": time.time(),
            **info,
        }
        self.write_json(self.manifest, manifest)

    def record_written(self, path: Path) -> None:
        """Remember the content of a file this run wrote for the user to read (the card), so we may replace it."""
        manifest = self.read_json(self.manifest)
        manifest.setdefault("written", {})[path.relative_to(self.root).as_posix()] = _sha256(path)
        self.write_json(self.manifest, manifest)

    def was_written(self, path: Path) -> bool:
        """Whether this run recorded writing `path` at all (whatever the file holds now)."""
        return path.relative_to(self.root).as_posix() in self.read_json(self.manifest).get("written", {})

    def may_replace(self, path: Path) -> bool:
        """Whether `path` is missing or still holds what this run wrote there (never a user's own file)."""
        if not path.exists():
            return True
        recorded = (
            self.read_json(self.manifest).get("written", {}).get(path.relative_to(self.root).as_posix())
        )
        return recorded == _sha256(path)

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


def writes_run(command: str) -> Callable[[F], F]:
    """Decorate a stage function whose `run: RunDir` argument it writes: it runs under `run.writing(command)`."""

    def decorate(function: F) -> F:
        signature = inspect.signature(function)

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            run = signature.bind(*args, **kwargs).arguments["run"]
            with run.writing(command):
                return function(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def _parquet_rows(path: Path) -> int:
    """`num_rows` of a Parquet file's footer (FileMetaData field 3, Thrift compact protocol)."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size < 12:
            raise ValueError("too short")
        f.seek(size - 8)
        tail = f.read(8)
        length = int.from_bytes(tail[:4], "little")
        if tail[4:] != b"PAR1" or length > size - 12:
            raise ValueError("no Parquet footer (truncated?)")
        f.seek(size - 8 - length)
        footer = f.read(length)
    pos = 0

    def varint() -> int:
        nonlocal pos
        shift = value = 0
        while True:
            byte = footer[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    def skip(kind: int) -> None:
        nonlocal pos
        if kind in (1, 2):  # booleans live in the field header
            return
        if kind == 3:
            pos += 1
        elif kind in (4, 5, 6):
            varint()
        elif kind == 7:
            pos += 8
        elif kind == 8:
            length = varint()  # (not `pos += varint()`: that adds to pos as it was before the read)
            pos += length
        elif kind in (9, 10):
            head = footer[pos]
            pos += 1
            count = head >> 4 if head >> 4 != 15 else varint()
            for _ in range(count):
                skip(head & 0x0F if head & 0x0F not in (1, 2) else 3)
        elif kind == 11:
            count = varint()
            if count:
                types = footer[pos]
                pos += 1
                for _ in range(count):
                    skip(types >> 4)
                    skip(types & 0x0F)
        elif kind == 12:
            field_id = 0
            while (head := footer[pos]) != 0:
                pos += 1
                field_id = field_id + (head >> 4) if head >> 4 else _zigzag(varint())
                skip(head & 0x0F)
            pos += 1
        else:
            raise ValueError(f"bad Thrift type {kind} in the footer")

    field_id = 0
    while (head := footer[pos]) != 0:
        pos += 1
        field_id = field_id + (head >> 4) if head >> 4 else _zigzag(varint())
        if field_id == 3 and head & 0x0F == 6:
            return _zigzag(varint())
        skip(head & 0x0F)
    raise ValueError("the footer has no row count")


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _zigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


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
