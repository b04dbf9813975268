"""The commands that work on one run folder: `verify`, `filter`, `card`, `push`.

Each reads its settings from --recipe, else from RUN/run.yaml (the run's own recipe), through `resolve()`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from distill.cli.app import QuietOpt, RecipeOpt, SetOpt, app, console

RunArg = Annotated[Path, typer.Argument(help="The run directory.", show_default=False)]


def _settings_source(run: Path, recipe: Path | None) -> Path | None:
    """Where a stage command reads its settings: --recipe, else RUN/run.yaml (the run's own recipe)."""
    from distill.resources import resolve_recipe
    from distill.run import RunDir

    if recipe is not None:
        return resolve_recipe(recipe)
    return RunDir(run).run_yaml if RunDir(run).run_yaml.exists() else None


@app.command("verify")
def verify(
    run: RunArg,
    math: Annotated[
        bool | None,
        typer.Option(
            "--math/--no-math", help="Check final answers against the gold column.", show_default=False
        ),
    ] = None,
    code: Annotated[
        bool | None,
        typer.Option(
            "--code/--no-code",
            help="Run extracted programs against the rows' tests (sandboxed).",
            show_default=False,
        ),
    ] = None,
    format_: Annotated[
        bool | None,
        typer.Option(
            "--format/--no-format",
            help="Check think-block format, completeness and looping tails.",
            show_default=False,
        ),
    ] = None,
    report: Annotated[
        bool,
        typer.Option(
            "--report", help="Only print true/false/null/timeout counts per verifier and source from RUN."
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Verify again even if RUN is verified with these settings.")
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
    from distill.config import resolve
    from distill.progress import NullProgress, RichProgress
    from distill.run import RunDir
    from distill.verification.config import VerifyConfig
    from distill.verification.stage import build_report
    from distill.verification.stage import verify as verify_run

    run_dir = RunDir(run)
    if report:
        console().print(build_report(run_dir.read("all")).as_table())
        return
    cfg = resolve(
        VerifyConfig,
        _settings_source(run, recipe),
        set_ or (),
        section="verify",
        flags={"math": math, "code": code, "format": format_},
    )
    result = verify_run(cfg, run_dir, progress=NullProgress() if quiet else RichProgress(), force=force)
    if quiet:
        console().print(result.summary())
    else:
        console().print(result.as_table())


@app.command("filter")
def filter_(
    run: RunArg,
    benchmark: Annotated[
        list[str] | None,
        typer.Option(
            "--benchmark",
            "-b",
            help="NAME=PATH: decontaminate against a local copy of a benchmark (repeatable); "
            "names alone go through --set filter.benchmarks=math500,aime24.",
        ),
    ] = None,
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
    from distill.config import resolve
    from distill.evaluation.benchmarks import parse_benchmark_option
    from distill.filtering.config import FilterConfig
    from distill.filtering.stage import apply_filters
    from distill.progress import NullProgress, RichProgress
    from distill.run import RunDir

    cfg = resolve(FilterConfig, _settings_source(run, recipe), set_ or (), section="filter")
    local = dict(parse_benchmark_option(option) for option in benchmark or ())
    if local:  # local copies add to the recipe's
        cfg = cfg.with_flags(benchmark_paths={**cfg.benchmark_paths, **local})
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
    from distill.config import resolve
    from distill.publishing.card import write_card
    from distill.publishing.config import CardConfig
    from distill.publishing.dataset import build_dataset
    from distill.run import RunDir

    cfg = resolve(CardConfig, _settings_source(run, recipe), set_ or (), section="card")
    report = build_dataset(RunDir(run), cfg)
    console().print(report.as_table())
    console().print(f"card: {write_card(cfg, RunDir(run), force=force)}")


@app.command("push")
def push(
    run: RunArg,
    repo: Annotated[
        str | None, typer.Option("--repo", help="Dataset repo id ORG/NAME.", show_default=False)
    ] = None,
    private: Annotated[
        bool | None,
        typer.Option(
            "--private/--public", help="Repo visibility; private unless --public.", show_default=False
        ),
    ] = None,
    revision: Annotated[
        str | None, typer.Option("--revision", help="Branch to commit to.", show_default=False)
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="List every file, its size and where it goes, the visibility and the card's "
            "metadata; send nothing.",
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a repo that holds another dataset.")
    ] = False,
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
    from distill.config import resolve
    from distill.publishing.config import CardConfig, PushConfig
    from distill.publishing.push import plan_push
    from distill.publishing.push import push as push_run
    from distill.run import RunDir

    source = _settings_source(run, recipe)
    card_cfg = resolve(CardConfig, source, [o for o in set_ or () if o.startswith("card.")], section="card")
    cfg = resolve(
        PushConfig,
        source,
        [o for o in set_ or () if not o.startswith("card.")],
        section="push",
        flags={"repo": repo, "private": private, "revision": revision},
    )
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
