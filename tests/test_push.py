"""Push, end to end against a local stand-in for the Hub (tests/plugins/hub.py): one commit, loadable, private by default."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from huggingface_hub import DatasetCard
from typer.testing import CliRunner

from distill import schema
from distill.cli import app
from distill.errors import ConfigError, HubError, StageError
from distill.publishing.config import CardConfig, PushConfig
from distill.publishing.push import push
from distill.run import RunDir
from tests.plugins.hub import TOKEN, FakeHub, FakeRepo
from tests.plugins.runs import SECRET


def test_push_uploads_one_loadable_commit_and_retries_a_503(
    distilled_run: RunDir,
    fake_hub: FakeHub,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from datasets import load_dataset

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    fake_hub.fail_next[("POST", "commit")] = [503]
    sleeps: list[float] = []

    report = push(
        PushConfig(repo="test-org/r1-math"),
        distilled_run,
        card=CardConfig(license="mit"),
        sleep=sleeps.append,
    )

    repo = fake_hub.repos["test-org/r1-math"]
    assert repo.repo_type == "dataset" and repo.private is True and report.private is True
    assert len(repo.commits) == 1 and sleeps == [2.0] and report.retries == 1
    assert "distill" in repo.commits[0]["summary"] and distilled_run.root.name in repo.commits[0]["summary"]
    stored = fake_hub.files("test-org/r1-math")
    assert {p.split("/")[0] for p in stored} == {"README.md", "data", "plots", "run.yaml", "stats.json"}
    assert set(report.files) == set(stored)

    clone = fake_hub.materialize("test-org/r1-math", tmp_path / "clone")
    everything = load_dataset(str(clone), split="train", cache_dir=str(tmp_path / "cache"))
    sft = load_dataset(str(clone), "sft", split="train", cache_dir=str(tmp_path / "cache"))
    local = distilled_run.read("all")
    assert everything.num_rows == local.height and everything.column_names == local.columns
    assert sft.num_rows == local.filter(pl.col(schema.KEEP)).height
    assert sft[0][schema.MESSAGES] == distilled_run.read("sft")[schema.MESSAGES].to_list()[0]
    card = DatasetCard(stored["README.md"].decode())
    assert card.data.license == "mit" and 'load_dataset("test-org/r1-math", "sft"' in card.text

    # the token authenticated every call and went nowhere else
    assert set(fake_hub.auth_headers) - {None} == {f"Bearer {TOKEN}"}
    everything_written = [
        *stored.values(),
        *(p.read_bytes() for p in distilled_run.root.rglob("*") if p.is_file()),
    ]
    assert not any(TOKEN.encode() in blob for blob in everything_written)
    assert TOKEN not in caplog.text and TOKEN not in repr(report)
    assert SECRET.encode() not in stored["run.yaml"]  # a hand-edited run.yaml is scrubbed on the way up


@pytest.mark.parametrize(("flags", "private"), [((), True), (("--public",), False), (("--private",), True)])
def test_cli_visibility_flag_is_honoured_exactly(
    flags: tuple[str, ...],
    private: bool,
    distilled_run: RunDir,
    fake_hub: FakeHub,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)

    result = CliRunner().invoke(app, ["push", str(distilled_run.root), "--repo", "test-org/vis", *flags])

    assert result.exit_code == 0, result.output
    assert fake_hub.repos["test-org/vis"].private is private
    assert "test-org/vis" in result.output and TOKEN not in result.output


def test_existing_repo_with_other_visibility_is_refused(
    distilled_run: RunDir, fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    fake_hub.repos["test-org/open"] = FakeRepo("test-org/open", "dataset", private=False)

    with pytest.raises(HubError, match="already exists and is public"):
        push(PushConfig(repo="test-org/open"), distilled_run, card=CardConfig())

    assert fake_hub.repos["test-org/open"].commits == []


def test_missing_token_is_one_line_before_any_work(distilled_run: RunDir, fake_hub: FakeHub) -> None:
    with pytest.raises(HubError) as err:
        push(PushConfig(repo="test-org/x"), distilled_run, card=CardConfig())

    assert "HF_TOKEN" in str(err.value) and "\n" not in str(err.value)
    assert fake_hub.requests == [] and not distilled_run.card.exists()


def test_bad_input_fails_before_the_network(
    distilled_run: RunDir, fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    for bad in ("org/na me", "a/b/c", "org/-name-", "x" * 120):
        with pytest.raises(ConfigError, match="not a valid repo id"):
            PushConfig(repo=bad)
    result = CliRunner().invoke(app, ["push", str(distilled_run.root), "--repo", "bad repo!"])
    assert isinstance(result.exception, ConfigError)
    with pytest.raises(ConfigError, match="--repo"):
        push(PushConfig(), distilled_run)
    with pytest.raises(StageError, match="no data/"):
        push(PushConfig(repo="test-org/x"), RunDir(tmp_path / "empty").ensure(), card=CardConfig())
    with pytest.raises(StageError, match="distill card"):
        push(PushConfig(repo="test-org/x"), distilled_run)  # no card, and no card settings to write one
    assert fake_hub.requests == []


def test_retries_give_up_with_a_clear_error(
    distilled_run: RunDir, fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    fake_hub.fail_next[("POST", "commit")] = [503, 502, 500]
    sleeps: list[float] = []

    with pytest.raises(HubError, match=r"commit failed after 3 tries \(500\)"):
        push(
            PushConfig(repo="test-org/flaky", max_retries=2),
            distilled_run,
            card=CardConfig(),
            sleep=sleeps.append,
        )

    assert sleeps == [2.0, 4.0] and fake_hub.repos["test-org/flaky"].commits == []


def test_repush_replaces_old_shards_in_one_commit_on_a_branch(
    distilled_run: RunDir, fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    push(PushConfig(repo="test-org/grow"), distilled_run, card=CardConfig())
    distilled_run.write_rows(
        distilled_run.read("all"), shard_bytes=150_000, row_group_bytes=100_000
    )  # 4 shards

    with pytest.raises(StageError, match="older than the data"):
        push(PushConfig(repo="test-org/grow"), distilled_run)
    report = push(PushConfig(repo="test-org/grow", revision="v2"), distilled_run, card=CardConfig())

    repo = fake_hub.repos["test-org/grow"]
    shards = sorted(p for p in fake_hub.files("test-org/grow", "v2") if p.startswith("data/all/"))
    assert len(repo.commits) == 2 and repo.commits[-1]["revision"] == "v2" and report.revision == "v2"
    assert shards == [f"data/all/{p.name}" for p in distilled_run.shard_files("all")] and len(shards) > 1
    assert fake_hub.files("test-org/grow")["data/all/train-00000-of-00001.parquet"]  # main is untouched
