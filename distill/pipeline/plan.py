"""`distill run --dry-run`: what a run would do and cost, and what RUN already holds. Runs no stage.

The plan counts prompts and samples, estimates tokens and cost from the recipe's prices (measured on
a pilot of a few prompts when the teacher answers, else an upper bound from max_tokens), estimates
SFT steps and GPU-hours from the student recipe, and says, stage by stage, whether RUN already has
that stage's outputs for the same settings.
"""

from __future__ import annotations

import logging
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from distill import schema
from distill.errors import DistillError
from distill.pipeline.graph import student_dir

if TYPE_CHECKING:
    import polars as pl

    from distill.generation.config import GenerateConfig
    from distill.pipeline.stages import Stages
    from distill.recipe import Recipe
    from distill.run import RunDir
    from distill.teachers.base import Teacher

log = logging.getLogger(__name__)


@dataclass
class Pilot:
    """What a few real requests said about the teacher."""

    prompts: int
    samples: int
    prompt_tokens: float  # mean per sample
    completion_tokens: float  # mean per sample
    truncated: float  # share with finish_reason == length
    pass_rate: float | None


@dataclass
class Plan:
    prompts: int | None
    samples_min: int | None
    samples_max: int | None
    samples_expected: int | None
    completion_tokens: float | None  # expected total
    prompt_tokens: float | None
    cost_usd: float | None
    token_basis: str  # how the token numbers were obtained
    pilot: Pilot | None
    sft: dict[str, Any] = field(default_factory=dict)
    stages: list[tuple[str, str]] = field(default_factory=list)  # (stage, what RUN holds / will happen)
    existing: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what could not be estimated, and why

    def lines(self) -> list[str]:
        """The plan as short lines for a terminal."""
        out = [f"note           {note}" for note in self.notes]
        if self.prompts is not None:
            samples = (
                f"{self.samples_min:,}"
                if self.samples_min == self.samples_max
                else f"{self.samples_min:,}–{self.samples_max:,} (expected ≈{self.samples_expected:,})"
            )
            out.append(f"prompts        {self.prompts:,}")
            out.append(f"samples        {samples}")
        if self.completion_tokens is not None:
            out.append(
                f"tokens         ≈{self.prompt_tokens:,.0f} in, ≈{self.completion_tokens:,.0f} out "
                f"({self.token_basis})"
            )
        if self.cost_usd is not None:
            out.append(f"cost           ≈${self.cost_usd:,.2f} (recipe prices)")
        if self.pilot is not None:
            p = self.pilot
            rate = f", pass rate {p.pass_rate:.0%}" if p.pass_rate is not None else ""
            out.append(
                f"pilot          {p.samples} samples of {p.prompts} prompts: ≈{p.completion_tokens:,.0f} "
                f"tokens each, {p.truncated:.0%} truncated{rate}"
            )
        for key, value in self.sft.items():
            out.append(f"sft {key:<10} {value}")
        for key, value in self.existing.items():
            out.append(f"RUN {key:<10} {value}")
        for stage, status in self.stages:
            out.append(f"stage {stage:<8} {status}")
        return out


def make_plan(
    recipe: Recipe,
    run: RunDir,
    graph: list[str],
    selected: list[str],
    fps: dict[str, str],
    *,
    fns: Stages,
    teacher: Teacher | None = None,
    pilot_prompts: int = 3,
) -> Plan:
    """Build the plan; a pilot runs only when generation is still to do and the teacher answers."""
    gen = recipe.generate
    todo = {s for s in selected if not run.is_done(s, fps[s])}
    prompts_path = Path(gen.prompts) if gen.prompts else None
    notes: list[str] = []
    frame = read_prompts(prompts_path, notes=notes) if prompts_path is not None else None
    prompts = None if frame is None else frame.height
    n = gen.n
    pilot = None
    basis = "upper bound: every sample uses max_tokens"
    if "generate" in todo and gen.vllm is not None and teacher is None:
        notes.append(
            "no pilot: the teacher is a vLLM server that only the run starts (token figures are upper bounds)"
        )
    elif "generate" in todo and pilot_prompts and prompts_path is not None and prompts is not None:
        pilot = run_pilot(recipe, prompts_path, pilot_prompts, fns=fns, teacher=teacher, notes=notes)
        if pilot is not None:
            basis = f"from a pilot of {pilot.samples} samples"

    s_min = s_max = s_exp = None
    if prompts is not None:
        s_min = s_max = s_exp = prompts * n
        if recipe.until_correct is not None:
            cap = recipe.max_samples or max(recipe.until_correct, 16)
            s_max = prompts * max(cap, n)
            rate = pilot.pass_rate if pilot and pilot.pass_rate else None
            per_prompt = min(cap, max(n, math.ceil(recipe.until_correct / rate))) if rate else cap
            s_exp = prompts * per_prompt
    out_tokens = in_tokens = cost = None
    if s_exp is not None:
        max_tokens = gen.max_tokens
        per_out = pilot.completion_tokens if pilot else max_tokens
        per_in = pilot.prompt_tokens if pilot else _prompt_tokens_guess(gen, frame)
        out_tokens, in_tokens = per_out * s_exp, per_in * s_exp
        cost = _cost(gen, in_tokens, out_tokens)
    plan = Plan(prompts, s_min, s_max, s_exp, out_tokens, in_tokens, cost, basis, pilot, notes=notes)
    if recipe.sft is not None and "sft" in graph:
        plan.sft = sft_estimate(recipe, run, s_exp, pilot, fns=fns)
    plan.existing = existing(run)
    if "push" in todo:
        from huggingface_hub import get_token

        if not get_token():
            plan.existing["push"] = "no Hugging Face token yet: set HF_TOKEN (write access) before the run"
    for stage in graph:
        record = run.stage_record(stage)
        if stage not in selected:
            status = "not selected"
        elif run.is_done(stage, fps[stage]):
            status = "done with these settings: skipped"
        elif record is not None:
            status = "done with other settings: will run again"
        else:
            status = "will run"
        plan.stages.append((stage, status))
    return plan


def _prompt_tokens_guess(gen: GenerateConfig, frame: pl.DataFrame | None) -> float:
    """Mean prompt tokens without a pilot: (template + prompt) characters / 4."""
    column = gen.prompt_column
    if frame is None or column not in frame.columns:
        return 0.0
    chars = frame[column].cast(str).str.len_chars().mean() or 0
    return (float(cast(float, chars)) + len(gen.template)) / 4


def read_prompts(path: Path, limit: int | None = None, notes: list[str] | None = None) -> pl.DataFrame | None:
    from distill.generation.inputs import read_table

    try:
        frame = read_table(path)
    except DistillError as e:
        if notes is not None:
            notes.append(f"prompts not counted: {e}")
        return None
    return frame.head(limit) if limit else frame


def run_pilot(
    recipe: Recipe,
    prompts_path: Path,
    k: int,
    *,
    fns: Stages,
    teacher: Teacher | None = None,
    notes: list[str] | None = None,
) -> Pilot | None:
    """One sample each for the first `k` prompts, into a throw-away run; None when the teacher is unavailable."""
    import polars as pl

    from distill.run import RunDir

    head = read_prompts(prompts_path, limit=k)
    if head is None or head.is_empty():
        return None
    with tempfile.TemporaryDirectory(prefix="distill-pilot-") as tmp:
        pilot_file = Path(tmp) / "pilot.jsonl"
        head.write_ndjson(pilot_file)
        cfg = recipe.generate.model_copy(update={"prompts": str(pilot_file), "n": 1})
        run = RunDir(Path(tmp) / "run")
        try:
            fns.generate(cfg, run, teacher=teacher)
            rows = run.read("all")
        except DistillError as e:
            if notes is not None:
                notes.append(f"no pilot (token and cost figures are upper bounds): {e}")
            return None
        ok = rows.filter(pl.col(schema.ERROR).is_null()) if schema.ERROR in rows.columns else rows
        if ok.is_empty():
            return None
        pass_rate = None
        try:
            scored = fns.verify_frame(recipe.verify, ok)
            pass_rate = float(cast(float, scored[schema.CORRECT].fill_null(False).cast(pl.Float64).mean()))
        except DistillError as e:
            log.info("pilot not verified: %s", e)
        truncated = (
            float(cast(float, (ok[schema.FINISH_REASON] == "length").cast(pl.Float64).mean()))
            if schema.FINISH_REASON in ok.columns
            else 0.0
        )
        return Pilot(
            prompts=head.height,
            samples=ok.height,
            prompt_tokens=float(cast(float, ok[schema.PROMPT_TOKENS].mean() or 0)),
            completion_tokens=float(cast(float, ok[schema.COMPLETION_TOKENS].mean() or 0)),
            truncated=truncated,
            pass_rate=pass_rate,
        )


def _cost(gen: GenerateConfig, in_tokens: float, out_tokens: float) -> float | None:
    """Dollars from the recipe's per-million-token prices (None when the recipe has none)."""
    if not gen.prices.cost(1_000_000, 1_000_000):
        return None
    return gen.prices.cost(round(in_tokens), round(out_tokens))


def sft_estimate(
    recipe: Recipe, run: RunDir, samples: int | None, pilot: Pilot | None, *, fns: Stages
) -> dict[str, Any]:
    """Steps and GPU-hours of the student recipe: the SFT stage's own estimate (sft --dry-run) when the
    dataset exists, else the same estimate on the expected samples (pilot lengths) when the student's
    config can be read here, else a rough count."""
    cfg = recipe.sft
    assert cfg is not None  # planned only for recipes with an sft section
    out: dict[str, Any] = {"batch": cfg.batch_plan()}
    est = None
    if run.has_rows("sft"):
        try:
            est = fns.sft(
                cfg, dataset=str(run.root), output_dir=student_dir(recipe, run), dry_run=True
            ).estimate
        except DistillError as e:
            out["estimate"] = f"not available: {e}"
            return out
    elif samples is not None and pilot is not None:
        est = _estimate_from_pilot(cfg, samples, pilot)
    if est is not None:
        out["steps"] = f"{est.steps:,} ({est.tokens:,} tokens per epoch, {est.gpus} GPU(s))"
        out["gpu_hours"] = f"≈{est.gpu_hours:,.2f} ({est.throughput_source})"
        out["memory"] = f"≈{est.memory.total_gib:,.1f} GiB per GPU" + ("" if est.fits else " — does NOT fit")
        return out
    if samples is not None:
        steps = math.ceil(cfg.epochs * samples / cfg.global_batch_size)
        why = "no pilot" if pilot is None else f"the config of {cfg.model} is not readable here"
        out["steps"] = f"≤ {min(steps, cfg.max_steps or steps):,} (one sample per row; {why})"
    return out


def _estimate_from_pilot(cfg: Any, samples: int, pilot: Pilot) -> Any:
    """The SFT estimate for `samples` traces of the pilot's mean length (None when the model is unknown here)."""
    try:
        from transformers import AutoConfig

        from distill.training.estimate import estimate

        model_config = AutoConfig.from_pretrained(cfg.model)
    except (OSError, ValueError, ImportError) as e:
        log.info("no SFT estimate: cannot read the config of %s (%s)", cfg.model, e)
        return None
    length = max(1, round(pilot.prompt_tokens + pilot.completion_tokens))
    kept = samples if length <= cfg.max_length or not cfg.drop_long else 0
    return estimate(
        cfg,
        model_config,
        lengths=[length] * kept,
        target_tokens=round(pilot.completion_tokens) * kept,
        rows_in=samples,
        dropped_long=samples - kept,
        truncated=0,
    )


def existing(run: RunDir) -> dict[str, Any]:
    """What RUN already holds."""
    found: dict[str, Any] = {}
    if not run.root.exists():
        return {"folder": f"{run.root} (new)"}
    for config in ("all", "sft"):
        if run.has_rows(config):
            found[f"data/{config}"] = f"{run.scan(config).select(schema.PROMPT_ID).collect().height:,} rows"
    if run.store.exists():
        found["store"] = f"{run.store} ({run.store.stat().st_size / 1e6:,.1f} MB)"
    if run.card.exists():
        found["card"] = str(run.card)
    return found
