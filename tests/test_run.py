"""RunDir: the run folder's layout and its atomic writers."""

from __future__ import annotations

import datasets
import polars as pl
import pytest

from distill import schema
from distill.errors import StageError
from distill.run import RunDir


def _rows(n: int) -> pl.DataFrame:
    return pl.DataFrame({
        schema.PROMPT_ID: [f"p{i // 2}" for i in range(n)],
        schema.SAMPLE: [i % 2 for i in range(n)],
        schema.MESSAGES: [[{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]
                          for i in range(n)],
    })


def test_rows_round_trip_in_hub_layout_and_load_with_datasets(run_dir: RunDir) -> None:
    run_dir.ensure()
    files = run_dir.write_rows(_rows(6))
    assert [f.name for f in files] == ["train-00000-of-00001.parquet"]
    assert run_dir.read().equals(_rows(6))
    loaded = datasets.load_dataset("parquet", data_files=[str(f) for f in files], split="train")
    assert loaded[0][schema.MESSAGES][0] == {"role": "user", "content": "q0"}


def test_rewrite_replaces_all_shards_and_leaves_no_staging_folders(run_dir: RunDir) -> None:
    run_dir.write_rows(_rows(6))
    run_dir.write_rows(_rows(2))
    assert run_dir.read().height == 2
    assert [p.name for p in run_dir.data.iterdir()] == ["all"]


def test_update_rows_adds_and_replaces_columns_by_key(run_dir: RunDir) -> None:
    run_dir.write_rows(_rows(4))
    verdicts = pl.DataFrame({schema.PROMPT_ID: ["p1", "p0"], schema.SAMPLE: [0, 1],
                             schema.MATH_VERIFIED: [True, False]})
    run_dir.update_rows(verdicts)
    assert run_dir.read()[schema.MATH_VERIFIED].to_list() == [None, False, True, None]
    run_dir.update_rows(verdicts.with_columns(pl.lit(True).alias(schema.MATH_VERIFIED)))
    assert run_dir.read()[schema.MATH_VERIFIED].to_list() == [None, True, True, None]
    assert run_dir.read().columns == [schema.PROMPT_ID, schema.SAMPLE, schema.MESSAGES, schema.MATH_VERIFIED]


def test_update_rows_streams_row_groups_across_shards(run_dir: RunDir) -> None:
    rows = _rows(40)
    run_dir.write_rows(rows, shard_bytes=1, row_group_bytes=1)  # one row a group, a new shard each
    assert len(run_dir.shard_files()) == 40
    run_dir.update_rows(rows.select(*schema.KEY).with_row_index(schema.NUM_TOKENS))
    assert run_dir.read()[schema.NUM_TOKENS].to_list() == list(range(40))


def test_zero_rows_keep_their_schema_through_updates(run_dir: RunDir) -> None:
    run_dir.write_rows(_rows(2).head(0))
    run_dir.update_rows(pl.DataFrame({schema.PROMPT_ID: [], schema.SAMPLE: [], schema.KEEP: []},
                                     schema={schema.PROMPT_ID: pl.String, schema.SAMPLE: pl.Int64,
                                             schema.KEEP: pl.Boolean}))
    assert run_dir.read().columns == [schema.PROMPT_ID, schema.SAMPLE, schema.MESSAGES, schema.KEEP]


def test_interrupted_swap_is_recovered(run_dir: RunDir) -> None:
    run_dir.write_rows(_rows(4))
    # A crash between the two renames of a swap leaves only the old folder.
    run_dir.config_dir("all").rename(run_dir.data / ".all.old")
    assert run_dir.read().height == 4


def test_scan_without_rows_names_the_missing_stage(run_dir: RunDir) -> None:
    with pytest.raises(StageError, match="distill generate"):
        run_dir.scan()


def test_stage_bookkeeping_and_stats_sections(run_dir: RunDir) -> None:
    run_dir.ensure()
    assert not run_dir.is_done("verify", "abc")
    run_dir.mark_done("verify", "abc", rows=3)
    assert run_dir.is_done("verify", "abc") and not run_dir.is_done("verify", "other")
    run_dir.forget("verify")
    assert run_dir.stage_record("verify") is None
    run_dir.update_stats("generate", {"samples": 3})
    run_dir.update_stats("filter", {"kept": 2})
    assert run_dir.read_json(run_dir.stats) == {"generate": {"samples": 3}, "filter": {"kept": 2}}
    assert not list(run_dir.root.glob(".*.tmp"))
