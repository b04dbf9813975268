"""`distill view` on a big run: time to open, to page and to show a sample, against a naive viewer.

    python -m bench.view                          # 100,000 samples × 2,000 chars of reasoning (~0.2 GB)
    python -m bench.view --chars 20000 --check    # the issue's size: 100,000 samples, ~2 GB of text
    python -m bench.view --samples 5000 --quick   # a smoke run

Builds a synthetic run with every verdict and filter column (written by `RunDir.write_rows_stream`, so
shards and row groups are what the pipeline writes), then measures in the same process:

- open: `Viewer(RUN)` (reads the short columns into memory) plus the first samples page over HTTP,
  against the baseline `pl.read_parquet(data/all)` + filter + slice (what a notebook or a naive server does);
- paging: GET /samples with filters at random pages over real HTTP, against the baseline answering each
  page with `read_parquet` + filter + slice again (a server that keeps nothing between requests);
- one sample (GET /sample: its one row group is read) and a full-text search (no goal: a scan of all text).

Goals from the issue: open < 2 s, a page < 200 ms. `--check` exits 1 when either is missed.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import polars as pl

from distill import schema
from distill.run import RunDir
from distill.viewer import Viewer

OPEN_GOAL_S = 2.0
PAGE_GOAL_S = 0.2
SOURCES = ("numina-math", "openr1-code", "gsm8k-train")
REASONS = ("incorrect", "incomplete", "over_k", "near_duplicate_trace", "language", "contaminated")
FILTERS = (  # the pages a user clicks through: no filter, a rejection, a verdict with a range
    "",
    "keep=false&reject_reason=incorrect",
    "source=openr1-code&correct=true&pass_min=0.25&pass_max=0.75",
    "finish_reason=length&tok_min=1000",
)


def synthetic_frames(samples: int, chars: int, seed: int = 0, chunk: int = 2_000) -> Iterator[pl.DataFrame]:
    """`samples` rows in chunks, with ~`chars` characters of reasoning each."""
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"etaoinshrdlucmfwypvbgk", dtype="S1")
    vocab = np.array([b"".join(rng.choice(letters, size=k)).ljust(8) for k in rng.integers(1, 8, size=4096)])
    for start in range(0, samples, chunk):
        n = min(chunk, samples - start)
        ids = np.arange(start, start + n)
        # fresh random words per row (4,096-word vocabulary): compresses like text, never like repeats
        blob = vocab[rng.integers(0, len(vocab), size=n * (chars + 400) // 8 + 1)].tobytes().decode()
        offsets = np.arange(n) * (chars + 400)
        reasons = rng.choice(np.array([*REASONS, None], dtype=object), size=n, p=[0.1] * 6 + [0.4]).tolist()
        tokens = rng.integers(200, 4 * chars // 3 + 400, size=n)
        yield pl.DataFrame(
            {
                schema.PROMPT_ID: [f"{i // 4:016x}" for i in ids],
                schema.SAMPLE: ids % 4,
                schema.PROMPT: [
                    f"Problem {i // 4}: {blob[o : o + 300]}" for i, o in zip(ids, offsets, strict=True)
                ],
                schema.REASONING: [
                    f"{i} {blob[o + 400 : o + 400 + chars]}" for i, o in zip(ids, offsets, strict=True)
                ],
                schema.ANSWER_TEXT: [f"The answer is $\\boxed{{{i % 97}}}$." for i in ids],
                schema.SOURCE: rng.choice(SOURCES, size=n),
                schema.TEACHER: "deepseek-reasoner",
                schema.FINISH_REASON: rng.choice(["stop", "length"], size=n, p=[0.93, 0.07]),
                schema.COMPLETION_TOKENS: tokens,
                schema.MATH_VERIFIED: rng.random(n) < 0.7,
                schema.FORMAT_OK: rng.random(n) < 0.95,
                schema.COMPLETE: rng.random(n) < 0.93,
                schema.CORRECT: rng.random(n) < 0.7,
                schema.PASS_RATE: rng.integers(0, 5, size=n) / 4,
                schema.REJECT_REASON: reasons,
                schema.KEEP: [r is None for r in reasons],
                schema.LANGUAGE: rng.choice(["en", "zh"], size=n, p=[0.97, 0.03]),
                schema.CONTAMINATED_BY: [
                    f"math500:{i % 500}" if r == "contaminated" else None
                    for i, r in zip(ids, reasons, strict=True)
                ],
            }
        )


def build_run(root: Path, samples: int, chars: int) -> RunDir:
    run = RunDir(root).ensure()
    run.write_rows_stream(synthetic_frames(samples, chars), "all")
    return run


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=300) as response:
        assert response.status == 200, url
        return response.read()


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def naive_page(files: list[str], query: str, page: int, size: int = 50) -> pl.DataFrame:
    """The baseline: read everything, filter, slice (what answering a page without an index costs)."""
    frame = pl.read_parquet(files)
    expr = pl.lit(True)
    for part in filter(None, query.split("&")):
        key, value = part.split("=")
        if key in ("pass_min", "tok_min"):
            expr &= pl.col(schema.PASS_RATE if key == "pass_min" else schema.COMPLETION_TOKENS) >= float(
                value
            )
        elif key == "pass_max":
            expr &= pl.col(schema.PASS_RATE) <= float(value)
        elif value in ("true", "false"):
            expr &= pl.col(key) == (value == "true")
        else:
            expr &= pl.col(key) == value
    return frame.filter(expr).slice((page - 1) * size, size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--chars", type=int, default=2_000, help="characters of reasoning per sample")
    parser.add_argument("--pages", type=int, default=20, help="pages requested from the viewer")
    parser.add_argument("--baseline-pages", type=int, default=3, help="pages answered by the baseline")
    parser.add_argument("--run", type=Path, help="reuse (or build once into) this run folder")
    parser.add_argument("--quick", action="store_true", help="5,000 samples, 5 pages")
    parser.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args(argv)
    if args.quick:
        args.samples, args.pages = 5_000, 5
    with tempfile.TemporaryDirectory(prefix="bench-view-") as tmp:
        root = args.run or Path(tmp) / "run"
        if not RunDir(root).has_rows("all"):
            t = timed(lambda: build_run(root, args.samples, args.chars))
            print(f"built {root} in {t:.0f}s", file=sys.stderr)
        files = [str(p) for p in RunDir(root).shard_files("all")]
        on_disk = sum(os.path.getsize(f) for f in files)
        text_mb = (
            pl.scan_parquet(files).select(pl.col(schema.REASONING).str.len_bytes().sum()).collect().item()
            / 1e6
        )
        return measure(root, files, on_disk, text_mb, args)


def measure(root: Path, files: list[str], on_disk: int, text_mb: float, args: argparse.Namespace) -> int:
    rng = random.Random(0)
    start = time.perf_counter()
    viewer = Viewer(root, port=0).start()
    fetch(viewer.url + "samples")
    open_s = time.perf_counter() - start
    open_base = timed(lambda: naive_page(files, "", 1))
    rows = viewer.pages.source.size

    def page_url(query: str) -> str:  # a page past the end shows the last one (with a notice)
        return f"{viewer.url}samples?{query}&page={rng.randint(1, 200)}"

    with viewer:
        page_s = [timed(lambda q=FILTERS[i % len(FILTERS)]: fetch(page_url(q))) for i in range(args.pages)]
        base_s = [
            timed(lambda q=FILTERS[i % len(FILTERS)]: naive_page(files, q, rng.randint(1, 200)))
            for i in range(args.baseline_pages)
        ]
        ids = viewer.pages.source.index.sample(5, seed=1)
        sample_s = [
            timed(lambda p=p, s=s: fetch(f"{viewer.url}sample?id={p}&s={s}"))
            for p, s in ids.select(schema.PROMPT_ID, schema.SAMPLE).iter_rows()
        ]
        search_s = timed(lambda: fetch(viewer.url + "samples?q=Problem+123%3A"))
        index_mb = viewer.pages.source.index.estimated_size() / 1e6
    page_med, base_med = statistics.median(page_s), statistics.median(base_s)
    print(
        f"\n## distill view: {rows:,} samples, {text_mb:,.0f} MB of reasoning, {on_disk / 1e6:,.0f} MB of Parquet "
        f"in {len(files)} shard(s)"
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
        f"Python {platform.python_version()}, polars {pl.__version__}\n"
    )
    print("| measure | distill view | baseline (read_parquet + filter + slice) | ratio | goal |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| open (index + first page) | {open_s:.2f} s | {open_base:.2f} s | {open_base / open_s:.1f}× "
        f"| < {OPEN_GOAL_S:.0f} s |"
    )
    print(
        f"| a filtered page, median of {len(page_s)} (max {max(page_s) * 1e3:.0f} ms) | {page_med * 1e3:.0f} ms "
        f"| {base_med * 1e3:.0f} ms | {base_med / page_med:.0f}× | < {PAGE_GOAL_S * 1e3:.0f} ms |"
    )
    print(
        f"| one sample page, median of {len(sample_s)} | {statistics.median(sample_s) * 1e3:.0f} ms | | | |"
    )
    print(f"| full-text search (prompt, reasoning, answer) | {search_s:.2f} s | | | |")
    print(f"| index held in memory | {index_mb:.0f} MB | | | |")
    missed = open_s >= OPEN_GOAL_S or page_med >= PAGE_GOAL_S
    if args.check and missed:
        print("goal missed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
