"""The pipeline's stage runners: each calls one stage's library function with its section of the recipe.

`Stages` is the injection seam: each field defaults to the real function (imported only when the
stage runs, so torch loads only for sft); tests pass small fakes. Each runner returns a one-line summary
and whether the stage's outputs are complete (only then does the pipeline mark it done).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distill.pipeline.graph import student_dir

if TYPE_CHECKING:
    from distill.generation.report import GenerateReport
    from distill.recipe import Recipe
    from distill.reports import StageReport
    from distill.run import RunDir
    from distill.teachers.base import Teacher

log = logging.getLogger(__name__)


def _real(module: str, attr: str) -> Any:
    """A dataclass field whose default is the real stage function, imported when first called."""

    def call(*args: Any, **kwargs: Any) -> Any:
        import importlib

        return getattr(importlib.import_module(module), attr)(*args, **kwargs)

    return field(default_factory=lambda: call)


@dataclass
class Stages:
    """The functions the pipeline calls: the real ones by default (torch loads only when sft runs);
    tests pass small fakes for some of them."""

    generate: Callable[..., Any] = _real("distill.generation.stage", "generate")
    verify: Callable[..., Any] = _real("distill.verification.stage", "verify")
    verify_frame: Callable[..., Any] = _real("distill.verification.stage", "verify_frame")
    apply_filters: Callable[..., Any] = _real("distill.filtering.stage", "apply_filters")
    build_dataset: Callable[..., Any] = _real("distill.publishing.dataset", "build_dataset")
    write_card: Callable[..., Any] = _real("distill.publishing.card", "write_card")
    push: Callable[..., Any] = _real("distill.publishing.push", "push")
    sft: Callable[..., Any] = _real("distill.training.train", "sft")
    evaluate: Callable[..., Any] = _real("distill.evaluation.stage", "evaluate")
    probe_teacher: Callable[..., Any] = _real("distill.pipeline.checks", "probe_teacher")


@dataclass
class StageContext:
    """What a runner gets: the recipe (demo URLs filled in), the run, the functions and this stage's fingerprint."""

    recipe: Recipe
    run: RunDir
    fns: Stages
    fingerprint: str
    progress: Any = None
    teacher: Teacher | None = None


Outcome = tuple[str, bool]


def run_stage(stage: str, ctx: StageContext) -> Outcome:
    """Run one stage; returns (summary, complete)."""
    return _RUNNERS[stage](ctx)


def _generate(ctx: StageContext) -> Outcome:
    recipe, fns = ctx.recipe, ctx.fns
    if recipe.until_correct is not None:
        from distill.generation.sampling import sample_until_correct

        sampling = sample_until_correct(
            recipe.generate,
            recipe.verify,
            ctx.run,
            until_correct=recipe.until_correct,
            max_samples=recipe.max_samples or max(recipe.until_correct, 16),
            generate=fns.generate,
            verify_frame=fns.verify_frame,
            teacher=ctx.teacher,
            progress=ctx.progress,
        )
        return sampling.summary(), _generation_complete(sampling.last)
    report = fns.generate(recipe.generate, ctx.run, teacher=ctx.teacher, progress=ctx.progress)
    return summarize(report), _generation_complete(report)


def _generation_complete(report: GenerateReport | None) -> bool:
    """Generation is done when it was not stopped (budget, teacher error) and no row holds an error."""
    return report is None or (not report.stopped and not report.error_rows)


def _verify(ctx: StageContext) -> Outcome:
    return summarize(ctx.fns.verify(ctx.recipe.verify, ctx.run, progress=ctx.progress)), True


def _filter(ctx: StageContext) -> Outcome:
    return summarize(ctx.fns.apply_filters(ctx.recipe.filter, ctx.run, progress=ctx.progress)), True


def _card(ctx: StageContext) -> Outcome:
    dataset = ctx.fns.build_dataset(ctx.run, ctx.recipe.card)
    card = ctx.fns.write_card(ctx.recipe.card, ctx.run)
    rows = (
        f"data/sft {dataset.rows_sft:,} of {dataset.rows_all:,} rows ({dataset.prompts:,} prompts); "
        if dataset is not None
        else ""
    )
    return f"{rows}card {card}", True


def _push(ctx: StageContext) -> Outcome:
    return summarize(ctx.fns.push(ctx.recipe.push, ctx.run, card=ctx.recipe.card)), True


def _sft(ctx: StageContext) -> Outcome:
    cfg = ctx.recipe.sft
    assert cfg is not None  # the pipeline runs sft only with an sft section
    out = student_dir(ctx.recipe, ctx.run)
    drop_stale_checkpoints(out, ctx.fingerprint)
    report = ctx.fns.sft(cfg, dataset=cfg.dataset or str(ctx.run.root), output_dir=out)
    return summarize(report), True


def _eval(ctx: StageContext) -> Outcome:
    cfg = ctx.recipe.eval
    assert cfg is not None  # the pipeline runs eval only with an eval section
    if not (cfg.base_url or cfg.vllm) and ctx.recipe.sft is not None:  # serve the student just trained
        cfg = cfg.model_copy(update={"vllm": str(student_dir(ctx.recipe, ctx.run))})
    report = ctx.fns.evaluate(cfg, ctx.run.evals, progress=ctx.progress)
    return summarize(report), True


_RUNNERS: dict[str, Callable[[StageContext], Outcome]] = {
    "generate": _generate,
    "verify": _verify,
    "filter": _filter,
    "card": _card,
    "push": _push,
    "sft": _sft,
    "eval": _eval,
}

STUDENT_MARKER = (
    "distill_run.json"  # in the student folder: which pipeline settings its checkpoints belong to
)


def drop_stale_checkpoints(out: Path, fingerprint: str) -> None:
    """Resume only an interrupted training of the same settings and data: remove checkpoints of other ones."""
    marker = out / STUDENT_MARKER
    if marker.is_file() and json.loads(marker.read_text(encoding="utf-8")).get("fingerprint") != fingerprint:
        stale = sorted(out.glob("checkpoint-*"))
        if stale:
            log.info(
                "sft: settings or data changed since %s was trained; removing %d old checkpoint(s)",
                out,
                len(stale),
            )
        for path in stale:
            shutil.rmtree(path)
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"fingerprint": fingerprint}) + "\n", encoding="utf-8")


def outputs(recipe: Recipe, run: RunDir) -> dict[str, Path]:
    """The run's results that exist, by name."""
    found = {"dataset": run.data, "card": run.card, "plots": run.plots, "stats": run.stats}
    if recipe.sft is not None:
        found["checkpoint"] = student_dir(recipe, run)
    if recipe.eval is not None:
        found["eval"] = run.evals
    return {name: path for name, path in found.items() if path.exists()}


def summarize(report: StageReport | None) -> str:
    """A stage report's one-line summary ("done" for a stage function that returns nothing, e.g. a test's)."""
    return "done" if report is None else report.summary()
