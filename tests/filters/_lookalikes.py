"""Rebuild tests/data/decontam/lookalikes.jsonl from reworded.jsonl and the benchmark originals (by hand).

    python -m tests.filters._lookalikes [BENCHMARK_DIR]     # default: the unpacked tests/data/benchmarks

Every look-alike keeps a text's template word for word and changes EVERY number in it (digit runs
and the number words two..twelve, twenty), so it is a sibling problem with another answer: the kind
of template neighbour that must not be flagged. Two look-alikes per reworded item: one made from
the benchmark original, one from our rewording. Items whose text has no number are skipped.
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1] / "data" / "decontam"
WORDS = ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "twenty"]
NUMBER = re.compile(r"\d+|\b(?:" + "|".join(WORDS) + r")\b", re.IGNORECASE)
FILES = {
    "math500": "math500_test.jsonl",
    "gsm8k": "gsm8k_test.jsonl",
    "aime24": "aime24_test.jsonl",
    "aime25": "aime25_test.json",
}


def change_numbers(text: str, rng: random.Random) -> tuple[str, int]:
    """Every number replaced by a different one of about the same size; also returns how many changed."""
    count = 0

    def swap(m: re.Match[str]) -> str:
        nonlocal count
        count += 1
        old = m.group(0)
        if old.isdigit():
            value = int(old)
            new = value + rng.choice([-1, 1]) * rng.randint(1, max(2, value // 3))
            return str(new if new > 0 and new != value else value + rng.randint(1, 9))
        word = rng.choice([w for w in WORDS if w != old.lower()])
        return word.capitalize() if old[0].isupper() else word

    return NUMBER.sub(swap, text), count


def main(benchmark_dir: Path) -> None:
    from distill.evaluation.benchmarks import load_benchmark

    originals = {
        name: dict(zip(b.rows["id"], b.rows["problem"], strict=True))
        for name, b in ((n, load_benchmark(n, benchmark_dir / f)) for n, f in FILES.items())
    }
    rng = random.Random(18)
    out = []
    for line in (HERE / "reworded.jsonl").read_text().splitlines():
        item = json.loads(line)
        for source, text in (
            ("original", originals[item["benchmark"]][item["id"]]),
            ("reworded", item["text"]),
        ):
            changed, count = change_numbers(text, rng)
            if count:
                out.append({**item, "text": changed, "answer": None, "made_from": source})
    (HERE / "lookalikes.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out))


if __name__ == "__main__":
    from tests.datafiles import data_dir

    main(Path(sys.argv[1]) if len(sys.argv) > 1 else data_dir() / "benchmarks")
