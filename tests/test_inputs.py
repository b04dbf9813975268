"""Prompts files: every format reads the same, and every bad input is a one-line error naming where."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import polars as pl
import pytest

from distill import schema
from distill.errors import ConfigError, InputError
from distill.generation.config import DEFAULT_TEMPLATE
from distill.generation.inputs import load_prompts
from distill.recipe import load_recipe

ROWS = [
    {"problem": "What is 1+1?", "answer": "2", "level": 1},
    {"problem": "What is 2+3?", "answer": "5", "level": 2},
]


def _load(path: Path | str, **kw: object):  # noqa: ANN202
    return load_prompts(
        path, prompt_column=kw.pop("prompt_column", "problem"), template=DEFAULT_TEMPLATE, **kw
    )


def test_every_format_reads_the_same_prompts(tmp_path: Path) -> None:
    import datasets

    frame = pl.DataFrame(ROWS)
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    (tmp_path / "p.json").write_text(json.dumps(ROWS))
    frame.write_csv(tmp_path / "p.csv")
    frame.write_parquet(tmp_path / "p.parquet")
    datasets.Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "saved"))
    (tmp_path / "hub" / "data").mkdir(parents=True)
    frame.write_parquet(tmp_path / "hub" / "data" / "train-00000-of-00001.parquet")
    seen = []
    for source in ["p.jsonl", "p.json", "p.csv", "p.parquet", "saved", "hub"]:
        prompts = _load(tmp_path / source).frame
        assert prompts.get_column("answer").cast(pl.String).to_list() == ["2", "5"], (
            source
        )  # inputs pass through
        seen.append(prompts.get_column(schema.PROMPT_ID).to_list())
    assert all(ids == seen[0] for ids in seen)
    prompt = _load(tmp_path / "p.jsonl").frame.get_column(schema.PROMPT)[0]
    assert prompt == "What is 1+1?\nPlease reason step by step, and put your final answer within \\boxed{}."


def test_template_fills_columns_and_keeps_other_braces(tmp_path: Path) -> None:
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    prompts = load_prompts(
        tmp_path / "p.jsonl",
        prompt_column="problem",
        template="[level {level}] {prompt} Answer in \\boxed{}.",
    ).frame
    assert prompts.get_column(schema.PROMPT)[1] == "[level 2] What is 2+3? Answer in \\boxed{}."
    assert prompts.get_column(schema.SOURCE).unique().to_list() == ["p"]


def test_duplicates_are_dropped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [*ROWS, ROWS[0], ROWS[0]]))
    with caplog.at_level(logging.WARNING):
        prompts = _load(path)
    assert prompts.frame.height == 2 and prompts.duplicates == 2
    assert "2 duplicate prompt(s)" in caplog.text


def test_shards_partition_the_prompts(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps({"problem": f"q{i}"}) + "\n" for i in range(40)))
    parts = [set(_load(path, shard=f"{i}/3").frame.get_column(schema.PROMPT_ID)) for i in range(3)]
    assert sum(len(p) for p in parts) == 40 and not (parts[0] & parts[1] or parts[1] & parts[2])
    with pytest.raises(ConfigError, match="I/N"):
        _load(path, shard="3/3")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.jsonl", b"", "empty.jsonl: the file is empty"),
        ("blank.jsonl", b"\n\n  \n", "blank.jsonl: the file is empty"),
        ("latin1.jsonl", '{"problem": "caf\u00e9"}\n'.encode("latin-1"), "latin1.jsonl, row 1: not UTF-8"),
        (
            "bad.jsonl",
            b'{"problem": "ok"}\n{"problem": "broken\n',
            "bad.jsonl, row 2: line 2 is not valid JSON",
        ),
        ("prompts.txt", b"What is 1+1?\n", "unknown file type '.txt'"),
        (
            "nocol.jsonl",
            b'{"question": "What?"}\n',
            "nocol.jsonl, field 'problem': no prompt column; columns are question",
        ),
        (
            "emptyprompt.jsonl",
            b'{"problem": "ok"}\n{"problem": ""}\n',
            "emptyprompt.jsonl, row 2, field 'problem'",
        ),
        (
            "reserved.jsonl",
            b'{"problem": "ok", "sample": 3}\n',
            "field 'sample': this column name is reserved",
        ),
        ("list.json", b'{"problem": "not a list"}', "expected a JSON list of objects"),
    ],
)
def test_bad_inputs_are_one_line_errors(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        _load(path)
    text = str(info.value)
    assert message in text and "\n" not in text


def test_missing_file_and_unknown_recipe_key(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        _load(tmp_path / "nope.jsonl")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("generate:\n  temprature: 0.7\n")
    with pytest.raises(ConfigError, match=r"generate\.temprature: unknown key"):
        load_recipe(recipe)
    with pytest.raises(ConfigError, match=r"generate\.nn: unknown key"):
        load_recipe(None, overrides=["generate.nn=3"])


def test_hub_ids_with_dots_are_hub_ids_and_missing_files_are_missing() -> None:
    from distill.generation.inputs import read_rows

    with pytest.raises(InputError, match="AI-MO/NuminaMath-1.5: cannot load this Hub dataset"):
        read_rows("AI-MO/NuminaMath-1.5")
    with pytest.raises(InputError, match="no such file"):
        read_rows("prompts/missing.jsonl")
