"""distill: distil reasoning data from a teacher, verify it, filter it, publish it, train and evaluate a student.

    from distill import load_recipe, run_pipeline
    report = run_pipeline(load_recipe("recipes/demo.yaml"))

Each stage is also a function taking its own settings and a `RunDir`:
generate → verify → apply_filters → build_dataset / write_card → push → sft → evaluate.
Importing this package stays light (pydantic, no torch): heavy libraries load inside the stages.
Note: the functions `generate`, `verify`, `push`, `sft` and `evaluate` share their names with the
modules that define them; import settings as `from distill.generate import GenerateConfig`.
"""

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
