"""`distill generate` and `distill merge`: teacher traces into a run, and shard runs joined into one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from distill.cli.app import QuietOpt, RecipeOpt, SetOpt, app, console


@app.command("generate")
def generate_(
    prompts: Annotated[
        str | None,
        typer.Argument(
            help="Prompts: .jsonl/.json/.csv/.parquet, a dataset folder, or a Hub id.", show_default=False
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="The run directory (default: the recipe's run_dir).")
    ] = None,
    base_url: Annotated[
        list[str] | None,
        typer.Option(
            "--base-url",
            help="OpenAI-compatible base URL, e.g. https://api.deepseek.com/v1 (repeatable: a pool).",
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Model name at the endpoint (default: the one it serves).")
    ] = None,
    n: Annotated[int | None, typer.Option("--n", help="Samples per prompt.")] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", help="Requests in flight, at most.")
    ] = None,
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", help="Completion budget per sample, in tokens.")
    ] = None,
    temperature: Annotated[float | None, typer.Option("--temperature", help="Sampling temperature.")] = None,
    top_p: Annotated[float | None, typer.Option("--top-p", help="Nucleus sampling.")] = None,
    prompt_column: Annotated[
        str | None, typer.Option("--prompt-column", help="Input column holding the prompt text.")
    ] = None,
    template: Annotated[
        str | None,
        typer.Option(
            "--template", help="User turn as TEXT or FILE; {prompt} = the prompt column, {col} = any column."
        ),
    ] = None,
    system: Annotated[str | None, typer.Option("--system", help="System prompt.")] = None,
    api_key_env: Annotated[
        str | None,
        typer.Option(
            "--api-key-env", help="Environment variable holding the API key, e.g. DEEPSEEK_API_KEY."
        ),
    ] = None,
    vllm: Annotated[
        str | None, typer.Option("--vllm", help="Start `vllm serve MODEL` and generate from it.")
    ] = None,
    tensor_parallel: Annotated[
        int | None, typer.Option("--tensor-parallel", help="vLLM tensor parallel size.")
    ] = None,
    data_parallel: Annotated[
        int | None, typer.Option("--data-parallel", help="vLLM data parallel size.")
    ] = None,
    vllm_arg: Annotated[
        list[str] | None,
        typer.Option(
            "--vllm-arg",
            help="Extra `vllm serve` argument (repeatable), e.g. --vllm-arg=--max-model-len=32768.",
        ),
    ] = None,
    shard: Annotated[
        str | None, typer.Option("--shard", help="I/N: generate only the I-th of N slices.")
    ] = None,
    resume_with_changed_settings: Annotated[
        bool,
        typer.Option(
            "--resume-with-changed-settings", help="Continue RUN even though its generation settings differ."
        ),
    ] = False,
    recipe: RecipeOpt = None,
    set_: SetOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Generate teacher traces for every prompt: crash-safe, resumable, at full teacher throughput.

    [bold]Examples[/bold]

      distill generate math.jsonl --out runs/r1 --base-url https://api.deepseek.com/v1 --model deepseek-reasoner --api-key-env DEEPSEEK_API_KEY

      distill generate math.jsonl --out runs/qwq --vllm Qwen/QwQ-32B --tensor-parallel 4 --n 8
    """
    from distill.config import resolve
    from distill.generation.config import GenerateConfig
    from distill.generation.inputs import read_template
    from distill.generation.stage import generate
    from distill.progress import RichProgress
    from distill.run import RunDir

    flags = {
        "prompts": prompts,
        "base_url": base_url or None,
        "model": model,
        "n": n,
        "concurrency": concurrency,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "top_p": top_p,
        "prompt_column": prompt_column,
        "template": read_template(template) if template else None,
        "system": system,
        "api_key_env": api_key_env,
        "shard": shard,
        "vllm": {
            "model": vllm,
            "tensor_parallel": tensor_parallel or None,
            "data_parallel": data_parallel or None,
            "args": vllm_arg or None,
        },
    }
    if recipe is None and not set_ and out is not None:  # plain flags: skip loading every stage's settings
        cfg, run_dir = resolve(GenerateConfig, flags=flags), out
    else:
        from distill.recipe import Recipe
        from distill.resources import resolve_recipe

        source = None if recipe is None else resolve_recipe(recipe, prefer="teachers")
        loaded = resolve(Recipe, source, set_ or (), flags={"generate": flags})
        cfg, run_dir = loaded.generate, out or loaded.run_dir
    report = generate(
        cfg,
        RunDir(run_dir),
        progress=None if quiet else RichProgress(),
        allow_changed_settings=resume_with_changed_settings,
    )
    if quiet:
        console().print(report.summary(), markup=False, highlight=False, soft_wrap=True)
    else:
        console().print(report.as_table())


@app.command("merge")
def merge_(
    runs: Annotated[
        list[Path], typer.Argument(help="Shard runs to join (by prompt_id).", show_default=False)
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="The merged run directory.")],
) -> None:
    """Join shard runs (`distill generate --shard I/N`) into one run.

    Samples are matched by (prompt_id, sample); where two shards hold the same sample, a success wins over an error. Shards must share their generation settings. The merged run continues like any other: verify, filter, card, push, or `distill run RECIPE --out MERGED --stages verify,filter,card`.

    [bold]Examples[/bold]

    [cyan]distill merge runs/r1/shard-* --out runs/r1/all[/cyan]

    [cyan]distill merge runs/qwq/shard-* --out runs/qwq/all[/cyan]  once every task of `sbatch --array=0-7 recipes/slurm/generate.slurm prompts.jsonl Qwen/QwQ-32B runs/qwq` has finished
    """
    from distill.generation.merge import merge
    from distill.run import RunDir

    report = merge([RunDir(r) for r in runs], RunDir(out))
    console().print(report.summary(), markup=False, highlight=False, soft_wrap=True)
