"""Helpers shared by the filter tests: real traces and benchmark problems from tests/data."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path


def traces(shared_data: Path, name: str) -> list[dict]:
    """Rows of a traces file, each with `responses` (the list of model outputs as strings)."""
    rows = []
    for line in (shared_data / "traces" / name).read_text().splitlines():
        row = json.loads(line)
        code = row["code"]
        row["responses"] = [str(c) for c in (code if isinstance(code, list) else [code])]
        rows.append(row)
    return rows


def change_number(text: str, rng: random.Random) -> str:
    nums = list(re.finditer(r"\d+", text))
    if not nums:
        return text + " Answer briefly."
    m = rng.choice(nums)
    return text[: m.start()] + str(int(m.group()) + rng.randint(1, 9)) + text[m.end() :]


def reorder_clauses(text: str, rng: random.Random) -> str:
    parts = re.split(r"(?<=[.?!])\s+", text)
    if len(parts) < 2:
        parts = text.split(", ")
        return ", ".join(parts[1:] + parts[:1]) if len(parts) > 1 else "Answer this: " + text
    return " ".join(parts[1:] + parts[:1])


def extra_whitespace(text: str, rng: random.Random) -> str:
    return "  ".join(text.split(" ")).replace("$", " $ ") + "\n\n"


EDITS = {
    "changed number": change_number,
    "reordered clause": reorder_clauses,
    "extra whitespace": extra_whitespace,
}
