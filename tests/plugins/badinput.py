"""The bench of tests/test_bad_input.py: a scratch folder, real `distill` subprocesses, a local teacher.

`Ctx` is what a case gets: `ctx.distill(...)` runs the console script in a subprocess (this checkout
first on the path), `ctx.teacher(...)` starts a local OpenAI-compatible server with a fault schedule,
`ctx.prompts(...)` writes a prompts file, and `ctx.rows(...)` counts what a run's data/all holds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from distill.testing.local_server import Faults, TeacherServer, default_responder

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    """One finished `distill` process."""

    args: tuple[str, ...]
    rc: int
    stdout: str
    stderr: str

    @property
    def error_line(self) -> str:
        """The last non-empty stderr line (where the one-line error goes)."""
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else ""

    def __str__(self) -> str:
        return (
            f"distill {' '.join(self.args)} → {self.rc}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"
        )

    __repr__ = __str__


@dataclass
class Ctx:
    """A case's scratch folder, its teachers and a `distill` runner."""

    tmp: Path
    servers: list[TeacherServer] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DISTILL_", "OPENAI_"))}
        env.update(PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", COLUMNS="200", NO_COLOR="1", **extra)
        return env

    def popen(
        self, *args: str, env: dict[str, str] | None = None, max_file_bytes: int | None = None
    ) -> subprocess.Popen[str]:
        """`distill ARGS`; with `max_file_bytes`, writing a bigger file fails as on a full disk (EFBIG)."""
        return subprocess.Popen(
            [sys.executable, "-m", "distill.cli", *args],
            cwd=self.tmp,
            env=env or self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=None if max_file_bytes is None else (lambda: _limit_file_size(max_file_bytes)),
        )

    def distill(
        self,
        *args: str | Path,
        timeout: float = 180,
        env: dict[str, str] | None = None,
        max_file_bytes: int | None = None,
    ) -> Result:
        argv = tuple(str(a) for a in args)
        proc = self.popen(*argv, env=env, max_file_bytes=max_file_bytes)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"distill {' '.join(argv)} still running after {timeout}s\n{out}\n{err}")
        return Result(argv, proc.returncode, out, err)

    def teacher(self, responder: Any = default_responder, **faults: Any) -> TeacherServer:
        """A local teacher; `schedule={1: "hang"}`, `rates={"500": 1.0}` and Faults fields go to its faults."""
        server = TeacherServer(responder, faults=Faults(**faults) if faults else None).start()
        self.servers.append(server)
        return server

    def prompts(self, n: int = 5, name: str = "prompts.jsonl", **columns: Callable[[int], Any]) -> Path:
        """A JSONL prompts file of `n` distinct problems, with extra columns computed from the row index."""
        rows = [
            {"problem": f"What is {i} + {i}?", "answer": str(2 * i), **{k: f(i) for k, f in columns.items()}}
            for i in range(n)
        ]
        path = self.tmp / name
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        return path

    def generate(
        self,
        prompts: Path,
        out: Path | str = "run",
        *more: str,
        server: TeacherServer | None = None,
        n: int = 2,
        timeout: float = 180,
    ) -> Result:
        server = server or (self.servers[0] if self.servers else self.teacher())
        return self.distill(
            "generate",
            prompts,
            "--out",
            out,
            "--base-url",
            server.base_url,
            "--n",
            str(n),
            "--quiet",
            *more,
            timeout=timeout,
        )

    def rows(self, run: Path | str = "run", config: str = "all") -> int:
        """Rows in RUN/data/<config> (0 when there are none)."""
        import pyarrow.parquet as pq

        folder = self.tmp / run / "data" / config
        return sum(pq.ParquetFile(f).metadata.num_rows for f in sorted(folder.glob("*.parquet")))

    def stored(self, run: Path | str = "run", status: str | None = None) -> int:
        """Samples in RUN's generations store (of one status, or all)."""
        import sqlite3

        db = sqlite3.connect(self.tmp / run / "generations" / "store.sqlite")
        try:
            where, params = ("WHERE status = ?", (status,)) if status else ("", ())
            return int(db.execute(f"SELECT COUNT(*) FROM samples {where}", params).fetchone()[0])
        finally:
            db.close()


def _limit_file_size(limit: int) -> None:
    """In the child before exec: files may not grow past `limit` bytes, and the write fails (no SIGXFSZ)."""
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Ctx]:
    bench = Ctx(tmp_path)
    yield bench
    for server in bench.servers:
        server.stop()
