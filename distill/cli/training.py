"""`distill sft`: fine-tune a student on a run's traces (one GPU in-process, several via accelerate)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from distill.cli.app import SetOpt, app, console
from distill.errors import DistillError


@app.command("sft")
def sft_(
    recipe: Annotated[
        Path,
        typer.Argument(
            help="A shipped student (r1-distill-qwen-7b, …; `distill recipes`) or any recipe YAML with an `sft:` "
            "section.",
            show_default=False,
        ),
    ],
    overrides: Annotated[
        list[str] | None,
        typer.Argument(
            help="key=value overrides of the sft section, e.g. learning_rate=5e-5 hardware.gpus_per_node=4 "
            "(the `sft.` prefix is optional).",
            show_default=False,
        ),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset", help="A run directory (its `sft` view), a .jsonl/.parquet file, or a Hub dataset id."
        ),
    ] = None,
    output_dir: Annotated[
        Path | None, typer.Option("--output-dir", "-o", help="Checkpoints and the final model.")
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Check template and data, print one rendered masked sample, the batch plan, tokens, "
            "dropped samples, steps, memory per GPU and GPU-hours; train nothing.",
        ),
    ] = False,
    set_: SetOpt = None,
) -> None:
    """Fine-tune a student on distilled traces (TRL SFTTrainer; one GPU in-process, several via accelerate).

    [bold]Examples[/bold]

    [cyan]distill sft r1-distill-qwen-7b --dataset runs/openr1-math --dry-run[/cyan]

    [cyan]distill sft my-student.yaml --dataset runs/openr1-math epochs=2[/cyan]

    [cyan]sbatch --nodes=4 recipes/slurm/sft.slurm recipes/students/r1-distill-llama-70b.yaml --dataset ORG/DATA[/cyan]
    """
    from distill.config import read_yaml, resolve
    from distill.resources import resolve_recipe
    from distill.training.config import SFTConfig
    from distill.training.train import sft

    recipe = resolve_recipe(recipe, prefer="students")
    if "sft" not in read_yaml(recipe):
        raise DistillError(f"{recipe}: no `sft:` section (see recipes/students/)")
    cfg = resolve(SFTConfig, recipe, [*(overrides or ()), *(set_ or ())], section="sft")
    report = sft(cfg, dataset=dataset, output_dir=output_dir, dry_run=dry_run)
    from rich.table import Table

    out = console()
    if dry_run:
        out.print("[bold]one rendered sample[/bold] (trained tokens between ⟦ and ⟧):")
        out.print(report.example, markup=False, highlight=False)
    table = Table(
        title="distill sft" + (" --dry-run (nothing trained)" if dry_run else ""), show_header=False
    )
    for key, value in report.table_rows():
        table.add_row(key, value)
    out.print(table)
