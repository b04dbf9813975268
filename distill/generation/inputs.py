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
    derived = [c for c in columns if c in schema.DERIVED_COLUMNS]
    if derived:
        raise InputError(
            "verify/filter write a column of this name and would overwrite yours; rename it",
            path=name,
            field=derived[0],
        )
    if schema.PROMPT in columns and prompt_column != schema.PROMPT:
        raise InputError(
            "this column name is reserved for the rendered prompt; rename it", path=name, field=schema.PROMPT
        )
    for i, value in enumerate(texts):
        if not isinstance(value, str) or not value.strip():
            raise InputError(
                "empty or non-text prompt", path=name, row=_line_of(source, i), field=prompt_column
            )
    check_template(template, prompt_column, columns, name)
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


def _line_of(source: Path | str, index: int) -> int:
    """The file line of data row `index` (JSONL skips blank lines, CSV has a header), for error messages."""
    path = Path(source)
    suffix = path.suffix.lower()
    if SUFFIXES.get(suffix) == "jsonl" and path.is_file():
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            seen = -1
            for number, line in enumerate(f, start=1):
                seen += bool(line.strip())
                if seen == index:
                    return number
    if suffix == ".csv":
        return index + 2
    return index + 1


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


_TEMPLATE_SUFFIXES = (".txt", ".md", ".j2", ".jinja", ".tmpl", ".template", ".prompt")


def read_template(value: str, *, name: str = "--template") -> str:
    """A template given as text, or as the path of a file holding it (`recipes/templates/…`: the shipped one).

    A value that looks like a path (one line, no braces, a template suffix or a slash) must exist:
    a mistyped path used as the literal template would send one identical prompt, paid for n times.
    """
    if len(value) >= 4096 or "\n" in value:
        return value
    path = shipped_path(Path(value))
    if path.suffix and path.is_file():
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read the template ({e})", path=path) from e
    if "{" not in value and (Path(value).suffix.lower() in _TEMPLATE_SUFFIXES or "/" in value.strip("/ ")):
        raise ConfigError(
            f"{name}: {value} not found (a relative path starts at the current folder; "
            "a template given as text contains {prompt})"
        )
    return value


def check_template(template: str, prompt_column: str, columns: list[str], path: str) -> None:
    """A template must use {prompt} or a column; a placeholder that misspells a column is an error."""
    import difflib

    names = {m[1] for m in _PLACEHOLDER.finditer(template)}
    known = {"prompt", *columns}
    for name in sorted(names - known):
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
        if close:
            raise ConfigError(
                f"template placeholder {{{name}}} is not a column of {path}; did you mean {{{close[0]}}}?"
            )
    if not names & known:
        raise ConfigError(
            f"the template uses neither {{prompt}} nor a column of {path} ({', '.join(columns[:8])}): "
            "every prompt would be the same text"
        )


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
        if _SUSPECT.search(line):
            _check_values(row, path, number)
        rows.append(row)
    return rows


# A long run of digits or a \uD800–\uDFFF escape: only such lines are checked value by value (cheap).
_SUSPECT = re.compile(r"\d{19}|\\u[dD][89abAB]")


def _check_values(row: dict[str, Any], path: Path, number: int) -> None:
    """InputError for a value no Parquet column can hold: an integer beyond 64 bits, a lone surrogate."""

    def bad(value: Any) -> str | None:
        if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
            return f"the integer {str(value)[:30]} does not fit 64 bits; quote it as a string"
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return "holds a lone surrogate (\\ud800–\\udfff escape), which is not text; fix the escape"
        if isinstance(value, dict):
            return next((b for v in value.values() if (b := bad(v))), None)
        if isinstance(value, list):
            return next((b for v in value if (b := bad(v))), None)
        return None

    for key, value in row.items():
        if (problem := bad(value)) is not None:
            raise InputError(problem, path=path, row=number, field=key)


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
    suspect = _SUSPECT.search(text) is not None
    for i, row in enumerate(data):
        if not isinstance(row, dict):
            raise InputError("not a JSON object", path=path, row=i + 1)
        if suspect:
            _check_values(row, path, i + 1)
    return data


def _frame(rows: list[dict[str, Any]], path: Path) -> pl.DataFrame:
    import polars as pl

    if not rows:
        raise InputError("the file has no rows", path=path)
    try:
        frame = pl.DataFrame(rows, infer_schema_length=None)
    except (pl.exceptions.PolarsError, TypeError, ValueError):
        # Mixed types in a column: keep the values as JSON text rather than refusing the file.
        keys = list(dict.fromkeys(k for r in rows for k in r))
        return pl.DataFrame({k: [_as_text(r.get(k)) for r in rows] for k in keys})
    # Parquet cannot hold a struct without fields (`{}` in every row): keep such a column as JSON text.
    empty = [name for name, dtype in frame.schema.items() if _has_empty_struct(dtype)]
    if empty:
        frame = frame.with_columns(
            pl.Series(k, [_as_text(r.get(k)) for r in rows], dtype=pl.String) for k in empty
        )
    return frame


def _has_empty_struct(dtype: Any) -> bool:
    import polars as pl

    if isinstance(dtype, pl.Struct):
        return not dtype.fields or any(_has_empty_struct(f.dtype) for f in dtype.fields)
    inner = getattr(dtype, "inner", None)
    return inner is not None and _has_empty_struct(inner)


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
