"""distill: distil reasoning data from a teacher, verify it, filter it, publish it, train and evaluate a student.

    from distill import load_recipe, run_pipeline
    report = run_pipeline(load_recipe("recipes/demo.yaml"))

Each stage is also a function taking its own settings and a `RunDir`:
generate → verify → apply_filters → build_dataset / write_card → push → sft → evaluate.
Importing this package stays light (pydantic, no torch): heavy libraries load inside the stages.
Note: the functions `generate`, `verify`, `push`, `sft` and `evaluate` share their names with the
modules that define them; import settings as `from distill.generate import GenerateConfig`.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names below load on first access (`distill.generate(...)`), not on `import distill`
    from distill.card import write_card
    from distill.dataset import build_dataset
    from distill.errors import DistillError
    from distill.evaluate import evaluate
    from distill.filtering import apply_filters
    from distill.generate import generate
    from distill.pipeline import run_pipeline
    from distill.push import push
    from distill.recipe import Recipe, load_recipe
    from distill.run import RunDir
    from distill.sft.train import sft
    from distill.verify import verify

__version__ = "0.1.0"

# Exported name → the module defining it. Importing every stage eagerly cost every `distill` command
# ~0.2 s CPU of start-up (pydantic models, rich, yaml of all stages); see bench/RESULTS.md "Generation".
_LAZY = {
    "DistillError": "distill.errors",
    "Recipe": "distill.recipe",
    "RunDir": "distill.run",
    "apply_filters": "distill.filtering",
    "build_dataset": "distill.dataset",
    "evaluate": "distill.evaluate",
    "generate": "distill.generate",
    "load_recipe": "distill.recipe",
    "push": "distill.push",
    "run_pipeline": "distill.pipeline",
    "sft": "distill.sft.train",
    "verify": "distill.verify",
    "write_card": "distill.card",
}

__all__ = [
    "DistillError",
    "Recipe",
    "RunDir",
    "__version__",
    "apply_filters",
    "build_dataset",
    "evaluate",
    "generate",
    "load_recipe",
    "push",
    "run_pipeline",
    "sft",
    "verify",
    "write_card",
]


def __getattr__(name: str) -> Any:
    """Load an exported name on first access and cache it in the package namespace."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'distill' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _Package(types.ModuleType):
    """Keeps `distill.generate` (and verify, push, evaluate, sft) the function, as with eager imports.

    Importing the submodule `distill.generate` makes the import system set the package attribute
    `generate` to the module; the exported function of the same name must win, so that assignment
    is skipped and the name resolves through `__getattr__`.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and value.__name__ == f"{__name__}.{name}" and name in _LAZY:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
