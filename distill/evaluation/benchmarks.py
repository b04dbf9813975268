"""The versioned registry of evaluation benchmarks: metadata only, never the data itself.

The specs live one module per family (`math_benchmarks.py`, `code_benchmarks.py`, `choice_benchmarks.py`);
this module finds a spec by name and loads its rows.

A benchmark is read either from a local file that the user names (`--benchmark NAME=PATH`, the same
option for `distill filter` and `distill eval`) or, where the network allows, from the Hub through
`datasets`, normalised once into a local cache. Every loaded benchmark has the same columns:

    id (str)  problem (str)  answer (str | None)  + code-test columns passed through
              (HumanEval: test, entry_point, prompt; MBPP: test_list, test_setup_code;
               LiveCodeBench: public_test_cases, private_test_cases, …)

For code benchmarks `answer` holds the reference solution (useful for decontaminating traces);
grading uses the test columns.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from distill.errors import ConfigError, InputError
from distill.evaluation.choice_benchmarks import CHOICE
from distill.evaluation.code_benchmarks import CODE
from distill.evaluation.math_benchmarks import MATH
from distill.evaluation.spec import BenchmarkSpec

if TYPE_CHECKING:
    import polars as pl

log = logging.getLogger(__name__)

TEXT_CANDIDATES = ("problem", "question", "prompt", "text", "Question", "question_content", "input")
ID_CANDIDATES = ("id", "unique_id", "task_id", "question_id", "index", "idx")
ANSWER_CANDIDATES = ("answer", "gt", "Correct Answer", "solution", "final_answer")
SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".json", ".json.gz", ".parquet")


# The registry: every family's specs, by name.
BENCHMARKS: dict[str, BenchmarkSpec] = {spec.name: spec for spec in (*MATH, *CODE, *CHOICE)}


@dataclass(frozen=True)
class Benchmark:
    """A loaded benchmark: its spec and its rows (id, problem, answer, + passthrough columns)."""

    spec: BenchmarkSpec
    rows: pl.DataFrame
    path: Path | None = None  # the local file it came from, if any

    def __len__(self) -> int:
        return self.rows.height


def get_spec(name: str) -> BenchmarkSpec:
    """The registry entry for `name`; an unknown name is a ConfigError listing the known ones."""

    def key(n: str) -> str:  # "MATH-500", "math_500" and "math500" name the same benchmark
        return re.sub(r"[^a-z0-9]", "", n.lower())

    spec = BENCHMARKS.get(name) or next((s for s in BENCHMARKS.values() if key(s.name) == key(name)), None)
    if spec is None:
        raise ConfigError(f"unknown benchmark {name!r}; available: {', '.join(sorted(BENCHMARKS))}")
    return spec


def parse_benchmark_option(option: str) -> tuple[str, Path]:
    """Split `NAME=PATH` (the `--benchmark` option) into a registered name and an existing path."""
    name, sep, path = option.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise ConfigError(f"--benchmark {option!r}: expected NAME=PATH, e.g. math500=data/math500.jsonl")
    spec = get_spec(name.strip())
    file = Path(path.strip()).expanduser()
    if not file.exists():
        raise ConfigError(f"--benchmark {option!r}: {file} does not exist")
    return spec.name, file


def load_benchmark(
    name: str,
    path: Path | str | None = None,
    *,
    text_column: str | None = None,
    answer_column: str | None = None,
    cache_dir: Path | None = None,
) -> Benchmark:
    """Load benchmark `name` from `path` (JSONL, JSON list, Parquet, .gz) or else from the Hub cache."""
    spec = get_spec(name)
    if text_column or answer_column:
        spec = replace(
            spec,
            text_column=text_column or spec.text_column,
            answer_column=answer_column or spec.answer_column,
        )
    if path is not None:
        file = Path(path).expanduser()
        raw = read_table(file)
        _check_checksum(spec, file)
        return Benchmark(spec, normalise_rows(spec, raw, source=file, explicit_text=text_column), file)
    return Benchmark(spec, _load_from_hub(spec, cache_dir or default_cache_dir()))


def default_cache_dir() -> Path:
    """Where benchmarks fetched from the Hub are cached: $DISTILL_CACHE/benchmarks or ~/.cache/distill."""
    base = os.environ.get("DISTILL_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "distill")
    return Path(base) / "benchmarks"


def read_table(file: Path) -> pl.DataFrame:
    """Read a JSONL / JSON list / Parquet file (optionally gzipped) into a DataFrame."""
    import polars as pl

    if not file.exists():
        raise InputError("benchmark file not found", path=file)
    name = file.name.lower()
    if name.endswith(".parquet"):
        return pl.read_parquet(file)
    opener = gzip.open if name.endswith(".gz") else open
    try:
        with opener(file, "rt", encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read: {e}", path=file) from e
    stripped = text.lstrip()
    records: list[dict]
    if stripped.startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"not a valid JSON list: {e.msg} at line {e.lineno}", path=file) from e
    else:
        records = []
        for i, line in enumerate(text.splitlines()):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise InputError(f"not valid JSON: {e.msg}", path=file, row=i + 1) from e
    if not records or not all(isinstance(r, dict) for r in records):
        raise InputError("expected a non-empty list of JSON objects (JSONL, JSON list or Parquet)", path=file)
    try:
        return pl.DataFrame(records, infer_schema_length=None, strict=False)
    except (pl.exceptions.ComputeError, pl.exceptions.SchemaError, TypeError):
        return _frame_from_mixed(records)


def _frame_from_mixed(records: list[dict]) -> pl.DataFrame:
    """Columns whose values differ in type across rows (27 vs "27" vs ["3", "-3"]) become strings."""
    import polars as pl

    keys = list(dict.fromkeys(k for r in records for k in r))
    columns = {}
    for key in keys:
        values = [r.get(key) for r in records]
        kinds = {type(v) for v in values if v is not None}
        if len(kinds) > 1:
            values = [None if v is None else v if isinstance(v, str) else json.dumps(v) for v in values]
        columns[key] = pl.Series(key, values, strict=False)
    return pl.DataFrame(columns)


def normalise_rows(
    spec: BenchmarkSpec, raw: pl.DataFrame, *, source: Path | str = "", explicit_text: str | None = None
) -> pl.DataFrame:
    """Map a raw table onto id / problem / answer (+ passthrough), whatever its column names."""
    import polars as pl

    text_col = _pick(raw.columns, explicit_text, spec.text_column, TEXT_CANDIDATES)
    if text_col is None or (explicit_text and explicit_text not in raw.columns):
        wanted = explicit_text or f"one of {', '.join((spec.text_column, *TEXT_CANDIDATES[:4]))}"
        raise InputError(f"no text column ({wanted}); columns are {', '.join(raw.columns)}", path=source)
    answer_col = _pick(
        raw.columns, None, spec.answer_column, () if spec.kind == "code" else ANSWER_CANDIDATES
    )
    id_col = _pick(raw.columns, None, spec.id_column, ID_CANDIDATES)

    ids = raw[id_col].cast(pl.String) if id_col else pl.Series([str(i) for i in range(raw.height)])
    answers = (
        raw[answer_col].map_elements(_answer_to_str, return_dtype=pl.String)
        if answer_col
        else pl.Series([None] * raw.height, dtype=pl.String)
    )
    if spec.name == "gsm8k":  # the gold number follows '####' after the worked solution
        answers = answers.str.extract(r"####\s*(.+?)\s*$", 1).str.replace_all(",", "")
    out = pl.DataFrame(
        {
            "id": ids.alias("id"),
            "problem": raw[text_col].cast(pl.String).alias("problem"),
            "answer": answers.alias("answer"),
        }
    )
    extra = [c for c in spec.passthrough if c in raw.columns and c not in out.columns]
    if extra:
        out = out.hstack(raw.select(extra))
    empty = out.filter(pl.col("problem").is_null() | (pl.col("problem").str.strip_chars() == "")).height
    if empty == out.height:
        raise InputError(f"column {text_col!r} is empty in every row", path=source)
    return out


def file_checksum(file: Path) -> str:
    """sha256 of a file, as "sha256:<first 16 hex digits>" (the form the registry stores)."""
    h = hashlib.sha256()
    with open(file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return f"sha256:{h.hexdigest()[:16]}"


def _pick(
    columns: list[str], explicit: str | None, preferred: str | None, candidates: tuple[str, ...]
) -> str | None:
    if explicit:
        return explicit if explicit in columns else None
    if preferred and preferred in columns:
        return preferred
    return next((c for c in candidates if c in columns), None)


def _answer_to_str(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # AMC's 27.0 is the integer 27
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def _check_checksum(spec: BenchmarkSpec, file: Path) -> None:
    """Warn (never fail) when a local file differs from the reference copy the registry knows."""
    if spec.checksum is None:
        return
    got = file_checksum(file)
    if got != spec.checksum:
        log.info(
            "%s: %s differs from the reference file (%s != %s): another copy or version",
            spec.name,
            file,
            got,
            spec.checksum,
        )


def _cache_file(spec: BenchmarkSpec, cache_dir: Path) -> Path:
    safe = re.sub(
        r"[^A-Za-z0-9_.-]+", "_", f"{spec.name}-v{spec.version}-{spec.config or 'default'}-{spec.split}"
    )
    return cache_dir / f"{safe}.parquet"


def _load_from_hub(spec: BenchmarkSpec, cache_dir: Path) -> pl.DataFrame:
    import polars as pl

    cached = _cache_file(spec, cache_dir)
    if cached.exists():
        return pl.read_parquet(cached)
    hint = f"pass a local copy with --benchmark {spec.name}=PATH (JSONL, JSON list or Parquet)"
    if spec.hub_id is None or _is_offline():
        raise ConfigError(f"benchmark {spec.name!r} is not cached and the Hub is offline: {hint}")
    try:
        import datasets

        ds = datasets.load_dataset(
            spec.hub_id, spec.config, split=spec.split, cache_dir=str(cache_dir / "hf")
        )
        raw = ds.to_polars() if hasattr(ds, "to_polars") else pl.from_arrow(ds.data.table)
    except Exception as e:  # noqa: BLE001 - process boundary: any Hub/network failure means "use a file"
        first = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise ConfigError(f"benchmark {spec.name!r}: cannot fetch {spec.hub_id} ({first}); {hint}") from e
    rows = normalise_rows(spec, raw, source=spec.hub_id)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp")
    rows.write_parquet(tmp)
    os.replace(tmp, cached)  # the cache file appears only when complete
    return rows


def _is_offline() -> bool:
    return any(
        os.environ.get(v, "").lower() in ("1", "true", "yes")
        for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "DISTILL_OFFLINE")
    )
