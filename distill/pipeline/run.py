"""`distill run`: every stage chained, each skipped when its outputs are complete for the same settings.

    generate ─▶ verify ─▶ filter ─▶ card ─▶ push
                                      └───▶ sft ─▶ eval

A stage's fingerprint hashes its own settings and the fingerprints of the stages it reads from, and
is written to RUN/manifest.json only after the stage's outputs are complete. So a rerun skips what is
done, a changed setting reruns that stage and everything downstream of it (nothing upstream), and
Ctrl-C followed by the same command continues (generation itself resumes sample by sample).

Everything that can be checked is checked before the first expensive step: the recipe (by pydantic,
on load), the stages asked for and the stages they need, the prompts file, the teacher's endpoint,
the student. Each failure is one line naming the key or stage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distill.errors import ConfigError
from distill.pipeline.checks import check_ready, with_template_file
from distill.pipeline.graph import downstream, fingerprints, plan_stages
from distill.pipeline.services import NoServices, Services
from distill.pipeline.stages import StageContext, Stages, outputs, run_stage
from distill.recipe import STAGES, Recipe
from distill.run import RunDir

if TYPE_CHECKING:
    from distill.pipeline.plan import Plan
    from distill.progress import Progress
    from distill.teachers.base import Teacher

log = logging.getLogger(__name__)


@dataclass
class StageResult:
    stage: str
    status: str  # "ran", "skipped" (done with the same settings)
    seconds: float = 0.0
    summary: str = ""


@dataclass
class PipelineReport:
    """What `run_pipeline` did (or, with dry_run, would do) and where the results are."""

    run_dir: Path
    results: list[StageResult] = field(default_factory=list)
    outputs: dict[str, Path] = field(default_factory=dict)
    plan: Plan | None = None
    seconds: float = 0.0

    def as_table(self) -> Any:
        from rich.table import Table

        table = Table(title=f"distill run → {self.run_dir}", title_justify="left")
        for column in ("stage", "status", "time", "result"):
            table.add_column(column)
        for r in self.results:
            table.add_row(r.stage, r.status, f"{r.seconds:.1f}s" if r.status == "ran" else "", r.summary)
        return table

    def one_line(self) -> str:
        """What ran and where the results are, in one line (for --quiet and logs)."""
        by = {
            status: [r.stage for r in self.results if r.status == status]
            for status in ("ran", "partial", "skipped")
        }
        parts = [f"{status} {','.join(stages)}" for status, stages in by.items() if stages]
        return f"distill run → {self.run_dir}: {'; '.join(parts) or 'nothing to do'} in {self.seconds:.0f}s"

    def where(self) -> list[str]:
        """One line per output: what it is and where it lies."""
        return [f"{name:<10} {path}" for name, path in self.outputs.items()]


# ── the pipeline ─────────────────────────────────────────────────────────────
def run_pipeline(
    recipe: Recipe,
    *,
    stages: Sequence[str] | None = None,
    dry_run: bool = False,
    functions: Stages | None = None,
    progress: Callable[[], Progress] | None = None,
    teacher: Teacher | None = None,
    pilot_prompts: int = 3,
    services: Services | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> PipelineReport:
    """Run the recipe's stages in order, skipping those already done with the same settings.

    `stages` narrows the run to some stages (their inputs must already exist); `dry_run` runs
    nothing and returns the plan. `functions` replaces stage functions (tests), `progress` makes a
    progress reporter per stage, `teacher` is handed to generation (a `Teacher` already running).
    `services` starts what stages talk to (`distill run` passes the demo's for a recipe with `demo:`).
    """
    started = clock()
    run = RunDir(recipe.run_dir)
    fns = functions or Stages()
    services = services or NoServices()
    if recipe.demo is not None and isinstance(services, NoServices):
        raise ConfigError(
            "the recipe has a `demo:` section: run it with `distill run`, or pass "
            "services=distill.demo.wiring.DemoServices()"
        )
    recipe = services.prepare(with_template_file(recipe), run)
    graph, selected = plan_stages(recipe, stages)
    fps = fingerprints(recipe, graph)
    todo = [s for s in selected if not run.is_done(s, fps[s])]
    check_ready(recipe, run, graph, selected, fps, check_token=not dry_run)  # a plan lists a missing token
    report = PipelineReport(run.root)

    if dry_run:
        from distill.pipeline.plan import make_plan

        with services.serve(recipe, run, teacher_needed=bool(pilot_prompts) and "generate" in todo) as served:
            report.plan = make_plan(
                served,
                run,
                graph,
                selected,
                fps,
                fns=fns,
                teacher=teacher,
                pilot_prompts=pilot_prompts,
            )
        return report

    if "generate" in todo and recipe.demo is None and teacher is None:
        fns.probe_teacher(recipe.generate)  # unreachable → TeacherError naming the URL, before any work
    if "eval" in todo and "sft" not in graph and recipe.demo is None:
        fns.probe_teacher(recipe.eval)  # the student's endpoint, when it is not the student trained here
    run.ensure()
    with exclusive(run):
        write_run_yaml(recipe, run, todo)
        for stage in selected:
            if run.is_done(stage, fps[stage]):  # asked now: a stage that just ran may have reset later ones
                record = run.stage_record(stage) or {}
                report.results.append(StageResult(stage, "skipped", summary=record.get("summary", "done")))
                continue
            report.results.append(
                _run_one(stage, recipe, run, graph, fps, fns, progress, teacher, services, clock)
            )
    report.outputs = outputs(recipe, run)
    report.seconds = clock() - started
    return report


def _run_one(
    stage: str,
    recipe: Recipe,
    run: RunDir,
    graph: Sequence[str],
    fps: dict[str, str],
    fns: Stages,
    progress: Callable[[], Progress] | None,
    teacher: Teacher | None,
    services: Services,
    clock: Callable[[], float],
) -> StageResult:
    """Run one stage (with the servers it needs, if any) and record it when its outputs are complete."""
    started = clock()
    log.info("stage %s: running", stage)
    run.forget(stage, *downstream(stage, graph))  # their inputs are about to change
    needs_server = {
        "teacher_needed": stage == "generate",
        "student_base_needed": stage == "sft",
        "student_needed": stage == "eval",
    }
    with services.serve(recipe, run, **needs_server) as served:
        ctx = StageContext(served, run, fns, fps[stage], progress() if progress else None, teacher)
        summary, complete = run_stage(stage, ctx)
    if complete:  # else the next run does it again (e.g. generation stopped at its budget)
        own = run.stage_record(stage) or {}  # what the stage recorded about itself (e.g. the card's inputs)
        info = {k: v for k, v in own.items() if k not in ("fingerprint", "finished_at")}
        run.mark_done(stage, fps[stage], **{**info, "summary": summary})
    return StageResult(stage, "ran" if complete else "partial", clock() - started, summary)


@contextmanager
def exclusive(run: RunDir) -> Iterator[None]:
    """Hold RUN's lock while stages run; another distill command on the same RUN fails at once."""
    with run.writing("run"):
        yield


def write_run_yaml(recipe: Recipe, run: RunDir, todo: Sequence[str]) -> None:
    """RUN/run.yaml: the resolved recipe, secrets stripped; sections of skipped stages keep what produced them."""
    run.write_settings(recipe.model_dump(mode="json"), keep=[s for s in STAGES if s not in todo])
