"""Teacher back-ends: a started server (vLLM's CLI contract), a real third-party server, pacing, shards."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from distill import schema
from distill.errors import ServerStartError
from distill.generation.config import GenerateConfig
from distill.generation.merge import merge
from distill.generation.ratelimit import AdaptiveLimiter, TokenBucket
from distill.generation.stage import generate
from distill.run import RunDir
from distill.teachers.vllm_server import VllmConfig, VllmServer

FAKE_VLLM = [
    sys.executable,
    "-m",
    "distill.testing.local_server",
]  # answers like `vllm serve`, ignores its flags


def _prompts(tmp_path: Path, count: int = 10) -> Path:
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps({"problem": f"What is {i} * 3?"}) + "\n" for i in range(count)))
    return path


def _port_closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_started_server_serves_generation_and_is_stopped(tmp_path: Path, run_dir: RunDir) -> None:
    vllm = VllmConfig(
        model="deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
        tensor_parallel=2,
        command=FAKE_VLLM,
        args=["--max-model-len", "4096"],
    )
    server = VllmServer(vllm, log_dir=tmp_path / "logs", poll_s=0.05)
    assert server.argv()[len(FAKE_VLLM) :] == [
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
        "--host",
        "127.0.0.1",
        "--port",
        str(server.port),
        "--tensor-parallel-size",
        "2",
        "--reasoning-parser",
        "deepseek_r1",
        "--max-model-len",
        "4096",
    ]

    cfg = GenerateConfig(
        prompts=str(_prompts(tmp_path)), vllm=vllm.model_copy(update={"port": server.port}), n=2
    )
    report = generate(cfg, run_dir)
    assert report.written == 20 and report.teacher == "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"
    assert "serving on" in (run_dir.logs / "vllm.log").read_text()
    assert _port_closed(server.port)  # stopped when generation ended


def test_a_server_that_dies_at_start_is_reported_with_its_log(tmp_path: Path) -> None:
    vllm = VllmConfig(
        model="some/model", command=[sys.executable, "-c", "print('CUDA out of memory'); exit(3)"]
    )
    with pytest.raises(ServerStartError, match="exited with code 3.*CUDA out of memory"):
        VllmServer(vllm, log_dir=tmp_path, poll_s=0.05).start()


def test_no_orphan_server_when_the_generator_is_killed(tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        "from distill.teachers.vllm_server import VllmConfig, VllmServer\n"
        f"s = VllmServer(VllmConfig(model='m', command={FAKE_VLLM!r}), log_dir=sys.argv[1], poll_s=0.05)\n"
        "s.start(); print(s.port, s._process.pid, flush=True); time.sleep(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    port, pid = (int(v) for v in parent.stdout.readline().split())  # type: ignore[union-attr]
    assert not _port_closed(port)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not _port_closed(port):
        time.sleep(0.05)
    assert _port_closed(port)
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # not our child, and gone


@pytest.mark.slow
def test_transformers_serve_works_unchanged(tiny_llama_model: Path, tmp_path: Path, run_dir: RunDir) -> None:
    """A real third-party OpenAI-compatible server: `transformers serve` on a tiny random Llama.

    Not Qwen2: for that model type the server parses replies with Qwen's response template, whose
    anchor a random model's output never matches, so every answer comes back empty (which is a failed
    request for us, rightly)."""
    tiny_model = tiny_llama_model
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [
            "transformers",
            "serve",
            str(tiny_model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--device",
            "cpu",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while _port_closed(port):
            assert process.poll() is None and time.monotonic() < deadline, (
                tmp_path / "serve.log"
            ).read_text()[-2000:]
            time.sleep(0.2)
        cfg = GenerateConfig(
            prompts=str(_prompts(tmp_path, 3)),
            base_url=[f"http://127.0.0.1:{port}/v1"],
            model=str(tiny_model),
            n=2,
            max_tokens=16,
            concurrency=2,
        )
        report = generate(cfg, run_dir)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
        log.close()
    assert (report.written, report.errors) == (6, 0), run_dir.read_json(run_dir.stats)
    frame = pl.read_parquet(run_dir.shard_files("all"))
    assert frame.get_column(schema.COMPLETION_TOKENS).min() > 0
    assert frame.get_column(schema.FINISH_REASON).is_in(["length", "stop"]).all()


def test_shards_merge_into_the_whole_run(teacher_server, tmp_path: Path) -> None:
    prompts = _prompts(tmp_path, 30)
    base = GenerateConfig(prompts=str(prompts), base_url=[teacher_server.base_url], n=2)
    shards = [RunDir(tmp_path / f"shard{i}") for i in range(3)]
    for i, run in enumerate(shards):
        generate(base.with_flags(shard=f"{i}/3"), run)
    report = merge(shards, RunDir(tmp_path / "merged"))
    merged = pl.read_parquet(RunDir(tmp_path / "merged").shard_files("all"))
    assert report.samples == 60 and merged.select(schema.KEY).n_unique() == 60
    whole = generate(base, RunDir(tmp_path / "merged"))  # the merged run is complete: nothing to send
    assert whole.requested == 0 and whole.samples == 60


def test_adaptive_concurrency_backs_off_on_429_and_recovers() -> None:
    now = [0.0]
    limiter = AdaptiveLimiter(100, clock=lambda: now[0])
    limiter.on_rate_limited()
    limiter.on_rate_limited()  # the same burst: one cut
    assert limiter.limit == 70
    now[0] = 5.0
    limiter.on_rate_limited()
    assert limiter.limit == 49
    for _ in range(49 + 50):
        limiter.on_success()
    assert limiter.limit == 51

    async def hold() -> int:
        small = AdaptiveLimiter(2)
        for _ in range(2):
            await small.acquire()
        waiter = asyncio.ensure_future(small.acquire())
        await asyncio.sleep(0)
        blocked = not waiter.done()
        small.release()
        await waiter
        return blocked + small.active

    assert asyncio.run(hold()) == 3  # the third waited, then took the freed slot


def test_rpm_bucket_paces_in_virtual_time() -> None:
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    async def burst() -> float:
        bucket = TokenBucket(60, clock=lambda: now[0], sleep=sleep)  # one a second after a burst of 60
        for _ in range(90):
            await bucket.acquire()
        return now[0]

    assert asyncio.run(burst()) == pytest.approx(30.0)


def test_cli_vllm_flags_start_the_server(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    command = f"[{sys.executable}, -m, distill.testing.local_server]"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "distill.cli",
            "generate",
            str(_prompts(tmp_path, 4)),
            "--out",
            str(run.root),
            "--vllm",
            "Qwen/QwQ-32B",
            "--tensor-parallel",
            "2",
            "--vllm-arg=--max-model-len=8192",
            "--n",
            "1",
            "--set",
            f"generate.vllm.command={command}",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "4/4 new samples" in result.stdout
    settings = run.read_json(run.stats)["generate"]
    assert settings["teacher"] == "Qwen/QwQ-32B"
    assert (
        "--reasoning-parser" not in (run.logs / "vllm.log").read_text()
    )  # the log is the server's own output


def test_process_mode_server_dies_with_its_parent() -> None:
    import signal
    import subprocess
    import sys

    import psutil

    code = (
        "import time\n"
        "from distill.testing.local_server import TeacherServer, default_responder\n"
        "srv = TeacherServer(default_responder, mode='process').__enter__()\n"
        "print(srv.base_url, flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None and parent.stdout.readline().startswith("http://127.0.0.1:")
        children = psutil.Process(parent.pid).children(recursive=True)
        assert children
        parent.send_signal(signal.SIGTERM)
        parent.wait(timeout=30)
        _, alive = psutil.wait_procs(children, timeout=10)
        assert alive == [], f"orphaned server processes: {alive}"
    finally:
        parent.kill()
