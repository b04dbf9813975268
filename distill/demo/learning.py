"""The learning check: a student trained on distilled traces must beat the same student untrained.

    report = learning_check(load_recipe("recipes/learn-check.yaml"))
    report.trained.pass_at_1, report.untrained.pass_at_1, report.trained.eos_share

Runs the recipe's whole pipeline (`run_pipeline`: generate → verify → filter → card → sft → eval
on held-out problems), then scores the same random student before training on the same held-out
set, and, when asked, trains it again on the unfiltered `all` config (wrong, truncated, duplicated
and drifting traces included) for comparison. Every number comes from the stages' own reports
(eval's results.json, sft_report.json); nothing is scored twice or by other rules. A regression in
masking, EOS, packing, the chat template or eval parsing shows up as a trained score near the
untrained one, which is what tests/test_learning.py asserts against on the CPU.

Layout, beside the pipeline's own `student/` and `eval/`:

    RUN/learning/untrained-eval/      the random student (RUN/student-base) on the held-out set
    RUN/learning/unfiltered/          the student trained on data/all
    RUN/learning/unfiltered-eval/     …and its evaluation
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from distill.errors import ConfigError
from distill.recipe import Recipe
from distill.run import RunDir

LEARNING_DIR = "learning"


@dataclass
class Arm:
    """One student on the held-out set: what it was trained on, and how it scored."""

    name: str
    trained_on: str
    rows: int  # training rows (0: untrained)
    steps: int
    train_seconds: float
    pass_at_1: float
    stderr: float
    samples: int
    problems: int
    eos_share: float  # samples that ended with the end-of-turn token (not cut at max_tokens)
    final_loss: float | None = None


@dataclass
class LearningReport:
    """The learning check's numbers: the pipeline's stage times and each student's score."""

    card: str
    benchmark: str
    stages: dict[str, float]  # seconds per pipeline stage that ran
    pipeline_seconds: float
    untrained: Arm
    trained: Arm
    unfiltered: Arm | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def rows(self) -> list[tuple[str, ...]]:
        """A table: one line per student."""
        arms = [a for a in (self.untrained, self.trained, self.unfiltered) if a is not None]
        return [
            (
                a.name,
                a.trained_on,
                f"{a.rows:,}",
                str(a.steps),
                f"{a.train_seconds:.0f}s",
                f"{100 * a.pass_at_1:.1f}% ± {100 * a.stderr:.1f}",
                f"{100 * a.eos_share:.1f}%",
                f"{a.problems}×{a.samples // max(a.problems, 1)}",
            )
            for a in arms
        ]


def learning_check(recipe: Recipe, *, unfiltered: bool = True) -> LearningReport:
    """Run the recipe, then score the untrained student (and the unfiltered one) on the same held-out set."""
    from distill.demo.wiring import DemoServices, demo_recipe, student_server
    from distill.evaluation.stage import evaluate
    from distill.pipeline.checks import with_template_file
    from distill.pipeline.graph import student_dir
    from distill.pipeline.run import run_pipeline
    from distill.training.train import sft

    if recipe.demo is None or not recipe.demo.student or recipe.sft is None or recipe.eval is None:
        raise ConfigError("the learning check needs a recipe with demo.student, sft and eval sections")
    started = time.perf_counter()
    pipeline = run_pipeline(recipe, services=DemoServices())
    pipeline_seconds = time.perf_counter() - started
    run = RunDir(recipe.run_dir)
    resolved = demo_recipe(with_template_file(recipe), run)
    assert resolved.sft is not None and resolved.eval is not None and recipe.demo is not None
    eval_cfg, demo = resolved.eval, recipe.demo
    trained = _arm("trained", "data/sft (filtered)", run.evals, student_dir(resolved, run), run)
    base = Path(resolved.sft.model)
    folder = run.root / LEARNING_DIR

    def score(name: str, trained_on: str, model_dir: Path, out: Path) -> Arm:
        if out.exists():  # another student may have answered here before: score only this one
            shutil.rmtree(out)
        with student_server(model_dir, demo) as url:
            evaluate(eval_cfg.model_copy(update={"base_url": url}), out)
        return _arm(name, trained_on, out, model_dir, run)

    report = LearningReport(
        card=resolved.card.pretty_name or str(run.card),
        benchmark=", ".join(resolved.eval.benchmarks),
        stages={r.stage: round(r.seconds, 1) for r in pipeline.results if r.status != "skipped"},
        pipeline_seconds=pipeline_seconds,
        untrained=score("untrained", "nothing (random weights)", base, folder / "untrained-eval"),
        trained=trained,
    )
    if unfiltered:
        out = folder / "unfiltered"
        if out.exists():
            shutil.rmtree(out)
        sft(resolved.sft, dataset=str(run.config_dir("all")), output_dir=out)
        report.unfiltered = score("unfiltered", "data/all (every sample)", out, folder / "unfiltered-eval")
    return report


def _arm(name: str, trained_on: str, eval_out: Path, model_dir: Path, run: RunDir) -> Arm:
    """One student's numbers from its eval results.json and, when trained, its sft_report.json."""
    from distill.training.train import REPORT_FILE

    results = run.read_json(eval_out / "results.json")["benchmarks"]
    if len(results) != 1:
        raise ConfigError(f"the learning check scores one held-out benchmark; {eval_out} has {len(results)}")
    (r,) = results.values()
    sft_report = model_dir / REPORT_FILE
    trained = run.read_json(sft_report) if sft_report.is_file() else {}
    estimate = trained.get("estimate") or {}
    samples = int(r["samples"])
    return Arm(
        name=name,
        trained_on=trained_on,
        rows=int(estimate.get("rows") or 0),
        steps=int(trained.get("steps") or 0),
        train_seconds=float(trained.get("train_seconds") or 0.0),
        pass_at_1=float(r["pass@1"]["mean"]),
        stderr=float(r["pass@1"].get("stderr") or 0.0),
        samples=samples,
        problems=int(r["problems"]),
        eos_share=1.0 - (int(r["truncated"]) + int(r.get("errors") or 0)) / max(samples, 1),
        final_loss=trained.get("final_loss"),
    )


__all__ = ["Arm", "LearningReport", "learning_check"]
