"""Shared fixtures. Each area keeps its fixtures in tests/plugins/<area>.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from distill.run import RunDir

pytest_plugins = [
    "tests.plugins.network", "tests.plugins.teacher", "tests.plugins.models", "tests.plugins.hub", "tests.plugins.viewer",
]

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DISTILL_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data: real benchmarks, traces and labelled verifier pairs."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"{SHARED_DATA} is missing: tests need ../shared/data beside the checkout")
    return SHARED_DATA


@pytest.fixture
def run_dir(tmp_path: Path) -> RunDir:
    return RunDir(tmp_path / "run")
