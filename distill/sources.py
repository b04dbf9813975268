"""What a data argument names: a run directory, a data file, a dataset folder, a Hub id, or nothing.

Prompts (`generate.prompts`), the pipeline's pre-flight check and SFT data (`sft.dataset`) all take
"a file, a folder, a run or a Hub id"; they ask this one function which it is, so the three can never
disagree about a path like `AI-MO/NuminaMath-1.5` (a Hub id: its dot is not a file suffix) or
`data/math.jsonl` that is missing (a missing file, never a Hub id).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["DATA_SUFFIXES", "Source", "resolve"]

DATA_SUFFIXES = frozenset({".jsonl", ".ndjson", ".json", ".csv", ".parquet", ".gz"})
_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")

Kind = Literal["run", "folder", "file", "hub", "missing"]


@dataclass(frozen=True)
class Source:
    """A resolved data argument: its kind, and the local path or the Hub id it names."""

    kind: Kind
    path: Path
    hub_id: str | None = None

    @property
    def is_local(self) -> bool:
        return self.kind in ("run", "folder", "file")


def resolve(source: str | Path) -> Source:
    """Which of run / folder / file / Hub id / missing `source` is; touches only the local disk."""
    text = str(source)
    path = Path(text)
    if path.is_dir():
        is_run = (path / "data").is_dir() or (path / "run.yaml").is_file()
        return Source("run" if is_run else "folder", path)
    if path.exists():
        return Source("file", path)
    if _HUB_ID.fullmatch(text) and not text.startswith(".") and path.suffix.lower() not in DATA_SUFFIXES:
        return Source("hub", path, hub_id=text)
    return Source("missing", path)
