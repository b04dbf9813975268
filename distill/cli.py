"""The `distill` command: one thin command per stage.

Each command parses its flags, builds the stage's config (recipe YAML, then `key=value`
overrides, then contract flags), calls the library function and prints its report. No logic lives
here: no loops over rows, no defaults repeated from the config models.
"""

from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from distill.errors import DistillError


class _PlainHelp(TyperGroup):
    """Help that shows `--flag` alone and `--n INTEGER`, not typer's Python types (`<bool>`, `<list[str]>`)."""

    WORDS = {"int": "INTEGER", "float": "FLOAT", "str": "TEXT", "Path": "PATH"}

    def get_command(self, ctx, name):  # noqa: ANN001, ANN201 - click's signature
        command = super().get_command(ctx, name)
        if command is not None:
            self._plain(command.get_params(ctx))
        return command

    def get_params(self, ctx):  # noqa: ANN001, ANN201
        return self._plain(super().get_params(ctx))

    def _plain(self, params):  # noqa: ANN001, ANN202
        for param in params:
            if param.metavar is not None or not hasattr(param, "bare_type"):
                continue
            if param.param_type_name == "argument":  # its name is shown already; no type beside it
                param.display_type_rich = lambda ctx: None
                continue
            bare = param.bare_type().removeprefix("list[").removesuffix("]")
            is_flag = getattr(param, "is_flag", False) or bool(getattr(param, "secondary_opts", None))
            param.metavar = "" if is_flag or bare == "bool" else self.WORDS.get(bare, bare.upper())
        return params


app = typer.Typer(
    cls=_PlainHelp,
    name="distill",
    help="Distil reasoning data: generate → verify → filter → card/push → sft → eval.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # a local may hold a key: never print locals
    add_completion=False,
    rich_markup_mode="rich",
)

RecipeOpt = Annotated[Path | None, typer.Option("--recipe", "-r", help="Recipe YAML; flags override it.")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override any recipe key, e.g. --set generate.temperature=0.7 (repeatable)."),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No live display; one summary line at the end.")]

_state = {"debug": False}


@app.callback()
def _root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Debug logs and full tracebacks.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show info logs beside the progress.")] = False,
) -> None:
    _state["debug"] = debug
    _configure_logging(debug, verbose, training=ctx.invoked_subcommand == "sft")


def _configure_logging(debug: bool, verbose: bool = False, training: bool = False) -> None:
    """Warnings only by default: the live progress and the final tables are the output, not log lines.

    `distill sft` is the exception: its step lines (loss, tokens/s, MFU) are its progress display.
    """
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=console(stderr=True), show_path=debug, rich_tracebacks=debug, markup=False)],
        force=True,
    )
    for noisy in ("httpx", "httpcore", "urllib3", "filelock", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if training and not debug:
        logging.getLogger("distill.sft").setLevel(logging.INFO)


def console(stderr: bool = False):  # noqa: ANN201 - rich is imported lazily
    from rich.console import Console

    return Console(stderr=stderr)


# ── stage commands ─────────────────────────────────────────────────────────
# Each stage's command is added below by the module that owns the stage; keep one function each.


@app.command("run")
def run_(
    recipe: Annotated[Path, typer.Argument(help="The recipe YAML (recipes/demo.yaml, recipes/openr1-math.yaml, …).",
                                           show_default=False)],
    overrides: Annotated[list[str] | None, typer.Argument(
        help="key=value overrides of any recipe key, e.g. generate.n=8 sft.learning_rate=5e-5.",
        show_default=False)] = None,
    stages: Annotated[str | None, typer.Option(
        "--stages", help="Comma-separated stages to run now: generate,verify,filter,card,push,sft,eval "
                         "(default: the recipe's `stages`). Their inputs must already exist in RUN.")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the plan (prompts, samples, tokens, cost from a pilot of a few prompts, SFT "
                          "steps and GPU-hours, what RUN already holds) and run nothing.")] = False,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="The run directory (overrides run_dir).")] = None,
    set_: SetOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Run a whole recipe: generate → verify → filter → card → push → sft → eval.

    Each stage is skipped when RUN already holds its outputs for the same settings; a changed setting reruns that stage and the stages after it, never those before. Ctrl-C, then the same command, continues where it stopped (generation resumes sample by sample). The recipe is checked (unknown keys, types, missing stages, teacher reachable) before any work starts.

    [bold]Examples[/bold]

    [cyan]distill run recipes/demo.yaml[/cyan]  the offline demo: built-in teacher, tiny student, no GPU, no network

    [cyan]distill run recipes/openr1-math.yaml --dry-run[/cyan]  prompts, samples, tokens and cost (from a pilot), SFT steps and GPU-hours

    [cyan]distill run recipes/openr1-math.yaml generate.n=8 until_correct=2 max_samples=16[/cyan]  verification in the loop

    [cyan]distill run recipes/openr1-math.yaml --stages sft,eval --out runs/openr1-math[/cyan]  only train and evaluate
    """
    from distill.pipeline.run import run_pipeline
    from distill.progress import RichProgress
    from distill.recipe import load_recipe

    cfg = load_recipe(recipe, overrides=[*(overrides or ()), *(set_ or ())])
    if out is not None:
        cfg = cfg.model_copy(update={"run_dir": out})
    chosen = [s.strip() for s in stages.split(",") if s.strip()] if stages else None
    report = run_pipeline(cfg, stages=chosen, dry_run=dry_run, progress=None if quiet else RichProgress)
    if report.plan is not None:
        console().print(f"[bold]plan for {report.run_dir}[/bold] (nothing was run)")
        for line in report.plan.lines():
            console().print(f"  {line}", markup=False, highlight=False)
        return
    if quiet:
        console().print(report.one_line(), markup=False, highlight=False)
        return
    console().print(report.as_table())
    for line in report.where():
        console().print(f"  {line}", markup=False, highlight=False)
    console().print(f"  {'browse':<10} distill view {shlex.quote(str(report.run_dir))}", markup=False, highlight=False,
                    soft_wrap=True)
    console().print(f"done in {report.seconds:.0f}s; rerun the same command to resume or update", highlight=False)


@app.command("generate")
def generate_(
    prompts: Annotated[str | None, typer.Argument(
        help="Prompts: .jsonl/.json/.csv/.parquet, a dataset folder, or a Hub id.", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="The run directory (default: the recipe's run_dir).")] = None,
    base_url: Annotated[list[str] | None, typer.Option(
        "--base-url", help="OpenAI-compatible base URL, e.g. https://api.deepseek.com/v1 (repeatable: a pool).")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Model name at the endpoint (default: the one it serves).")] = None,
    n: Annotated[int | None, typer.Option("--n", help="Samples per prompt (default 4).")] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", help="Requests in flight (default 64).")] = None,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", help="Completion budget (default 32768).")] = None,
    temperature: Annotated[float | None, typer.Option("--temperature", help="Default 0.6.")] = None,
    top_p: Annotated[float | None, typer.Option("--top-p", help="Default 0.95.")] = None,
    prompt_column: Annotated[str | None, typer.Option("--prompt-column", help="Default: problem.")] = None,
    template: Annotated[str | None, typer.Option(
        "--template", help="User turn as TEXT or FILE; {prompt} = the prompt column, {col} = any column.")] = None,
    system: Annotated[str | None, typer.Option("--system", help="System prompt (default: none).")] = None,
    api_key_env: Annotated[str | None, typer.Option(
        "--api-key-env", help="Environment variable holding the API key, e.g. DEEPSEEK_API_KEY.")] = None,
    vllm: Annotated[str | None, typer.Option("--vllm", help="Start `vllm serve MODEL` and generate from it.")] = None,
    tensor_parallel: Annotated[int | None, typer.Option("--tensor-parallel", help="vLLM tensor parallel size.")] = None,
    data_parallel: Annotated[int | None, typer.Option("--data-parallel", help="vLLM data parallel size.")] = None,
    vllm_arg: Annotated[list[str] | None, typer.Option(
        "--vllm-arg", help="Extra `vllm serve` argument (repeatable), e.g. --vllm-arg=--max-model-len=32768.")] = None,
    shard: Annotated[str | None, typer.Option("--shard", help="I/N: generate only the I-th of N slices.")] = None,
    resume_with_changed_settings: Annotated[bool, typer.Option(
        "--resume-with-changed-settings", help="Continue RUN even though its generation settings differ.")] = False,
    recipe: RecipeOpt = None,
    set_: SetOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Generate teacher traces for every prompt: crash-safe, resumable, at full teacher throughput.

    [bold]Examples[/bold]

      distill generate math.jsonl --out runs/r1 --base-url https://api.deepseek.com/v1 --model deepseek-reasoner --api-key-env DEEPSEEK_API_KEY

      distill generate math.jsonl --out runs/qwq --vllm Qwen/QwQ-32B --tensor-parallel 4 --n 8
    """
    from distill.generation.inputs import read_template
    from distill.generation.stage import GenerateConfig, generate
    from distill.progress import RichProgress
    from distill.run import RunDir

    if recipe is None and not set_ and out is not None:  # plain flags: skip loading every stage's settings
        settings, run_dir = GenerateConfig(), out
    else:
        from distill.recipe import load_recipe

        loaded = load_recipe(recipe, overrides=set_ or ())
        settings, run_dir = loaded.generate, out or loaded.run_dir
    vllm_cfg = None
    if vllm or tensor_parallel or data_parallel or vllm_arg:
        base = settings.vllm.model_dump() if settings.vllm else {}
        vllm_cfg = {**base, **{k: v for k, v in {"model": vllm, "tensor_parallel": tensor_parallel,
                                                   "data_parallel": data_parallel, "args": vllm_arg}.items() if v}}
    cfg = settings.with_flags(
        prompts=prompts, base_url=base_url or None, model=model, n=n, concurrency=concurrency, max_tokens=max_tokens,
        temperature=temperature, top_p=top_p, prompt_column=prompt_column,
        template=read_template(template) if template else None, system=system, api_key_env=api_key_env,
        vllm=vllm_cfg, shard=shard)
    report = generate(cfg, RunDir(run_dir), progress=None if quiet else RichProgress(),
                      allow_changed_settings=resume_with_changed_settings)
    if quiet:
        console().print(report.summary_line(), markup=False, highlight=False, soft_wrap=True)
    else:
        console().print(report.as_table())


@app.command("sft")
def sft_(
    recipe: Annotated[Path, typer.Argument(
        help="A student recipe (recipes/students/*.yaml) or any recipe with an `sft:` section.", show_default=False)],
    overrides: Annotated[list[str] | None, typer.Argument(
        help="key=value overrides of the sft section, e.g. learning_rate=5e-5 hardware.gpus_per_node=4 "
             "(the `sft.` prefix is optional).", show_default=False)] = None,
    dataset: Annotated[str | None, typer.Option(
        "--dataset", help="A run directory (its `sft` view), a .jsonl/.parquet file, or a Hub dataset id.")] = None,
    output_dir: Annotated[Path | None, typer.Option("--output-dir", "-o", help="Checkpoints and the final model.")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Check template and data, print one rendered masked sample, the batch plan, tokens, "
                          "dropped samples, steps, memory per GPU and GPU-hours; train nothing.")] = False,
    set_: SetOpt = None,
) -> None:
    """Fine-tune a student on distilled traces (TRL SFTTrainer; one GPU in-process, several via accelerate).

    [bold]Examples[/bold]

    [cyan]distill sft recipes/students/r1-distill-qwen-7b.yaml --dataset runs/openr1-math --dry-run[/cyan]

    [cyan]distill sft recipes/students/r1-distill-qwen-1.5b.yaml --dataset runs/openr1-math epochs=2[/cyan]

    [cyan]sbatch --nodes=4 recipes/slurm/sft.slurm recipes/students/r1-distill-llama-70b.yaml --dataset ORG/DATA[/cyan]
    """
    from distill.recipe import load_recipe
    from distill.training.train import sft

    keyed = [o if o.startswith("sft.") or "=" not in o else f"sft.{o}" for o in (overrides or ())]
    loaded = load_recipe(recipe, overrides=[*keyed, *(set_ or ())])
    if loaded.sft is None:
        raise DistillError(f"{recipe}: no `sft:` section (see recipes/students/)")
    report = sft(loaded.sft, dataset=dataset, output_dir=output_dir, dry_run=dry_run)
    from rich.table import Table

    out = console()
    if dry_run:
        out.print("[bold]one rendered sample[/bold] (trained tokens between ⟦ and ⟧):")
        out.print(report.example, markup=False, highlight=False)
    table = Table(title="distill sft" + (" --dry-run (nothing trained)" if dry_run else ""), show_header=False)
    for key, value in report.as_rows():
        table.add_row(key, value)
    out.print(table)


@app.command("merge")
def merge_(
    runs: Annotated[list[Path], typer.Argument(help="Shard runs to join (by prompt_id).", show_default=False)],
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
    console().print(report.summary_line(), markup=False, highlight=False, soft_wrap=True)


@app.command("eval")
def eval_(
    out: Annotated[Path, typer.Option("--out", "-o", help="EVALDIR: samples, verdicts and results go here.")],
    model: Annotated[str | None, typer.Option(
        "--model", help="Model name at --base-url (or the endpoint URL itself); matched against DeepSeek's table.")] = None,
    vllm: Annotated[str | None, typer.Option(
        "--vllm", help="Serve this local checkpoint with `vllm serve` for the evaluation.")] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="OpenAI-compatible endpoint.")] = None,
    benchmarks: Annotated[str | None, typer.Option(
        "--benchmarks", help="Comma-separated registry names, e.g. aime24,aime25,math500,amc23,gsm8k,humaneval.")] = None,
    benchmark: Annotated[list[str] | None, typer.Option(
        "--benchmark", help="NAME=PATH: a local copy of a benchmark (repeatable).")] = None,
    k: Annotated[str | None, typer.Option("--k", help="Samples per problem: auto (registry default) or N.")] = None,
    temperature: Annotated[float | None, typer.Option("--temperature", help="Default 0.6.")] = None,
    top_p: Annotated[float | None, typer.Option("--top-p", help="Default 0.95.")] = None,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", help="Default 32768.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Base sampling seed (recorded).")] = None,
    rescore: Annotated[bool, typer.Option(
        "--rescore", help="Verify and score the samples already in --out again; generate nothing.")] = False,
    recipe: RecipeOpt = None,
    set_: SetOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Evaluate a student: k samples per problem, pass@1 ± error, cons@k, beside DeepSeek's numbers.

    DeepSeek-R1's protocol by default (temperature 0.6, top-p 0.95, 32,768 tokens, k per benchmark: AIME 64, MATH-500 16). Samples go through the generation engine, so an evaluation resumes like a generation; every sample and verdict stays in --out for auditing and `--rescore`.

    [bold]Examples[/bold]

    [cyan]distill eval --model deepseek-ai/DeepSeek-R1-Distill-Qwen-7B --base-url http://localhost:8000/v1 --benchmarks aime24,math500 --out evals/qwen7b[/cyan]

    [cyan]distill eval --vllm runs/math/student --benchmarks aime24,aime25,math500 --out evals/student[/cyan]

    [cyan]distill eval --recipe recipes/eval/smoke.yaml --model NAME --base-url URL --benchmark math500=math500_test.jsonl --out evals/smoke[/cyan]

    [cyan]distill eval --rescore --out evals/student[/cyan]  re-verify and re-score, generating nothing
    """
    from distill.evaluation.benchmarks import parse_benchmark_option
    from distill.evaluation.stage import EvalConfig, evaluate, read_settings, rescore_run
    from distill.progress import RichProgress
    from distill.recipe import load_recipe

    if rescore:
        base = read_settings(out, overrides=set_ or ())
    else:
        base = load_recipe(recipe, overrides=set_ or ()).eval or EvalConfig()
    if model and model.startswith(("http://", "https://")):
        model, base_url = None, base_url or model
    local = dict(parse_benchmark_option(option) for option in benchmark or ())
    if local and benchmarks is None and not rescore:
        benchmarks = ",".join(local)
    cfg = base.with_flags(model=model, vllm=vllm, base_url=base_url, benchmarks=benchmarks, k=k,
                          temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed,
                          benchmark_paths={**base.benchmark_paths, **local} if local else None)
    if rescore:
        report = rescore_run(out, cfg)
    else:
        report = evaluate(cfg, out, progress=None if quiet else RichProgress())
    console().print(report.as_table())
    console().print(f"results: {report.results_json}  ·  {report.results_md}")


RunArg = Annotated[Path, typer.Argument(help="The run directory.", show_default=False)]


def _stage_config(model: type, section: str, run: Path, recipe: Path | None, set_: list[str] | None):  # noqa: ANN202
    """A stage's settings from --recipe, else from RUN/run.yaml (the run's own recipe), then --set overrides."""
    from distill.config import load_config
    from distill.run import RunDir

    source = recipe if recipe is not None else (RunDir(run).run_yaml if RunDir(run).run_yaml.exists() else None)
    prefix = f"{section}."
    overrides = [o[len(prefix):] if o.startswith(prefix) else o for o in set_ or ()]
    return load_config(model, source, overrides, section=section)


@app.command("verify")
def verify(
    run: RunArg,
    math: Annotated[bool | None, typer.Option(
        "--math/--no-math", help="Check final answers against the gold column.", show_default=False)] = None,
    code: Annotated[bool | None, typer.Option(
        "--code/--no-code", help="Run extracted programs against the rows' tests (sandboxed).",
        show_default=False)] = None,
    format_: Annotated[bool | None, typer.Option(
        "--format/--no-format", help="Check think-block format, completeness and looping tails.",
        show_default=False)] = None,
    report: Annotated[bool, typer.Option(
        "--report", help="Only print true/false/null/timeout counts per verifier and source from RUN.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Verify again even if RUN is verified with these settings.")
                     ] = False,
    recipe: RecipeOpt = None,
    set_: SetOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Score every sample in RUN (math, code, format); adds verdict columns, never drops rows.

    Settings come from --recipe's `verify` section, else from RUN/run.yaml; flags and --set override them. Columns added: math_verified, code_verified, format_ok, complete, correct, pass_rate (per prompt), verify_detail.

    [bold]Examples[/bold]

    [cyan]distill verify runs/r1[/cyan]  math and format checks

    [cyan]distill verify runs/code --code --no-math[/cyan]  run programs against the rows' tests, sandboxed

    [cyan]distill verify runs/r1 --set verify.gold_column=solution --force[/cyan]

    [cyan]distill verify runs/r1 --report[/cyan]  true/false/null/timeout counts per verifier and source
    """
    from distill.progress import NullProgress, RichProgress
    from distill.run import RunDir
    from distill.verification.stage import VerifyConfig, build_report
    from distill.verification.stage import verify as verify_run

    run_dir = RunDir(run)
    if report:
        console().print(build_report(run_dir.read("all")).as_table())
        return
    cfg = _stage_config(VerifyConfig, "verify", run, recipe, set_).with_flags(math=math, code=code, format=format_)
    result = verify_run(cfg, run_dir, progress=NullProgress() if quiet else RichProgress(), force=force)
    if quiet:
        console().print(result.summary())
    else:
        console().print(result.as_table())


@app.command("filter")
def filter_(
    run: RunArg,
    benchmark: Annotated[list[str] | None, typer.Option(
        "--benchmark", "-b", help="NAME=PATH: decontaminate against a local copy of a benchmark (repeatable); "
                                  "names alone go through --set filter.benchmarks=math500,aime24.")] = None,
    recipe: RecipeOpt = None,
    set_: SetOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Set keep / reject_reason on every sample of RUN: decontamination, duplicates, language, R1's rules, top-k.

    Rejected rows stay in data/all; the table shows rejections per rule (first failing) and per source.

    [bold]Examples[/bold]

      distill filter runs/math --benchmark math500=data/math500.jsonl --benchmark aime24=data/aime24.jsonl

      distill filter runs/math --set filter.k=4 --set filter.ngram=10 --set filter.max_paragraph_chars=3000
    """
    from distill.evaluation.benchmarks import parse_benchmark_option
    from distill.filtering.stage import FilterConfig, apply_filters
    from distill.progress import NullProgress, RichProgress
    from distill.run import RunDir

    base = _stage_config(FilterConfig, "filter", run, recipe, set_)
    local = dict(parse_benchmark_option(option) for option in benchmark or ())
    cfg = base.with_flags(benchmark_paths={**base.benchmark_paths, **local} if local else None)
    report = apply_filters(cfg, RunDir(run), progress=NullProgress() if quiet else RichProgress())
    if quiet:
        console().print(report.summary(), highlight=False)
    else:
        console().print(report.as_table())


@app.command("card")
def card(
    run: RunArg,
    recipe: RecipeOpt = None,
    set_: SetOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite a README.md edited by hand.")] = False,
) -> None:
    """Build the sft config and write RUN/README.md (Hub metadata, stats, plots) from a template.

    Settings come from --recipe's `card` section, else from RUN/run.yaml; e.g. --set card.license=apache-2.0 --set card.tokenizer=PATH (exact token counts).

    [bold]Examples[/bold]

    [cyan]distill card runs/r1[/cyan]

    [cyan]distill card runs/r1 --set card.pretty_name="R1 math traces" --set card.license=mit --set card.tokenizer=models/student[/cyan]
    """
    from distill.publishing.card import CardConfig, write_card
    from distill.publishing.dataset import build_dataset
    from distill.run import RunDir

    cfg = _stage_config(CardConfig, "card", run, recipe, set_)
    report = build_dataset(RunDir(run), cfg)
    console().print(report.as_table())
    console().print(f"card: {write_card(cfg, RunDir(run), force=force)}")


@app.command("push")
def push(
    run: RunArg,
    repo: Annotated[str | None, typer.Option("--repo", help="Dataset repo id ORG/NAME.", show_default=False)] = None,
    private: Annotated[bool | None, typer.Option(
        "--private/--public", help="Repo visibility; private unless --public.", show_default=False)] = None,
    revision: Annotated[str | None, typer.Option("--revision", help="Branch to commit to (default main).",
                                                    show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="List every file, its size and where it goes, the visibility and the card's "
        "metadata; send nothing.")] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Replace a repo that holds another dataset.")] = False,
    recipe: RecipeOpt = None,
    set_: SetOpt = None,
) -> None:
    """Publish RUN to the Hub as a dataset repo, in one commit (token from HF_TOKEN or `hf auth login`).

    Uploads data/ (both configs), the card and its plots, stats.json and run.yaml; a stale card is rewritten first. Private unless --public; an existing repo's visibility is never changed silently.

    [bold]Examples[/bold]

    [cyan]distill push runs/r1 --repo my-org/r1-math-traces[/cyan]  private

    [cyan]distill push runs/r1 --repo my-org/r1-math-traces --public --revision v2[/cyan]

    [cyan]distill push runs/r1 --repo my-org/r1-math-traces --dry-run[/cyan]  what would go up
    """
    from distill.publishing.card import CardConfig
    from distill.publishing.push import PushConfig, plan_push
    from distill.publishing.push import push as push_run
    from distill.run import RunDir

    card_cfg = _stage_config(CardConfig, "card", run, recipe, [o for o in set_ or () if o.startswith("card.")])
    base = _stage_config(PushConfig, "push", run, recipe, [o for o in set_ or () if not o.startswith("card.")])
    cfg = base.with_flags(repo=repo, private=private, revision=revision)
    if dry_run:
        plan = plan_push(cfg, RunDir(run), card=card_cfg)
        console().print(plan.as_table())
        console().print(plan.metadata_table())
        for leak in plan.leaks:
            console(stderr=True).print(f"warning: {leak} would be published (the push will refuse it)")
        console().print(plan.summary())
        return
    report = push_run(cfg, RunDir(run), card=card_cfg, force=force)
    console().print(report.as_table())


@app.command("view")
def view(
    run: Annotated[Path, typer.Argument(help="A run directory or an eval directory.", show_default=False)],
    port: Annotated[int | None, typer.Option("--port", help="Port (default 8765); 0 picks a free one.")] = None,
    host: Annotated[str | None, typer.Option(
        "--host", help="Address to bind (default 127.0.0.1); anything but loopback shares every trace.")] = None,
    open_: Annotated[bool, typer.Option("--open", help="Open the page in the default browser.")] = False,
) -> None:
    """Browse RUN's traces, verdicts and rejections in a local web page (read-only; Ctrl-C stops it).

    [bold]Examples[/bold]

    [cyan]distill view runs/demo[/cyan]  http://127.0.0.1:8765/

    [cyan]distill view evals/student --port 0 --open[/cyan]  an eval directory, on a free port
    """
    from distill.viewer import DEFAULT_HOST, DEFAULT_PORT, Viewer, is_loopback

    host = DEFAULT_HOST if host is None else host
    viewer = Viewer(run, host=host, port=DEFAULT_PORT if port is None else port)
    if not is_loopback(host):
        print(f"warning: listening on {host}: anyone who can reach this machine can read every trace "
              "(the viewer has no login)", file=sys.stderr)
    for notice in viewer.notices:
        print(f"note: {notice}", file=sys.stderr)
    print(f"distill view: {viewer.url}  (Ctrl-C to stop)", flush=True)
    if open_:
        __import__("webbrowser").open(viewer.url)
    with viewer:
        try:
            viewer.serve_forever()
        except KeyboardInterrupt:  # the usual way to stop a server: not an interruption to resume
            print("distill view: stopped", file=sys.stderr)


def main() -> None:
    """Console-script entry point: one-line errors for DistillError, exit 130 on Ctrl-C."""
    from typer.exceptions import TyperException

    try:
        result = app(standalone_mode=False)
        # The process exits next: freezing what is alive spares the interpreter's exit-time garbage
        # collection passes over every loaded module (0.15–0.25 s with polars + pyarrow + aiohttp loaded).
        __import__("gc").freeze()
    except DistillError as e:
        if _state["debug"]:
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except (KeyboardInterrupt, typer.Abort):
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        sys.exit(130)
    except TyperException as e:  # usage errors: click's own message and exit code
        e.show()  # type: ignore[attr-defined]
        sys.exit(getattr(e, "exit_code", 2))
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
