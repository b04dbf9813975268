"""The data card: Hub metadata, the numbers of each stage, plots, and configs that `datasets` can load."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from huggingface_hub import DatasetCard

from distill import schema
from distill.errors import ConfigError
from distill.publishing.card import write_card
from distill.publishing.config import CardConfig
from distill.run import RunDir
from tests.plugins.runs import SECRET, make_run

PNG = b"\x89PNG\r\n\x1a\n"


def _load(run: RunDir, cache: Path, *config: str):  # noqa: ANN202
    from datasets import load_dataset

    return load_dataset(str(run.root), *config, split="train", cache_dir=str(cache))


def test_card_reports_every_stage_and_loads_as_two_configs(distilled_run: RunDir, tmp_path: Path) -> None:
    cfg = CardConfig(license="apache-2.0", pretty_name="R1 math traces", tags=["math"])

    path = write_card(cfg, distilled_run)

    text = path.read_text()
    meta = DatasetCard(text).data.to_dict()
    assert meta["license"] == "apache-2.0" and meta["pretty_name"] == "R1 math traces"
    assert meta["size_categories"] == ["n<1K"] and meta["task_categories"] == ["text-generation"]
    assert meta["language"] == ["en"] and {"math", "distill"} <= set(meta["tags"])
    assert [(c["config_name"], c["data_files"][0]["path"]) for c in meta["configs"]] == [
        ("all", "data/all/train-*.parquet"),
        ("sft", "data/sft/train-*.parquet"),
    ]
    assert meta["configs"][0]["default"] is True

    rows = distilled_run.read("all")
    kept = rows.filter(pl.col(schema.KEEP)).height
    amc = rows.filter(pl.col(schema.SOURCE) == "amc23")
    amc_rate = amc[schema.MATH_VERIFIED].mean()
    rejected = rows.filter(~pl.col(schema.KEEP))[schema.REJECT_REASON].value_counts()
    median = distilled_run.read("sft")[schema.NUM_TOKENS].median()
    for expected in (
        "Qwen/Qwen2.5-Math-7B-Instruct",
        "NovaSky-AI/Sky-T1-32B-Preview",  # teachers
        f"**{kept:,}** are kept",
        "| amc23 | 40 | 40 |",  # sources and counts
        f"| amc23 | math | {amc[schema.MATH_VERIFIED].sum()} |",
        f"{100 * amc_rate:.1f}%",  # verification
        *(f"| {rule} | {n} |" for rule, n in rejected.iter_rows()),  # rejections per rule
        "| math500 | HuggingFaceH4/MATH-500@main | 500 | 40 |",  # decontamination
        f"| {median:,.0f} |",
        "teacher's own usage",  # token lengths and how they were counted
        "$1.23",
        "temperature",
        "0.6",
        "how to fine-tune",
        "--dataset_config sft",
    ):
        assert expected.lower() in text.lower(), expected
    for plot in ("plots/token_lengths.png", "plots/pass_rate.png"):
        assert f"]({plot})" in text and (distilled_run.root / plot).read_bytes().startswith(PNG)
    assert SECRET not in text and "user:pw" not in text and "did not run" not in text

    assert _load(distilled_run, tmp_path / "cache").num_rows == 840
    sft = _load(distilled_run, tmp_path / "cache", "sft")
    assert sft.num_rows == kept and sft[0][schema.MESSAGES][0]["role"] == "user"


def test_zero_kept_rows_give_a_valid_card_that_says_so(tmp_path: Path, shared_data: Path) -> None:
    run = make_run(tmp_path / "run", shared_data, keep_none=True)

    text = write_card(CardConfig(), run).read_text()

    meta = DatasetCard(text).data.to_dict()
    assert [c["config_name"] for c in meta["configs"]] == ["all"]  # an empty config cannot be loaded
    assert "no rows were kept" in text.lower() and "No kept samples, so no token statistics" in text
    assert not (run.plots / "token_lengths.png").exists() and (run.plots / "pass_rate.png").exists()
    assert _load(run, tmp_path / "cache").num_rows == 840


def test_stages_that_did_not_run_are_named(tmp_path: Path, shared_data: Path) -> None:
    run = make_run(tmp_path / "run", shared_data, stages=(), usage=False)

    text = write_card(CardConfig(), run).read_text()

    for stage in ("Verification did not run", "Filtering did not run", "Decontamination did not run"):
        assert stage in text
    assert "**approximation**" in text and "card.tokenizer" in text
    assert not (run.plots / "pass_rate.png").exists()


def test_stats_json_stands_in_for_missing_columns(tmp_path: Path, shared_data: Path) -> None:
    run = make_run(tmp_path / "run", shared_data, stages=())
    run.update_stats(
        "verify",
        {
            "verifiers": {"math": {"true": 700, "false": 100, "null": 40, "timeout": 0}},
            # the verify stage's shape: per source, its verifiers' counts under "verifiers"
            "by_source": {
                "math": {"rows": 800, "verifiers": {"math": {"true": 690, "false": 110, "null": 0}}}
            },
        },
    )
    run.update_stats(
        "filter",
        {
            "rows_in": 840,
            "rows_kept": 700,
            "rules": {"wrong_answer": 100, "too_long": 40},
            "flagged": {"wrong_answer": 100, "too_long": 90, "format": 0},
            "order": ["wrong_answer", "format", "too_long"],
        },
    )

    text = write_card(CardConfig(), run).read_text()

    assert "from `stats.json`" in text and "| math | math | 690 | 110 | 0 | 86.2% |" in text
    assert "| (all) | math | 700 | 100 | 40 | 87.5% |" in text
    assert (
        "| wrong_answer | 100 | 100 |" in text
        and "| too_long | 40 | 90 |" in text
        and "| format |" not in text
    )


def test_card_follows_data_changes_and_custom_templates(distilled_run: RunDir, tmp_path: Path) -> None:
    write_card(CardConfig(), distilled_run)
    rows = distilled_run.read("all")
    distilled_run.write_rows(rows.filter(pl.col(schema.SOURCE) == "math"))

    template = tmp_path / "mine.md.j2"
    template.write_text(
        "---\n{{ metadata_yaml }}\n---\n# {{ title }}: {{ s.rows_sft }} of {{ s.rows_all }}\n"
    )
    text = write_card(CardConfig(template=template, pretty_name="mine"), distilled_run).read_text()

    kept = rows.filter(pl.col(schema.KEEP) & (pl.col(schema.SOURCE) == "math")).height
    assert text.endswith(f"# mine: {kept} of 800\n") and distilled_run.read("sft").height == kept

    template.write_text("{% if %}")
    with pytest.raises(ConfigError, match="mine.md.j2"):
        write_card(CardConfig(template=template), distilled_run)
