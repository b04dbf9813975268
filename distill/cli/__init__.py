"""The `distill` command: one thin command per stage, one module per family of commands.

Each command parses its flags, resolves the stage's settings with `distill.config.resolve()` (recipe or
run.yaml, then `key=value` overrides, then contract flags), calls the library function and prints its
report. No logic lives here: no loops over rows, no defaults repeated from the config models.

    app.py          the Typer app, shared options, logging, and `main()` (one-line errors, exit codes)
    pipeline.py     distill run
    generation.py   distill generate, distill merge
    training.py     distill sft
    evaluation.py   distill eval
    stages.py       distill verify / filter / card / push (one run folder)
    viewer.py       distill view (a local web page over a run or an eval directory)
"""

from __future__ import annotations

# Importing a command module registers its commands on `app`.
from distill.cli import evaluation, generation, pipeline, stages, training, viewer  # noqa: F401
from distill.cli.app import app, main

__all__ = ["app", "main"]
