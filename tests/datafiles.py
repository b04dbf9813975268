"""The real data the tests and benchmarks read, shipped in tests/data/ (origins and licenses: SOURCES.md).

The large files are stored xz-compressed (2.2 MB instead of 18 MB) but every reader wants plain
files at the same paths as the upstream layout (`traces/skyt1_27b_math500_outputs.jsonl`, …), so
`data_dir()` unpacks the folder once into a cache keyed by the compressed bytes and returns that
plain copy. A changed or added file gives a new key, so a stale copy is never read; the copy
appears by an atomic rename, so concurrent test workers never see half of it.

`DISTILL_TEST_DATA=/path` points every reader at another folder with the same layout instead
(e.g. a fuller local copy for a benchmark run).
"""

from __future__ import annotations

import hashlib
import lzma
import os
import shutil
import tempfile
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "data"
ENV = "DISTILL_TEST_DATA"

__all__ = ["ENV", "SOURCE", "data_dir", "unpack"]


def data_dir() -> Path:
    """The plain-file data folder: $DISTILL_TEST_DATA, else tests/data unpacked into a cache."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    files = _files()
    digest = hashlib.sha256()
    for f in files:
        digest.update(str(f.relative_to(SOURCE)).encode() + b"\0" + f.read_bytes())
    dest = Path(tempfile.gettempdir()) / f"distill-test-data-{digest.hexdigest()[:16]}"
    if not dest.is_dir():
        tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".", dir=dest.parent))
        unpack(tmp, files)
        try:
            tmp.rename(dest)
        except OSError:  # another worker renamed its complete copy first
            shutil.rmtree(tmp)
    return dest


def unpack(dest: Path, files: list[Path] | None = None) -> Path:
    """Copy tests/data into `dest` with every `.xz` file decompressed (same relative paths, suffix dropped)."""
    for f in files if files is not None else _files():
        out = dest / f.relative_to(SOURCE)
        out.parent.mkdir(parents=True, exist_ok=True)
        if f.suffix == ".xz":
            out.with_suffix("").write_bytes(lzma.decompress(f.read_bytes()))
        else:
            shutil.copyfile(f, out)
    return dest


def _files() -> list[Path]:
    return sorted(p for p in SOURCE.rglob("*") if p.is_file() and p.parent != SOURCE)
