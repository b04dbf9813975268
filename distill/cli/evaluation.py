"""`distill eval`: a student scored on benchmarks with DeepSeek-R1's protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from distill.cli.app import QuietOpt, RecipeOpt, SetOpt, app, console


@app.command("eval")
def eval_(
    out: Annotated[Path, typer.Option("--out", "-o", help="EVALDIR: samples, verdicts and results go here.")],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Model name at --base-url (or the endpoint URL itself); matched against DeepSeek's table.",
        ),
    ] = None,
    vllm: Annotated[
        str | None,
        typer.Option("--vllm", help="Serve this local checkpoint with `vllm serve` for the evaluation."),
    ] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="OpenAI-compatible endpoint.")] = None,
    benchmarks: Annotated[
        str | None,
        typer.Option(
            "--benchmarks",
            help="Comma-separated registry names, e.g. aime24,aime25,math500,amc23,gsm8k,humaneval.",
        ),
    ] = None,
    benchmark: Annotated[
        list[str] | None,
        typer.Option("--benchmark", help="NAME=PATH: a local copy of a benchmark (repeatable)."),
    ] = None,
    k: Annotated[
        str | None, typer.Option("--k", help="Samples per problem: auto (registry default) or N.")
    ] = None,
    temperature: Annotated[float | None, typer.Option("--temperature", help="Sampling temperature.")] = None,
    top_p: Annotated[float | None, typer.Option("--top-p", help="Nucleus sampling.")] = None,
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", help="Completion budget per sample, in tokens.")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Base sampling seed (recorded).")] = None,
    rescore: Annotated[
        bool,
        typer.Option(
            "--rescore", help="Verify and score the samples already in --out again; generate nothing."
        ),
    ] = False,
    recipe: RecipeOpt = None,
    set_: SetOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Evaluate a student: k samples per problem, pass@1 ± error, cons@k, beside DeepSeek's numbers.

    DeepSeek-R1's protocol by default (temperature 0.6, top-p 0.95, 32,768 tokens, k per benchmark: AIME 64, MATH-500 16). Samples go through the generation engine, so an evaluation resumes like a generation; every sample and verdict stays in --out for auditing and `--rescore`.

    [bold]Examples[/bold]

    [cyan]distill eval --model deepseek-ai/DeepSeek-R1-Distill-Qwen-7B --base-url http://localhost:8000/v1 --benchmarks aime24,math500 --out evals/qwen7b[/cyan]

    [cyan]distill eval --vllm runs/math/student --benchmarks aime24,aime25,math500 --out evals/student[/cyan]

    [cyan]distill eval --recipe smoke --model NAME --base-url URL --benchmark math500=math500_test.jsonl --out evals/smoke[/cyan]

    [cyan]distill eval --rescore --out evals/student[/cyan]  re-verify and re-score, generating nothing
    """
    from distill.config import resolve
    from distill.evaluation.benchmarks import parse_benchmark_option
    from distill.evaluation.config import EvalConfig
    from distill.evaluation.stage import evaluate, rescore_run, settings_file
    from distill.progress import RichProgress
    from distill.resources import resolve_recipe

    if model and model.startswith(("http://", "https://")):
        model, base_url = None, base_url or model
    local = dict(parse_benchmark_option(option) for option in benchmark or ())
    if local and benchmarks is None and not rescore:
        benchmarks = ",".join(local)
    # --rescore: the settings the evaluation in --out ran with, instead of a recipe
    source = (
        settings_file(out) if rescore else None if recipe is None else resolve_recipe(recipe, prefer="eval")
    )
    cfg = resolve(
        EvalConfig,
        source,
        set_ or (),
        section="eval",
        flags={
            "model": model,
            "vllm": vllm,
            "base_url": base_url,
            "benchmarks": benchmarks,
            "k": k,
            "temperature": temperature,
            "top_p": top_p,
            "max_tokens": max_tokens,
            "seed": seed,
        },
    )
    if local:  # local copies add to the recipe's
        cfg = cfg.with_flags(benchmark_paths={**cfg.benchmark_paths, **local})
    if rescore:
        report = rescore_run(out, cfg)
    else:
        report = evaluate(cfg, out, progress=None if quiet else RichProgress())
    console().print(report.as_table())
    console().print(f"results: {report.results_json}  ·  {report.results_md}")
