"""Training rows: load conversations, validate them, tokenize with assistant-only labels, drop over-long ones.

Sources: a run directory (its `sft` view, written by `build_dataset`), a local .jsonl/.json/.parquet
file or folder of Parquet shards, or a Hub dataset id. Every row needs `messages`: an optional system
turn, then user/assistant turns alternating, ending with an assistant turn. Labels are the input ids on
assistant tokens (the whole `<think>…</think>`, the answer and the end-of-turn token) and -100
elsewhere; they come from the chat template's `{% generation %}` block.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distill import schema, sources
from distill.errors import ConfigError, InputError
from distill.run import RunDir

log = logging.getLogger(__name__)

IGNORE = -100
_ROLES = ("system", "user", "assistant")


@dataclass
class TokenizedData:
    """Tokenized rows ready for the trainer, and what was left out."""

    input_ids: list[list[int]]
    labels: list[list[int]]
    rows_in: int
    dropped_long: int = 0
    truncated: int = 0
    empty_target: int = 0
    lengths: list[int] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return sum(self.lengths)

    @property
    def target_tokens(self) -> int:
        return sum(sum(1 for t in lab if t != IGNORE) for lab in self.labels)

    def to_dataset(self):  # noqa: ANN201 - datasets is imported lazily
        from datasets import Dataset

        return Dataset.from_dict({"input_ids": self.input_ids, "labels": self.labels})

    def save(self, folder: Path) -> Path:
        """Write rows and counts, so that launched ranks train on them without tokenizing again."""
        import json
        import shutil

        if folder.exists():
            shutil.rmtree(folder)
        self.to_dataset().save_to_disk(str(folder))
        counts = {
            "rows_in": self.rows_in,
            "dropped_long": self.dropped_long,
            "truncated": self.truncated,
            "empty_target": self.empty_target,
        }
        (folder / "counts.json").write_text(json.dumps(counts), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: Path) -> TokenizedData:
        import json

        from datasets import load_from_disk

        ds = load_from_disk(str(folder))
        counts = json.loads((folder / "counts.json").read_text(encoding="utf-8"))
        ids, labels = ds["input_ids"], ds["labels"]
        return cls(list(ids), list(labels), lengths=[len(x) for x in ids], **counts)


def _tokenize_chunk(
    conversations: Sequence[Sequence[dict[str, Any]]], tokenizer: Any, max_length: int, drop_long: bool
) -> TokenizedData:
    out = TokenizedData([], [], rows_in=len(conversations))
    for conv in conversations:
        enc = tokenizer.apply_chat_template(
            list(conv), tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        ids, mask = list(enc["input_ids"]), list(enc["assistant_masks"])
        if len(ids) > max_length:
            if drop_long:
                out.dropped_long += 1
                continue
            ids, mask = ids[:max_length], mask[:max_length]
            out.truncated += 1
        labels = [t if m else IGNORE for t, m in zip(ids, mask, strict=True)]
        if all(lab == IGNORE for lab in labels):
            out.empty_target += 1
            continue
        out.input_ids.append(ids)
        out.labels.append(labels)
        out.lengths.append(len(ids))
    return out


_WORKER_TOKENIZER: list[Any] = []  # per worker process only (set by the pool initializer)


def _set_worker_tokenizer(tokenizer: Any) -> None:
    _WORKER_TOKENIZER[:] = [tokenizer]


def _tokenize_chunk_in_worker(
    conversations: Sequence[Sequence[dict[str, Any]]], max_length: int, drop_long: bool
) -> TokenizedData:
    return _tokenize_chunk(conversations, _WORKER_TOKENIZER[0], max_length, drop_long)


def load_conversations(source: str | Path, *, split: str = "train") -> tuple[list[list[dict[str, Any]]], str]:
    """The `messages` of every row of `source`, validated; returns (conversations, a label for errors)."""
    found = sources.resolve(source)
    path = found.path
    if found.kind == "run":
        run = RunDir(path)
        if not run.has_rows("sft"):
            hint = (
                f"run `distill card {path}` first (it writes data/sft from the kept rows)"
                if run.has_rows("all")
                else "no rows at all: run `distill generate` first"
            )
            raise InputError(f"the run has no `sft` view ({run.config_dir('sft')}): {hint}", path=path)
        files = run.shard_files("sft")
        frame = _read_frames(files)
        label = str(run.config_dir("sft"))
    elif path.is_file() and path.suffix in (".jsonl", ".ndjson", ".json"):
        conversations = _read_json_messages(path)
        validate_conversations(conversations, str(path))
        return conversations, str(path)
    elif found.is_local:
        files = sorted(path.glob("**/*.parquet")) if path.is_dir() else [path]
        if not files:
            raise InputError("no .parquet files in this folder", path=path)
        frame = _read_frames(files)
        label = str(path)
    elif found.kind == "hub":
        return _load_hub(str(found.hub_id), split), str(source)
    else:
        raise InputError(
            "dataset not found: give a run directory, a .jsonl/.parquet file or a Hub id", path=path
        )
    if schema.MESSAGES not in frame.columns:
        raise InputError(
            f"no {schema.MESSAGES!r} column (columns: {', '.join(frame.columns[:12])})",
            path=label,
            field=schema.MESSAGES,
        )
    conversations = frame[schema.MESSAGES].to_list()
    validate_conversations(conversations, label)
    return conversations, label


def _read_json_messages(path: Path) -> list[Any]:
    """The `messages` of a .jsonl (one object a line) or .json (a list of objects) file."""
    import json

    try:
        text = path.read_text(encoding="utf-8")
        rows = (
            json.loads(text)
            if path.suffix == ".json"
            else [json.loads(x) for x in text.splitlines() if x.strip()]
        )
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"cannot read: {str(e).splitlines()[0][:200]}", path=path) from e
    if not isinstance(rows, list) or not rows:
        raise InputError("expected rows (one JSON object a line, or a JSON list)", path=path)
    if not isinstance(rows[0], dict) or schema.MESSAGES not in rows[0]:
        cols = ", ".join(list(rows[0])[:12]) if isinstance(rows[0], dict) else type(rows[0]).__name__
        raise InputError(f"no {schema.MESSAGES!r} column (columns: {cols})", path=path, field=schema.MESSAGES)
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or schema.MESSAGES not in row:
            raise InputError(f"no {schema.MESSAGES!r}", path=path, row=i, field=schema.MESSAGES)
        out.append(row[schema.MESSAGES])
    return out


def _read_frames(files: Sequence[Path]):  # noqa: ANN202 - polars is imported lazily
    import polars as pl

    frames = []
    for f in files:
        try:
            if f.suffix == ".parquet":
                frames.append(pl.read_parquet(f))
            elif f.suffix in (".jsonl", ".ndjson"):
                frames.append(pl.read_ndjson(f))
            elif f.suffix == ".json":
                frames.append(pl.read_json(f))
            else:
                raise InputError("unsupported file type (use .jsonl, .json or .parquet)", path=f)
        except (pl.exceptions.ComputeError, OSError, ValueError) as e:
            raise InputError(f"cannot read: {str(e).splitlines()[0][:200]}", path=f) from e
    return pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]


def _load_hub(dataset_id: str, split: str) -> list[list[dict[str, Any]]]:
    import datasets

    try:
        ds = datasets.load_dataset(dataset_id, split=split)
    except (FileNotFoundError, ValueError, ConnectionError, OSError) as e:
        raise InputError(f"cannot load Hub dataset: {str(e).splitlines()[0][:200]}", path=dataset_id) from e
    if schema.MESSAGES not in ds.column_names:
        raise InputError(f"no {schema.MESSAGES!r} column", path=dataset_id, field=schema.MESSAGES)
    conversations = ds[schema.MESSAGES]
    validate_conversations(conversations, dataset_id)
    return conversations


def validate_conversations(conversations: Sequence[Any], label: str) -> None:
    """Raise InputError (file, row, field) at the first malformed conversation."""
    if not conversations:
        raise InputError("the dataset is empty", path=label)
    for i, conv in enumerate(conversations):
        problem = _conversation_problem(conv)
        if problem:
            raise InputError(problem, path=label, row=i, field=schema.MESSAGES)


def _conversation_problem(conv: Any) -> str | None:
    if not isinstance(conv, (list, tuple)) or not conv:
        return "expected a non-empty list of {role, content} turns"
    roles = []
    for j, turn in enumerate(conv):
        if not isinstance(turn, dict) or "role" not in turn or "content" not in turn:
            return f"turn {j}: expected a mapping with 'role' and 'content'"
        if turn["role"] not in _ROLES:
            return f"turn {j}: unknown role {turn['role']!r} (expected one of {', '.join(_ROLES)})"
        if not isinstance(turn["content"], str):
            return f"turn {j}: content must be a string"
        roles.append(turn["role"])
    body = roles[1:] if roles[0] == "system" else roles
    if "system" in body:
        return "a system turn may only come first"
    expected = ["user", "assistant"] * (len(body) // 2 + 1)
    if not body or body != expected[: len(body)]:
        return f"role order {'/'.join(roles)}: expected [system,] user, assistant, user, assistant…"
    if body[-1] != "assistant":
        return "the last turn must be the assistant's (nothing to learn otherwise)"
    return None


def tokenize_conversations(
    conversations: Sequence[Sequence[dict[str, Any]]],
    tokenizer: Any,
    *,
    max_length: int,
    drop_long: bool = True,
    num_proc: int | None = None,
) -> TokenizedData:
    """Render with the chat template, label assistant tokens only, drop (or truncate) over-long rows.

    Rendering runs at ~0.2-0.5M tokens/s per core, so large datasets are split over `num_proc`
    processes (default: up to 16 cores when there are more than 2,000 rows); row order is kept.
    """
    out = TokenizedData([], [], rows_in=len(conversations))
    procs = (
        num_proc
        if num_proc is not None
        else (min(16, os.cpu_count() or 1) if len(conversations) > 2000 else 1)
    )
    if procs > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        step = -(-len(conversations) // (procs * 4))
        chunks = [list(conversations[i : i + step]) for i in range(0, len(conversations), step)]
        with ProcessPoolExecutor(
            procs, mp_context=mp.get_context("fork"), initializer=_set_worker_tokenizer, initargs=(tokenizer,)
        ) as pool:
            parts = list(
                pool.map(
                    _tokenize_chunk_in_worker, chunks, [max_length] * len(chunks), [drop_long] * len(chunks)
                )
            )
    else:
        parts = [_tokenize_chunk(conversations, tokenizer, max_length, drop_long)]
    for part in parts:
        out.input_ids += part.input_ids
        out.labels += part.labels
        out.lengths += part.lengths
        out.dropped_long += part.dropped_long
        out.truncated += part.truncated
        out.empty_target += part.empty_target
    if out.empty_target == out.rows_in:
        raise ConfigError(
            "the chat template marks no assistant token as a target in any row: "
            "its {% generation %} block is missing or misplaced"
        )
    if not out.input_ids:
        raise InputError(
            f"no sample left after length filtering: all {out.dropped_long} rows are longer than "
            f"max_length={max_length} tokens (raise sft.max_length or set sft.drop_long=false)"
        )
    if out.dropped_long:
        log.warning(
            "dropped %d of %d samples longer than max_length=%d tokens",
            out.dropped_long,
            out.rows_in,
            max_length,
        )
    return out
