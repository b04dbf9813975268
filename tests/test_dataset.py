"""data/sft from data/all: selection, TRL-ready rows, token counts, schema versions, shard layout."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from distill import schema
from distill.errors import InputError, StageError
from distill.publishing.dataset import SFT_COLUMNS, build_dataset, check_schema
from distill.run import RunDir
from tests.plugins.runs import make_run


def test_sft_holds_the_kept_rows_in_trl_conversational_form(distilled_run: RunDir) -> None:
    report = build_dataset(distilled_run)

    everything = distilled_run.read("all")
    sft = distilled_run.read("sft")
    kept = everything.filter(pl.col(schema.KEEP))
    assert (report.rows_all, report.rows_sft, report.prompts) == (840, kept.height, 140)
    assert report.selection == "keep" and 0 < kept.height < 840
    assert sft.columns == [c for c in SFT_COLUMNS if c in sft.columns]
    assert {schema.MESSAGES, schema.PROMPT_ID, schema.SOURCE, schema.NUM_TOKENS, schema.MATH_VERIFIED} <= set(
        sft.columns
    )
    assert (
        sft.select(schema.PROMPT_ID, schema.SAMPLE).rows()
        == kept.select(schema.PROMPT_ID, schema.SAMPLE).rows()
    )
    for conversation in sft[schema.MESSAGES].to_list()[:50]:
        assert [m["role"] for m in conversation] == ["user", "assistant"]
        assert (
            conversation[1]["content"].startswith("<think>\n")
            and "\n</think>\n\n" in conversation[1]["content"]
        )
    assert sft[schema.MATH_VERIFIED].all() and sft[schema.COMPLETE].all()
    # every row carries the teacher's usage, so num_tokens is exactly prompt + completion tokens
    assert report.token_method == "teacher_usage"
    usage = kept[schema.PROMPT_TOKENS] + kept[schema.COMPLETION_TOKENS]
    assert sft[schema.NUM_TOKENS].to_list() == usage.to_list()


def test_without_a_filter_sft_keeps_complete_error_free_rows(tmp_path: Path, shared_data: Path) -> None:
    run = make_run(tmp_path / "run", shared_data, stages=("verify",))
    rows = run.read("all").with_columns(
        pl.when(pl.int_range(pl.len()) < 3).then(pl.lit("HTTP 500")).otherwise(None).alias(schema.ERROR)
    )
    run.write_rows(rows)

    report = build_dataset(run)

    expected = rows.filter(pl.col(schema.ERROR).is_null() & pl.col(schema.COMPLETE))
    assert report.selection == "complete"
    assert report.rows_sft == expected.height == 840 - 3 - 10
    assert run.read("sft")[schema.PROMPT_ID].to_list() == expected[schema.PROMPT_ID].to_list()


def _save_tokenizer(folder: Path, texts: list[str]) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(
        texts, trainers.BpeTrainer(vocab_size=800, special_tokens=["<unk>", "<|im_end|>"])
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<|im_end|>")
    fast.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    )
    fast.save_pretrained(folder)
    return folder


def test_token_counts_use_a_local_tokenizer_else_an_approximation(tmp_path: Path, shared_data: Path) -> None:
    from transformers import AutoTokenizer

    from distill.publishing.config import CardConfig

    run = make_run(tmp_path / "run", shared_data, usage=False)
    approx = build_dataset(run)
    approx_tokens = run.read("sft")
    assert approx.token_method == "approximation"
    lengths = (
        approx_tokens[schema.MESSAGES]
        .list.eval(pl.element().struct.field("content").str.len_chars())
        .list.sum()
    )
    # pieces are words, digits, CJK characters and punctuation runs: 1.5–6 characters each here
    assert (
        (approx_tokens[schema.NUM_TOKENS] * 1.5 < lengths) & (approx_tokens[schema.NUM_TOKENS] * 6 > lengths)
    ).all()

    texts = [m["content"] for conv in approx_tokens[schema.MESSAGES].to_list()[:200] for m in conv]
    folder = _save_tokenizer(tmp_path / "tok", texts)
    exact = build_dataset(run, CardConfig(tokenizer=folder))
    sft = run.read("sft")
    assert exact.token_method == "tokenizer" and exact.tokenizer == str(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    for conversation, n in list(zip(sft[schema.MESSAGES].to_list(), sft[schema.NUM_TOKENS], strict=True))[:5]:
        text = tok.apply_chat_template(conversation, tokenize=False)
        assert n == len(tok(text, add_special_tokens=False)["input_ids"])
    assert run.stage_record("dataset")["token_method"] == "tokenizer"


def test_runs_of_another_schema_version_get_a_clear_message(distilled_run: RunDir) -> None:
    manifest = distilled_run.read_json(distilled_run.manifest)
    for version, words in ((0, ["v0", "v1", "no migration"]), (99, ["newer distill", "upgrade"])):
        distilled_run.write_json(distilled_run.manifest, {**manifest, "schema_version": version})
        with pytest.raises(StageError) as err:
            build_dataset(distilled_run)
        assert all(w in str(err.value) for w in words) and "\n" not in str(err.value)
    distilled_run.write_json(distilled_run.manifest, {**manifest, "schema_version": schema.SCHEMA_VERSION})
    assert check_schema(distilled_run) == schema.SCHEMA_VERSION

    distilled_run.write_rows(distilled_run.read("all").drop(schema.MESSAGES))
    with pytest.raises(InputError, match="'messages'"):
        build_dataset(distilled_run)


def test_no_data_is_a_stage_error(run_dir: RunDir) -> None:
    with pytest.raises(StageError, match="distill generate"):
        build_dataset(run_dir)


def test_write_rows_makes_hub_sized_shards_and_streamable_row_groups(distilled_run: RunDir) -> None:
    rows = distilled_run.read("all")
    target = 120_000  # bytes on disk per shard, scaled down from the 400 MB default

    files = distilled_run.write_rows(rows, "all", shard_bytes=target, row_group_bytes=100_000)

    assert [f.name for f in files] == [
        f"train-{i:05d}-of-{len(files):05d}.parquet" for i in range(len(files))
    ]
    sizes = [f.stat().st_size for f in files]
    assert len(files) > 3 and all(s < 2.5 * target for s in sizes) and all(s >= target for s in sizes[:-1])
    assert all(pq.ParquetFile(f).metadata.num_row_groups >= 2 for f in files[:-1])
    assert distilled_run.read("all").equals(rows)  # same rows, same order, one schema

    # many small frames (as a stage appends batches) still make one shard, not one file each
    files = distilled_run.write_rows(iter([rows.slice(i, 50) for i in range(0, rows.height, 50)]), "all")
    assert len(files) == 1 and distilled_run.read("all").equals(rows)

    # zero rows keep the schema, so `data/sft` stays readable
    files = distilled_run.write_rows(rows.head(0), "sft")
    assert len(files) == 1 and pq.read_schema(files[0]).names == rows.columns


def test_manifest_records_how_sft_was_built(distilled_run: RunDir) -> None:
    build_dataset(distilled_run)
    record = json.loads(distilled_run.manifest.read_text())["stages"]["dataset"]
    assert record["rows"] == distilled_run.read("sft").height and record["token_method"] == "teacher_usage"
