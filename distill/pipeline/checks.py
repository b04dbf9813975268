"""Checks before the first expensive step: every stage to run has what it needs, the endpoints answer.

Each failure is one line naming the key or stage (ConfigError for the recipe, StageError for a missing
earlier stage, HubError for the Hub, TeacherError for an endpoint).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from distill import sources
from distill.errors import ConfigError, StageError
from distill.extras import require_extra
from distill.pipeline.graph import needs, prompts_path, student_dir

if TYPE_CHECKING:
    from distill.evaluation.config import EvalConfig
    from distill.generation.config import GenerateConfig
    from distill.recipe import Recipe
    from distill.run import RunDir

__all__ = ["check_push", "check_ready", "has_outputs", "probe_teacher", "with_template_file"]

log = logging.getLogger(__name__)


def with_template_file(recipe: Recipe) -> Recipe:
    """generate.template may name a file (recipes/templates/math.txt): read it, so its text is fingerprinted."""
    from distill.generation.inputs import read_template

    value = recipe.generate.template
    text = read_template(value, name="generate.template").rstrip("\n")
    if text == value:
        return recipe
    return recipe.model_copy(update={"generate": recipe.generate.model_copy(update={"template": text})})


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
        path = prompts_path(recipe)
        if path is None:
            raise ConfigError("generate.prompts: required key is missing (a prompts file or dataset folder)")
        if sources.resolve(path).kind == "missing":
            raise ConfigError(f"generate.prompts: {path} does not exist")
    if "sft" in selected and recipe.sft is not None and not recipe.sft.model:
        raise ConfigError("sft.model: required key is missing (the student: a local folder or a Hub id)")
    if "sft" in selected and "card" not in graph and recipe.sft is not None and not recipe.sft.dataset:
        raise ConfigError("sft.dataset: required when the run has no card stage (a run folder or a dataset)")
    if "sft" in selected and recipe.sft is not None and not run.is_done("sft", fps["sft"]):
        require_extra("train", "the sft stage")
    if "eval" in selected and recipe.demo is not None and recipe.demo.student:
        require_extra("train", "the demo's student (served for eval)")
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
    if stage == "generate":
        return run.has_rows("all")
    if stage == "sft":
        return (student_dir(recipe, run) / "config.json").is_file()
    return False


def check_push(cfg: Any, *, check_token: bool = True) -> None:
    """The Hub target is valid and a token is there, before hours of generation and training."""
    from huggingface_hub import get_token

    from distill.errors import HubError
    from distill.publishing.config import check_repo_id

    if not cfg.repo:
        raise ConfigError("push.repo: required key is missing (ORG/NAME of the dataset repo)")
    check_repo_id(cfg.repo)
    if check_token and not get_token():
        raise HubError(
            "stage push: no Hugging Face token: set HF_TOKEN or run `hf auth login` (write access), "
            "or leave push out of --stages"
        )


def probe_teacher(cfg: GenerateConfig | EvalConfig, *, connect_timeout_s: float = 5.0) -> None:
    """GET /models on every endpoint of `cfg` (generate's or eval's settings); TeacherError naming the first
    unreachable one. A `vllm:` server is skipped: the stage starts it and health-checks it itself."""
    import asyncio
    import os

    from distill.teachers.openai import OpenAITeacher

    if cfg.vllm:
        return  # the generator starts the server itself and health-checks it
    urls = [cfg.base_url] if isinstance(cfg.base_url, str) else list(cfg.base_url or [])
    key = os.environ.get(cfg.api_key_env) if cfg.api_key_env else None

    async def check_all() -> None:
        for url in urls:
            async with OpenAITeacher(url, api_key=key, connect_timeout_s=connect_timeout_s) as teacher:
                await teacher.check()

    asyncio.run(check_all())
