"""The published dataset: `data/sft` (kept rows, TRL-ready) built from `data/all`, with token counts.

`data/all` keeps every sample with its verdict and filter columns; `data/sft` keeps the rows that
passed the filter (`keep == True`) or, when no filter ran, every error-free, complete sample. Each
`data/sft` row carries `messages` (the user turn, then the assistant turn) plus `prompt_id`, `sample`,
`source`, `num_tokens` and the verdict columns, so `trl sft --dataset_config sft` trains on it as is.

Token counts (`num_tokens`, the whole conversation) come from, in order of preference:
  1. a local tokenizer (`card.tokenizer`: a folder, or a model id already in the Hugging Face cache),
     with its chat template when it has one;
  2. the teacher's own usage numbers (`prompt_tokens + completion_tokens`) when every row has them;
  3. an approximation: the number of pre-tokenizer pieces (words, single digits, punctuation runs,
     newlines), the split Qwen2/GPT-4-style tokenizers make before BPE. BPE never merges across
     pieces, so this is a lower bound; rare words split further. The card names the method used.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distill import schema
from distill.errors import ConfigError, InputError, StageError
from distill.reports import key_value_table
from distill.run import RunDir, writes_run

if TYPE_CHECKING:
    import polars as pl

    from distill.publishing.config import CardConfig

log = logging.getLogger(__name__)

# Columns of `data/sft`, in this order, when present in `data/all`.
VERDICT_COLUMNS = (
    schema.MATH_VERIFIED,
    schema.CODE_VERIFIED,
    schema.FORMAT_OK,
    schema.COMPLETE,
    schema.CORRECT,
    schema.PASS_RATE,
)
SFT_COLUMNS = (
    schema.MESSAGES,
    schema.PROMPT_ID,
    schema.SAMPLE,
    schema.SOURCE,
    schema.NUM_TOKENS,
    *VERDICT_COLUMNS,
)
REQUIRED_COLUMNS = (schema.PROMPT_ID, schema.SAMPLE, schema.MESSAGES)

TOKENS_BY_TOKENIZER = "tokenizer"
TOKENS_BY_TEACHER_USAGE = "teacher_usage"
TOKENS_BY_APPROXIMATION = "approximation"
# Pieces a Qwen2/GPT-4-style pre-tokenizer splits text into; BPE never merges across them.
# CJK characters are one piece each (BPE vocabularies rarely merge them).
_CJK = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}"
PRETOKENIZER_PIECES = (
    rf"[{_CJK}]|[^\r\n\p{{L}}\p{{N}}]?[\p{{L}}--[{_CJK}]]+|\p{{N}}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
)

# Row-schema migrations: version v → v+1, applied in order to runs written by an older distill.
MIGRATIONS: dict[int, Callable[[pl.LazyFrame], pl.LazyFrame]] = {}


@dataclass
class DatasetReport:
    """What `build_dataset` wrote."""

    rows_all: int
    rows_sft: int
    prompts: int
    selection: str  # "keep" (the filter's verdict) or "complete" (no filter ran)
    token_method: str
    tokenizer: str | None
    shards: dict[str, list[Path]] = field(default_factory=dict)

    @property
    def token_source(self) -> str:
        """How num_tokens was counted, with the tokenizer's name when one was used."""
        return self.token_method + (f" ({self.tokenizer})" if self.tokenizer else "")

    def summary(self) -> str:
        return (
            f"data/sft {self.rows_sft:,} of {self.rows_all:,} rows ({self.prompts:,} prompts, "
            f"selected by {self.selection}); num_tokens by {self.token_source}"
        )

    def table_rows(self) -> list[tuple[str, str]]:
        rows = [
            ("rows (all)", f"{self.rows_all:,}"),
            ("rows (sft)", f"{self.rows_sft:,}"),
            ("prompts", f"{self.prompts:,}"),
            ("sft selection", self.selection),
            ("num_tokens", self.token_source),
        ]
        for config, files in self.shards.items():
            rows.append((f"shards ({config})", f"{len(files)} in {files[0].parent}" if files else "0"))
        return rows

    def as_table(self) -> Any:
        return key_value_table("dataset", self.table_rows())

    def to_stats(self) -> dict[str, Any]:
        return {
            "rows_all": self.rows_all,
            "rows_sft": self.rows_sft,
            "prompts": self.prompts,
            "selection": self.selection,
            "token_method": self.token_method,
            "tokenizer": self.tokenizer,
        }

    @classmethod
    def from_stats(cls, stats: Mapping[str, Any]) -> DatasetReport:
        return cls(
            rows_all=int(stats.get("rows_all") or 0),
            rows_sft=int(stats.get("rows_sft") or 0),
            prompts=int(stats.get("prompts") or 0),
            selection=str(stats.get("selection") or ""),
            token_method=str(stats.get("token_method") or ""),
            tokenizer=stats.get("tokenizer"),
        )


# ── schema ────────────────────────────────────────────────────────────────
def check_schema(run: RunDir) -> int:
    """The row-schema version `run` was written with; raises StageError when it cannot be read."""
    version = run.read_json(run.manifest).get("schema_version", schema.SCHEMA_VERSION)
    if not isinstance(version, int):
        raise StageError(f"{run.manifest}: schema_version {version!r} is not an integer")
    if version > schema.SCHEMA_VERSION:
        raise StageError(
            f"{run.root} was written by a newer distill (row schema v{version}; this one reads "
            f"v{schema.SCHEMA_VERSION}): upgrade distill to read it"
        )
    missing = [v for v in range(version, schema.SCHEMA_VERSION) if v not in MIGRATIONS]
    if missing:
        raise StageError(
            f"{run.root} was written with row schema v{version} and this distill reads "
            f"v{schema.SCHEMA_VERSION} with no migration from v{missing[0]}: re-export it with "
            f"the distill version that made it, or regenerate the run"
        )
    return version


def scan_all(run: RunDir) -> pl.LazyFrame:
    """`data/all`, migrated to the current row schema and checked for the columns every stage needs."""
    version = check_schema(run)
    if not run.has_rows("all"):
        raise StageError(f"{run.config_dir('all')} has no Parquet shards: run `distill generate` first")
    frame = run.scan("all")
    for v in range(version, schema.SCHEMA_VERSION):
        frame = MIGRATIONS[v](frame)
    names = frame.collect_schema().names()
    for column in REQUIRED_COLUMNS:
        if column not in names:
            raise InputError(
                "missing; it is not a distill run's dataset", path=run.config_dir("all"), field=column
            )
    return frame


def data_fingerprint(run: RunDir, *configs: str) -> str:
    """A short hash of the shard files (names, sizes, times) of `configs`; changes when they are rewritten."""
    digest = hashlib.sha256()
    for config in configs or ("all",):
        for path in run.shard_files(config):
            st = path.stat()
            digest.update(f"{config}/{path.name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


# ── selection and tokens ──────────────────────────────────────────────────
def sft_selection(names: list[str]) -> tuple[pl.Expr, str]:
    """The rows of `data/all` that go into `data/sft`, and the rule's name."""
    import polars as pl

    # A row without a conversation (or, where the column exists, without a prompt) is never training data.
    usable = pl.col(schema.MESSAGES).is_not_null()
    if schema.PROMPT in names:
        usable &= pl.col(schema.PROMPT).is_not_null() & (pl.col(schema.PROMPT) != "")
    if schema.KEEP in names:
        return pl.col(schema.KEEP).fill_null(False) & usable, "keep"
    rule = usable
    if schema.ERROR in names:
        rule &= pl.col(schema.ERROR).is_null()
    if schema.COMPLETE in names:
        rule &= pl.col(schema.COMPLETE).fill_null(False)
    return rule, "complete"


def count_tokens(frame: pl.DataFrame, tokenizer: Path | str | None = None) -> tuple[pl.Series, str]:
    """Tokens per conversation in `frame[messages]` and the method used (see the module docstring)."""
    import polars as pl

    if tokenizer is not None:
        return pl.Series(
            schema.NUM_TOKENS, _count_with_tokenizer(frame, Path(tokenizer)), dtype=pl.Int64
        ), TOKENS_BY_TOKENIZER
    usage = (schema.PROMPT_TOKENS, schema.COMPLETION_TOKENS)
    if frame.height and all(c in frame.columns and frame[c].null_count() == 0 for c in usage):
        total = (frame[schema.PROMPT_TOKENS] + frame[schema.COMPLETION_TOKENS]).cast(pl.Int64)
        return total.alias(schema.NUM_TOKENS), TOKENS_BY_TEACHER_USAGE
    pieces = frame.select(
        pl.col(schema.MESSAGES)
        .list.eval(pl.element().struct.field("content").fill_null("").str.count_matches(PRETOKENIZER_PIECES))
        .list.sum()
        .fill_null(0)
        .cast(pl.Int64)
        .alias(schema.NUM_TOKENS)
    )
    return pieces.to_series(), TOKENS_BY_APPROXIMATION


def _count_with_tokenizer(frame: pl.DataFrame, path: Path, batch: int = 256) -> list[int]:
    from transformers import AutoTokenizer

    try:  # a folder, or a model id already in the local Hugging Face cache: never a download
        tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"card.tokenizer: {path} is neither a tokenizer folder nor a model id in the local Hugging Face "
            f"cache ({str(e).splitlines()[0][:120]})"
        ) from e
    conversations = frame[schema.MESSAGES].to_list()
    counts: list[int] = []
    for start in range(0, len(conversations), batch):
        chunk = [
            [{"role": m["role"], "content": m["content"] or ""} for m in conv or []]
            for conv in conversations[start : start + batch]
        ]
        if tok.chat_template:
            texts = tok.apply_chat_template(chunk, tokenize=False)
        else:
            texts = ["\n".join(m["content"] for m in conv) for conv in chunk]
        counts.extend(len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"])
    return counts


# ── the stage ─────────────────────────────────────────────────────────────
@writes_run("card")
def build_dataset(run: RunDir, cfg: CardConfig | None = None) -> DatasetReport:
    """Write `data/sft` from `data/all` (kept rows, TRL-ready, with `num_tokens`); returns what it wrote."""
    import polars as pl

    tokenizer = cfg.tokenizer if cfg is not None else None
    frame = scan_all(run)
    names = frame.collect_schema().names()
    rule, selection = sft_selection(names)
    totals = frame.select(
        pl.len().alias("rows"), pl.col(schema.PROMPT_ID).n_unique().alias("prompts")
    ).collect()
    wanted = [c for c in (*SFT_COLUMNS, schema.PROMPT_TOKENS, schema.COMPLETION_TOKENS) if c in names]
    kept = frame.filter(rule).select(wanted).collect()
    if schema.SOURCE not in kept.columns:
        kept = kept.with_columns(pl.lit(None, dtype=pl.String).alias(schema.SOURCE))
    tokens, method = count_tokens(kept, tokenizer)
    kept = kept.with_columns(tokens).select(
        [c for c in SFT_COLUMNS if c in kept.columns or c == schema.NUM_TOKENS]
    )
    sft_files = run.write_rows(kept, "sft")
    run.mark_done(
        "dataset",
        _dataset_fingerprint(run, tokenizer),
        rows=kept.height,
        token_method=method,
        tokenizer=str(tokenizer) if tokenizer else None,
    )
    log.info(
        "data/sft: %d of %d rows (%s), num_tokens by %s", kept.height, totals["rows"][0], selection, method
    )
    return DatasetReport(
        rows_all=int(totals["rows"][0]),
        rows_sft=kept.height,
        prompts=int(totals["prompts"][0]),
        selection=selection,
        token_method=method,
        tokenizer=str(tokenizer) if tokenizer else None,
        shards={"all": run.shard_files("all"), "sft": sft_files},
    )


def is_dataset_current(run: RunDir, tokenizer: Path | str | None = None) -> bool:
    """Whether `data/sft` was built from the `data/all` now on disk, with the same tokenizer setting."""
    return run.has_rows("sft") and run.is_done("dataset", _dataset_fingerprint(run, tokenizer))


def _dataset_fingerprint(run: RunDir, tokenizer: Path | str | None) -> str:
    return hashlib.sha256(f"{data_fingerprint(run, 'all')}|{tokenizer or ''}".encode()).hexdigest()[:16]
