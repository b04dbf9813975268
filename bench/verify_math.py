"""Math verification throughput on the real traces: our stage vs a plain math_verify.verify loop.

    python -m bench.verify_math --quick          # 400 rows, < 1 min
    python -m bench.verify_math                  # every response in tests/data/traces (1,672)
    python -m bench.verify_math --check          # exit 1 below 1.8x or with any row over its limit

Baseline: one process, `verify(parse(gold), parse(response_after_thoughts))` per row, the way most
scripts use math-verify. Ours: `distill.verification.stage.verify_frame` (math only) on the same rows, first with
every core, including the start of its worker pool (the headline ratio), then with one worker from
the already started pool. Both see the same gold ($-wrapped) and the same answer text. Ours verifies
each distinct (gold, last boxed answer) once per run: samples of one prompt often agree.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import sys
import time

import polars as pl

from distill import schema
from distill.reasoning import normalise
from distill.verification.stage import VerifyConfig, build_report, verify_frame
from tests.datafiles import data_dir

DATA = data_dir()  # tests/data unpacked, or $DISTILL_TEST_DATA (a fuller copy, same layout)
TARGET = 1.8


def trace_rows() -> pl.DataFrame:
    """One row per response in traces/: the answer after the thoughts and the gold answer."""
    rows = []
    for path in sorted((DATA / "traces").glob("*.jsonl")):
        for i, line in enumerate(path.read_text().splitlines()):
            item = json.loads(line)
            codes = item["code"] if isinstance(item["code"], list) else ast.literal_eval(item["code"])
            gold = item.get("answer") if item.get("answer") is not None else item.get("gt")
            for j, code in enumerate(codes):
                rows.append(
                    {
                        schema.PROMPT_ID: f"{path.stem}-{i}",
                        schema.SAMPLE: j,
                        schema.SOURCE: path.stem,
                        schema.ANSWER_TEXT: normalise(code).answer_text,
                        "answer": str(gold),
                    }
                )
    return pl.DataFrame(rows)


def baseline(frame: pl.DataFrame) -> tuple[float, list[bool], float]:
    from math_verify import parse, verify

    verdicts, slowest = [], 0.0
    start = time.perf_counter()
    for answer, gold in zip(frame[schema.ANSWER_TEXT], frame["answer"], strict=True):
        t = time.perf_counter()
        verdicts.append(bool(verify(parse(f"${gold}$"), parse(answer))))
        slowest = max(slowest, time.perf_counter() - t)
    return time.perf_counter() - start, verdicts, slowest


def _spin(n: int = 6_000_000) -> float:
    start = time.perf_counter()
    x = 0
    for i in range(n):
        x += i
    return time.perf_counter() - start


def parallel_capacity(workers: int) -> float:
    """How many cores' worth of pure-Python work this machine gives `workers` processes right now."""
    import multiprocessing as mp

    alone = _spin()
    with mp.get_context("forkserver").Pool(workers) as pool:
        together = max(pool.map(_spin, [6_000_000] * workers))
    return workers * alone / together


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="400 rows: whole prompts spread over every file")
    parser.add_argument("--rows", type=int, default=None, help="use this many rows")
    parser.add_argument("--workers", type=int, default=None, help="pool size (default: every core)")
    parser.add_argument("--check", action="store_true", help=f"exit 1 below {TARGET}x or on any timeout")
    args = parser.parse_args(argv)

    frame = trace_rows()
    n = 400 if args.quick else args.rows or frame.height
    if n < frame.height:  # whole prompts (all their samples), spread over every file
        prompts = frame[schema.PROMPT_ID].unique(maintain_order=True)
        keep = prompts.gather_every(max(1, int(len(prompts) * frame.height / n / len(prompts)) or 1))
        frame = frame.filter(pl.col(schema.PROMPT_ID).is_in(keep.implode())).head(n)
    cfg = VerifyConfig(format=False, workers=args.workers)

    from filters._pool import default_workers

    workers = args.workers or default_workers()
    capacity = parallel_capacity(workers)
    base_s, base_verdicts, base_slowest = baseline(frame)
    start = time.perf_counter()  # first: this one pays the pool's fork-server start (import, warm-up)
    ours = verify_frame(cfg, frame)
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    one = verify_frame(cfg.model_copy(update={"workers": 1}), frame)
    one_s = time.perf_counter() - start
    assert one[schema.MATH_VERIFIED].to_list() == ours[schema.MATH_VERIFIED].to_list()
    counts = build_report(ours).counts["math"]
    ours_verdicts = ours[schema.MATH_VERIFIED].fill_null(False).to_list()
    differ = sum(a != b for a, b in zip(base_verdicts, ours_verdicts, strict=True))

    ratio = base_s / ours_s
    cpu = platform.processor() or platform.machine()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"machine: {os.cpu_count()} cores ({cpu}), Python {sys.version.split()[0]}, {platform.system()}; "
        f"load average {load} (shared with other jobs while measured)"
    )
    print(f"{'':26}{'rows':>7}{'seconds':>10}{'rows/s':>10}")
    print(f"{'math_verify loop (1 proc)':26}{frame.height:>7}{base_s:>10.2f}{frame.height / base_s:>10.1f}")
    print(f"{f'distill, {workers} workers':26}{frame.height:>7}{ours_s:>10.2f}{frame.height / ours_s:>10.1f}")
    print(f"{'distill, 1 worker (warm)':26}{frame.height:>7}{one_s:>10.2f}{frame.height / one_s:>10.1f}")
    print(
        f"parallel capacity right now: {capacity:.2f} of {workers} cores for {workers} CPU-bound processes "
        f"(1.0 = a second process adds nothing); 1-worker ratio {base_s / one_s:.2f}x"
    )
    print(
        f"ratio {ratio:.2f}x (target >= {TARGET}x); ours: {counts}; baseline slowest row {base_slowest:.2f}s; "
        f"verdicts differing from the plain loop: {differ} (no partial parse counts as equal, false-positive "
        "guard, boxed-first parsing, cut-off responses, respellings: tests/data/verify/adjudication.jsonl)"
    )
    ok = ratio >= TARGET and counts["timeout"] == 0
    if args.check and not ok:
        print("FAILED: below target or a row hit its time limit", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
