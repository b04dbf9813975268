"""Registry benchmarks without a local file: fetched from the Hub at the registry's pinned commit, cached.

The data files of the benchmark's dataset repository are downloaded with huggingface_hub at
`spec.revision` (a commit, so the items never change under a published score); distill.evaluation.benchmarks
reads and normalises the split's files once and caches the rows as Parquet under `cache_file`, a
name that carries the revision. With no network (or HF_HUB_OFFLINE=1) the error is one line naming the
`--benchmark NAME=PATH` to pass instead.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from distill.errors import ConfigError

if TYPE_CHECKING:
    from distill.evaluation.spec import BenchmarkSpec

log = logging.getLogger(__name__)

__all__ = ["cache_file", "fetch_split_files", "split_files"]

DATA_PATTERNS = ["*.parquet", "*.jsonl", "*.json", "*.jsonl.gz", "**/*.parquet", "**/*.jsonl", "**/*.json"]


def cache_file(spec: BenchmarkSpec, cache_dir: Path) -> Path:
    """Where the normalised rows of `spec` (at its revision) are cached."""
    rev = (spec.revision or "main")[:12]
    safe = re.sub(
        r"[^A-Za-z0-9_.-]+", "_", f"{spec.name}-v{spec.version}-{spec.config or 'default'}-{spec.split}-{rev}"
    )
    return cache_dir / f"{safe}.parquet"


def fetch_split_files(spec: BenchmarkSpec, folder: Path) -> list[Path]:
    """Download the benchmark's dataset repo at spec.revision into `folder`; return its split's data files."""
    hint = offline_hint(spec)
    if spec.hub_id is None or _is_offline():
        raise ConfigError(f"benchmark {spec.name!r} is not cached and the Hub is offline: {hint}")
    if spec.revision is None:
        log.warning(
            "benchmark %s: no pinned revision in the registry; reading %s at main", spec.name, spec.hub_id
        )
    files = split_files(_download(spec, folder, hint), spec)
    if not files:
        raise ConfigError(f"benchmark {spec.name!r}: no {spec.split!r} data file in {spec.hub_id}; {hint}")
    return files


def offline_hint(spec: BenchmarkSpec) -> str:
    return f"pass a local copy with --benchmark {spec.name}=PATH (JSONL, JSON list or Parquet)"


def split_files(folder: Path, spec: BenchmarkSpec) -> list[Path]:
    """The data files of `spec.split` in a downloaded dataset repo, within the config's folder when it has one.

    Hub layouts: `test.jsonl`, `data/test-00000-of-00001.parquet`, `main/test-….parquet` (config main).
    """
    data = [p for p in sorted(folder.rglob("*")) if p.is_file() and _is_data(p)]
    split = re.compile(rf"(^|[/_-]){re.escape(spec.split)}([._-]|$)")
    in_split = [p for p in data if split.search(p.relative_to(folder).as_posix())]
    if spec.config:
        in_config = [p for p in in_split if spec.config in p.relative_to(folder).parts[:-1]]
        in_split = in_config or in_split
    return in_split


def _download(spec: BenchmarkSpec, folder: Path, hint: str) -> Path:
    from huggingface_hub import snapshot_download

    assert spec.hub_id is not None
    try:
        return Path(
            snapshot_download(
                spec.hub_id,
                repo_type="dataset",
                revision=spec.revision,
                cache_dir=str(folder),
                allow_patterns=DATA_PATTERNS,
                endpoint=os.environ.get("HF_ENDPOINT"),  # read now, not when huggingface_hub was imported
            )
        )
    except Exception as e:  # noqa: BLE001 - process boundary: any Hub/network failure means "use a file"
        first = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise ConfigError(f"benchmark {spec.name!r}: cannot fetch {spec.hub_id} ({first}); {hint}") from e


def _is_data(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith((".parquet", ".jsonl", ".json", ".jsonl.gz")) and not name.startswith(".")


def _is_offline() -> bool:
    return any(
        os.environ.get(v, "").lower() in ("1", "true", "yes")
        for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "DISTILL_OFFLINE")
    )
