"""Generation end to end against a real HTTP teacher on 127.0.0.1: rows, faults, resume, money, limits."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import yaml

from distill import schema
from distill.errors import ConfigError, TeacherError
from distill.generation.config import GenerateConfig
from distill.generation.stage import generate
from distill.run import RunDir
from distill.testing.local_server import Faults, Reply, default_responder

PROMPTS = [{"problem": f"What is {i} + {i}?", "answer": str(2 * i), "level": i % 3} for i in range(12)]


class FakeSleep:
    """Virtual time for backoff: records each wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
def prompts_file(tmp_path: Path) -> Path:
    path = tmp_path / "math.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [*PROMPTS, PROMPTS[0]]))  # one duplicate
    return path


def _stored(run: RunDir) -> list[tuple[str, int, str]]:
    with sqlite3.connect(run.store) as db:
        return db.execute("SELECT prompt_id, sample, status FROM samples").fetchall()


def test_generates_every_sample_with_provenance(
    make_teacher_server, prompts_file: Path, run_dir: RunDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datasets

    server = make_teacher_server(default_responder, api_key="sk-test-secret")
    monkeypatch.setenv("MY_KEY", "sk-test-secret")
    cfg = GenerateConfig(
        prompts=str(prompts_file),
        base_url=[server.base_url],
        api_key_env="MY_KEY",
        n=3,
        prices={"input_per_million": 0.55, "output_per_million": 2.19},
    )
    report = generate(cfg, run_dir)

    assert (report.prompts, report.duplicates, report.written, report.errors) == (12, 1, 36, 0)
    assert server.request_count == 36  # the duplicate prompt was never sent
    frame = pl.read_parquet(run_dir.shard_files("all"))
    assert frame.height == 36 and frame.select(schema.KEY).n_unique() == 36
    row = frame.filter(pl.col(schema.SAMPLE) == 2).row(0, named=True)
    assert (
        row["answer"] == str(int(row["problem"].split()[2]) * 2) and row[schema.SOURCE] == "math"
    )  # inputs kept
    assert row[schema.MESSAGES][0] == {"role": "user", "content": row[schema.PROMPT]}
    assert row[schema.MESSAGES][1]["content"] == (
        f"<think>\n{row[schema.REASONING]}\n</think>\n\n{row[schema.ANSWER_TEXT]}"
    )
    assert (
        row[schema.TEACHER] == "local-teacher"
        and row[schema.FINISH_REASON] == "stop"
        and row[schema.COMPLETE]
    )
    assert row[schema.COMPLETION_TOKENS] > 0 and row[schema.ATTEMPTS] == 1 and row[schema.ERROR] is None
    assert (row[schema.TEMPERATURE], row[schema.TOP_P], row[schema.MAX_TOKENS]) == (0.6, 0.95, 32768)
    sent = server.requests[0]
    assert (sent["temperature"], sent["top_p"], sent["max_tokens"]) == (0.6, 0.95, 32768)
    assert [m["role"] for m in sent["messages"]] == ["user"]  # no system prompt by default
    loaded = datasets.load_dataset(
        "parquet", data_files=[str(f) for f in run_dir.shard_files("all")], split="train"
    )
    assert loaded.num_rows == 36 and loaded[0][schema.MESSAGES][1]["role"] == "assistant"
    stats = run_dir.read_json(run_dir.stats)["generate"]
    assert stats["samples"] == 36 and stats["errors"] == 0 and stats["finish_reasons"] == {"stop": 36}
    assert stats["cost_usd"] == pytest.approx(
        (stats["prompt_tokens"] * 0.55 + stats["completion_tokens"] * 2.19) / 1e6, abs=1e-6
    )
    assert "sk-test-secret" not in run_dir.run_yaml.read_text()
    assert yaml.safe_load(run_dir.run_yaml.read_text())["generate"]["api_key_env"] == "MY_KEY"


def test_streaming_and_inline_reasoning_give_the_same_rows(
    make_teacher_server, prompts_file: Path, tmp_path: Path
) -> None:
    plain = make_teacher_server(default_responder)
    inline = make_teacher_server(default_responder, reasoning_field="inline")
    frames = []
    for server, stream in [(plain, False), (inline, True)]:
        run = RunDir(tmp_path / f"run-{stream}")
        generate(
            GenerateConfig(prompts=str(prompts_file), base_url=[server.base_url], n=2, stream=stream), run
        )
        frames.append(
            pl.read_parquet(run.shard_files("all"))
            .sort(schema.KEY)
            .select(schema.MESSAGES, schema.REASONING, schema.ANSWER_TEXT, schema.COMPLETION_TOKENS)
        )
    assert inline.requests[0]["stream"] is True
    assert frames[0].equals(frames[1])


def test_mixed_faults_lose_nothing_and_duplicate_nothing(
    make_teacher_server, prompts_file: Path, run_dir: RunDir
) -> None:
    faults = Faults(
        rates={"429": 0.08, "500": 0.05, "reset": 0.05, "malformed": 0.04, "slow_body": 0.03},
        seed=7,
        retry_after_s=3.0,
        slow_body_s=0.05,
    )
    server = make_teacher_server(default_responder, faults=faults)
    sleep = FakeSleep()
    cfg = GenerateConfig(
        prompts=str(prompts_file), base_url=[server.base_url], n=8, concurrency=16, max_attempts=10
    )
    report = generate(cfg, run_dir, sleep=sleep)

    injected = sum(server.fault_counts.values()) - server.fault_counts["slow_body"]
    assert injected / server.request_count >= 0.1 and report.retries == injected
    assert report.written == 96 and report.errors == 0
    frame = pl.read_parquet(run_dir.shard_files("all"))
    assert frame.height == 96 and frame.select(schema.KEY).n_unique() == 96
    assert frame.get_column(schema.ATTEMPTS).sum() == server.request_count
    assert any(w >= 3.0 for w in sleep.waits)  # Retry-After honoured
    assert len(_stored(run_dir)) == 96


def test_failed_requests_become_error_rows_and_the_next_run_retries_only_them(
    make_teacher_server, prompts_file: Path, run_dir: RunDir
) -> None:
    broken = make_teacher_server(default_responder, faults=Faults(schedule={i: "500" for i in range(1, 7)}))
    cfg = GenerateConfig(
        prompts=str(prompts_file), base_url=[broken.base_url], n=2, concurrency=1, max_attempts=2
    )
    report = generate(cfg, run_dir, sleep=FakeSleep())
    assert (report.written, report.errors) == (21, 3)
    errors = pl.read_parquet(run_dir.shard_files("all")).filter(pl.col(schema.ERROR).is_not_null())
    assert errors.height == 3 and "HTTP 500" in errors.get_column(schema.ERROR)[0]
    assert (
        errors.get_column(schema.ATTEMPTS).to_list() == [2, 2, 2] and errors[schema.MESSAGES].is_null().all()
    )
    assert run_dir.stage_record("generate") is None  # not done while rows have errors

    healthy = make_teacher_server(default_responder)
    report = generate(cfg.with_flags(base_url=[healthy.base_url]), run_dir)
    assert healthy.request_count == 3 and (report.written, report.error_rows, report.samples) == (3, 0, 24)
    assert pl.read_parquet(run_dir.shard_files("all")).get_column(schema.ERROR).null_count() == 24
    assert run_dir.stage_record("generate") is not None


def test_unauthorised_stops_at_once(
    make_teacher_server, prompts_file: Path, run_dir: RunDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_teacher_server(default_responder, api_key="right-key")
    monkeypatch.setenv("BAD_KEY", "wrong-key-123")
    cfg = GenerateConfig(prompts=str(prompts_file), base_url=[server.base_url], api_key_env="BAD_KEY")
    with pytest.raises(TeacherError, match="refused the API key") as info:
        generate(cfg, run_dir)
    assert "wrong-key-123" not in str(info.value) and server.request_count == 0
    assert (info.value.endpoint, info.value.status, info.value.is_refused) == (server.base_url, 401, True)
    # a key revoked mid-run: the first 401 stops the run, no retries are burnt
    server = make_teacher_server(default_responder, faults=Faults(schedule={3: "401"}))
    with pytest.raises(TeacherError, match="401"):
        generate(
            GenerateConfig(prompts=str(prompts_file), base_url=[server.base_url], concurrency=1),
            RunDir(run_dir.root.parent / "other"),
        )
    assert server.request_count == 3


def test_unreachable_base_url_fails_fast_naming_the_url(
    prompts_file: Path, run_dir: RunDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("SOME_KEY", "sk-never-shown")
    started = time.monotonic()
    url = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(TeacherError, match=f"cannot reach {url}") as info:
        generate(GenerateConfig(prompts=str(prompts_file), base_url=[url], api_key_env="SOME_KEY"), run_dir)
    assert time.monotonic() - started < 5 and "sk-never-shown" not in str(info.value)
    assert (info.value.endpoint, info.value.status, info.value.is_refused) == (url, None, False)


def test_changed_settings_are_refused_but_raising_n_is_not(
    teacher_server, prompts_file: Path, run_dir: RunDir
) -> None:
    cfg = GenerateConfig(prompts=str(prompts_file), base_url=[teacher_server.base_url], n=1)
    generate(cfg, run_dir)
    with pytest.raises(ConfigError, match=r"temperature: 0\.6 → 0\.9.*--resume-with-changed-settings"):
        generate(cfg.with_flags(temperature=0.9), run_dir)
    report = generate(cfg.with_flags(n=2, concurrency=3), run_dir)  # more samples, other speed: fine
    assert (report.written, report.samples) == (12, 24)
    pid = pl.read_parquet(run_dir.shard_files("all")).get_column(schema.PROMPT_ID)[0]
    report = generate(
        cfg.with_flags(n=2), run_dir, n_per_prompt={pid: 5}
    )  # verification-in-the-loop asks more
    assert (report.written, report.samples) == (3, 27)
    report = generate(cfg.with_flags(temperature=0.9, n=3), run_dir, allow_changed_settings=True)
    assert report.written == 11  # sample 2 of every prompt but the one that already has 5


def test_budget_cap_stops_cleanly_and_resumes(
    make_teacher_server, prompts_file: Path, run_dir: RunDir
) -> None:
    server = make_teacher_server(lambda m, p, i: Reply("\\boxed{1}", "x" * 400, completion_tokens=1000))
    cfg = GenerateConfig(
        prompts=str(prompts_file),
        base_url=[server.base_url],
        n=2,
        concurrency=1,
        prices={"output_per_million": 1000.0},
        budget_usd=5.0,
    )  # $1 a sample
    report = generate(cfg, run_dir)
    assert report.stopped and "budget" in report.stopped and report.written == 5 and report.cost_usd >= 5
    assert run_dir.stage_record("generate") is None
    report = generate(cfg.with_flags(budget_usd=100.0), run_dir)
    assert (report.written, report.samples, report.stopped) == (19, 24, None)


def test_length_policy(make_teacher_server, prompts_file: Path, tmp_path: Path) -> None:
    def responder(messages: list, params: dict, index: int) -> Reply:
        if params["max_tokens"] < 400:
            return Reply("", "a very long thought that was cut", finish_reason="length")
        return Reply("\\boxed{2}", "short thought")

    server = make_teacher_server(responder)
    base = GenerateConfig(prompts=str(prompts_file), base_url=[server.base_url], n=1, max_tokens=100)
    kept = generate(base, RunDir(tmp_path / "keep"))
    assert kept.finish_reasons == {"length": 12}
    frame = pl.read_parquet(RunDir(tmp_path / "keep").shard_files("all"))
    assert not frame.get_column(schema.COMPLETE).any()
    dropped = generate(base.with_flags(on_length="drop"), RunDir(tmp_path / "drop"))
    assert dropped.samples == 0 and not pl.read_parquet(RunDir(tmp_path / "drop").shard_files("all")).height
    retried = generate(base.with_flags(on_length="retry"), RunDir(tmp_path / "retry"))
    frame = pl.read_parquet(RunDir(tmp_path / "retry").shard_files("all"))
    assert retried.finish_reasons == {"stop": 12} and frame.get_column(
        schema.MAX_TOKENS
    ).unique().to_list() == [400]


def test_pool_spreads_work_and_drains_a_failing_endpoint(
    make_teacher_server, prompts_file: Path, run_dir: RunDir
) -> None:
    good = [make_teacher_server(default_responder, latency_s=0.01) for _ in range(2)]
    bad = make_teacher_server(default_responder, faults={"500": 1.0})
    cfg = GenerateConfig(
        prompts=str(prompts_file), base_url=[g.base_url for g in good] + [bad.base_url], n=4, concurrency=8
    )
    report = generate(cfg, run_dir, sleep=FakeSleep())
    assert report.written == 48 and report.errors == 0
    assert min(g.request_count for g in good) > 10  # both healthy endpoints carried work
    assert bad.request_count <= 6  # drained after a few failures


def test_sigkill_loses_only_in_flight_and_resume_is_exact(make_teacher_server, tmp_path: Path) -> None:
    prompts = tmp_path / "many.jsonl"
    prompts.write_text("".join(json.dumps({"problem": f"q{i}"}) + "\n" for i in range(60)))
    server = make_teacher_server(default_responder, latency_s=0.05)
    run = RunDir(tmp_path / "run")
    argv = [
        sys.executable,
        "-m",
        "distill.cli",
        "generate",
        str(prompts),
        "--out",
        str(run.root),
        "--base-url",
        server.base_url,
        "--n",
        "4",
        "--concurrency",
        "8",
        "--quiet",
    ]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    stored = 0
    while stored < 40 and time.monotonic() < deadline:  # wait for a condition with a deadline
        if run.store.exists():
            try:
                stored = len(_stored(run))
            except sqlite3.OperationalError:
                stored = 0
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = _stored(run)
    assert 40 <= len(before) < 240 and {s for _, _, s in before} == {"ok"}
    sent_before = server.request_count

    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert server.request_count - sent_before == 240 - len(before)  # only the unfinished pairs were resent
    frame = pl.read_parquet(run.shard_files("all"))
    assert frame.height == 240 and frame.select(schema.KEY).n_unique() == 240
    assert "generate:" in result.stdout and "240 samples" in result.stdout


def test_cli_reports_bad_input_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"problem": "fine"}\n{"problem": \n')
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "distill.cli",
            "generate",
            str(bad),
            "--out",
            str(tmp_path / "r"),
            "--base-url",
            "http://127.0.0.1:9/v1",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {bad}, row 2: line 2 is not valid JSON (Expecting value)"
    assert not (tmp_path / "r").exists()  # nothing written


def test_a_slow_body_times_out_and_is_retried(
    make_teacher_server, prompts_file: Path, run_dir: RunDir
) -> None:
    faults = Faults(schedule={1: "slow_body"}, slow_body_s=2.0)
    server = make_teacher_server(default_responder, faults=faults)
    cfg = GenerateConfig(
        prompts=str(prompts_file), base_url=[server.base_url], n=1, concurrency=1, read_timeout_s=0.3
    )
    report = generate(cfg, run_dir, sleep=FakeSleep())
    assert (report.written, report.errors, report.retries) == (12, 0, 1)
    assert pl.read_parquet(run_dir.shard_files("all")).get_column(schema.ATTEMPTS).max() == 2


def test_a_second_generator_on_the_same_run_is_refused(run_dir: RunDir) -> None:
    from distill.errors import StageError
    from distill.generation.store import Store

    with Store(run_dir.generations), pytest.raises(StageError, match="being generated by another process"):
        Store(run_dir.generations).__enter__()


def test_a_pool_stops_on_a_refused_key_and_drains_an_unreachable_endpoint(
    make_teacher_server, prompts_file: Path, run_dir: RunDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool decides on the error's status, not its wording: 401 stops, a dead endpoint is skipped."""
    import socket

    open_server = make_teacher_server(default_responder)
    keyed = make_teacher_server(default_responder, api_key="right-key")
    monkeypatch.setenv("POOL_KEY", "wrong-key")
    cfg = GenerateConfig(prompts=str(prompts_file), base_url=[open_server.base_url, keyed.base_url],
                         api_key_env="POOL_KEY", n=1)
    with pytest.raises(TeacherError, match="refused") as info:
        generate(cfg, run_dir)
    assert (info.value.endpoint, info.value.status) == (keyed.base_url, 401)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    report = generate(cfg.with_flags(base_url=[open_server.base_url, dead]), RunDir(run_dir.root.parent / "pool"))
    assert report.samples > 0 and report.error_rows == 0
