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

if TYPE_CHECKING:
    from distill.recipe import Recipe
    from distill.run import RunDir

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
    probe_teacher: Callable[..., Any] = _real("distill.pipeline.run", "probe_teacher")


@dataclass
class StageContext:
    """What a runner gets: the recipe (demo URLs filled in), the run, the functions and this stage's fingerprint."""

    recipe: Recipe
    run: RunDir
    fns: Stages
    fingerprint: str
    progress: Any = None
    teacher: Any = None


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


def _generation_complete(report: Any) -> bool:
    """Generation is done when it was not stopped (budget, teacher error) and no row holds an error."""
    return not getattr(report, "stopped", None) and not getattr(report, "error_rows", 0)


def _verify(ctx: StageContext) -> Outcome:
    return summarize(ctx.fns.verify(ctx.recipe.verify, ctx.run, progress=ctx.progress)), True


def _filter(ctx: StageContext) -> Outcome:
    return summarize(ctx.fns.apply_filters(ctx.recipe.filter, ctx.run, progress=ctx.progress)), True


def _card(ctx: StageContext) -> Outcome:
    dataset = ctx.fns.build_dataset(ctx.run, ctx.recipe.card)
    card = ctx.fns.write_card(ctx.recipe.card, ctx.run)
    rows = (
        f"data/sft {dataset.rows_sft:,} of {dataset.rows_all:,} rows ({dataset.prompts:,} prompts); "
        if hasattr(dataset, "rows_sft")
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
    if hasattr(report, "final_loss"):
        loss = (
            f", loss {report.losses[0]:.3f} → {report.final_loss:.3f}"
            if report.losses and report.final_loss
            else ""
        )
        return f"{report.steps} steps{loss} → {report.output_dir}", True
    return summarize(report), True


def _eval(ctx: StageContext) -> Outcome:
    cfg = ctx.recipe.eval
    assert cfg is not None  # the pipeline runs eval only with an eval section
    if not (cfg.base_url or cfg.vllm) and ctx.recipe.sft is not None:  # serve the student just trained
        cfg = cfg.model_copy(update={"vllm": str(student_dir(ctx.recipe, ctx.run))})
    report = ctx.fns.evaluate(cfg, eval_dir(ctx.run), progress=ctx.progress)
    if hasattr(report, "results"):
        scores = ", ".join(
            f"{r.name} pass@1 {100 * r.pass_at_1.mean:.1f}% (k={r.k}, {r.problems} problems)"
            for r in report.results
        )
        return f"{scores} → {report.results_md}", True
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


def student_dir(recipe: Recipe, run: RunDir) -> Path:
    """Where the student is trained: sft.output_dir when the recipe changes it, else RUN/student."""
    if (
        recipe.sft is not None
        and recipe.sft.output_dir != type(recipe.sft).model_fields["output_dir"].default
    ):
        return Path(recipe.sft.output_dir)
    return run.root / "student"


def eval_dir(run: RunDir) -> Path:
    return run.root / "eval"


def outputs(recipe: Recipe, run: RunDir) -> dict[str, Path]:
    """The run's results that exist, by name."""
    found = {"dataset": run.data, "card": run.card, "plots": run.plots, "stats": run.stats}
    if recipe.sft is not None:
        found["checkpoint"] = student_dir(recipe, run)
    if recipe.eval is not None:
        found["eval"] = eval_dir(run)
    return {name: path for name, path in found.items() if path.exists()}


def summarize(report: Any) -> str:
    """A stage report's one-line summary, whatever shape the stage returned."""
    if report is None:
        return "done"
    for attr in ("summary", "summary_line", "one_line"):
        value = getattr(report, attr, None)
        if callable(value):
            value = value()
        if isinstance(value, str) and value:
            return value
    return str(report) if isinstance(report, Path) else type(report).__name__
