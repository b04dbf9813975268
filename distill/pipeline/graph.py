"""The stage graph of a run: which stages take part, what each reads, and each stage's fingerprint.

A stage's fingerprint hashes its own settings and the fingerprint of the stage it reads from, so a
changed setting reruns that stage and everything downstream of it (nothing upstream).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distill.errors import ConfigError
from distill.recipe import STAGES

if TYPE_CHECKING:
    from distill.recipe import Recipe
    from distill.run import RunDir

__all__ = [
    "NEEDS",
    "downstream",
    "fingerprints",
    "needs",
    "plan_stages",
    "prompts_path",
    "stage_settings",
    "student_dir",
]

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


def plan_stages(recipe: Recipe, stages: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """(stages that make up this run, stages to run now), both in pipeline order."""
    if stages is not None:
        unknown = [s for s in stages if s not in STAGES]
        if unknown:
            raise ConfigError(f"--stages: unknown stage {unknown[0]!r}; stages are {', '.join(STAGES)}")
    wanted: list[str] = list(recipe.stages) if stages is None else list(stages)
    if stages is not None:
        for stage in wanted:
            if not _has_section(recipe, stage):
                raise ConfigError(f"stage {stage}: the recipe has no `{stage}` section")
    selected: list[str] = [s for s in STAGES if s in wanted and _has_section(recipe, s)]
    graph: list[str] = [
        s for s in STAGES if s in selected or (s in recipe.stages and _has_section(recipe, s))
    ]
    return graph, selected


def _has_section(recipe: Recipe, stage: str) -> bool:
    optional = {"push": recipe.push, "sft": recipe.sft, "eval": recipe.eval}
    return stage not in optional or optional[stage] is not None


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
            "prompts": _file_digest(prompts_path(recipe)),
            "until_correct": recipe.until_correct,
            "max_samples": recipe.max_samples,
        }
    if stage == "card":  # the card stage also builds data/sft
        return recipe.card.fingerprint()
    if stage == "eval" and recipe.demo is not None:
        assert recipe.eval is not None  # eval is in the graph only with an eval section
        return {"eval": recipe.eval.fingerprint(), "demo": recipe.demo.fingerprint()}
    if stage == "sft" and recipe.demo is not None and recipe.demo.student:  # and the student it builds
        assert recipe.sft is not None
        return {"sft": recipe.sft.fingerprint(), "student": recipe.demo.student_shape.fingerprint()}
    section = {
        "verify": recipe.verify,
        "filter": recipe.filter,
        "push": recipe.push,
        "sft": recipe.sft,
        "eval": recipe.eval,
    }[stage]
    assert section is not None  # push, sft and eval are in the graph only with their section
    return section.fingerprint()


def prompts_path(recipe: Recipe) -> Path | None:
    return Path(recipe.generate.prompts) if recipe.generate.prompts else None


def _file_digest(path: Path | None) -> str | None:
    """A content hash of a prompts file (a changed prompt list is a changed setting)."""
    if path is None or not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def student_dir(recipe: Recipe, run: RunDir) -> Path:
    """Where the student is trained: sft.output_dir when the recipe changes it, else RUN/student."""
    if (
        recipe.sft is not None
        and recipe.sft.output_dir != type(recipe.sft).model_fields["output_dir"].default
    ):
        return Path(recipe.sft.output_dir)
    return run.student
