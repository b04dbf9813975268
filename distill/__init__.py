"""distill: distil reasoning data from a teacher, verify it, filter it, publish it, train and evaluate a student.

    from distill import load_recipe, run_pipeline
    report = run_pipeline(load_recipe("recipes/openr1-math.yaml"))

Each stage is also a function taking its own settings and a `RunDir`:
generate → verify → apply_filters → build_dataset / write_card → push → sft → evaluate.
Importing this package stays light (pydantic, no torch): heavy libraries load inside the stages.

The map, bottom floor first (a module imports only from its own floor or the floors below;
tests/test_architecture.py checks it). Each stage folder has the same rooms: `config.py` (its settings,
at the bottom), `stage.py` (the function), `report.py` (what it returns: summary, table rows, stats);
`publishing/` has three small stages (dataset, card, push), each report beside its function.

- `errors.py`, `schema.py`: the error tree every message comes from, and the column names of a run's rows.
- `config.py`, `run.py`, `progress.py`, `reports.py`, `sources.py`, `reasoning.py`: the shared ground.
  `StageConfig` and `resolve()`, the one precedence (defaults < recipe or run.yaml < key=value < flags);
  `RunDir`, the only code that knows where a run's files live and the one writer of run.yaml; the
  progress protocol; the `StageReport` protocol; "a file, a folder, a run or a Hub id"; the one
  normaliser of the shapes teachers return reasoning in.
- `teachers/`: the client seam. `base.py` holds the `Teacher` protocol and request/completion types,
  `openai.py` an OpenAI-compatible endpoint over aiohttp, `pool.py` several endpoints as one,
  `vllm_server.py` a `vllm serve` subprocess with its `VllmConfig`.
- `generation/`: prompts → teacher samples. `stage.py` is `generate()`; `inputs.py` reads prompt files;
  `engine.py` is the worker pool; `ratelimit.py` paces it; `store.py` is the crash-safe SQLite store (the
  only SQL); `export.py` turns the store into data/all; `sampling.py` is verification in the loop;
  `merge.py` joins shard runs.
- `verification/`: `verify()` scores every sample with the verifiers of `filters/`; `report.py` counts
  the verdicts per verifier and source.
- `filtering/`: `apply_filters()`; `config.py` holds the rules' order and settings, `rules.py` computes
  every rule's column in one batched pass over data/all.
- `publishing/`: the dataset (`dataset.py`), its card (`card.py`, with the numbers in `card_stats.py`,
  the pictures in `card_plots.py` and what may be shown in `disclosure.py`) and the Hub upload (`push.py`).
- `training/`: `sft()` (`train.py`, read top to bottom), its config, data, chat templates, attention
  kernels, trainer arguments (`arguments.py`), DeepSpeed Ulysses pieces (`ulysses.py`), memory estimate,
  throughput meter, multi-GPU launcher and model upload; `tiny.py` builds the tiny local students.
- `evaluation/`: `evaluate()` (`stage.py`); the benchmark registry (`benchmarks.py`) with one module of
  keyword-argument specs per family (`math_`, `code_`, `choice_benchmarks.py`); each benchmark's prompts
  (`prompts.py`), the scores (`metrics.py`), DeepSeek's published numbers (`reference_table.py`) and the
  report (`report.py`).
- `judge.py`: a generic LLM judge through the generation engine (used by verification and filtering).
- `pipeline/`: `run_pipeline()` behind `distill run` (`run.py`); which stages take part and their
  fingerprints (`graph.py`); the checks before the first expensive step (`checks.py`); the stage runners
  (`stages.py`); the dry-run plan (`plan.py`); the `services=` seam for what runs beside the stages.
- `recipe.py`, `reference.py`, `cli/`: the top floor. A recipe composes every stage's config; the
  reference documents it; the CLI is one thin command per stage, one module per family of commands.
- `demo/`: the offline demo's problems, teacher and tiny student, plugged in through `services=` by
  `distill run`; `testing/`: a local OpenAI-compatible server on 127.0.0.1 for the tests, the demo and the
  benchmarks. Neither is on a stage's import path.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names below load on first access (`distill.generate(...)`), not on `import distill`
    from distill.errors import DistillError
    from distill.evaluation.stage import evaluate
    from distill.filtering.stage import apply_filters
    from distill.generation.stage import generate
    from distill.pipeline.run import run_pipeline
    from distill.publishing.card import write_card
    from distill.publishing.dataset import build_dataset
    from distill.publishing.push import push
    from distill.recipe import Recipe, load_recipe
    from distill.run import RunDir
    from distill.training.train import sft
    from distill.verification.stage import verify

__version__ = "0.1.0"

# Exported name → the module defining it. Importing every stage eagerly cost every `distill` command
# ~0.2 s CPU of start-up (pydantic models, rich, yaml of all stages); see bench/RESULTS.md "Generation".
# No exported name is also a submodule's name, so importing a submodule never shadows a function.
_LAZY = {
    "DistillError": "distill.errors",
    "Recipe": "distill.recipe",
    "RunDir": "distill.run",
    "apply_filters": "distill.filtering.stage",
    "build_dataset": "distill.publishing.dataset",
    "evaluate": "distill.evaluation.stage",
    "generate": "distill.generation.stage",
    "load_recipe": "distill.recipe",
    "push": "distill.publishing.push",
    "run_pipeline": "distill.pipeline.run",
    "sft": "distill.training.train",
    "verify": "distill.verification.stage",
    "write_card": "distill.publishing.card",
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
