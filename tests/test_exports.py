"""The public surfaces of `distill` and `filters`: every exported name resolves, and importing stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("package", ["distill", "filters"])
def test_every_exported_name_resolves(package: str) -> None:
    module = __import__(package)
    assert module.__all__
    for name in module.__all__:
        assert getattr(module, name) is not None, name


def test_importing_the_packages_loads_no_heavy_library() -> None:
    code = ("import sys, distill, filters\n"
            "print(sorted(m for m in ('torch', 'sympy', 'polars', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
