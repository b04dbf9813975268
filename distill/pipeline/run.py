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

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distill.config import to_yaml
from distill.errors import ConfigError, StageError
from distill.pipeline.stages import StageContext, Stages, outputs, run_stage
from distill.recipe import STAGES, Recipe
from distill.run import RunDir

if TYPE_CHECKING:
    from distill.pipeline.plan import Plan
    from distill.progress import Progress

log = logging.getLogger(__name__)

# What each stage reads from: the first of these that is part of the run (pipeline order matters:
# the card stage builds the dataset from the filter's `keep`, or from every verified row without one).
NEEDS: dict[str, tuple[str, ...]] = {
    "generate": (),
    "verify": ("generate",),
    "filter": ("verify", "generate"),
    "card": ("filter", "verify", "generate"),
    "push": ("card",),
    "sft": ("card",),  # without a card stage, sft trains on sft.dataset
    "eval": ("sft",),  # without an sft stage, eval scores eval.model / eval.base_url
}


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
    teacher: Any = None,
    pilot_prompts: int = 3,
    clock: Callable[[], float] = time.monotonic,
) -> PipelineReport:
    """Run the recipe's stages in order, skipping those already done with the same settings.

    `stages` narrows the run to some stages (their inputs must already exist); `dry_run` runs
    nothing and returns the plan. `functions` replaces stage functions (tests), `progress` makes a
    progress reporter per stage, `teacher` is handed to generation (a `Teacher` already running).
    """
    from distill.demo.wiring import demo_recipe, demo_services

    started = clock()
    run = RunDir(recipe.run_dir)
    fns = functions or Stages()
    recipe = demo_recipe(with_template_file(recipe), run)
    graph, selected = plan_stages(recipe, stages)
    fps = fingerprints(recipe, graph)
    todo = [s for s in selected if not run.is_done(s, fps[s])]
    check_ready(recipe, run, graph, selected, fps, check_token=not dry_run)  # a plan lists a missing token
    report = PipelineReport(run.root)

    if dry_run:
        from distill.pipeline.plan import make_plan

        with demo_services(
            recipe, run, teacher_needed=bool(pilot_prompts) and "generate" in todo
        ) as services:
            report.plan = make_plan(
                services.recipe,
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
            report.results.append(_run_one(stage, recipe, run, graph, fps, fns, progress, teacher, clock))
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
    teacher: Any,
    clock: Callable[[], float],
) -> StageResult:
    """Run one stage (with the demo's servers it needs, if any) and record it when its outputs are complete."""
    from distill.demo.wiring import demo_services

    started = clock()
    log.info("stage %s: running", stage)
    run.forget(stage, *downstream(stage, graph))  # their inputs are about to change
    needs_server = {
        "teacher_needed": stage == "generate",
        "student_base_needed": stage == "sft",
        "student_needed": stage == "eval",
    }
    with demo_services(recipe, run, **needs_server) as services:
        ctx = StageContext(services.recipe, run, fns, fps[stage], progress() if progress else None, teacher)
        summary, complete = run_stage(stage, ctx)
    if complete:  # else the next run does it again (e.g. generation stopped at its budget)
        own = run.stage_record(stage) or {}  # what the stage recorded about itself (e.g. the card's inputs)
        info = {k: v for k, v in own.items() if k not in ("fingerprint", "finished_at")}
        run.mark_done(stage, fps[stage], **{**info, "summary": summary})
    return StageResult(stage, "ran" if complete else "partial", clock() - started, summary)


def with_template_file(recipe: Recipe) -> Recipe:
    """generate.template may name a file (recipes/templates/math.txt): read it, so its text is fingerprinted."""
    from distill.generation.inputs import read_template

    value = recipe.generate.template
    text = read_template(value).rstrip("\n")
    if text == value:
        if "{" not in value and "\n" not in value and Path(value).suffix in (".txt", ".md", ".j2", ".jinja"):
            raise ConfigError(
                f"generate.template: {value} not found (a relative path starts at the current folder)"
            )
        return recipe
    return recipe.model_copy(update={"generate": recipe.generate.model_copy(update={"template": text})})


@contextmanager
def exclusive(run: RunDir) -> Iterator[None]:
    """Hold RUN's lock while stages run; a second `distill run` on the same RUN fails at once."""
    import fcntl

    with open(run.lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise StageError(
                f"{run.root} is in use by another `distill run`: wait for it, or use another --out"
            ) from e
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_run_yaml(recipe: Recipe, run: RunDir, todo: Sequence[str]) -> None:
    """RUN/run.yaml: the resolved recipe, secrets stripped; sections of skipped stages keep what produced them."""
    import yaml

    data = yaml.safe_load(to_yaml(recipe))
    old_text = run.run_yaml.read_text(encoding="utf-8") if run.run_yaml.exists() else ""
    old = yaml.safe_load(old_text) if old_text else {}
    for stage in STAGES:
        if stage not in todo and isinstance(old, dict) and stage in old:
            data[stage] = old[stage]
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    if text != old_text:
        run.write_text(run.run_yaml, text)


def plan_stages(recipe: Recipe, stages: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """(stages that make up this run, stages to run now), both in pipeline order."""
    if stages is not None:
        unknown = [s for s in stages if s not in STAGES]
        if unknown:
            raise ConfigError(f"--stages: unknown stage {unknown[0]!r}; stages are {', '.join(STAGES)}")
    wanted = list(recipe.stages) if stages is None else list(stages)
    if stages is not None:
        for stage in wanted:
            if not _has_section(recipe, stage):
                raise ConfigError(f"stage {stage}: the recipe has no `{stage}` section")
    selected = [s for s in STAGES if s in wanted and _has_section(recipe, s)]
    graph = [s for s in STAGES if s in selected or (s in recipe.stages and _has_section(recipe, s))]
    return graph, selected


def _has_section(recipe: Recipe, stage: str) -> bool:
    return stage not in ("push", "sft", "eval") or getattr(recipe, stage) is not None


def needs(stage: str, graph: Sequence[str]) -> str | None:
    """The stage whose outputs `stage` reads, within this run's stages (None: it reads nothing of ours)."""
    return next((s for s in NEEDS[stage] if s in graph), None)


def downstream(stage: str, graph: Sequence[str]) -> list[str]:
    """The stages of this run that read, directly or not, what `stage` writes."""
    found: list[str] = []
    for later in graph[graph.index(stage) + 1 :]:
        upstream = needs(later, graph)
        if upstream == stage or upstream in found:
            found.append(later)
    return found


def fingerprints(recipe: Recipe, graph: Sequence[str]) -> dict[str, str]:
    """Each stage's fingerprint: its own settings plus the fingerprint of the stage it reads from."""
    fps: dict[str, str] = {}
    for stage in graph:
        upstream = needs(stage, graph)
        data = {
            "stage": stage,
            "settings": stage_settings(recipe, stage),
            "after": fps[upstream] if upstream else None,
        }
        fps[stage] = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return fps


def stage_settings(recipe: Recipe, stage: str) -> Any:
    """What decides a stage's output, beyond its inputs."""
    if stage == "generate":
        return {
            "generate": recipe.generate.fingerprint(),
            "prompts": _file_digest(_prompts_path(recipe)),
            "until_correct": recipe.until_correct,
            "max_samples": recipe.max_samples,
        }
    if stage == "card":  # the card stage also builds data/sft
        return recipe.card.fingerprint()
    if stage == "eval" and recipe.demo is not None:
        return {"eval": recipe.eval.fingerprint(), "demo": recipe.demo.fingerprint()}
    section = {
        "verify": recipe.verify,
        "filter": recipe.filter,
        "push": recipe.push,
        "sft": recipe.sft,
        "eval": recipe.eval,
    }[stage]
    return section.fingerprint()


def check_ready(
    recipe: Recipe,
    run: RunDir,
    graph: Sequence[str],
    selected: Sequence[str],
    fps: dict[str, str],
    *,
    check_token: bool = True,
) -> None:
    """Every stage to run has what it needs, or a one-line StageError/ConfigError says what is missing."""
    if "generate" in selected and not run.is_done("generate", fps["generate"]):
        path = _prompts_path(recipe)
        if path is None:
            raise ConfigError("generate.prompts: required key is missing (a prompts file or dataset folder)")
        if not path.exists() and _looks_local(path):
            raise ConfigError(f"generate.prompts: {path} does not exist")
    if "sft" in selected and recipe.sft is not None and not recipe.sft.model:
        raise ConfigError("sft.model: required key is missing (the student: a local folder or a Hub id)")
    if "sft" in selected and "card" not in graph and recipe.sft is not None and not recipe.sft.dataset:
        raise ConfigError("sft.dataset: required when the run has no card stage (a run folder or a dataset)")
    if "push" in selected and recipe.push is not None and not run.is_done("push", fps["push"]):
        check_push(recipe.push, check_token=check_token)
    if (
        "eval" in selected
        and recipe.eval is not None
        and "sft" not in graph
        and not (recipe.eval.base_url or recipe.eval.vllm)
    ):
        raise ConfigError("eval.base_url: required when the run has no sft stage (or set eval.vllm)")

    for stage in selected:
        upstream = needs(stage, graph)
        if upstream is None or upstream in selected:
            continue
        record = run.stage_record(upstream)
        if record is None and not has_outputs(upstream, recipe, run):
            raise StageError(
                f"stage {stage} needs stage {upstream}, which has not run in {run.root}: "
                f"add it, e.g. --stages {upstream},{stage}"
            )
        if record is None or record.get("fingerprint") != fps[upstream]:
            log.warning(
                "stage %s reads what stage %s left in %s, made with other settings (or outside `distill run`); "
                "add %s to --stages to redo it with this recipe",
                stage,
                upstream,
                run.root,
                upstream,
            )


def has_outputs(stage: str, recipe: Recipe, run: RunDir) -> bool:
    """Outputs a stage left without a record (`distill generate` + `distill merge`, `distill sft`); the
    other stages' commands record themselves, and a rerun of an earlier stage removes those records."""
    from distill.pipeline.stages import student_dir

    if stage == "generate":
        return run.has_rows("all")
    if stage == "sft":
        return (student_dir(recipe, run) / "config.json").is_file()
    return False


def check_push(cfg: Any, *, check_token: bool = True) -> None:
    """The Hub target is valid and a token is there, before hours of generation and training."""
    from huggingface_hub import get_token

    from distill.errors import HubError
    from distill.publishing.push import check_repo_id

    if not cfg.repo:
        raise ConfigError("push.repo: required key is missing (ORG/NAME of the dataset repo)")
    check_repo_id(cfg.repo)
    if check_token and not get_token():
        raise HubError(
            "stage push: no Hugging Face token: set HF_TOKEN or run `hf auth login` (write access), "
            "or leave push out of --stages"
        )


def _prompts_path(recipe: Recipe) -> Path | None:
    return Path(recipe.generate.prompts) if recipe.generate.prompts else None


def _looks_local(path: Path) -> bool:
    """A Hub dataset id (ORG/NAME, e.g. AI-MO/NuminaMath-1.5) is not a local path that is missing."""
    import re

    return not re.fullmatch(r"[\w.-]+/[\w.-]+", str(path)) or str(path).startswith(".")


def _file_digest(path: Path | None) -> str | None:
    """A content hash of a prompts file (a changed prompt list is a changed setting)."""
    if path is None or not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def probe_teacher(cfg: Any, *, connect_timeout_s: float = 5.0) -> None:
    """GET /models on every endpoint of `cfg` (generate's or eval's settings); TeacherError naming the first
    unreachable one. A `vllm:` server is skipped: the stage starts it and health-checks it itself."""
    import asyncio
    import os

    from distill.teachers.openai import OpenAITeacher

    if getattr(cfg, "vllm", None):
        return  # the generator starts the server itself and health-checks it
    urls = getattr(cfg, "base_url", None) or []
    urls = [urls] if isinstance(urls, str) else list(urls)
    key_env = getattr(cfg, "api_key_env", None)
    key = os.environ.get(key_env) if key_env else None

    async def check_all() -> None:
        for url in urls:
            async with OpenAITeacher(url, api_key=key, connect_timeout_s=connect_timeout_s) as teacher:
                await teacher.check()

    asyncio.run(check_all())
