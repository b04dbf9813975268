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
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distill.config import to_yaml
from distill.errors import ConfigError, StageError
from distill.recipe import STAGES, Recipe
from distill.run import RunDir

if TYPE_CHECKING:
    from distill.plan import Plan
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
class Stages:
    """The functions the pipeline calls. Leave a field None for the real one; tests pass small fakes."""

    generate: Callable[..., Any] | None = None
    verify: Callable[..., Any] | None = None
    verify_frame: Callable[..., Any] | None = None
    apply_filters: Callable[..., Any] | None = None
    build_dataset: Callable[..., Any] | None = None
    write_card: Callable[..., Any] | None = None
    push: Callable[..., Any] | None = None
    sft: Callable[..., Any] | None = None
    evaluate: Callable[..., Any] | None = None
    build_tiny_model: Callable[..., Any] | None = None
    probe_teacher: Callable[..., Any] | None = None

    def resolved(self) -> Stages:
        """A copy with every missing function imported (lazily: torch only when sft runs)."""
        return Stages(**{f.name: getattr(self, f.name) or _real(f.name) for f in fields(self)})


def _real(name: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        import importlib

        module, attr = {
            "generate": ("distill.generate", "generate"), "verify": ("distill.verify", "verify"),
            "verify_frame": ("distill.verify", "verify_frame"),
            "apply_filters": ("distill.filtering", "apply_filters"),
            "build_dataset": ("distill.dataset", "build_dataset"), "write_card": ("distill.card", "write_card"),
            "push": ("distill.push", "push"), "sft": ("distill.sft.train", "sft"),
            "evaluate": ("distill.evaluate", "evaluate"), "build_tiny_model": ("distill.sft.tiny", "build_tiny_model"),
            "probe_teacher": ("distill.pipeline", "probe_teacher"),
        }[name]
        return getattr(importlib.import_module(module), attr)(*args, **kwargs)

    return call


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

    def where(self) -> list[str]:
        """One line per output: what it is and where it lies."""
        return [f"{name:<10} {path}" for name, path in self.outputs.items()]


# ── the pipeline ─────────────────────────────────────────────────────────────
def run_pipeline(recipe: Recipe, *, stages: Sequence[str] | None = None, dry_run: bool = False,
                 functions: Stages | None = None, progress: Callable[[], Progress] | None = None,
                 teacher: Any = None, pilot_prompts: int = 3, clock: Callable[[], float] = time.monotonic,
                 ) -> PipelineReport:
    """Run the recipe's stages in order, skipping those already done with the same settings.

    `stages` narrows the run to some stages (their inputs must already exist); `dry_run` runs
    nothing and returns the plan. `functions` replaces stage functions (tests), `progress` makes a
    progress reporter per stage, `teacher` is handed to generation (a `Teacher` already running).
    """
    from distill.demo.wiring import demo_recipe, demo_services

    started = clock()
    run = RunDir(recipe.run_dir)
    fns = (functions or Stages()).resolved()
    recipe = demo_recipe(with_template_file(recipe), run)
    graph, selected = plan_stages(recipe, stages)
    fps = fingerprints(recipe, graph)
    todo = [s for s in selected if not run.is_done(s, fps[s])]
    check_ready(recipe, run, graph, selected, fps)
    report = PipelineReport(run.root)

    if dry_run:
        from distill.plan import make_plan

        with demo_services(recipe, run, teacher_needed=bool(pilot_prompts) and "generate" in todo) as services:
            report.plan = make_plan(services.recipe, run, graph, selected, fps, fns=fns, teacher=teacher,
                                    pilot_prompts=pilot_prompts)
        return report

    if "generate" in todo and recipe.demo is None and teacher is None:
        fns.probe_teacher(recipe.generate)  # unreachable → TeacherError naming the URL, before any work
    run.ensure()
    with ExitStack() as stack:
        stack.enter_context(exclusive(run))
        write_run_yaml(recipe, run, todo)
        for stage in selected:
            if stage not in todo:
                record = run.stage_record(stage) or {}
                report.results.append(StageResult(stage, "skipped", summary=record.get("summary", "done")))
                continue
            services = stack.enter_context(demo_services(recipe, run, teacher_needed=stage == "generate",
                                                         student_base_needed=stage == "sft",
                                                         student_needed=stage == "eval"))
            t0 = clock()
            log.info("stage %s: running", stage)
            run.forget(stage)
            summary, complete = _RUNNERS[stage](services.recipe, run, fns, _progress(progress), teacher)
            if complete:  # else the next run does it again (e.g. generation stopped at its budget)
                own = {k: v for k, v in (run.stage_record(stage) or {}).items()
                       if k not in ("fingerprint", "finished_at")}  # what the stage recorded itself
                run.mark_done(stage, fps[stage], **{**own, "summary": summary})
            report.results.append(StageResult(stage, "ran" if complete else "partial", clock() - t0, summary))
    report.outputs = outputs(recipe, run)
    report.seconds = clock() - started
    return report


def with_template_file(recipe: Recipe) -> Recipe:
    """generate.template may name a file (recipes/templates/math.txt): read it, so its text is fingerprinted."""
    from distill.inputs import read_template

    text = read_template(recipe.generate.template).rstrip("\n")
    if text == recipe.generate.template:
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
            raise StageError(f"{run.root} is in use by another `distill run`: wait for it, or use another "
                             "--out") from e
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


def fingerprints(recipe: Recipe, graph: Sequence[str]) -> dict[str, str]:
    """Each stage's fingerprint: its own settings plus the fingerprint of the stage it reads from."""
    fps: dict[str, str] = {}
    for stage in graph:
        upstream = needs(stage, graph)
        data = {"stage": stage, "settings": stage_settings(recipe, stage),
                "after": fps[upstream] if upstream else None}
        fps[stage] = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return fps


def stage_settings(recipe: Recipe, stage: str) -> Any:
    """What decides a stage's output, beyond its inputs."""
    if stage == "generate":
        return {"generate": recipe.generate.fingerprint(), "prompts": _file_digest(_prompts_path(recipe)),
                "until_correct": recipe.until_correct, "max_samples": recipe.max_samples}
    if stage == "card":  # the card stage also builds data/sft
        return recipe.card.fingerprint()
    if stage == "eval" and recipe.demo is not None:
        return {"eval": recipe.eval.fingerprint(), "demo": recipe.demo.fingerprint()}
    section = {"verify": recipe.verify, "filter": recipe.filter, "push": recipe.push, "sft": recipe.sft,
               "eval": recipe.eval}[stage]
    return section.fingerprint()


def check_ready(recipe: Recipe, run: RunDir, graph: Sequence[str], selected: Sequence[str],
                fps: dict[str, str]) -> None:
    """Every stage to run has what it needs, or a one-line StageError/ConfigError says what is missing."""
    for stage in selected:
        upstream = needs(stage, graph)
        if upstream is None or upstream in selected:
            continue
        record = run.stage_record(upstream)
        if record is None:
            raise StageError(f"stage {stage} needs stage {upstream}, which has not run in {run.root}: "
                             f"add it, e.g. --stages {upstream},{stage}")
        if record.get("fingerprint") != fps[upstream]:
            raise StageError(f"stage {stage} needs stage {upstream}, whose settings changed since it ran in "
                             f"{run.root}: add it, e.g. --stages {upstream},{stage}")
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
        check_push(recipe.push)
    if "eval" in selected and recipe.eval is not None and "sft" not in graph and not (
            recipe.eval.base_url or recipe.eval.vllm):
        raise ConfigError("eval.base_url: required when the run has no sft stage (or set eval.vllm)")


def check_push(cfg: Any) -> None:
    """The Hub target is valid and a token is there, before hours of generation and training."""
    from huggingface_hub import get_token

    from distill.errors import HubError
    from distill.push import check_repo_id

    if not cfg.repo:
        raise ConfigError("push.repo: required key is missing (ORG/NAME of the dataset repo)")
    check_repo_id(cfg.repo)
    if not get_token():
        raise HubError("stage push: no Hugging Face token: set HF_TOKEN or run `hf auth login` (write access), "
                       "or leave push out of --stages")


def _prompts_path(recipe: Recipe) -> Path | None:
    value = getattr(recipe.generate, "prompts", None)
    return Path(value) if value else None


def _looks_local(path: Path) -> bool:
    """A Hub dataset id (org/name) is not a local path that is missing."""
    text = str(path)
    return path.suffix != "" or text.startswith((".", "/", "~")) or text.count("/") != 1


def _file_digest(path: Path | None) -> str | None:
    """A content hash of a prompts file (a changed prompt list is a changed setting)."""
    if path is None or not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _progress(factory: Callable[[], Progress] | None) -> Progress | None:
    return factory() if factory is not None else None


# ── stages ───────────────────────────────────────────────────────────────────
# Each runner calls one stage's library function; it returns a one-line summary and whether the
# stage's outputs are complete (only then is it marked done).
Outcome = tuple[str, bool]


def _generate(recipe: Recipe, run: RunDir, fns: Stages, progress: Any, teacher: Any) -> Outcome:
    if recipe.until_correct is not None:
        from distill.sampling import sample_until_correct

        sampling = sample_until_correct(
            recipe.generate, recipe.verify, run, until_correct=recipe.until_correct,
            max_samples=recipe.max_samples or max(recipe.until_correct, 16), generate=fns.generate,
            verify_frame=fns.verify_frame, teacher=teacher, progress=progress)
        return sampling.summary(), _generation_complete(sampling.last)
    report = fns.generate(recipe.generate, run, teacher=teacher, progress=progress)
    return _summary(report), _generation_complete(report)


def _generation_complete(report: Any) -> bool:
    """Generation is done when it was not stopped (budget, teacher error) and no row holds an error."""
    return not getattr(report, "stopped", None) and not getattr(report, "error_rows", 0)


def _verify(recipe: Recipe, run: RunDir, fns: Stages, progress: Any, teacher: Any) -> Outcome:
    return _summary(fns.verify(recipe.verify, run, progress=progress)), True


def _filter(recipe: Recipe, run: RunDir, fns: Stages, progress: Any, teacher: Any) -> Outcome:
    return _summary(fns.apply_filters(recipe.filter, run, progress=progress)), True


def _card(recipe: Recipe, run: RunDir, fns: Stages, progress: Any, teacher: Any) -> Outcome:
    dataset = fns.build_dataset(run, recipe.card)
    card = fns.write_card(recipe.card, run)
    rows = (f"data/sft {dataset.rows_sft:,} of {dataset.rows_all:,} rows ({dataset.prompts:,} prompts); "
            if hasattr(dataset, "rows_sft") else "")
    return f"{rows}card {card}", True


def _push(recipe: Recipe, run: RunDir, fns: Stages, progress: Any, teacher: Any) -> Outcome:
    return _summary(fns.push(recipe.push, run, card=recipe.card)), True


def _sft(recipe: Recipe, run: RunDir, fns: Stages, progress: Any, teacher: Any) -> Outcome:
    cfg = recipe.sft
    dataset = cfg.dataset or str(run.root)
    report = fns.sft(cfg, dataset=dataset, output_dir=student_dir(recipe, run))
    if hasattr(report, "final_loss"):
        loss = f", loss {report.losses[0]:.3f} → {report.final_loss:.3f}" if report.losses and report.final_loss else ""
        return f"{report.steps} steps{loss} → {report.output_dir}", True
    return _summary(report), True


def _eval(recipe: Recipe, run: RunDir, fns: Stages, progress: Any, teacher: Any) -> Outcome:
    cfg = recipe.eval
    if not (cfg.base_url or cfg.vllm) and recipe.sft is not None:  # serve the student we just trained
        cfg = cfg.model_copy(update={"vllm": str(student_dir(recipe, run))})
    report = fns.evaluate(cfg, eval_dir(run), progress=progress)
    if hasattr(report, "results"):
        scores = ", ".join(f"{r.name} pass@1 {100 * r.pass_at_1.mean:.1f}% (k={r.k}, {r.problems} problems)"
                           for r in report.results)
        return f"{scores} → {report.results_md}", True
    return _summary(report), True


_RUNNERS: dict[str, Callable[[Recipe, RunDir, Stages, Any, Any], Outcome]] = {
    "generate": _generate, "verify": _verify, "filter": _filter, "card": _card, "push": _push, "sft": _sft,
    "eval": _eval,
}


def student_dir(recipe: Recipe, run: RunDir) -> Path:
    """Where the student is trained: sft.output_dir when the recipe changes it, else RUN/student."""
    if recipe.sft is not None and recipe.sft.output_dir != type(recipe.sft).model_fields["output_dir"].default:
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


def _summary(report: Any) -> str:
    """A stage report's one-line summary, whatever shape the stage returned."""
    if report is None:
        return "done"
    for attr in ("summary", "summary_line", "one_line"):
        value = getattr(report, attr, None)
        if callable(value):
            value = value()
        if isinstance(value, str) and value:
            return value
    if isinstance(report, Path):
        return str(report)
    return type(report).__name__


def probe_teacher(cfg: Any, *, connect_timeout_s: float = 5.0) -> None:
    """GET /models on every endpoint of generate's settings; TeacherError naming the first unreachable one."""
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
