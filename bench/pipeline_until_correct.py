"""Verification in the loop vs a fixed number of samples per prompt: samples spent for the same coverage.

    python -m bench.pipeline_until_correct --quick    # the 52 demo problems, K=2, M=8 (< 1 min)
    python -m bench.pipeline_until_correct --check    # exit 1 unless ours reaches the same coverage
                                                      # with at most half the samples

Same teacher (the demo teacher behind the local OpenAI-compatible server: per-problem success rates
0.95 / 0.9 / 0.75 / 0.35 and 21% flawed replies), same generation engine, same verifier, in one run:
- baseline: every prompt gets M samples (the fixed budget needed to give hard prompts a chance);
- fixed n=first round: every prompt gets generate.n samples (cheap, but hard prompts fall short);
- ours: `until_correct: K`, `max_samples: M` (distill.generation.sampling).
Coverage = prompts with at least K verified-correct samples. Also reports wall time per strategy.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

from distill import schema
from distill.demo.teacher import DEMO_MODEL, DemoTeacher
from distill.generation.config import GenerateConfig
from distill.generation.sampling import sample_until_correct
from distill.generation.stage import generate
from distill.run import RunDir
from distill.testing.local_server import TeacherServer
from distill.verification.stage import VerifyConfig, verify_frame

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.5  # ours may spend at most this share of the baseline's samples


def coverage(run: RunDir, verify_cfg: VerifyConfig, k: int) -> tuple[int, int, int]:
    """(samples, prompts, prompts with ≥ k correct)."""
    rows = run.read("all")
    scored = verify_frame(verify_cfg, rows.filter(pl.col(schema.ERROR).is_null()))
    per = scored.group_by(schema.PROMPT_ID).agg(pl.col(schema.CORRECT).fill_null(False).sum().alias("c"))
    return rows.height, per.height, per.filter(pl.col("c") >= k).height


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the default size (the 52 demo problems)")
    parser.add_argument(
        "--check", action="store_true", help=f"exit 1 unless ours ≤ {TARGET:.0%} of the samples"
    )
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--max-samples", type=int, default=8)
    parser.add_argument("--n", type=int, default=3, help="first-round samples per prompt")
    args = parser.parse_args(argv)

    verify_cfg = VerifyConfig()
    strategies = (
        ("fixed n=M (baseline)", args.max_samples, False),
        (f"fixed n={args.n}", args.n, False),
        (f"until_correct={args.k}, max_samples={args.max_samples}", args.n, True),
    )
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, n, loop) in enumerate(strategies):
            # a fresh teacher per strategy: the demo teacher answers a repeated request differently
            with TeacherServer(
                DemoTeacher(), model=DEMO_MODEL, reasoning_field="inline", record=False
            ) as server:
                cfg = GenerateConfig(
                    prompts=str(ROOT / "distill/demo/problems.jsonl"),
                    n=n,
                    seed=0,
                    base_url=[server.base_url],
                    model=DEMO_MODEL,
                    max_tokens=4096,
                    concurrency=16,
                )
                run = RunDir(Path(tmp) / str(i))
                started = time.perf_counter()
                if loop:
                    sample_until_correct(
                        cfg,
                        verify_cfg,
                        run,
                        until_correct=args.k,
                        max_samples=args.max_samples,
                        generate=generate,
                        verify_frame=verify_frame,
                    )
                else:
                    generate(cfg, run)
                seconds = time.perf_counter() - started
            results.append((name, *coverage(run, verify_cfg, args.k), seconds))

    base_samples, _, base_covered, _ = results[0][1:]
    print(
        f"machine: {platform.machine()} {platform.system()}, {os.cpu_count()} CPUs, python {platform.python_version()}"
    )
    print(
        f"{'strategy':<34} {'samples':>8} {'prompts ≥K correct':>19} {'samples vs baseline':>20} {'wall s':>7}"
    )
    for name, samples, prompts, covered, seconds in results:
        print(
            f"{name:<34} {samples:>8} {f'{covered}/{prompts}':>19} {samples / base_samples:>19.2f}× {seconds:>7.1f}"
        )
    ours = results[-1]
    ok = ours[3] >= base_covered and ours[1] <= TARGET * base_samples
    print(
        f"target: same coverage as the baseline with ≤ {TARGET:.0%} of its samples: {'met' if ok else 'MISSED'}"
    )
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
