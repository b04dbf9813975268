"""Recipes: precedence, one-line errors naming the key, secrets never written."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from distill.config import StageConfig, load_config, parse_overrides, redact, to_yaml
from distill.errors import ConfigError
from distill.recipe import Recipe, load_recipe


class _Toy(StageConfig):
    temperature: float = 0.6
    n: int = 4
    api_key: str | None = None


def test_precedence_default_then_yaml_then_overrides_then_flags(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("temperature: 0.7\nn: 8\n")
    cfg = load_config(_Toy, recipe, ["n=16"])
    assert (cfg.temperature, cfg.n) == (0.7, 16)
    assert cfg.with_flags(n=None, temperature=1.0).model_dump() == {"temperature": 1.0, "n": 16, "api_key": None}


@pytest.mark.parametrize(("text", "message"), [
    ("temprature: 0.7\n", "r.yaml: temprature: unknown key"),
    ("n: many\n", "r.yaml: n: "),
    ("- a\n- b\n", "must be a mapping"),
    ("n: [\n", "not valid YAML"),
])
def test_bad_recipes_are_one_line_errors_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(_Toy, recipe)
    assert "\n" not in str(info.value)


def test_nested_overrides_reach_stage_sections() -> None:
    assert parse_overrides(["generate.n=2", "run_dir=x", "a.b.c=[1, 2]"]) == {
        "generate": {"n": 2}, "run_dir": "x", "a": {"b": {"c": [1, 2]}}}
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_overrides(["generate.n"])
    with pytest.raises(ConfigError, match="generate.nope: unknown key"):
        load_recipe(None, ["generate.nope=1"])
    assert isinstance(load_recipe(None, ["run_dir=elsewhere"]), Recipe)


def test_fingerprint_tracks_settings_and_secrets_are_redacted() -> None:
    a, b = _Toy(), _Toy(n=5)
    assert a.fingerprint() != b.fingerprint() and a.fingerprint() == _Toy().fingerprint()
    dumped = to_yaml(_Toy(api_key="sk-secret"))
    assert "sk-secret" not in dumped and yaml.safe_load(dumped)["api_key"] == "<redacted>"
    assert redact({"push": {"token": "hf_x", "repo": "a/b"}}) == {"push": {"token": "<redacted>", "repo": "a/b"}}


def test_eval_engine_and_verifier_keys_are_checked_when_the_recipe_loads() -> None:
    """A typo in eval's engine or verifier settings fails at load, before generation and SFT run."""
    with pytest.raises(ConfigError, match=r"eval\.engine\.concurency: unknown key"):
        load_recipe(None, ["eval.engine.concurency=3"])
    with pytest.raises(ConfigError, match=r"eval\.verifier\.math_timeout: unknown key"):
        load_recipe(None, ["eval.verifier.math_timeout=3"])
    with pytest.raises(ConfigError, match=r"eval\.engine\.vllm\.tensor_paralel: unknown key"):
        load_recipe(None, ["eval.engine.vllm.tensor_paralel=2"])
    recipe = load_recipe(None, ["eval.engine.concurrency=3", "eval.verifier.math_timeout_s=9"])
    assert recipe.eval is not None
    assert (recipe.eval.engine.concurrency, recipe.eval.verifier.math_timeout_s) == (3, 9)
    # Only what the recipe set is written back (run.yaml, eval.yaml) and handed to the engine.
    assert yaml.safe_load(to_yaml(recipe.eval))["engine"] == {"concurrency": 3}


def test_resolve_is_the_one_precedence_for_every_command(tmp_path: Path) -> None:
    """defaults < recipe (or run.yaml) < key=value (with or without the section prefix) < contract flags."""
    from distill.config import resolve
    from distill.generation.config import GenerateConfig

    recipe = tmp_path / "r.yaml"
    recipe.write_text("run_dir: runs/x\ngenerate:\n  n: 8\n  temperature: 0.7\n  top_p: 0.9\n  vllm: {model: m, tensor_parallel: 2}\n")
    cfg = resolve(GenerateConfig, recipe, ["generate.temperature=0.5", "top_p=0.8", "seed=3"], section="generate",
                  flags={"seed": 4, "model": None, "vllm": {"data_parallel": 2, "model": None}})
    assert (cfg.n, cfg.temperature, cfg.top_p, cfg.seed, cfg.model) == (8, 0.5, 0.8, 4, None)
    assert cfg.vllm is not None and (cfg.vllm.model, cfg.vllm.tensor_parallel, cfg.vllm.data_parallel) == ("m", 2, 2)
    whole = resolve(Recipe, recipe, ["generate.n=2"], flags={"run_dir": tmp_path / "out", "generate": {"n": 3}})
    assert (whole.generate.n, whole.run_dir, whole.generate.temperature) == (3, tmp_path / "out", 0.7)
    assert resolve(GenerateConfig, flags={"vllm": {"model": None}}).vllm is None  # an unset flag sets nothing
    with pytest.raises(ConfigError, match=r"override generate\.temprature=1: temprature: unknown key"):
        resolve(GenerateConfig, recipe, ["generate.temprature=1"], section="generate")  # the override, not r.yaml
    with pytest.raises(ConfigError, match=r"command-line flags: n: "):
        resolve(GenerateConfig, recipe, section="generate", flags={"n": 0})
