"""The versioned registry of evaluation benchmarks: metadata only, never the data itself.

The specs live one module per family (`math_benchmarks.py`, `code_benchmarks.py`, `choice_benchmarks.py`);
this module finds a spec by name and loads its rows.

A benchmark is read either from a local file that the user names (`--benchmark NAME=PATH`, the same
option for `distill filter` and `distill eval`) or, where the network allows, from the Hub at the
registry's pinned revision (distill.evaluation.benchmark_hub), normalised once into a local cache. A
name the registry does not know is the user's own benchmark: its file is required, and its kind and
columns are detected from the file or given in `benchmarks_meta` (distill.evaluation.benchmark_detect). Every loaded benchmark has the same columns:

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
from distill.evaluation.benchmark_detect import BenchmarkMeta, detect_spec, is_safe_name
from distill.evaluation.benchmark_hub import cache_file, fetch_split_files
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


def find_spec(name: str) -> BenchmarkSpec | None:
    """The registry entry for `name` ("MATH-500", "math_500" and "math500" are one), or None."""

    def key(n: str) -> str:
        return re.sub(r"[^a-z0-9]", "", n.lower())

    return BENCHMARKS.get(name) or next((s for s in BENCHMARKS.values() if key(s.name) == key(name)), None)


def get_spec(name: str) -> BenchmarkSpec:
    """The registry entry for `name`; an unknown name is a ConfigError listing the known ones."""
    spec = find_spec(name)
    if spec is None:
        raise ConfigError(
            f"unknown benchmark {name!r} and no file given: pass --benchmark {name}=PATH, or one of "
            f"{', '.join(sorted(BENCHMARKS))}"
        )
    return spec


def canonical_name(name: str) -> str:
    """The registry's name for a known benchmark; a user's own benchmark keeps its name."""
    spec = find_spec(name)
    return spec.name if spec is not None else name


def parse_benchmark_option(option: str) -> tuple[str, Path]:
    """Split `NAME=PATH` (the `--benchmark` option) into a name (registered or the user's own) and a path."""
    name, sep, path = option.partition("=")
    name = name.strip()
    if not sep or not name or not path.strip():
        raise ConfigError(f"--benchmark {option!r}: expected NAME=PATH, e.g. math500=data/math500.jsonl")
    if not is_safe_name(name):
        raise ConfigError(f"--benchmark {option!r}: a name is letters, digits, _ . - (it names a folder)")
    file = Path(path.strip()).expanduser()
    if not file.exists():
        raise ConfigError(f"--benchmark {option!r}: {file} does not exist")
    return canonical_name(name), file


def load_benchmark(
    name: str,
    path: Path | str | None = None,
    *,
    text_column: str | None = None,
    answer_column: str | None = None,
    cache_dir: Path | None = None,
    meta: BenchmarkMeta | None = None,
) -> Benchmark:
    """Load benchmark `name` from `path` (JSONL, JSON list, Parquet, .gz) or else from the Hub cache.

    A name the registry does not know needs `path`; its kind and columns come from `meta` and the
    file (distill.evaluation.benchmark_detect). For a known name, `meta` overrides the registry's columns and k.
    """
    spec = find_spec(name)
    if spec is None:
        if path is None:
            get_spec(name)  # the one-line error: pass a file or name a known benchmark
        file = Path(str(path)).expanduser()
        raw = read_table(file)
        meta = meta or BenchmarkMeta()
        meta = meta.model_copy(
            update={k: v for k, v in (("text_column", text_column), ("answer_column", answer_column)) if v}
        )
        spec = detect_spec(name, raw, file, meta)
        return Benchmark(spec, normalise_rows(spec, raw, source=file, explicit_text=spec.text_column), file)
    if meta is not None:
        spec = replace(
            spec,
            kind=meta.kind or spec.kind,
            id_column=meta.id_column or spec.id_column,
            default_k=meta.k or spec.default_k,
        )
        text_column, answer_column = text_column or meta.text_column, answer_column or meta.answer_column
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
    if spec.answer_format == "hashes":  # GSM8K: the gold number follows '####' after the worked solution
        answers = answers.str.extract(r"####\s*(.+?)\s*$", 1).str.replace_all(",", "")
    elif spec.answer_format == "boxed":  # a worked solution: the gold is its last \boxed{…}
        from filters.math import extract_boxed

        answers = answers.map_elements(lambda a: extract_boxed(a) or a, return_dtype=pl.String)
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


def _load_from_hub(spec: BenchmarkSpec, cache_dir: Path) -> pl.DataFrame:
    """Rows of a registry benchmark from the cache, else fetched at its pinned revision and cached (atomically)."""
    import polars as pl

    cached = cache_file(spec, cache_dir)
    if cached.exists():
        return pl.read_parquet(cached)
    files = fetch_split_files(spec, cache_dir / "hub")
    raw = pl.concat([read_table(f) for f in files], how="diagonal_relaxed")
    rows = normalise_rows(spec, raw, source=f"{spec.hub_id}@{spec.revision or 'main'}")
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp")
    rows.write_parquet(tmp)
    os.replace(tmp, cached)  # the cache file appears only when complete
    return rows
