"""What the registry knows about one benchmark: where it lives, how to read it, how to ask and grade it.

Specs are written with keyword arguments, one module per family (`math_benchmarks.py`,
`code_benchmarks.py`, `choice_benchmarks.py`), so adding a benchmark is adding one entry there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["BenchmarkSpec"]


@dataclass(frozen=True, kw_only=True)
class BenchmarkSpec:
    """Where a benchmark lives and how to read it."""

    name: str
    version: str  # bump when the item set or its normalisation changes
    hub_id: str | None
    config: str | None
    split: str
    text_column: str
    answer_column: str | None
    kind: Literal["math", "code", "choice"]
    default_k: int  # samples per problem for pass@k / avg@k
    id_column: str | None = None
    checksum: str | None = None  # "sha256:<first 16 hex>" of the reference local file, when known
    passthrough: tuple[str, ...] = ()  # extra columns kept (code tests)
    items: int | None = None  # expected number of items, when known
    description: str = ""
    # How the user turn and the tests are built: "standard" by `kind`, or LiveCodeBench's own format
    # (its prompt template, and test cases decoded from its compressed columns).
    prompt_style: Literal["standard", "livecodebench"] = "standard"
    # How the gold answer sits in answer_column: as is, after `####` (GSM8K), or in the last \boxed{}.
    answer_format: Literal["plain", "hashes", "boxed"] = "plain"
    # The Hub commit it is read at (None: the default branch, not pinned). The commits in the registry are
    # those public evaluation configs pin; this machine has no Hub access to re-check them.
    revision: str | None = None
