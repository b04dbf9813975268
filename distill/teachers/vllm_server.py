"""Start `vllm serve` as a subprocess, wait until it answers, log it to RUN/logs, and always stop it.

    with VllmServer(VllmConfig(model="deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"), log_dir=run.logs) as server:
        server.base_url      # http://127.0.0.1:PORT/v1

vLLM is never imported here: it is a command with a CLI contract. The server runs in its own process
group, so stopping it (SIGTERM → wait → SIGKILL) reaches its workers too, and on Linux it is asked
to die with us (PR_SET_PDEATHSIG) so even a SIGKILL of the generator leaves no orphan server.
`command` is injectable: tests run the local test server in its place.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import Field

from distill.config import StageConfig
from distill.errors import ServerStartError
from distill.teachers.base import die_with_parent

log = logging.getLogger(__name__)


class VllmConfig(StageConfig):
    """A `vllm serve` that generation starts, health-checks and stops itself."""

    model: str | None = Field(None, description="Model path or Hub id given to `vllm serve` (required).")
    tensor_parallel: int = Field(1, ge=1, description="--tensor-parallel-size.")
    data_parallel: int = Field(1, ge=1, description="--data-parallel-size.")
    reasoning_parser: str | None = Field(
        "auto",
        description="--reasoning-parser; auto: chosen from the model "
        "name (deepseek_r1, qwen3, …); null: none.",
    )
    args: list[str] = Field(
        default_factory=list, description="Extra `vllm serve` arguments, passed verbatim."
    )
    port: int = Field(0, ge=0, description="Port to serve on; 0 picks a free one.")
    startup_timeout_s: float = Field(1800.0, gt=0, description="How long to wait for /health and /v1/models.")
    command: list[str] = Field(default_factory=lambda: ["vllm", "serve"], description="The serve command.")


# `--reasoning-parser` by model family (vLLM's parser names); the config can always name one itself.
REASONING_PARSERS = (
    ("deepseek-r1", "deepseek_r1"),
    ("deepseek_r1", "deepseek_r1"),
    ("r1-distill", "deepseek_r1"),
    ("qwq", "deepseek_r1"),
    ("openthinker", "deepseek_r1"),
    ("qwen3", "qwen3"),
    ("granite", "granite"),
    ("glm-4.5", "glm45"),
    ("gpt-oss", "openai_gptoss"),
    ("magistral", "mistral"),
    ("phi-4-reasoning", "deepseek_r1"),
    ("exaone-deep", "deepseek_r1"),
    ("hunyuan", "hunyuan_a13b"),
    ("minimax-m1", "deepseek_r1"),
)


def reasoning_parser_for(model: str) -> str | None:
    """vLLM's reasoning parser for a model id, or None when the family is not known."""
    name = model.lower()
    return next((parser for key, parser in REASONING_PARSERS if key in name), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VllmServer:
    """A `vllm serve` process owned by this one; a context manager."""

    def __init__(
        self,
        cfg: VllmConfig,
        *,
        log_dir: Path,
        command: Sequence[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        poll_s: float = 0.5,
    ) -> None:
        self.cfg = cfg
        self.command = list(command) if command is not None else list(cfg.command)
        self.port = cfg.port or free_port()
        self.log_path = Path(log_dir) / "vllm.log"
        self._clock = clock
        self._poll_s = poll_s
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def argv(self) -> list[str]:
        cfg = self.cfg
        argv = [*self.command, str(cfg.model), "--host", "127.0.0.1", "--port", str(self.port)]
        if cfg.tensor_parallel > 1:
            argv += ["--tensor-parallel-size", str(cfg.tensor_parallel)]
        if cfg.data_parallel > 1:
            argv += ["--data-parallel-size", str(cfg.data_parallel)]
        parser = (
            reasoning_parser_for(str(cfg.model)) if cfg.reasoning_parser == "auto" else cfg.reasoning_parser
        )
        if parser and not any(a.startswith("--reasoning-parser") for a in cfg.args):
            argv += ["--reasoning-parser", parser]
        return argv + list(cfg.args)

    def __enter__(self) -> VllmServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = self.argv()
        log.info("starting %s (log: %s)", " ".join(argv[:2]), self.log_path)
        with open(self.log_path, "ab") as log_file:
            try:
                self._process = subprocess.Popen(
                    argv,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    preexec_fn=die_with_parent if sys.platform == "linux" else None,
                )
            except FileNotFoundError as e:
                raise ServerStartError(
                    f"cannot run {argv[0]!r}: install vLLM (pip install 'distill[vllm]')"
                ) from e
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = self._clock() + self.cfg.startup_timeout_s
        stage = "/health"
        while self._clock() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise ServerStartError(
                    f"vllm serve exited with code {self._process.returncode} before it was "
                    f"ready; last log line: {self._last_log_line()} (log: {self.log_path})"
                )
            if stage == "/health" and _get(f"http://127.0.0.1:{self.port}/health"):
                stage = "/v1/models"
            if stage == "/v1/models" and _get(f"{self.base_url}/models"):
                log.info("vllm serve is ready at %s", self.base_url)
                return
            time.sleep(self._poll_s)  # waiting on another process's readiness: polling is the only signal
        raise ServerStartError(
            f"vllm serve did not answer {stage} within {self.cfg.startup_timeout_s:.0f}s "
            f"(log: {self.log_path})"
        )

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM the process group, wait, then SIGKILL what is left."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def _last_log_line(self) -> str:
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return lines[-1][:300] if lines else "(empty log)"


def _get(url: str) -> bool:
    # Imported here: `VllmConfig` is part of every generate config, and urllib.request (http, email)
    # would cost every `distill generate` start-up ~10 ms for a server it usually does not start.
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback only
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False
