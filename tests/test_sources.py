"""One answer to "is this a run, a file, a folder, a Hub id, or missing?" for prompts, pre-flight and SFT data."""

from __future__ import annotations

from pathlib import Path

import pytest

from distill.errors import ConfigError, InputError
from distill.sources import resolve


def test_each_kind_of_data_argument(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run" / "data").mkdir(parents=True)
    (tmp_path / "folder").mkdir()
    (tmp_path / "math.jsonl").write_text('{"problem": "1+1"}\n')
    assert resolve(tmp_path / "run").kind == "run"
    assert resolve("folder").kind == "folder"
    assert resolve("math.jsonl").kind == "file"
    hub = resolve("AI-MO/NuminaMath-1.5")  # the dot is part of the name, not a file suffix
    assert (hub.kind, hub.hub_id) == ("hub", "AI-MO/NuminaMath-1.5")
    for missing in ("data/math.jsonl", "./org/name", "org/name/extra", "nothing.parquet"):
        assert resolve(missing).kind == "missing", missing


def test_prompts_preflight_and_sft_data_agree_on_a_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing `data/math.jsonl` is a missing file for all three readers, never a Hub id to download."""
    from distill.generation.inputs import read_rows
    from distill.pipeline.checks import check_ready
    from distill.pipeline.graph import fingerprints, plan_stages
    from distill.recipe import load_recipe
    from distill.run import RunDir
    from distill.training.data import load_conversations

    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        read_rows("data/math.jsonl")
    with pytest.raises(InputError, match="dataset not found"):
        load_conversations("data/math.jsonl")
    recipe = load_recipe(None, ["generate.prompts=data/math.jsonl", "stages=[generate]", f"run_dir={tmp_path / 'r'}"])
    graph, selected = plan_stages(recipe, None)
    with pytest.raises(ConfigError, match="generate.prompts: data/math.jsonl does not exist"):
        check_ready(recipe, RunDir(recipe.run_dir), graph, selected, fingerprints(recipe, graph))
