"""`distill run`: every stage of a recipe, each skipped when it is done with the same settings."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from distill.cli.app import QuietOpt, SetOpt, app, console


@app.command("run")
def run_(
    recipe: Annotated[
        Path,
        typer.Argument(
            help="A shipped recipe's name (demo, openr1-math; `distill recipes` lists them) or a recipe YAML.",
            show_default=False,
        ),
    ],
    overrides: Annotated[
        list[str] | None,
        typer.Argument(
            help="key=value overrides of any recipe key, e.g. generate.n=8 sft.learning_rate=5e-5.",
            show_default=False,
        ),
    ] = None,
    stages: Annotated[
        str | None,
        typer.Option(
            "--stages",
            help="Comma-separated stages to run now: generate,verify,filter,card,push,sft,eval "
            "(default: the recipe's `stages`). Their inputs must already exist in RUN.",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print the plan (prompts, samples, tokens, cost from a pilot of a few prompts, SFT "
            "steps and GPU-hours, what RUN already holds) and run nothing.",
        ),
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="The run directory (overrides run_dir).")
    ] = None,
    set_: SetOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Run a whole recipe: generate → verify → filter → card → push → sft → eval.

    Each stage is skipped when RUN already holds its outputs for the same settings; a changed setting reruns that stage and the stages after it, never those before. Ctrl-C, then the same command, continues where it stopped (generation resumes sample by sample). The recipe is checked (unknown keys, types, missing stages, teacher reachable) before any work starts.

    [bold]Examples[/bold]

    [cyan]distill run demo[/cyan]  the offline demo: built-in teacher, tiny student, no GPU, no network

    [cyan]distill run openr1-math --dry-run[/cyan]  prompts, samples, tokens and cost (from a pilot), SFT steps and GPU-hours

    [cyan]distill run recipes/openr1-math.yaml generate.n=8 until_correct=2 max_samples=16[/cyan]  verification in the loop

    [cyan]distill run recipes/openr1-math.yaml --stages sft,eval --out runs/openr1-math[/cyan]  only train and evaluate
    """
    from distill.config import resolve
    from distill.pipeline.run import run_pipeline
    from distill.progress import RichProgress
    from distill.recipe import Recipe
    from distill.resources import resolve_recipe

    cfg = resolve(Recipe, resolve_recipe(recipe), [*(overrides or ()), *(set_ or ())], flags={"run_dir": out})
    chosen = [s.strip() for s in stages.split(",") if s.strip()] if stages else None
    services = None
    if cfg.demo is not None:  # the built-in teacher and tiny student, served beside the stages
        from distill.demo.wiring import DemoServices

        services = DemoServices()
    report = run_pipeline(
        cfg, stages=chosen, dry_run=dry_run, progress=None if quiet else RichProgress, services=services
    )
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
    console().print(
        f"  {'browse':<10} distill view {shlex.quote(str(report.run_dir))}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    console().print(
        f"done in {report.seconds:.0f}s; rerun the same command to resume or update", highlight=False
    )


@app.command("recipes")
def recipes_() -> None:
    """List the shipped recipes: name them without a path (`distill run demo`, `distill sft r1-distill-qwen-7b`)."""
    from rich.table import Table

    from distill.resources import recipes_dir, shipped_recipes

    table = Table(title="shipped recipes")
    table.add_column("name", no_wrap=True, style="cyan")
    table.add_column("description")
    for recipe in shipped_recipes():
        table.add_row(recipe.qualified, recipe.description)
    console().print(table)
    console().print(
        f"folder: {recipes_dir()} (also accelerate/DeepSpeed configs, Slurm and prompt templates); "
        "a short name means the folder its command expects (sft: students/, eval: eval/, generate: teachers/)",
        highlight=False,
    )
