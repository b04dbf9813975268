"""tests/data is what SOURCES.md says it is: every file listed, every plain file the upstream bytes."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from tests.datafiles import SOURCE

ROW = re.compile(r"^\| `(?P<file>[^`]+)` \| [\d,]+ \| .* \| `(?P<sha>[0-9a-f]{16})` \|")


def _listed() -> dict[str, str]:
    text = (SOURCE / "SOURCES.md").read_text(encoding="utf-8")
    return {m["file"]: m["sha"] for m in map(ROW.match, text.splitlines()) if m}


def test_every_data_file_is_listed_with_its_origin() -> None:
    stored = {str(p.relative_to(SOURCE)) for p in SOURCE.rglob("*") if p.is_file() and p.parent != SOURCE}
    assert stored == set(_listed())


def test_unpacked_files_are_the_upstream_bytes(shared_data: Path) -> None:
    for name, sha in _listed().items():
        plain = shared_data / name.removesuffix(".xz")
        assert hashlib.sha256(plain.read_bytes()).hexdigest()[:16] == sha, name


def test_no_tracked_file_reads_beside_the_checkout() -> None:
    root = SOURCE.parents[1]
    needle = "../" + "shared"  # spelled in two parts so this file does not match itself
    folders = ("distill", "filters", "bench", "tests", "recipes", "data_cards", ".ci")
    files = [*root.glob("*.*"), *(p for d in folders for p in (root / d).rglob("*"))]
    offenders = [
        str(p.relative_to(root))
        for p in files
        if p.is_file()
        and p.suffix in {".py", ".md", ".yaml", ".txt", ".j2", ".toml", ".slurm", ""}
        and needle in p.read_text(encoding="utf-8", errors="replace")
    ]
    assert offenders == []
