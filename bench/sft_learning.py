"""Does the student learn? Untrained vs trained on filtered traces vs trained on every trace, held-out set.

    python -m bench.sft_learning --check                       # recipes/learn-check.yaml on one GPU
    python -m bench.sft_learning --json out.json run_dir=runs/lc sft.epochs=4   # any key=value override

Runs `distill run` on the learning-check recipe (the demo teacher's traces for generated arithmetic
word problems → verify → filter → card → SFT of a ~20M-parameter random student → eval on held-out
problems), then, in the same run, the two baselines on the same held-out set: the same student with
its random weights, and the same student trained on the unfiltered `all` config. Prints one table
(pass@1 over k samples ± standard error, the share of samples that ended with EOS) and the pipeline's
stage times; `--check` exits 1 unless the trained student reaches the targets.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

from distill.demo.learning import LearningReport, learning_check
from distill.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "learn-check.yaml"
TARGET_PASS, TARGET_EOS, TARGET_SECONDS = 0.60, 0.99, 600.0


def device() -> str:
    """The machine, in words (the GPU when there is one)."""
    try:
        import torch

        if torch.cuda.is_available():
            return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    except ImportError:
        pass
    return f"CPU only ({os.cpu_count()} cores)"


def render(report: LearningReport) -> str:
    header = ("student", "trained on", "rows", "steps", "train", "pass@1", "ends with EOS", "problems×k")
    rows = [header, *report.rows()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    stages = ", ".join(f"{name} {sec:.0f}s" for name, sec in report.stages.items())
    lines += [
        f"card: {report.card!r}; held-out benchmark: {report.benchmark}",
        f"pipeline (distill run): {report.pipeline_seconds:.0f}s ({stages})",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="recipe key=value overrides")
    parser.add_argument("--recipe", type=Path, default=RECIPE)
    parser.add_argument("--no-unfiltered", action="store_true", help="skip the unfiltered comparison")
    parser.add_argument("--json", type=Path, help="write every number here")
    parser.add_argument(
        "--check",
        action="store_true",
        help=f"exit 1 unless pass@1 ≥ {TARGET_PASS:.0%}, EOS ≥ {TARGET_EOS:.0%} and the pipeline < {TARGET_SECONDS:.0f}s",
    )
    args = parser.parse_args(argv)

    recipe = load_recipe(args.recipe, args.overrides)
    report = learning_check(recipe, unfiltered=not args.no_unfiltered)
    print(
        f"machine: {device()}; {platform.machine()} {platform.system()}, python {platform.python_version()}"
    )
    print(render(report))
    if args.json:
        args.json.write_text(json.dumps({"device": device(), **report.as_dict()}, indent=2) + "\n")
    t = report.trained
    ok = (
        t.pass_at_1 >= TARGET_PASS
        and t.eos_share >= TARGET_EOS
        and t.pass_at_1 > report.untrained.pass_at_1
        and report.pipeline_seconds < TARGET_SECONDS
    )
    print(
        f"target: trained pass@1 ≥ {TARGET_PASS:.0%} (untrained ~0%), EOS ≥ {TARGET_EOS:.0%}, "
        f"pipeline < {TARGET_SECONDS:.0f}s: {'met' if ok else 'MISSED'}"
    )
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
