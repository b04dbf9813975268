"""`distill run`: stage order, skip/rerun logic, resume after Ctrl-C, verification in the loop, dry run,
and bad input. The stages are small fakes passed through `Stages` (no monkeypatching)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from distill import schema
from distill.errors import ConfigError, StageError, TeacherError
from distill.generation.sampling import more_samples_needed
from distill.pipeline.run import Stages, run_pipeline
from distill.recipe import load_recipe
from distill.run import RunDir

# The fake teacher is right on prompt i with probability RATES[i % 4] (decided by a hash per sample).
RATES = (1.0, 0.5, 0.2, 0.0)


def _unit(*parts: object) -> float:
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:8], 16) / 2**32


class Fakes:
    """Stage functions that really read and write the run directory, and count their calls."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.interrupt_at: str | None = None
        self.asked: list[dict[str, int]] = []

    def stages(self) -> Stages:
        return Stages(
            generate=self.generate,
            verify=self.verify,
            verify_frame=self.verify_frame,
            apply_filters=self.apply_filters,
            build_dataset=self.build_dataset,
            write_card=self.write_card,
            push=self.push,
            sft=self.sft,
            evaluate=self.evaluate,
            probe_teacher=lambda cfg: None,
        )

    def _called(self, name: str) -> None:
        self.calls[name] += 1
        if self.interrupt_at == name:
            raise KeyboardInterrupt

    def generate(self, cfg, run: RunDir, *, teacher=None, progress=None, n_per_prompt=None):
        self._called("generate")
        self.asked.append(dict(n_per_prompt or {}))
        prompts = [json.loads(line) for line in Path(cfg.prompts).read_text().splitlines()]
        have = run.read("all") if run.has_rows("all") else None
        rows = [] if have is None else have.to_dicts()
        done = {(r[schema.PROMPT_ID], r[schema.SAMPLE]) for r in rows}
        for i, p in enumerate(prompts):
            pid = f"p{i}"
            for s in range((n_per_prompt or {}).get(pid, cfg.n)):
                if (pid, s) in done:
                    continue
                right = _unit(pid, s) < RATES[i % 4]
                rows.append(
                    {
                        schema.PROMPT_ID: pid,
                        schema.SAMPLE: s,
                        "problem": p["problem"],
                        "answer": p["answer"],
                        schema.ANSWER_TEXT: p["answer"] if right else "wrong",
                        schema.ERROR: None,
                        schema.FINISH_REASON: "stop",
                        schema.PROMPT_TOKENS: 10,
                        schema.COMPLETION_TOKENS: 100,
                    }
                )
        run.write_rows(pl.DataFrame(rows).sort(schema.KEY))

    def verify_frame(self, cfg, frame: pl.DataFrame) -> pl.DataFrame:
        self.calls["verify_frame"] += 1
        self.calls["verified_rows"] += frame.height
        return frame.with_columns((pl.col(schema.ANSWER_TEXT) == pl.col("answer")).alias(schema.CORRECT))

    def verify(self, cfg, run: RunDir, *, progress=None):
        self._called("verify")
        run.update_rows(self.verify_frame(cfg, run.read("all")).select(*schema.KEY, schema.CORRECT))

    def apply_filters(self, cfg, run: RunDir, *, progress=None):
        self._called("filter")
        run.update_rows(run.read("all").select(*schema.KEY, pl.col(schema.CORRECT).alias(schema.KEEP)))

    def build_dataset(self, run: RunDir, cfg=None):
        self._called("build_dataset")
        run.write_rows(run.read("all").filter(pl.col(schema.KEEP)), "sft")

    def write_card(self, cfg, run: RunDir) -> Path:
        self._called("card")
        return run.write_text(run.card, "# card\n")

    def push(self, cfg, run: RunDir, card=None):
        self._called("push")

    def sft(self, cfg, *, dataset=None, output_dir=None, dry_run=False):
        self._called("sft")
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        (Path(output_dir) / "config.json").write_text("{}")

    def evaluate(self, cfg, out: Path, *, progress=None):
        self._called("eval")
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text("{}")


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text(
        "".join(json.dumps({"problem": f"What is {i} + {i}?", "answer": str(2 * i)}) + "\n" for i in range(8))
    )
    return path


def _recipe(tmp_path: Path, prompts: Path, *overrides: str, sft: bool = True):
    text = {"run_dir": str(tmp_path / "run"), "generate": {"prompts": str(prompts), "n": 2}}
    if sft:
        text |= {
            "sft": {"model": "tiny", "max_steps": 2},
            "eval": {"model": "student", "benchmarks": ["gsm8k"]},
        }
    path = tmp_path / "recipe.yaml"
    path.write_text(json.dumps(text))
    return load_recipe(path, list(overrides))


def _ran(report) -> list[str]:
    return [r.stage for r in report.results if r.status == "ran"]


def test_runs_every_stage_once_then_skips_what_is_done(tmp_path, prompts):
    fakes = Fakes()
    recipe = _recipe(tmp_path, prompts)
    first = run_pipeline(recipe, functions=fakes.stages())
    assert _ran(first) == ["generate", "verify", "filter", "card", "sft", "eval"]  # no push section
    assert {"dataset", "card", "checkpoint", "eval"} <= set(first.outputs)
    assert (tmp_path / "run" / "student" / "config.json").exists()

    again = run_pipeline(recipe, functions=fakes.stages())
    assert _ran(again) == []
    assert all(r.status == "skipped" for r in again.results)
    assert fakes.calls["generate"] == 1 and fakes.calls["eval"] == 1


def test_changed_settings_rerun_only_that_stage_and_downstream(tmp_path, prompts):
    fakes = Fakes()
    run_pipeline(_recipe(tmp_path, prompts), functions=fakes.stages())
    report = run_pipeline(_recipe(tmp_path, prompts, "sft.learning_rate=0.5"), functions=fakes.stages())
    assert _ran(report) == ["sft", "eval"]
    report = run_pipeline(_recipe(tmp_path, prompts, "card.license=mit"), functions=fakes.stages())
    assert _ran(report) == ["card", "sft", "eval"]
    assert fakes.calls["generate"] == 1 and fakes.calls["verify"] == 1


def test_ctrl_c_then_the_same_command_continues(tmp_path, prompts):
    fakes = Fakes()
    fakes.interrupt_at = "sft"
    recipe = _recipe(tmp_path, prompts)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(recipe, functions=fakes.stages())
    fakes.interrupt_at = None
    report = run_pipeline(recipe, functions=fakes.stages())
    assert _ran(report) == ["sft", "eval"]
    assert fakes.calls["generate"] == 1


def test_a_stage_whose_input_has_not_run_is_a_one_line_error(tmp_path, prompts):
    recipe = _recipe(tmp_path, prompts)
    with pytest.raises(StageError, match=r"stage sft needs stage card, which has not run"):
        run_pipeline(recipe, stages=["sft"], functions=Fakes().stages())
    fakes = Fakes()
    run_pipeline(recipe, stages=["generate", "verify", "filter", "card"], functions=fakes.stages())
    assert _ran(run_pipeline(recipe, stages=["sft"], functions=fakes.stages())) == ["sft"]
    # card ran with other settings: asked for sft alone, it trains on what is there (with a warning)
    report = run_pipeline(
        _recipe(tmp_path, prompts, "card.license=mit"), stages=["sft"], functions=fakes.stages()
    )
    assert _ran(report) == ["sft"] and fakes.calls["card"] == 1


def test_data_made_outside_the_pipeline_can_be_continued(tmp_path, prompts):
    """`distill generate` shards + `distill merge` leave data/all without our record: verify may still run."""
    fakes = Fakes()
    recipe = _recipe(tmp_path, prompts, sft=False)
    fakes.generate(recipe.generate, RunDir(recipe.run_dir))
    report = run_pipeline(recipe, stages=["verify", "filter", "card"], functions=fakes.stages())
    assert _ran(report) == ["verify", "filter", "card"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("generate.temprature=0.7", r"generate\.temprature: unknown key"),
        ("until_correct=many", r"until_correct: Input should be a valid integer"),
        ("max_samples=4", r"max_samples: .*needs until_correct"),
        ("stages=[verify,generate]", r"stages: .*pipeline order"),
    ],
)
def test_bad_recipe_is_one_line_naming_the_key(tmp_path, prompts, override, message):
    with pytest.raises(ConfigError, match=message) as err:
        _recipe(tmp_path, prompts, override)
    assert "\n" not in str(err.value)


def test_missing_prompts_and_unknown_stage_fail_before_any_work(tmp_path, prompts):
    fakes = Fakes()
    recipe = _recipe(tmp_path, prompts, f"generate.prompts={tmp_path / 'nope.jsonl'}")
    with pytest.raises(ConfigError, match=r"generate\.prompts: .*nope\.jsonl does not exist"):
        run_pipeline(recipe, functions=fakes.stages())
    with pytest.raises(ConfigError, match=r"unknown stage 'train'"):
        run_pipeline(_recipe(tmp_path, prompts), stages=["train"], functions=fakes.stages())
    with pytest.raises(ConfigError, match=r"stage push: the recipe has no `push` section"):
        run_pipeline(_recipe(tmp_path, prompts), stages=["push"], functions=fakes.stages())
    assert not fakes.calls and not (tmp_path / "run").exists()


def test_unreachable_teacher_fails_before_any_work(tmp_path, prompts):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    recipe = _recipe(tmp_path, prompts, f'generate.base_url=["http://127.0.0.1:{port}/v1"]')
    fakes = Fakes()
    stages = fakes.stages()
    stages.probe_teacher = Stages().probe_teacher  # the real probe
    with pytest.raises(TeacherError, match=rf"127\.0\.0\.1:{port}"):
        run_pipeline(recipe, functions=stages)
    assert not fakes.calls and not (tmp_path / "run").exists()


def test_sampling_until_correct_spends_where_needed(tmp_path, prompts):
    fakes = Fakes()
    recipe = _recipe(tmp_path, prompts, "until_correct=2", "max_samples=12", sft=False)
    report = run_pipeline(recipe, stages=["generate"], functions=fakes.stages())
    rows = RunDir(tmp_path / "run").read("all")
    per = {r[schema.PROMPT_ID]: r["len"] for r in rows.group_by(schema.PROMPT_ID).len().iter_rows(named=True)}
    assert per["p0"] == 2 and per["p4"] == 2  # always right: the first round's n=2 is enough
    assert per["p3"] == 12 and per["p7"] == 12  # never right: the whole budget, not more
    assert 2 < per["p2"] <= 12
    assert fakes.calls["verified_rows"] == rows.height  # each sample verified once across rounds
    stats = RunDir(tmp_path / "run").read_json(RunDir(tmp_path / "run").stats)["sampling"]
    assert stats["exhausted"] == 2 and stats["reached"] + stats["exhausted"] == 8
    assert "rounds" in report.results[0].summary


def test_more_samples_needed_follows_the_pass_rate():
    assert more_samples_needed(4, 4, 2, 16) == 0  # enough correct
    assert more_samples_needed(16, 0, 2, 16) == 0  # budget spent
    assert more_samples_needed(4, 1, 2, 16) == 4  # right 1 in 4: about 4 more for the one missing
    assert more_samples_needed(4, 0, 2, 8) == 4  # never right yet: capped by what is left


def test_dry_run_plans_without_writing(tmp_path, prompts):
    fakes = Fakes()
    recipe = _recipe(
        tmp_path, prompts, "until_correct=2", "max_samples=8", "generate.prices.output_per_million=2"
    )
    report = run_pipeline(recipe, dry_run=True, functions=fakes.stages())
    plan = report.plan
    assert plan.prompts == 8 and plan.samples_min == 16 and plan.samples_max == 64
    assert plan.pilot is not None and plan.pilot.samples == 3 and plan.pilot.completion_tokens == 100
    assert 16 <= plan.samples_expected <= 64
    assert plan.cost_usd == pytest.approx(plan.samples_expected * 100 * 2 / 1e6)
    assert dict(plan.stages)["generate"] == "will run"
    assert not (tmp_path / "run").exists()
    text = "\n".join(plan.lines())
    assert "prompts        8" in text and "pilot" in text

    run_pipeline(recipe, stages=["generate", "verify"], functions=fakes.stages())
    plan = run_pipeline(recipe, dry_run=True, functions=fakes.stages()).plan
    assert dict(plan.stages)["generate"].startswith("done with these settings")
    assert dict(plan.stages)["filter"] == "will run"
    assert "data/all" in plan.existing


def test_template_hub_target_and_token_are_checked_before_any_work(tmp_path, prompts):
    from distill.errors import HubError

    fakes = Fakes()
    with pytest.raises(ConfigError, match=r"generate\.template: nope\.txt not found"):
        run_pipeline(_recipe(tmp_path, prompts, "generate.template=nope.txt"), functions=fakes.stages())
    with pytest.raises(ConfigError, match=r"push\.repo"):
        run_pipeline(_recipe(tmp_path, prompts, "push.repo=not a repo!"), functions=fakes.stages())
    with pytest.raises(HubError, match=r"stage push: no Hugging Face token"):
        run_pipeline(_recipe(tmp_path, prompts, "push.repo=org/name"), functions=fakes.stages())
    assert not fakes.calls


def test_a_second_run_on_the_same_folder_is_refused(tmp_path, prompts):
    import fcntl

    recipe = _recipe(tmp_path, prompts)
    run = RunDir(recipe.run_dir).ensure()
    with open(run.lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(StageError, match=r"in use by another distill command"):
            run_pipeline(recipe, functions=Fakes().stages())


def test_cli_bad_input_is_one_line_and_dry_run_prints_the_plan(tmp_path, prompts):
    import subprocess
    import sys

    _recipe(tmp_path, prompts, sft=False)
    recipe = str(tmp_path / "recipe.yaml")

    def distill(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "distill.cli", "run", recipe, *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )

    bad = distill("generate.temprature=0.7")
    assert bad.returncode == 1
    # the override is blamed, not the recipe file that never mentioned the key
    assert bad.stderr.strip().splitlines() == [
        "error: override generate.temprature=0.7: generate.temprature: unknown key"
    ]
    missing = distill("sft.learning_rate=1e-4", "--stages", "sft")
    assert missing.returncode == 1 and "sft.model: required key is missing" in missing.stderr
    plan = distill("--dry-run", "--out", str(tmp_path / "planned"))  # no teacher: no pilot, an upper bound
    assert plan.returncode == 0, plan.stderr
    assert "prompts        8" in plan.stdout and "upper bound" in plan.stdout
    assert not (tmp_path / "planned").exists()


def test_rerunning_one_stage_resets_the_stages_after_it(tmp_path, prompts):
    fakes = Fakes()
    recipe = _recipe(tmp_path, prompts)
    run_pipeline(recipe, functions=fakes.stages())
    RunDir(tmp_path / "run").forget("filter")  # e.g. `distill filter` was interrupted by hand
    assert _ran(run_pipeline(recipe, stages=["filter"], functions=fakes.stages())) == ["filter"]
    with pytest.raises(StageError, match=r"stage sft needs stage card, which has not run"):
        run_pipeline(recipe, stages=["sft"], functions=fakes.stages())
    assert _ran(run_pipeline(recipe, functions=fakes.stages())) == ["card", "sft", "eval"]


ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "path",
    sorted([*ROOT.glob("recipes/*.yaml"), *ROOT.glob("recipes/teachers/*.yaml")]),
    ids=lambda p: p.name,
)
def test_shipped_recipes_load(path, monkeypatch):
    from distill.pipeline.checks import with_template_file

    monkeypatch.chdir(ROOT)  # recipes name templates relative to the repository root

    recipe = with_template_file(load_recipe(path))
    assert "{prompt}" in recipe.generate.template
    assert recipe.generate.base_url or recipe.generate.vllm or recipe.demo


def test_sft_resumes_only_checkpoints_of_the_same_settings(tmp_path):
    from distill.pipeline.stages import drop_stale_checkpoints

    out = tmp_path / "student"
    drop_stale_checkpoints(out, "aaaa")
    (out / "checkpoint-3").mkdir()
    drop_stale_checkpoints(out, "aaaa")  # interrupted, same settings: resume from it
    assert (out / "checkpoint-3").is_dir()
    drop_stale_checkpoints(out, "bbbb")  # new data or settings: never resume the old training
    assert not (out / "checkpoint-3").exists()


def test_readme_documents_every_top_level_recipe_key_and_keeps_quick_start():
    from distill.recipe import Recipe

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "distill run recipes/demo.yaml" in readme.split("## Real runs")[0]
    missing = [key for key in Recipe.model_fields if f"| `{key}` |" not in readme]
    assert not missing, f"README's recipe reference lacks {missing}"


def test_recipe_reference_lists_every_key_of_every_section():
    from distill.recipe import Recipe
    from distill.reference import reference_markdown

    text = reference_markdown()
    for section in ("generate", "verify", "filter", "card", "push", "sft", "eval", "demo"):
        model = Recipe.model_fields[section].annotation
        model = next(a for a in (model, *getattr(model, "__args__", ())) if hasattr(a, "model_fields"))
        assert all(f"| `{section}.{key}` |" in text for key in model.model_fields), section
