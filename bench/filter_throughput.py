"""Filter throughput on synthetic ~20 KB traces built from real ones, and MinHash vs datasketch.

    python -m bench.filter_throughput --quick          # 5,000 rows, < 1 min
    python -m bench.filter_throughput                  # 100,000 rows (~2 GB of reasoning)
    python -m bench.filter_throughput --rows 20000 --check

Measures, in the same run: the whole `apply_filters` pass (every rule on, decontamination against
MATH-500, AIME 2024, AMC 2023 and GSM8K from tests/data) in rows/s and MB/s of reasoning; MinHash
signatures + LSH of ours (rensa over numpy shingles) against a datasketch baseline on the same texts;
and the peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from distill import schema
from distill.filtering.stage import FilterConfig, apply_filters
from distill.run import RunDir
from tests.datafiles import data_dir

DATA = data_dir()  # tests/data unpacked, or $DISTILL_TEST_DATA (a fuller copy, same layout)
TARGET_ROWS_PER_S = 100_000 / 600  # the issue: 100k traces in minutes, not hours (≤ 10 min)
TARGET_MINHASH_RATIO = 5.0


def real_traces() -> tuple[list[str], list[str]]:
    texts, questions = [], []
    for f in sorted((DATA / "traces").glob("*.jsonl")):
        for line in f.read_text().splitlines():
            row = json.loads(line)
            code = row["code"] if isinstance(row["code"], list) else [row["code"]]
            for c in code:
                texts.append(str(c))
                questions.append(row["question"])
    return texts, questions


def synthetic_frame(rows: int, size: int = 20_000, seed: int = 0) -> pl.DataFrame:
    """`rows` traces of about `size` characters: real traces stitched together, with a unique tail."""
    texts, questions = real_traces()
    rng = np.random.default_rng(seed)
    pool = [t for t in texts if len(t) > 500]
    records = []
    for i in range(rows):
        parts, total = [], 0
        while total < size:
            t = pool[int(rng.integers(len(pool)))]
            parts.append(t[: size - total])
            total += len(parts[-1])
        q = questions[i % len(questions)]
        records.append(
            {
                schema.PROMPT_ID: f"p{i // 4}",
                schema.SAMPLE: i % 4,
                "problem": f"{q} (variant {i // 4})",
                schema.REASONING: "\n".join(parts) + f"\nSample {i}.",
                schema.ANSWER_TEXT: f"The answer is {i}.",
                schema.SOURCE: f"s{i % 3}",
                schema.ERROR: None,
            }
        )
    return pl.DataFrame(records, infer_schema_length=None)


def bench_minhash(texts: pl.Series, num_perm: int = 128, shingle: int = 5, threshold: float = 0.8) -> dict:
    """Seconds for signatures + LSH over the same texts: ours vs datasketch."""
    from datasketch import MinHash, MinHashLSH

    from filters.dedup import MinHashParams, NearDuplicateFinder

    t0 = time.perf_counter()
    finder = NearDuplicateFinder(MinHashParams(num_perm=num_perm, shingle=shingle, threshold=threshold))
    finder.add(texts)
    ours_dups = int((finder.representatives() != np.arange(len(texts))).sum())
    ours = time.perf_counter() - t0

    t0 = time.perf_counter()
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    base_dups = 0
    for i, text in enumerate(texts.to_list()):
        words = text.lower().split()
        grams = {" ".join(words[j : j + shingle]).encode() for j in range(max(1, len(words) - shingle + 1))}
        m = MinHash(num_perm=num_perm)
        m.update_batch(list(grams))
        base_dups += bool(lsh.query(m))
        lsh.insert(str(i), m)
    base = time.perf_counter() - t0
    return {
        "ours_s": ours,
        "datasketch_s": base,
        "ratio": base / ours,
        "ours_dups": ours_dups,
        "datasketch_dups": base_dups,
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM resets at exec; ru_maxrss on Linux keeps the parent's."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def filter_only(root: Path) -> int:
    """Run the filter on an existing run; print seconds, peak RSS and the report as one JSON line."""
    bench = DATA / "benchmarks"
    cfg = FilterConfig(
        benchmark_paths={
            "math500": bench / "math500_test.jsonl",
            "aime24": bench / "aime24_test.jsonl",
            "amc23": bench / "amc23_test.jsonl",
            "gsm8k": bench / "gsm8k_test.jsonl",
        },
        k=2,
    )
    t0, cpu0 = time.perf_counter(), time.process_time()
    report = apply_filters(cfg, RunDir(root))
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    peak = peak_rss_mb()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu,
                "peak_rss_mb": peak,
                "rows_kept": report.rows_kept,
                "rules": report.rules,
            }
        )
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--quick", action="store_true", help="5,000 rows")
    ap.add_argument("--minhash-rows", type=int, default=2000)
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    ap.add_argument("--filter-only", type=Path, help=argparse.SUPPRESS)  # the child process
    args = ap.parse_args(argv)
    if args.filter_only:
        return filter_only(args.filter_only)
    rows = 5000 if args.quick else args.rows

    t0 = time.perf_counter()
    frame = synthetic_frame(rows)
    mb = frame[schema.REASONING].str.len_bytes().sum() / 1e6
    build_s = time.perf_counter() - t0
    minhash = bench_minhash(frame[schema.REASONING].head(args.minhash_rows))
    with tempfile.TemporaryDirectory() as tmp:
        run = RunDir(Path(tmp) / "run").ensure()
        run.write_rows(frame)
        del frame
        # the filter runs in a fresh process, so its peak memory is its own, not the generator's
        child = subprocess.run(
            [sys.executable, "-m", "bench.filter_throughput", "--filter-only", str(run.root)],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(child.stdout.strip().splitlines()[-1])
    filter_s, peak_mb = result["seconds"], result["peak_rss_mb"]
    rate = rows / filter_s

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"python {sys.version.split()[0]}, polars {pl.__version__}"
    )
    print(f"{rows:,} synthetic traces, {mb:,.0f} MB of reasoning (built in {build_s:.1f}s)")
    print(f"{'measure':<34}{'value':>14}{'target':>14}")
    print(f"{'filter pass (all rules) s':<34}{filter_s:>14.1f}")
    print(f"{'  rows/s':<34}{rate:>14,.0f}{TARGET_ROWS_PER_S:>14,.0f}")
    print(f"{'  MB/s of reasoning':<34}{mb / filter_s:>14.1f}")
    print(f"{'  CPU seconds (all threads)':<34}{result['cpu_seconds']:>14.1f}")
    print(f"{'  load average (1 min) at the end':<34}{os.getloadavg()[0]:>14.1f}")
    print(f"{'  kept / rows':<34}{result['rows_kept']:>8,} / {rows:,}")
    print(f"{'  peak RSS of the filter process MB':<34}{peak_mb:>14,.0f}")
    n = args.minhash_rows
    print(f"{f'MinHash+LSH {n:,} traces: ours s':<34}{minhash['ours_s']:>14.2f}")
    print(f"{'  datasketch s (baseline)':<34}{minhash['datasketch_s']:>14.2f}")
    print(f"{'  ratio (datasketch / ours)':<34}{minhash['ratio']:>14.1f}{TARGET_MINHASH_RATIO:>14.1f}")
    print(
        f"{'  duplicates found ours / baseline':<34}{minhash['ours_dups']:>8} / {minhash['datasketch_dups']}"
    )
    print(f"rules: {result['rules']}")
    missed = rate < TARGET_ROWS_PER_S or minhash["ratio"] < TARGET_MINHASH_RATIO
    if args.check and missed:
        print("target missed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
