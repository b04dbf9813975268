"""The offline demo: shipped problems, a built-in teacher that answers them, and a tiny student server.

problems.jsonl    52 simple math word problems with gold answers (written for this demo; two of
                  them are reworded MATH-500 / GSM8K items, same numbers, so decontamination visibly fires)
eval.jsonl        4 held-out problems (GSM8K format) the tiny student is evaluated on unless
                  the recipe's demo.benchmarks_dir names a folder with gsm8k_test.jsonl
benchmark_math500.jsonl, benchmark_gsm8k.jsonl
                  the two original benchmark items (MATH-500 test/algebra/2214.json and GSM8K
                  test row 0, both MIT licensed), used for decontamination unless demo.benchmarks_dir
                  names a folder with math500_test.jsonl and gsm8k_test.jsonl
"""

from __future__ import annotations

from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parent
PROBLEMS = DEMO_DIR / "problems.jsonl"
EVAL_PROBLEMS = DEMO_DIR / "eval.jsonl"
BENCHMARK_ITEMS = {
    "math500": DEMO_DIR / "benchmark_math500.jsonl",
    "gsm8k": DEMO_DIR / "benchmark_gsm8k.jsonl",
}

__all__ = ["BENCHMARK_ITEMS", "DEMO_DIR", "EVAL_PROBLEMS", "PROBLEMS"]
