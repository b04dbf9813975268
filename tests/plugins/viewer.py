"""Runs for the viewer's tests: the demo's real run, and a copy whose model text attacks the page.

The demo run is built once per session by the real CLI (`distill run recipes/demo.yaml`, offline, ~20 s
on 2 cores). The hostile run takes the demo's rows and plants script tags, event handlers and
`javascript:` links in the prompt, reasoning, answer, code and a filter verdict, plus a near-duplicate
pair and a contamination match against the demo's own GSM8K copy (distill/demo/benchmark_gsm8k.jsonl).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from distill import schema
from distill.run import RunDir
from filters.code import CodeVerdict, TestResult

ROOT = Path(__file__).resolve().parents[2]
GSM8K = ROOT / "distill" / "demo" / "benchmark_gsm8k.jsonl"

SCRIPT = "<script>window.__pwned = 1</script>"
IMG = '<img src=x onerror="window.__pwned = 2">'
JS_LINK = '<a href="javascript:window.__pwned = 3">click me</a> [md link](javascript:window.__pwned=4)'
KATEX_LINK = r"$\href{javascript:window.__pwned=5}{x}$"
HOSTILE_REASON = '<img src=x onerror="window.__pwned = 6">'
MATH = r"So $x^2 + \frac{1}{2} = 3$ and \(\sqrt{16} = 4\)."
CODE = 'def f():\n    return "<script>window.__pwned = 7</script>"\n'
HOSTILE_PROMPT = f"What is 2+2? </textarea></title>{SCRIPT}\n{MATH}"
HOSTILE_REASONING = (
    f"Let me think.\n{IMG}\n{MATH}\n{JS_LINK}\n{KATEX_LINK}\n" + "The shared words repeat here. " * 5
)
HOSTILE_ANSWER = f"Here is code:\n```python\n{CODE}```\nThe answer is $\\boxed{{4}}$. {SCRIPT}"
# What the code verifier writes to code_results (its own serialiser), with markup in a name and a detail.
CODE_RESULTS = CodeVerdict(
    ok=False,
    kind="wrong_answer",
    tests=(
        TestResult("test_one", "passed"),
        TestResult("<b>test_two</b>", "wrong_answer", "expected 4 <script>x</script>"),
    ),
    isolation="bwrap",
).results_json()


def build_demo_run(out: Path) -> Path:
    """`distill run recipes/demo.yaml --out OUT` through the real CLI; returns OUT."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "distill.cli",
            "run",
            str(ROOT / "recipes" / "demo.yaml"),
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"browse     distill view {out}" in done.stdout  # the summary says how to look at the run
    return out


def build_hostile_run(demo: Path, out: Path) -> Path:
    """The demo's rows with attacks planted in the first three samples (see the module docstring)."""
    import polars as pl
    import yaml

    frame = RunDir(demo).read("all")
    first, second, third = (frame.row(i, named=True) for i in range(3))
    edits = {
        (first[schema.PROMPT_ID], first[schema.SAMPLE]): {
            schema.PROMPT: HOSTILE_PROMPT,
            schema.REASONING: HOSTILE_REASONING,
            schema.ANSWER_TEXT: HOSTILE_ANSWER,
            schema.CODE_RESULTS: CODE_RESULTS,
            schema.CODE_VERIFIED: False,
            schema.KEEP: False,
            schema.REJECT_REASON: HOSTILE_REASON,
        },
        (second[schema.PROMPT_ID], second[schema.SAMPLE]): {
            schema.REASONING: HOSTILE_REASONING.replace("Let me think.", "Let me think again."),
            schema.ANSWER_TEXT: HOSTILE_ANSWER,
            schema.KEEP: False,
            schema.REJECT_REASON: "near_duplicate_trace",
            schema.DUP_OF: f"{first[schema.PROMPT_ID]}/{first[schema.SAMPLE]}",
        },
        (third[schema.PROMPT_ID], third[schema.SAMPLE]): {
            schema.PROMPT: "Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning "
            f"and bakes muffins for her friends every day with four. {SCRIPT}",
            schema.KEEP: False,
            schema.REJECT_REASON: "contaminated",
            schema.CONTAMINATED_BY: "gsm8k:0",
        },
    }
    rows = []
    for row in frame.iter_rows(named=True):
        rows.append({**row, **edits.get((row[schema.PROMPT_ID], row[schema.SAMPLE]), {})})
    run = RunDir(out).ensure()
    run.write_rows(pl.DataFrame(rows, schema=frame.schema), "all")
    settings = yaml.safe_load(RunDir(demo).run_yaml.read_text())
    settings["filter"]["benchmark_paths"] = {"gsm8k": str(GSM8K)}
    run.write_text(run.run_yaml, yaml.safe_dump(settings))
    shutil.copy(RunDir(demo).stats, run.stats)
    for plot in RunDir(demo).plots.glob("*.png"):
        shutil.copy(plot, run.plots / plot.name)
    return out


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under `root` with its size and mtime (ns): the read-only check compares two of these."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_demo_run(tmp_path_factory.mktemp("viewer") / "demo")


@pytest.fixture(scope="session")
def hostile_run(demo_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_hostile_run(demo_run, tmp_path_factory.mktemp("viewer") / "hostile")


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    """Debian's headless Chromium driven by Playwright (no `playwright install`: the system browser)."""
    from playwright.sync_api import sync_playwright

    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail(
            "chromium is not installed: apt-get update && apt-get install -y chromium (.ci/run does this)"
        )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, headless=True)
        yield browser
        browser.close()
