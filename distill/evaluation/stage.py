"""Evaluation of a student on benchmarks, the way DeepSeek measured R1 and its distilled students.

    distill eval --model deepseek-ai/DeepSeek-R1-Distill-Qwen-7B --base-url http://localhost:8000/v1 \
        --benchmarks aime24,math500 --out evals/qwen7b
    distill eval --vllm runs/sft/checkpoint --benchmarks aime24 --out evals/student

Nothing here samples or grades by itself: the prompts go through the generation engine
(`distill.generation.stage.generate`, so an evaluation is resumable, crash-safe and records its seeds), the
samples through the verifiers (`distill.verification.stage.verify_frame`), and the benchmarks come from the
registry (`distill.evaluation.benchmarks`). Layout of EVALDIR:

    EVALDIR/
      eval.yaml               the resolved settings
      results.json            every score, with its standard error and 95% interval
      results.md              the same as a table, beside DeepSeek's published numbers
      <benchmark>/            one run directory per benchmark (prompts.jsonl, generations/, data/all
                              with every sample, its verdict and its vote), so any score can be audited
                              and re-scored (`distill eval --rescore EVALDIR`) without generating again
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from distill.config import describe_validation_error
from distill.errors import ConfigError, StageError
from distill.evaluation.config import EvalConfig
from distill.evaluation.prompts import CODE_PREFIX_COLUMN, PROMPT_COLUMN, prompt_rows

if TYPE_CHECKING:
    import polars as pl

    from distill.evaluation.benchmarks import Benchmark
    from distill.evaluation.report import BenchmarkResult, EvalReport
    from distill.progress import Progress
    from distill.run import RunDir
    from distill.teachers.base import Teacher

log = logging.getLogger(__name__)


# ── the stage ────────────────────────────────────────────────────────────────
def evaluate(
    cfg: EvalConfig, out: Path, *, progress: Progress | None = None, teacher: Teacher | None = None
) -> EvalReport:
    """Sample every benchmark k times with the generation engine, verify, score, and write the report.

    Rerunning the same command resumes: samples already in EVALDIR/<benchmark>/ are kept. With
    `vllm`, one server is started for all benchmarks and stopped at the end. `teacher` is passed
    through to the generation engine (a Teacher object already open, e.g. in a notebook).
    """
    import contextlib

    from distill.evaluation.reference_table import resolve_reference
    from distill.generation.stage import generate
    from distill.run import RunDir

    if not (cfg.base_url or cfg.vllm or teacher is not None):
        raise ConfigError("eval needs a student: --model NAME --base-url URL, or --vllm CHECKPOINT")
    out = Path(out)
    benches = _load_benchmarks(cfg)  # an unknown name fails here, before anything is generated
    resolve_reference(cfg.reference, cfg.model_id, cfg.reference_table)  # and so does an unknown reference
    out.mkdir(parents=True, exist_ok=True)
    results, generated, served = [], 0, None
    with contextlib.ExitStack() as stack:
        base_url = cfg.base_url
        if cfg.vllm and teacher is None:
            base_url = stack.enter_context(_vllm_server(cfg, out)).base_url
        for bench, full in benches:
            run = RunDir(out).benchmark(bench.spec.name).ensure()
            k = _k_for(cfg, bench)
            gen_cfg = generate_config(cfg, _write_prompts(cfg, bench, run), k, base_url=base_url)
            gen_report = generate(gen_cfg, run, teacher=teacher, progress=progress)
            generated, served = generated + gen_report.written, served or gen_report.teacher
            results.append(_score(cfg, bench, run, k, full, progress=progress))
    return _write_report(cfg, out, results, generated=generated, served=served)


def rescore_run(out: Path, cfg: EvalConfig | None = None) -> EvalReport:
    """Verify and score the samples already in EVALDIR again (new verifier, other pass@k), generating nothing."""
    from distill.run import RunDir

    out = Path(out)
    cfg = cfg or read_settings(out)
    results = []
    for bench, full in _load_benchmarks(cfg):
        run = RunDir(out).benchmark(bench.spec.name)
        if not run.has_rows():
            raise StageError(f"{run.root} has no samples: run `distill eval` with the same --out first")
        results.append(_score(cfg, bench, run, _k_for(cfg, bench), full))
    return _write_report(cfg, out, results)


# ── steps ────────────────────────────────────────────────────────────────────
def _load_benchmarks(cfg: EvalConfig) -> list[tuple[Benchmark, int | None]]:
    """Each benchmark to run, with its full size when `limit` cut it down."""
    from distill.evaluation.benchmarks import canonical_name, find_spec, get_spec, load_benchmark

    if not cfg.benchmarks:
        raise ConfigError("no benchmarks to evaluate: pass --benchmarks, e.g. aime24,math500")
    names = [canonical_name(name) for name in cfg.benchmarks]
    paths = {canonical_name(n): p for n, p in cfg.benchmark_paths.items()}
    for name in [*names, *cfg.k_by_benchmark]:
        if find_spec(name) is None and canonical_name(name) not in paths:
            get_spec(name)  # one line: pass --benchmark NAME=PATH, or one of the known names
    unknown = [n for n in paths if n not in names]
    if unknown:
        log.info("local copies given for benchmarks not evaluated: %s", ", ".join(unknown))
    meta = {canonical_name(n): m for n, m in cfg.benchmarks_meta.items()}
    benches = []
    for name in dict.fromkeys(names):
        bench = load_benchmark(name, paths.get(name), meta=meta.get(name))
        full = len(bench)
        if cfg.limit is not None and full > cfg.limit:
            bench = replace(bench, rows=bench.rows.head(cfg.limit))
        benches.append((bench, full if len(bench) < full else None))
    return benches


def _k_for(cfg: EvalConfig, bench: Benchmark) -> int:
    from distill.evaluation.benchmarks import canonical_name

    chosen = {canonical_name(name): k for name, k in cfg.k_by_benchmark.items()}
    if bench.spec.name in chosen:
        return chosen[bench.spec.name]
    return bench.spec.default_k if cfg.k == "auto" else int(cfg.k)


def _write_prompts(cfg: EvalConfig, bench: Benchmark, run: RunDir) -> Path:
    path = run.prompts_file
    text = "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in prompt_rows(cfg, bench))
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        run.write_text(path, text)
    return path


def generate_config(cfg: EvalConfig, prompts: Path, k: int, *, base_url: str | None = None) -> Any:
    """The generation engine's settings for one benchmark: the eval protocol over the `engine` extras."""
    from distill.generation.config import GenerateConfig

    settings: dict[str, Any] = {
        **cfg.engine.model_dump(exclude_unset=True),
        "prompts": str(prompts),
        "prompt_column": PROMPT_COLUMN,
        "template": "{prompt}",
        "system": cfg.system,
        "n": k,
        "temperature": cfg.temperature,
        "top_p": cfg.top_p,
        "max_tokens": cfg.max_tokens,
        "seed": cfg.seed,
        "on_length": "keep",  # a truncated answer is scored wrong, never dropped or retried longer
        "vllm": None,  # evaluate() starts one server for all benchmarks
    }
    url = base_url or cfg.base_url
    if url:
        settings["base_url"] = [url]
    if cfg.vllm:  # the served name; it also keeps samples of another checkpoint from being resumed here
        settings["model"] = _served_name(cfg)
    elif cfg.model:
        settings["model"] = cfg.model
    if cfg.api_key_env:
        settings["api_key_env"] = cfg.api_key_env
    try:
        return GenerateConfig.model_validate(settings)
    except ValidationError as e:
        raise ConfigError(describe_validation_error(e, "eval settings for the generation engine")) from e


def _served_name(cfg: EvalConfig) -> str | None:
    """The name `vllm serve` gives the checkpoint: --served-model-name when set, else the path as given."""
    args = list(cfg.engine.vllm.args if cfg.engine.vllm else [])
    for i, arg in enumerate(args):
        if arg.startswith("--served-model-name="):
            return arg.split("=", 1)[1]
        if arg == "--served-model-name" and i + 1 < len(args):
            return args[i + 1]
    return cfg.vllm


def _vllm_server(cfg: EvalConfig, out: Path) -> Any:
    """A `vllm serve` of the checkpoint (the engine's server class), with the `engine.vllm` options."""
    from distill.run import RunDir
    from distill.teachers.vllm_server import VllmConfig, VllmServer

    vllm_cfg = (cfg.engine.vllm or VllmConfig()).model_copy(update={"model": cfg.vllm})
    return VllmServer(vllm_cfg, log_dir=RunDir(out).logs)


def _score(
    cfg: EvalConfig,
    bench: Benchmark,
    run: RunDir,
    k: int,
    full_size: int | None,
    *,
    progress: Progress | None = None,
) -> BenchmarkResult:
    """Verify every sample, add its vote, keep the scored rows in data/all, and compute the scores."""
    import polars as pl

    from distill import schema
    from distill.evaluation.report import SCORED_CORRECT, VOTE_ANSWER, add_votes, mark_scored, score_frame
    from distill.verification.stage import OUTPUT_COLUMNS

    # Only this evaluation's prompts and k: the store keeps samples of a larger k, a larger limit or
    # another instruction from earlier runs into the same EVALDIR, and those must not count here.
    prompts = [r[PROMPT_COLUMN] for r in prompt_rows(cfg, bench)]
    rows = run.read("all").filter(pl.col(schema.SAMPLE) < k, pl.col(PROMPT_COLUMN).is_in(prompts))
    frame = mark_scored(add_votes(_verify(cfg, bench, rows, progress), bench.spec.kind))
    scored = [c for c in (*OUTPUT_COLUMNS, VOTE_ANSWER, SCORED_CORRECT) if c in frame.columns]
    run.update_rows(frame.select(*schema.KEY, *scored))
    result = score_frame(
        frame,
        name=bench.spec.name,
        version=bench.spec.version,
        kind=bench.spec.kind,
        k=k,
        pass_k=tuple(cfg.pass_k),
        cons=cfg.cons,
    )
    result.subset_of = full_size
    run.update_stats("eval", result.as_dict())
    if result.errors:
        log.warning(
            "%s: %d requests failed and count as wrong; rerun the same command to retry them",
            bench.spec.name,
            result.errors,
        )
    return result


def _verify(
    cfg: EvalConfig, bench: Benchmark, frame: pl.DataFrame, progress: Progress | None
) -> pl.DataFrame:
    """The verifiers that fit the benchmark: math (and letters) by answer, code by its tests."""
    from distill.verification.stage import VerifyConfig, verify_frame

    is_code = bench.spec.kind == "code"
    settings: dict[str, Any] = (
        {"code_prefix_column": CODE_PREFIX_COLUMN} if CODE_PREFIX_COLUMN in frame.columns else {}
    )
    chosen = cfg.verifier.model_dump(exclude_unset=True)
    settings = {**settings, **chosen, "math": not is_code, "code": is_code}
    try:
        verify_cfg = VerifyConfig.model_validate(settings)
    except ValidationError as e:
        raise ConfigError(describe_validation_error(e, "eval.verifier")) from e
    return verify_frame(verify_cfg, frame, progress=progress)


# ── settings and report files ────────────────────────────────────────────────
def _write_settings(cfg: EvalConfig, out: Path) -> None:
    """EVALDIR/eval.yaml: the resolved settings as a recipe fragment (`distill eval --recipe` reads it back)."""
    import yaml

    from distill.config import redact
    from distill.run import RunDir

    data = {"eval": redact(cfg.model_dump(mode="json"))}
    run = RunDir(out)
    run.write_text(run.eval_settings, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def settings_file(out: Path) -> Path:
    """EVALDIR/eval.yaml, the settings an evaluation in `out` ran with; StageError when there is none."""
    from distill.run import RunDir

    path = RunDir(out).eval_settings
    if not path.exists():
        raise StageError(
            f"{out} is not an evaluation folder (no eval.yaml): run `distill eval --out {out}` first"
        )
    return path


def read_settings(out: Path, overrides: Sequence[str] = ()) -> EvalConfig:
    """The settings an evaluation in `out` ran with, with `eval.key=value` overrides applied."""
    from distill.config import resolve

    return resolve(EvalConfig, settings_file(out), overrides, section="eval")


def _write_report(
    cfg: EvalConfig,
    out: Path,
    results: list[BenchmarkResult],
    *,
    generated: int = 0,
    served: str | None = None,
) -> EvalReport:
    """Match the reference row, then write results.json and results.md (atomically)."""
    from distill.evaluation.reference_table import recorded_model, reference_scores, resolve_reference
    from distill.evaluation.report import EvalReport
    from distill.run import RunDir

    model_id = cfg.model_id or served or recorded_model(out, [r.name for r in results])
    table, ref_model = resolve_reference(cfg.reference, model_id, cfg.reference_table)
    for r in results:
        r.reference = reference_scores(table, ref_model, r.name) if ref_model else {}
    settings = {
        "temperature": cfg.temperature,
        "top_p": cfg.top_p,
        "max_tokens": cfg.max_tokens,
        "seed": cfg.seed,
        "system": cfg.system,
        "math_instruction": cfg.math_instruction,
        "limit": cfg.limit,
    }
    report = EvalReport(
        out=out,
        model=model_id,
        results=results,
        settings=settings,
        reference_model=ref_model,
        reference_source=table.get("source") if ref_model else None,
        generated=generated,
    )
    _write_settings(cfg, out)  # with the results, never before: a refused run must not replace them
    run = RunDir(out)
    report.results_json = run.write_json(run.results_json, report.as_dict())
    report.results_md = run.write_text(run.results_md, report.to_markdown())
    return report
