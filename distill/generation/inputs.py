"""Read a prompts file (JSONL, JSON, CSV, Parquet, a local HF dataset folder, or a Hub id) into prompts.

Each prompt is rendered once (template + optional system turn) and named by `prompt_id`, a hash of
exactly what is sent, so the same prompt is never sent twice and a rerun finds its finished samples.
Every input column passes through to the output untouched; `source` is the file's stem unless the
input has its own. Bad input is an InputError naming the file, row and field.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distill import schema, sources
from distill.errors import ConfigError, InputError
from distill.resources import shipped_path

if TYPE_CHECKING:
    import polars as pl

log = logging.getLogger(__name__)

SYSTEM = "_system"  # the system turn sent with a prompt (private: dropped from the exported rows)
SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class PromptSet:
    """The distinct prompts to send (ids and rendered text, in file order) and, on demand, their input rows.

    JSON and JSONL files are read without polars, so generation can start sending at once; the
    polars frame of the input rows (`frame`) is built only when asked for (the export does that on
    its own thread while the first requests are in flight).
    """

    def __init__(
        self,
        path: str,
        ids: list[str],
        prompts: list[str],
        duplicates: int,
        *,
        rows: list[dict[str, Any]] | None,
        base: pl.DataFrame | None,
        keep: list[int],
        source: str,
        system: str | None,
    ) -> None:
        self.path, self.ids, self.prompts, self.duplicates = path, ids, prompts, duplicates
        self._rows, self._base, self._keep, self._source, self._system = rows, base, keep, source, system
        self._frame: pl.DataFrame | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def frame(self) -> pl.DataFrame:
        """Input rows plus `prompt_id`, `prompt`, `source` (when the input has none) and the system turn."""
        import polars as pl

        if self._frame is None:
            base = self._base if self._base is not None else _frame(self._rows or [], Path(self.path))
            frame = base[self._keep] if len(self._keep) != base.height else base
            frame = frame.with_columns(
                pl.Series(schema.PROMPT_ID, self.ids, dtype=pl.String),
                pl.Series(schema.PROMPT, self.prompts, dtype=pl.String),
                pl.lit(self._system, dtype=pl.String).alias(SYSTEM),
            )
            if schema.SOURCE not in frame.columns:
                frame = frame.with_columns(pl.lit(self._source, dtype=pl.String).alias(schema.SOURCE))
            self._frame = frame
            self._rows = self._base = None
        return self._frame


def chat_messages(prompt: str, system: str | None) -> list[dict[str, str]]:
    turns = [{"role": "system", "content": system}] if system else []
    return [*turns, {"role": "user", "content": prompt}]


def prompt_id(prompt: str, system: str | None) -> str:
    """A stable id of what is sent: the system turn and the rendered user turn."""
    data = json.dumps([system or "", prompt], ensure_ascii=False)
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def parse_shard(shard: str | None) -> tuple[int, int] | None:
    """`"I/N"` → (I, N) with 0 ≤ I < N."""
    if shard is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", shard)
    if not match or not 0 <= int(match[1]) < int(match[2]):
        raise ConfigError(f"shard {shard!r}: expected I/N with 0 <= I < N, e.g. 0/8")
    return int(match[1]), int(match[2])


def load_prompts(
    source: Path | str,
    *,
    prompt_column: str,
    template: str,
    system: str | None = None,
    split: str = "train",
    shard: str | None = None,
) -> PromptSet:
    """Read, validate, render, deduplicate and (optionally) shard the prompts."""
    name = str(source)
    rows, base = read_rows(source, split=split)
    if rows is not None:
        columns = list(dict.fromkeys(k for r in rows for k in r))
        texts = [r.get(prompt_column) for r in rows]
    else:
        assert base is not None
        columns = base.columns
        texts = base.get_column(prompt_column).to_list() if prompt_column in columns else []
    if (rows is not None and not rows) or (base is not None and base.height == 0):
        raise InputError("the file has no rows", path=name)
    if prompt_column not in columns:
        raise InputError(
            f"no prompt column; columns are {', '.join(columns[:20])} (choose one with --prompt-column)",
            path=name,
            field=prompt_column,
        )
    clash = [c for c in columns if c in schema.GENERATED_COLUMNS and c != schema.PROMPT]
    if clash:
        raise InputError(
            "this column name is reserved for generated data; rename it", path=name, field=clash[0]
        )
    if schema.PROMPT in columns and prompt_column != schema.PROMPT:
        raise InputError(
            "this column name is reserved for the rendered prompt; rename it", path=name, field=schema.PROMPT
        )
    for i, value in enumerate(texts):
        if not isinstance(value, str) or not value.strip():
            raise InputError("empty or non-text prompt", path=name, row=i + 1, field=prompt_column)
    known = set(columns)
    records = rows if rows is not None else base.iter_rows(named=True)  # type: ignore[union-attr]
    parts = parse_shard(shard)
    ids: list[str] = []
    prompts: list[str] = []
    keep: list[int] = []
    seen: set[str] = set()
    for i, row in enumerate(records):
        text = render(template, row, prompt_column, known)
        pid = prompt_id(text, system)
        if pid in seen:
            continue
        seen.add(pid)
        if parts is not None and int(pid[:8], 16) % parts[1] != parts[0]:
            continue
        ids.append(pid)
        prompts.append(text)
        keep.append(i)
    duplicates = len(texts) - len(seen)
    if duplicates:
        log.warning("%s: %d duplicate prompt(s) dropped; each distinct prompt is sent once", name, duplicates)
    return PromptSet(
        name, ids, prompts, duplicates, rows=rows, base=base, keep=keep, source=_stem(source), system=system
    )


def render(template: str, row: dict[str, Any], prompt_column: str, columns: set[str]) -> str:
    """Fill `{prompt}` (the prompt column) and any `{column}`; other braces, like `\\boxed{}`, stay."""

    def fill(match: re.Match[str]) -> str:
        key = match[1]
        if key == "prompt":
            return str(row[prompt_column])
        if key in columns:
            value = row[key]
            return "" if value is None else str(value)
        return match[0]

    return _PLACEHOLDER.sub(fill, template)


def read_template(value: str) -> str:
    """A template given as text, or as the path of a file holding it (`recipes/templates/…`: the shipped one)."""
    if len(value) >= 4096 or "\n" in value:
        return value
    path = shipped_path(Path(value))
    if path.suffix and path.is_file():
        return path.read_text(encoding="utf-8")
    return value


# ── reading tables ─────────────────────────────────────────────────────────
def read_table(source: Path | str, *, split: str = "train") -> pl.DataFrame:
    """Any supported prompts source as a polars DataFrame."""
    rows, frame = read_rows(source, split=split)
    return frame if frame is not None else _frame(rows or [], Path(str(source)))


def read_rows(
    source: Path | str, *, split: str = "train"
) -> tuple[list[dict[str, Any]] | None, pl.DataFrame | None]:
    """JSON/JSONL as Python rows (no polars needed), anything else as a polars DataFrame."""
    found = sources.resolve(source)
    path = found.path
    if found.kind in ("run", "folder"):
        return None, _read_folder(path, split)
    if found.kind == "hub":
        return None, _read_hub(str(found.hub_id), split)
    if found.kind == "missing":
        raise InputError("no such file", path=source)
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise InputError(
            f"unknown file type {path.suffix or '(none)'!r}; use .jsonl, .json, .csv, .parquet "
            "or a dataset folder",
            path=path,
        )
    if path.stat().st_size == 0:
        raise InputError("the file is empty", path=path)
    if kind == "parquet":
        return None, _read_parquet(path)
    text = _read_utf8(path)
    if not text.strip():
        raise InputError("the file is empty", path=path)
    if kind == "jsonl":
        return _parse_jsonl(text, path), None
    if kind == "json":
        return _parse_json(text, path), None
    return None, _read_csv(path)


def _read_utf8(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InputError(
            f"not UTF-8 (byte {e.start}); re-encode the file as UTF-8", path=path, row=line
        ) from e


def _parse_jsonl(text: str, path: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"line {number} is not valid JSON ({e.msg})", path=path, row=number) from e
        if not isinstance(row, dict):
            raise InputError(f"line {number} is not a JSON object", path=path, row=number)
        rows.append(row)
    return rows


def _parse_json(text: str, path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"not valid JSON at line {e.lineno} ({e.msg})", path=path, row=e.lineno) from e
    if isinstance(data, dict):  # {"data": [...]} or {"rows": [...]} or a single column-oriented mapping
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(data) == 1 and lists and all(isinstance(r, dict) for r in lists[0]):
            data = lists[0]
        elif lists and all(isinstance(v, list) and len(v) == len(lists[0]) for v in data.values()):
            data = [dict(zip(data, values, strict=True)) for values in zip(*data.values(), strict=True)]
    if not isinstance(data, list):
        raise InputError("expected a JSON list of objects", path=path)
    for i, row in enumerate(data):
        if not isinstance(row, dict):
            raise InputError("not a JSON object", path=path, row=i + 1)
    return data


def _frame(rows: list[dict[str, Any]], path: Path) -> pl.DataFrame:
    import polars as pl

    if not rows:
        raise InputError("the file has no rows", path=path)
    try:
        return pl.DataFrame(rows, infer_schema_length=None)
    except (pl.exceptions.PolarsError, TypeError, ValueError):
        # Mixed types in a column: keep the values as JSON text rather than refusing the file.
        keys = list(dict.fromkeys(k for r in rows for k in r))
        return pl.DataFrame({k: [_as_text(r.get(k)) for r in rows] for k in keys})


def _as_text(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _read_csv(path: Path) -> pl.DataFrame:
    import polars as pl

    try:
        return pl.read_csv(path, infer_schema_length=10000)
    except pl.exceptions.PolarsError as e:
        raise InputError(f"not a valid CSV file: {str(e).splitlines()[0][:200]}", path=path) from e


def _read_parquet(path: Path) -> pl.DataFrame:
    import polars as pl

    try:
        return pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as e:
        raise InputError(f"not a valid Parquet file: {str(e).splitlines()[0][:200]}", path=path) from e


def _read_folder(path: Path, split: str) -> pl.DataFrame:
    """A `save_to_disk` folder, or a Hub-layout folder of data files (split chosen by file name)."""
    import polars as pl

    if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
        import datasets

        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise InputError(f"no split {split!r}; splits are {', '.join(loaded)}", path=path)
            loaded = loaded[split]
        return pl.from_arrow(loaded.data.table)  # type: ignore[return-value]
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    chosen = [p for p in files if p.name.startswith(split) or p.parent.name == split] or files
    if not chosen:
        raise InputError("the folder holds no .jsonl/.json/.csv/.parquet files", path=path)
    return pl.concat([read_table(p) for p in chosen], how="diagonal_relaxed")


def _read_hub(dataset_id: str, split: str) -> pl.DataFrame:
    import datasets
    import polars as pl

    try:
        loaded = datasets.load_dataset(dataset_id, split=split)
    except Exception as e:  # noqa: BLE001 - any loader failure becomes one line naming the id
        raise InputError(
            f"cannot load this Hub dataset (split {split!r}): {str(e).splitlines()[0][:200]}", path=dataset_id
        ) from e
    return pl.from_arrow(loaded.data.table)  # type: ignore[arg-type,return-value]


def _stem(source: Path | str) -> str:
    path = Path(str(source))
    name = path.name
    for suffix in (".gz", *SUFFIXES):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name or str(source)
