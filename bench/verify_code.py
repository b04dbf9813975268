"""Sandboxed code verification throughput: HumanEval canonical solutions, ours vs a plain subprocess loop.

    python -m bench.verify_code --quick          # 40 programs, < 1 min
    python -m bench.verify_code                  # all 164 programs
    python -m bench.verify_code --check          # exit 1 if a canonical solution fails or ours < 1.0x
    python -m bench.verify_code --repeat 5       # 5 pairs, alternating; the median ratio (busy box)

Baseline: one `subprocess.run([python, file])` per program (program + test + `check(entry_point)`),
one after the other, no isolation. Ours: `distill.verification.stage.verify_frame` with the code
verifier: the last fenced block of each answer, run in the sandbox (mount/pid/network/ipc
namespaces, private capped tmpfs, a uid per slot swept after each program, a cgroup per program,
rlimits, scrubbed environment), one slot per core, with per-test results.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

from distill import schema
from distill.verification.stage import VerifyConfig, verify_frame
from tests.datafiles import data_dir

DATA = data_dir()  # tests/data unpacked, or $DISTILL_TEST_DATA (a fuller copy, same layout)
TARGET = 1.0  # isolation must not cost throughput: parallel slots pay for the namespaces


def tasks() -> list[dict]:
    with gzip.open(DATA / "benchmarks" / "humaneval.jsonl.gz", "rt") as f:
        return [json.loads(line) for line in f]


def baseline(items: list[dict]) -> tuple[float, int]:
    passed = 0
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        for i, task in enumerate(items):
            path = Path(tmp) / f"p{i}.py"
            path.write_text(
                f"{task['prompt']}{task['canonical_solution']}\n{task['test']}\ncheck({task['entry_point']})\n"
            )
            done = subprocess.run([sys.executable, str(path)], capture_output=True, timeout=30)
            passed += done.returncode == 0
        return time.perf_counter() - start, passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the first 40 programs")
    parser.add_argument("--workers", type=int, default=None, help="sandbox slots (default: every core)")
    parser.add_argument(
        "--check", action="store_true", help=f"exit 1 on a failed solution or below {TARGET}x"
    )
    parser.add_argument("--repeat", type=int, default=1, help="pairs of runs; the median ratio is judged")
    args = parser.parse_args(argv)

    items = tasks()[:40] if args.quick else tasks()
    frame = pl.DataFrame(
        [
            {
                schema.PROMPT_ID: t["task_id"],
                schema.SAMPLE: 0,
                schema.ANSWER_TEXT: f"```python\n{t['prompt']}{t['canonical_solution']}\n```",
                "test": t["test"],
                "entry_point": t["entry_point"],
            }
            for t in items
        ]
    )
    n = len(items)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"machine: {os.cpu_count()} cores ({platform.machine()}), Python {sys.version.split()[0]}; "
        f"load average {load} (shared with other jobs while measured)"
    )
    print(f"{'':30}{'programs':>9}{'passed':>8}{'seconds':>9}{'programs/s':>12}")
    ratios, failed = [], False
    for _ in range(args.repeat):
        base_s, base_passed = baseline(items)
        start = time.perf_counter()
        ours = verify_frame(VerifyConfig(math=False, format=False, code=True, workers=args.workers), frame)
        ours_s = time.perf_counter() - start
        ours_passed = int(ours[schema.CODE_VERIFIED].fill_null(False).sum())
        failed |= ours_passed != n
        print(
            f"{'subprocess.run loop (no limits)':30}{n:>9}{base_passed:>8}{base_s:>9.2f}{n / base_s:>12.1f}"
        )
        print(f"{'distill sandbox, all cores':30}{n:>9}{ours_passed:>8}{ours_s:>9.2f}{n / ours_s:>12.1f}")
        ratios.append(base_s / ours_s)
    isolation = json.loads(ours[schema.CODE_RESULTS][0])["isolation"]
    ratio = statistics.median(ratios)
    each = " ".join(f"{r:.2f}" for r in ratios)
    print(f"ratio {ratio:.2f}x median of [{each}] (target >= {TARGET}x); load now {os.getloadavg()[0]:.1f}")
    print(f"isolation: {isolation}")
    if args.check and (failed or ratio < TARGET):
        print("FAILED: a canonical solution failed or below target", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
