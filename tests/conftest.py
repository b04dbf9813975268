"""Shared fixtures. Each area keeps its fixtures in tests/plugins/<area>.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from distill.run import RunDir
from tests.datafiles import data_dir

pytest_plugins = [
    "tests.plugins.network",
    "tests.plugins.teacher",
    "tests.plugins.models",
    "tests.plugins.hub",
    "tests.plugins.badinput",
    "tests.plugins.viewer",
]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """tests/data as plain files: real benchmarks, traces and labelled verifier pairs (tests/data/SOURCES.md)."""
    return data_dir()


@pytest.fixture
def run_dir(tmp_path: Path) -> RunDir:
    return RunDir(tmp_path / "run")
