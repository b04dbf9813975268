"""How a recipe's `demo:` section plugs the built-in teacher and tiny student into the real stages.

Nothing here replaces a stage: the demo only fills in settings (the shipped prompts, the benchmark
files, the student's folder) and runs two local servers while the stages that need them run:

    generate  ─ the demo teacher (DemoTeacher behind TeacherServer, R1-style inline <think>)
    sft       ─ a tiny random student built in RUN/student-base from the run's own texts
    eval      ─ the trained student served locally, batched (StudentResponder behind TeacherServer)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Any

from distill.demo import BENCHMARK_ITEMS, EVAL_PROBLEMS, PROBLEMS
from distill.recipe import DemoConfig, DemoProblems, Recipe, StudentShape
from distill.run import RunDir

log = logging.getLogger(__name__)

TEACHER_PLACEHOLDER = "http://demo-teacher.local/v1"  # replaced by the live server's URL at run time
STUDENT_PLACEHOLDER = "http://demo-student.local/v1"
STUDENT_MODEL = "distill-demo-student"
GENERATED, HELD_OUT = "problems.jsonl", "held_out.jsonl"  # in RUN/inputs, with demo.problems
SHAPE_FILE = "student_shape.json"  # in the built student: the shape it was built with
HELD_OUT_BENCHMARK = "arithmetic"  # the registry name the held-out set is decontaminated and evaluated as
# Benchmarks the demo decontaminates against / evaluates on, and their files in `demo.benchmarks_dir`.
SHARED_FILES = {"math500": "math500_test.jsonl", "gsm8k": "gsm8k_test.jsonl"}


class DemoServices:
    """The pipeline's `services=` for a recipe with `demo:` (what `distill run` passes): the demo's settings
    filled in before the run, its teacher and student served while the stages that need them run."""

    def prepare(self, recipe: Recipe, run: RunDir) -> Recipe:
        return demo_recipe(recipe, run)

    def serve(
        self,
        recipe: Recipe,
        run: RunDir,
        *,
        teacher_needed: bool = False,
        student_needed: bool = False,
        student_base_needed: bool = False,
    ) -> AbstractContextManager[Recipe]:
        return demo_services(
            recipe,
            run,
            teacher_needed=teacher_needed,
            student_needed=student_needed,
            student_base_needed=student_base_needed,
        )


def demo_recipe(recipe: Recipe, run: RunDir) -> Recipe:
    """The recipe with the demo's settings filled in (no-op without a `demo:` section)."""
    demo = recipe.demo
    if demo is None:
        return recipe
    update: dict[str, Any] = {}
    held_out = write_generated_problems(demo.problems, run) if demo.problems is not None else {}
    if held_out and recipe.eval is not None:  # decontaminate against the set eval scores, whichever it is
        held_out = {n: recipe.eval.benchmark_paths.get(n, p) for n, p in held_out.items()}
    if demo.teacher:
        gen = {"model": _demo_model(), "base_url": [TEACHER_PLACEHOLDER]}
        if not recipe.generate.prompts:
            gen["prompts"] = str(run.inputs / GENERATED if held_out else PROBLEMS)
        update["generate"] = _with(recipe.generate, gen)
        update["filter"] = _with_benchmarks(
            recipe.filter, {**decontamination_files(demo.benchmarks_dir), **held_out}
        )
    if demo.student and recipe.sft is not None:
        update["sft"] = _with(recipe.sft, {"model": str(run.student_base)})
    if demo.student and recipe.eval is not None:
        paths = {
            **eval_files(demo.benchmarks_dir, recipe.eval.benchmarks),
            **held_out,
            **recipe.eval.benchmark_paths,
        }
        update["eval"] = _with(
            recipe.eval, {"model": STUDENT_MODEL, "base_url": STUDENT_PLACEHOLDER, "benchmark_paths": paths}
        )
    return recipe.model_copy(update=update)


def write_generated_problems(cfg: DemoProblems, run: RunDir) -> dict[str, Path]:
    """Write the generated training problems and their held-out set into RUN/inputs (unchanged files are
    left alone); returns the held-out set as a benchmark file by name."""
    from distill.demo.arithmetic import make_split, problems_jsonl

    train, held_out = make_split(cfg.train, cfg.held_out, seed=cfg.seed, level=cfg.level)
    run.ensure()  # refuses a folder of the user's that is not a run, before anything is written into it
    files = {run.inputs / GENERATED: train, run.inputs / HELD_OUT: held_out}
    for path, problems in files.items():
        text = problems_jsonl(problems)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            run.write_text(path, text)
    return {HELD_OUT_BENCHMARK: run.inputs / HELD_OUT}


def decontamination_files(benchmarks_dir: Path | None) -> dict[str, Path]:
    """MATH-500 and GSM8K from `benchmarks_dir` when it holds them, else the two shipped originals."""
    if benchmarks_dir is not None and all((benchmarks_dir / f).is_file() for f in SHARED_FILES.values()):
        return {name: benchmarks_dir / f for name, f in SHARED_FILES.items()}
    return dict(BENCHMARK_ITEMS)


def eval_files(benchmarks_dir: Path | None, names: list[str]) -> dict[str, Path]:
    """Local files for the eval benchmarks: those in `benchmarks_dir`, else (gsm8k) the demo's own problems."""
    found = {} if benchmarks_dir is None else {n: benchmarks_dir / f for n, f in SHARED_FILES.items()}
    files = {n: path for n, path in found.items() if path.is_file()}
    files.setdefault("gsm8k", EVAL_PROBLEMS)  # GSM8K-format: `#### answer`
    return {n: files[n] for n in names if n in files}


@contextmanager
def demo_services(
    recipe: Recipe,
    run: RunDir,
    *,
    teacher_needed: bool = False,
    student_needed: bool = False,
    student_base_needed: bool = False,
) -> Iterator[Recipe]:
    """Start what the next stage needs (the demo teacher, the student server), and stop it afterwards."""
    demo = recipe.demo
    if demo is None:
        yield recipe
        return
    from distill.testing.local_server import TeacherServer

    update: dict[str, Any] = {}
    with ExitStack() as stack:
        if teacher_needed and demo.teacher:
            from distill.demo.teacher import DemoTeacher, load_problems

            problems = (
                load_problems(Path(recipe.generate.prompts))
                if demo.problems is not None and recipe.generate.prompts
                else None
            )
            teacher = DemoTeacher(problems) if problems is not None else DemoTeacher()
            server = stack.enter_context(
                TeacherServer(teacher, model=_demo_model(), reasoning_field="inline", record=False)
            )
            update["generate"] = _with(recipe.generate, {"base_url": [server.base_url]})
        if student_base_needed and demo.student and recipe.sft is not None:
            build_student_base(Path(recipe.sft.model), run, demo.student_shape)
        if student_needed and demo.student and recipe.eval is not None:
            from distill.pipeline.graph import student_dir

            base_url = stack.enter_context(student_server(student_dir(recipe, run), demo))
            update["eval"] = _with(recipe.eval, {"base_url": base_url})
        yield recipe.model_copy(update=update)


@contextmanager
def student_server(model_dir: Path, demo: DemoConfig) -> Iterator[str]:
    """The checkpoint in `model_dir` answering on 127.0.0.1 (concurrent requests batched, on a GPU when
    there is one); yields its base URL."""
    from distill.demo.student import BatchingResponder, StudentResponder
    from distill.testing.local_server import TeacherServer

    student = StudentResponder(model_dir, max_new_tokens=demo.student_max_tokens, device=demo.student_device)
    student.load()
    responder = BatchingResponder(student, max_batch=demo.student_batch)
    with TeacherServer(responder, model=STUDENT_MODEL, record=False) as server:
        yield server.base_url


def build_student_base(out_dir: Path, run: RunDir, shape: StudentShape | None = None) -> Path:
    """The random student of `shape`, its tokenizer trained on this run's kept traces (built once per shape)."""
    import shutil

    from distill import schema
    from distill.demo.student import quiet_transformers
    from distill.training.tiny import build_tiny_model

    shape = shape or StudentShape()
    marker = out_dir / SHAPE_FILE
    built = marker.is_file() and json.loads(marker.read_text(encoding="utf-8")) == shape.model_dump()
    if built and (out_dir / "config.json").is_file():
        return out_dir
    if out_dir.exists():
        shutil.rmtree(out_dir)
    texts: list[str] = []
    if run.has_rows("sft"):
        for messages in run.read("sft")[schema.MESSAGES].to_list():
            texts.extend(m["content"] for m in messages or [])
    log.info("building a random student in %s (tokenizer trained on %d texts)", out_dir, len(texts))
    with quiet_transformers():
        build_tiny_model(
            out_dir,
            "qwen2",
            texts or None,
            vocab_size=shape.vocab_size,
            hidden=shape.hidden,
            layers=shape.layers,
            heads=shape.heads,
            kv_heads=shape.kv_heads,
            split_digits=shape.split_digits,
        )
    run.write_text(marker, json.dumps(shape.model_dump()) + "\n")  # last: the folder is complete
    return out_dir


def _demo_model() -> str:
    from distill.demo.teacher import DEMO_MODEL

    return DEMO_MODEL


def _with(cfg: Any, update: dict[str, Any]) -> Any:
    """`cfg` with some fields replaced, validated like the recipe was."""
    known = {k: v for k, v in update.items() if k in type(cfg).model_fields}
    # only the keys the recipe set, so "was this set?" (e.g. sft.output_dir) still means the recipe's choice
    return type(cfg).model_validate({**cfg.model_dump(exclude_unset=True), **known})


def _with_benchmarks(cfg: Any, files: dict[str, Path]) -> Any:
    """The filter settings with the demo's decontamination files, unless the recipe names its own."""
    if cfg.benchmarks or cfg.benchmark_paths:
        return cfg
    return _with(cfg, {"benchmarks": list(files), "benchmark_paths": files})
