"""What leaves the machine: the card, the pushed run.yaml and stats.json show no local paths, private
hosts, home folders or secrets; `push --dry-run` shows all of it first; a push never replaces another
dataset or a hand-edited card silently."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from distill.cli import app
from distill.errors import HubError, StageError
from distill.publishing.card import CardConfig, write_card
from distill.publishing.disclosure import LOCAL, PRIVATE, PublicView, find_leaks, public_endpoint, public_path
from distill.publishing.push import PushConfig, plan_push, push
from distill.run import RunDir
from tests.plugins.hub import TOKEN, FakeHub
from tests.plugins.runs import make_run

ROOT = Path(__file__).resolve().parents[1]
USER = "zelda-q7x"  # a made-up user and host: neither may appear in anything pushed
HOST = "gpu-node-17.corp-internal.example"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://api.deepseek.com/v1", "api.deepseek.com"),
        ("https://api.openai.com/v1", "api.openai.com"),
        ("https://router.huggingface.co/v1", "router.huggingface.co"),
        ("http://127.0.0.1:39033/v1", LOCAL),
        ("http://localhost:8000/v1", LOCAL),
        ("http://[::1]:8000/v1", LOCAL),
        (f"http://{HOST}:8000/v1", PRIVATE),
        ("http://10.2.3.4:8000/v1", PRIVATE),
        ("https://api.deepseek.com.evil.example/v1", PRIVATE),
        ("http://[redacted]@127.0.0.1:8000/v1", PRIVATE),
    ],
)
def test_endpoints_show_only_a_public_providers_host(url: str, shown: str) -> None:
    assert public_endpoint(url) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (f"/home/{USER}/data/problems.jsonl", "problems.jsonl"),
        ("~/data/problems.jsonl", "problems.jsonl"),
        ("../data/bench/math500.jsonl", "math500.jsonl"),
        ("C:\\Users\\zelda\\p.parquet", "p.parquet"),
        ("AI-MO/NuminaMath-1.5@rev", "AI-MO/NuminaMath-1.5@rev"),  # a Hub id is public
        ("deepseek-reasoner", "deepseek-reasoner"),
        ("{prompt}\nPlease reason step by step", "{prompt}\nPlease reason step by step"),
    ],
)
def test_paths_show_only_their_file_name(value: str, shown: str) -> None:
    assert public_path(value) == shown


def test_a_relative_path_that_exists_here_is_local_not_a_hub_id(tmp_path: Path) -> None:
    (tmp_path / "my-org" / "prompts").mkdir(parents=True)
    assert public_path("my-org/prompts", cwd=tmp_path) == "prompts"
    assert public_path("my-org/other", cwd=tmp_path) == "my-org/other"


def test_opting_in_shows_full_values() -> None:
    data = {"prompts": "/data/p.jsonl", "base_url": [f"http://{HOST}/v1"], "api_key": "sk-abcdefgh12345678"}
    assert PublicView(show_paths=True, show_endpoints=True).apply(data) == {
        "prompts": "/data/p.jsonl",
        "base_url": [f"http://{HOST}/v1"],
        "api_key": "<redacted>",  # secrets never, whatever the options
    }
    assert PublicView().apply(data) == {"prompts": "p.jsonl", "base_url": [PRIVATE], "api_key": "<redacted>"}


# ── a run made on a machine with a home folder and an internal teacher host ──
@pytest.fixture
def private_run(tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> RunDir:
    """A distilled run whose settings name a prompts file under a home folder and a cluster-internal teacher."""
    home = tmp_path / "home" / USER
    (home / "data").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(socket, "gethostname", lambda: HOST)
    monkeypatch.setattr(socket, "getfqdn", lambda *a: HOST)
    run = make_run(home / "runs" / "r1", shared_data)
    recipe = yaml.safe_load(run.run_yaml.read_text())
    recipe["run_dir"] = str(run.root)
    recipe["generate"].update(
        prompts=str(home / "data" / "problems.jsonl"),
        base_url=[f"http://{HOST}:8000/v1", "http://127.0.0.1:8001/v1"],
        template=str(home / "data" / "template.txt"),
    )
    recipe["filter"] = {"benchmark_paths": {"math500": "~/bench/math500_test.jsonl"}}
    recipe["sft"] = {"model": str(home / "ckpt" / "Qwen2.5-7B"), "output_dir": str(home / "out")}
    run.write_text(run.run_yaml, yaml.safe_dump(recipe, sort_keys=False))
    return run


def _private_strings(tmp_path: Path) -> list[str]:
    return [USER, HOST, "corp-internal", str(tmp_path)]


def test_nothing_pushed_names_the_home_folder_host_or_paths(
    private_run: RunDir, fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    report = push(PushConfig(repo="test-org/r1"), private_run, card=CardConfig())

    stored = fake_hub.files("test-org/r1")
    assert set(report.files) == set(stored) and {"README.md", "run.yaml", "stats.json"} <= set(stored)
    for name, content in stored.items():  # every file, Parquet shards and plots included
        for secret in _private_strings(tmp_path):
            assert secret.encode() not in content, f"{secret!r} in pushed {name}"
    card = stored["README.md"].decode()
    assert "| `prompts` | problems.jsonl |" in card and f"| `base_url` | {PRIVATE}, {LOCAL} |" in card
    pushed = yaml.safe_load(stored["run.yaml"])
    assert pushed["generate"]["prompts"] == "problems.jsonl" and pushed["sft"]["model"] == "Qwen2.5-7B"
    assert pushed["filter"]["benchmark_paths"] == {"math500": "math500_test.jsonl"}
    # the local run.yaml keeps every value: the run resumes from it
    local = yaml.safe_load(private_run.run_yaml.read_text())
    assert local["generate"]["prompts"].startswith(str(tmp_path)) and HOST in local["generate"]["base_url"][0]


def test_show_paths_and_endpoints_opt_back_in(private_run: RunDir, tmp_path: Path) -> None:
    write_card(CardConfig(show_paths=True, show_endpoints=True), private_run)
    text = private_run.card.read_text()
    assert (
        f"http://{HOST}:8000/v1" in text and str(tmp_path / "home" / USER / "data" / "problems.jsonl") in text
    )


def test_dry_run_lists_every_file_and_sends_nothing(
    private_run: RunDir, fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)  # a dry run needs no token
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(
        app, ["push", str(private_run.root), "--repo", "test-org/r1", "--public", "--dry-run"]
    )

    assert result.exit_code == 0, result.output
    assert fake_hub.requests == []
    plan = plan_push(PushConfig(repo="test-org/r1", private=False), private_run, card=CardConfig())
    assert plan.leaks == []
    for name in plan.files:
        assert name in result.output and f"{plan.size(name):,} B" in result.output
    assert "public" in result.output and "test-org/r1" in result.output
    assert "license" in result.output and "distill_run_id" in result.output  # the card's metadata
    assert "nothing was sent" in result.output


def test_a_private_detail_in_a_hand_edited_card_blocks_the_push(
    private_run: RunDir, fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    write_card(CardConfig(), private_run)
    with private_run.card.open("a") as f:
        f.write(f"\nMade on {HOST} from {Path.home()}/notes.md\n")
    lines = len(private_run.card.read_text().splitlines())

    with pytest.raises(StageError) as err:
        push(PushConfig(repo="test-org/r1"), private_run, card=CardConfig())

    message = str(err.value)
    assert f"README.md, line {lines}" in message and "\n" not in message
    assert not any(kind == "commit" for kind in fake_hub.kinds())
    leaks = find_leaks({"README.md": private_run.card.read_text()})
    assert {leak.what for leak in leaks} == {"host name", "home folder"}


def test_hand_edits_to_the_card_are_kept_or_refused_never_overwritten(
    private_run: RunDir, fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    write_card(CardConfig(), private_run)
    edited = private_run.card.read_text().replace("## Verification", "## Verification\n\nChecked by Ana.")
    private_run.card.write_text(edited)

    with pytest.raises(StageError, match="edited by hand"):
        write_card(CardConfig(), private_run)
    assert private_run.card.read_text() == edited

    push(PushConfig(repo="test-org/r1"), private_run, card=CardConfig())  # the data is current: edits go up
    assert "Checked by Ana." in fake_hub.files("test-org/r1")["README.md"].decode()

    result = CliRunner().invoke(app, ["card", str(private_run.root), "--force"])
    assert result.exit_code == 0, result.output
    assert "Checked by Ana." not in private_run.card.read_text()


def test_a_readme_not_written_by_distill_is_not_overwritten(tmp_path: Path, shared_data: Path) -> None:
    run = make_run(tmp_path / "run", shared_data)
    run.card.write_text("# My own notes\n")
    result = CliRunner().invoke(app, ["card", str(run.root)])
    assert result.exit_code == 1 and "not written by `distill card`" in str(result.exception)
    assert run.card.read_text() == "# My own notes\n"


def test_a_repo_holding_another_dataset_is_refused_unless_forced(
    tmp_path: Path, shared_data: Path, fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    first, second = make_run(tmp_path / "a", shared_data), make_run(tmp_path / "b", shared_data)
    push(PushConfig(repo="test-org/math"), first, card=CardConfig())
    push(PushConfig(repo="test-org/math"), first, card=CardConfig())  # the same run again: fine
    fake_hub.files("test-org/math")["notes/extra.txt"] = b"kept until a forced replace"

    with pytest.raises(HubError) as err:
        push(PushConfig(repo="test-org/math"), second, card=CardConfig())
    assert "test-org/math already holds the dataset of another run" in str(err.value)
    assert "--force" in str(err.value) and "\n" not in str(err.value)
    assert len(fake_hub.repos["test-org/math"].commits) == 2

    push(PushConfig(repo="test-org/math"), second, card=CardConfig(), force=True)
    files = fake_hub.files("test-org/math")
    assert "notes/extra.txt" not in files and second.run_id in files["README.md"].decode()


def test_a_repo_with_files_not_made_by_distill_is_refused(
    distilled_run: RunDir, fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    push(PushConfig(repo="test-org/theirs"), distilled_run, card=CardConfig())
    files = fake_hub.files("test-org/theirs")
    files["README.md"] = b"---\nlicense: mit\n---\n# Someone else's dataset\n"

    result = CliRunner().invoke(app, ["push", str(distilled_run.root), "--repo", "test-org/theirs"])

    assert result.exit_code == 1
    assert "test-org/theirs already holds a dataset not published from this run" in str(result.exception)


@pytest.mark.slow
def test_demo_console_is_clean_and_its_card_is_publishable(tmp_path: Path) -> None:
    """`distill run demo`: no log lines between the progress and the table; the card names no local detail."""
    out = tmp_path / "demo"
    env = {**os.environ, "COLUMNS": "120"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "distill.cli",
            "run",
            str(ROOT / "recipes" / "demo.yaml"),
            "--out",
            str(out),
            "sft.max_steps=2",
            "eval.limit=2",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    console = done.stdout + done.stderr
    assert " INFO " not in console and "differs from the reference" not in console
    assert "distill run" in done.stdout and "eval" in done.stdout
    card = (out / "README.md").read_text()
    for private in (str(tmp_path), str(ROOT), "127.0.0.1"):
        assert private not in card
    assert "problems.jsonl" in card and LOCAL in card
