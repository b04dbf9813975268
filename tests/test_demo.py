"""The offline demo: its teacher's replies have every flaw the stages must catch, and the whole demo
recipe runs end to end on the CPU (the full `distill run recipes/demo.yaml` also runs in .ci/run)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from distill import schema
from distill.demo import BENCHMARK_ITEMS, EVAL_PROBLEMS, PROBLEMS
from distill.demo.teacher import DemoTeacher, load_problems, wrong_answer
from distill.errors import ConfigError
from distill.evaluation.benchmarks import load_benchmark
from distill.testing.local_server import TeacherServer

ROOT = Path(__file__).resolve().parents[1]


def _kind(problem, reply) -> str:
    if reply.finish_reason == "length":
        return "truncated"
    if "中文" in (reply.reasoning or ""):
        return "drift"
    return "correct" if f"\\boxed{{{problem.answer}}}" in reply.content else "wrong"


def test_demo_teacher_mixes_every_flaw_deterministically():
    teacher = DemoTeacher()
    kinds: Counter[str] = Counter()
    texts: Counter[str] = Counter()
    for p in teacher.problems:
        for s in range(4):
            reply = teacher.reply(p, f"0:{s}:0")
            kinds[_kind(p, reply)] += 1
            texts[reply.reasoning or reply.content] += 1
            assert reply == teacher.reply(p, f"0:{s}:0")  # fixed per (problem, sample)
    total = sum(kinds.values())
    assert kinds["correct"] > total / 2
    assert all(kinds[k] > 0 for k in ("wrong", "truncated", "drift"))
    assert sum(n - 1 for n in texts.values() if n > 1) > 0  # word-for-word duplicates


def test_demo_teacher_answers_through_the_server():
    problem = load_problems()[0]
    with TeacherServer(DemoTeacher(), reasoning_field="inline") as server:
        import urllib.request

        body = json.dumps(
            {
                "model": "demo",
                "n": 3,
                "seed": 7,
                "messages": [{"role": "user", "content": f"{problem.problem}\nPlease reason step by step."}],
            }
        ).encode()
        request = urllib.request.Request(
            f"{server.base_url}/chat/completions", body, {"Content-Type": "application/json"}
        )
        reply = json.loads(urllib.request.urlopen(request, timeout=10).read())
    contents = [c["message"]["content"] for c in reply["choices"]]
    assert all(c.startswith("<think>\n") for c in contents)
    assert any("</think>" in c and "\\boxed{" in c for c in contents)


def test_shipped_files_are_consistent():
    problems = load_problems(PROBLEMS)
    assert 40 <= len(problems) <= 60 and len({p.id for p in problems}) == len(problems)
    assert all(p.answer and p.steps for p in problems)
    from filters.decontam_semantic import SemanticIndex, find_semantic_matches

    originals = [load_benchmark(name, path) for name, path in BENCHMARK_ITEMS.items()]
    index = SemanticIndex.build(
        pl.concat(
            [
                b.rows.select(pl.lit(b.spec.name).alias("benchmark"), "id", "problem", "answer")
                for b in originals
            ]
        )
    )
    found = find_semantic_matches(pl.Series([p.problem for p in problems]), index).item
    assert sorted(index.label(int(i)) for i in found if i >= 0) == sorted(
        f"{b.spec.name}:{b.rows['id'][0]}" for b in originals
    )  # the two reworded benchmark items (same numbers) decontamination must catch
    assert max(_overlap(p.problem, o.rows["problem"][0]) for p in problems for o in originals) < 0.9
    assert pl.read_ndjson(EVAL_PROBLEMS).height >= 3
    assert wrong_answer("\\frac{7}{20}", 0) == "\\frac{20}{7}" and wrong_answer("12", 1) != "12"


def _overlap(a: str, b: str) -> float:
    wa, wb = set(a.lower().split()), set(b.lower().split())
    return len(wa & wb) / max(1, len(wa | wb))


@pytest.mark.slow
def test_demo_recipe_runs_every_stage(tmp_path):
    """The demo recipe, end to end: each stage visibly does its job, and a rerun skips everything."""
    from distill.demo.wiring import DemoServices
    from distill.pipeline.run import run_pipeline
    from distill.recipe import load_recipe
    from distill.run import RunDir

    recipe = load_recipe(
        ROOT / "recipes" / "demo.yaml", [f"run_dir={tmp_path / 'demo'}", "sft.max_steps=2", "eval.limit=2"]
    )
    report = run_pipeline(recipe, services=DemoServices())
    assert [r.stage for r in report.results if r.status == "ran"] == list(recipe.stages)
    run = RunDir(tmp_path / "demo")
    rows = run.read("all")
    assert rows[schema.FINISH_REASON].to_list().count("length") > 0
    assert rows.filter(pl.col(schema.CORRECT) == False).height > 0  # noqa: E712 - polars expression
    reasons = Counter(rows[schema.REJECT_REASON].drop_nulls().to_list())
    assert len(reasons) >= 3, reasons  # wrong/truncated/duplicate/language/contamination rejections
    assert rows[schema.CONTAMINATED_BY].drop_nulls().len() > 0
    assert 0 < run.read("sft").height < rows.height
    assert {"dataset", "card", "plots", "checkpoint", "eval"} <= set(report.outputs)
    assert all(r.status == "skipped" for r in run_pipeline(recipe, services=DemoServices()).results)
    with pytest.raises(ConfigError, match="demo.*services="):  # the pipeline itself knows no demo
        run_pipeline(recipe)
