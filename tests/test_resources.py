"""Shipped files are found from any folder, in a checkout and in the built wheel; recipes by name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from distill.errors import ConfigError
from distill.resources import recipes_dir, resolve_recipe, shipped_path, shipped_recipes

ROOT = Path(__file__).resolve().parents[1]
BLOCKER = '''
import sys

class _NotInstalled:
    """Imports of the [train] extra's modules fail as if it was never installed."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.split(".")[0] in {"torch", "transformers", "trl", "accelerate"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NotInstalled)
'''


def _distill(
    *args: str, cwd: Path, path: Path = ROOT, extra_path: str = ""
) -> subprocess.CompletedProcess[str]:
    """`distill ARGS` in a subprocess started in `cwd`, importing distill from `path`."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (extra_path, str(path)) if p),
        "COLUMNS": "300",
    }
    return subprocess.run(
        [sys.executable, "-m", "distill.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _tiny_dataset(folder: Path) -> Path:
    row = {
        "messages": [
            {"role": "user", "content": "What is 2 + 2?"},
            {"role": "assistant", "content": "<think>2 + 2 = 4.</think>\n\nThe answer is $\\boxed{4}$."},
        ]
    }
    path = folder / "tiny.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    return path


# ── names ───────────────────────────────────────────────────────────────────
def test_a_short_name_means_the_folder_the_command_expects() -> None:
    assert resolve_recipe("demo") == recipes_dir() / "demo.yaml"
    assert resolve_recipe("openr1-math.yaml") == recipes_dir() / "openr1-math.yaml"
    student = resolve_recipe("r1-distill-qwen-7b", prefer="students")
    protocol = resolve_recipe("r1-distill-qwen-7b", prefer="eval")
    assert (student.parent.name, protocol.parent.name) == ("students", "eval")
    assert resolve_recipe("eval/smoke") == recipes_dir() / "eval/smoke.yaml"
    with pytest.raises(
        ConfigError, match="ambiguous: name one of students/r1-distill-qwen-7b, eval/r1-distill"
    ):
        resolve_recipe("r1-distill-qwen-7b")


def test_a_users_file_wins_over_a_shipped_name(tmp_path: Path) -> None:
    mine = tmp_path / "demo"
    mine.write_text("run_dir: runs/mine\n", encoding="utf-8")
    assert resolve_recipe(mine) == mine


def test_the_listing_skips_data_files_and_describes_each_recipe() -> None:
    listed = {r.qualified: r.description for r in shipped_recipes()}
    assert {
        "demo",
        "openr1-math",
        "students/r1-distill-qwen-1.5b",
        "teachers/vllm-qwq-32b",
        "eval/smoke",
    } <= set(listed)
    assert "eval/reference" not in listed and not any(q.startswith("accelerate/") for q in listed)
    assert listed["demo"].startswith("The offline demo") and all(listed.values())


def test_recipes_paths_fall_back_to_the_shipped_copy_only_when_absent(tmp_path: Path) -> None:
    assert shipped_path(Path("recipes/templates/math.txt")).is_file()
    assert shipped_path(Path("recipes/no-such.txt")) == Path("recipes/no-such.txt")
    assert shipped_path(tmp_path / "x.txt") == tmp_path / "x.txt"


# ── the command, from a folder with nothing in it ─────────────────────────────
def test_distill_recipes_lists_names_and_descriptions(tmp_path: Path) -> None:
    done = _distill("recipes", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for name in ("demo", "openr1-math", "students/r1-distill-qwen-7b", "eval/r1-distill-qwen-7b"):
        assert name in done.stdout
    assert "The offline demo" in done.stdout


def test_an_unknown_recipe_is_one_line_listing_the_shipped_names(tmp_path: Path) -> None:
    done = _distill("run", "no-such-recipe", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: recipe no-such-recipe: no such file and no shipped recipe")
    assert "shipped: demo, learn-check, openr1-math, students/r1-distill-llama-70b" in done.stderr


def test_a_shipped_recipe_runs_by_name_from_an_empty_folder(tmp_path: Path) -> None:
    # openr1-math names recipes/templates/math.txt: found without a recipes/ folder here.
    done = _distill("run", "openr1-math", "--dry-run", "generate.prompts=p.jsonl", cwd=tmp_path)
    assert done.returncode == 1 and "generate.prompts: p.jsonl does not exist" in done.stderr
    (tmp_path / "p.jsonl").write_text('{"problem": "What is 1 + 1?", "answer": "2"}\n', encoding="utf-8")
    done = _distill("run", "openr1-math", "--dry-run", "generate.prompts=p.jsonl", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "plan for runs/openr1-math" in done.stdout and "stage sft      will run" in done.stdout


def test_sft_without_the_train_extra_names_the_extra(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(BLOCKER, encoding="utf-8")
    data = _tiny_dataset(tmp_path)
    done = _distill(
        "sft",
        "r1-distill-qwen-1.5b",
        "--dataset",
        str(data),
        "--dry-run",
        cwd=tmp_path,
        extra_path=str(blocker),
    )
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(
        "error: distill sft needs the [train] extra (missing: torch, transformers, trl, "
    )
    assert "pip install 'distill[train]'" in done.stderr
    demo = _distill("run", "demo", cwd=tmp_path, extra_path=str(blocker))
    assert demo.returncode == 1 and "the sft stage needs the [train] extra" in demo.stderr
    assert not (tmp_path / "runs" / "demo" / "generations").exists()  # refused before any work


# ── the wheel ───────────────────────────────────────────────────────────────
@pytest.fixture(scope="module")
def wheel_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from this checkout, unpacked as site-packages are (no recipes/ beside distill/)."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(ROOT),
            "-w",
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("distill-*.whl")
    site = out / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    return site


def test_the_wheel_ships_every_file_read_at_run_time(wheel_site: Path) -> None:
    packed = wheel_site / "distill" / "_recipes"
    for rel in (
        "demo.yaml",
        "openr1-math.yaml",
        "students/r1-distill-qwen-1.5b.yaml",
        "teachers/vllm-qwq-32b.yaml",
        "eval/reference.yaml",
        "eval/smoke.yaml",
        "templates/math.txt",
        "accelerate/fsdp2.yaml",
        "accelerate/zero3.yaml",
        "slurm/sft.slurm",
        "slurm/generate.slurm",
    ):
        assert (packed / rel).is_file(), rel
    assert sorted(p.name for p in (ROOT / "recipes").rglob("*") if p.is_file()) == sorted(
        p.name for p in packed.rglob("*") if p.is_file()
    )
    for rel in (
        "distill/demo/problems.jsonl",
        "distill/demo/eval.jsonl",
        "distill/demo/benchmark_math500.jsonl",
        "data_cards/dataset_card.md.j2",
        "distill/py.typed",
        "distill/viewer/templates/sample.html",
        "distill/viewer/static/viewer.js",
        "distill/viewer/static/katex/katex.min.js",
        "distill/viewer/static/katex/LICENSE",
        "distill/viewer/static/katex/fonts/KaTeX_Main-Regular.woff2",
    ):
        assert (wheel_site / rel).is_file(), rel
    assert not (wheel_site / "recipes").exists() and not (wheel_site / "tests").exists()


def test_the_installed_package_plans_sft_with_its_packed_accelerate_config(
    wheel_site: Path, tmp_path: Path, tiny_model: Path
) -> None:
    check = (
        "import distill, distill.evaluation.reference_table as r, distill.resources as s; "
        "print(distill.__file__); print(s.recipes_dir()); print(sorted(r.load_reference()['models']))"
    )
    env = {**os.environ, "PYTHONPATH": str(wheel_site)}
    where = subprocess.run(
        [sys.executable, "-c", check],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.splitlines()
    assert where[0] == str(wheel_site / "distill" / "__init__.py")
    assert where[1] == str(wheel_site / "distill" / "_recipes")
    assert "DeepSeek-R1-Distill-Qwen-7B" in where[2]  # DeepSeek's reference table, read from the wheel

    data = _tiny_dataset(tmp_path)
    done = _distill(
        "sft",
        "r1-distill-qwen-1.5b",
        "--dataset",
        str(data),
        "--dry-run",
        f"model={tiny_model}",
        cwd=tmp_path,
        path=wheel_site,
    )
    assert done.returncode == 0, done.stderr
    launch = (
        f"accelerate launch --config_file {wheel_site}/distill/_recipes/accelerate/ddp.yaml (8 processes)"
    )
    assert launch in done.stdout


def test_a_student_that_cannot_be_loaded_offline_is_one_line(tmp_path: Path) -> None:
    data = _tiny_dataset(tmp_path)
    done = _distill("sft", "r1-distill-qwen-1.5b", "--dataset", str(data), "--dry-run", cwd=tmp_path)
    error = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert (
        done.returncode == 1 and len(error) == 1 and "Traceback" not in done.stderr
    )  # after sft's log lines
    assert error[0].startswith(
        "error: sft.model Qwen/Qwen2.5-Math-1.5B: cannot load its tokenizer and config"
    )
    assert "model=PATH" in error[0]
