"""The files distill ships and reads at run time, found the same way in a checkout and in a wheel.

The repository keeps them where the product design puts them: `recipes/` at the top (students,
teachers, eval protocols and DeepSeek's reference table, prompt templates, accelerate/DeepSpeed
configs, Slurm templates) and `data_cards/` (card templates). A wheel packs `recipes/` as
`distill/_recipes` (pyproject's `force-include`), so an installed distill works from any folder;
a checkout or an editable install reads the repository's own `recipes/`. This module is the one
place that knows both layouts; everything else asks it through importlib.resources.

Shipped recipes can be named without a path: `demo`, `openr1-math`, `r1-distill-qwen-7b`
(short names), `students/r1-distill-qwen-7b` (qualified). A short name found in several folders
(`r1-distill-qwen-7b` is a student and an eval protocol) goes to the folder the command prefers.
A path that exists always wins, and `recipes/...` paths that a recipe or a user names relative to
the repository (`recipes/templates/math.txt`) fall back to the shipped copy outside a checkout.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from distill.errors import ConfigError

__all__ = [
    "RECIPE_FOLDERS",
    "ShippedRecipe",
    "card_templates_dir",
    "recipes_dir",
    "resolve_recipe",
    "shipped_file",
    "shipped_path",
    "shipped_recipes",
]

PACKED = "_recipes"  # the wheel's name for the repository's recipes/ (pyproject.toml, force-include)
# Folders of whole, runnable recipes ("" = recipes/ itself), in the order `distill recipes` lists them.
RECIPE_FOLDERS = ("", "students", "teachers", "eval")
NOT_RECIPES = frozenset({"eval/reference"})  # data a recipe points at, not a recipe itself
SUFFIXES = (".yaml", ".yml")


def recipes_dir() -> Path:
    """The shipped recipes folder: distill/_recipes in a wheel, else the repository's recipes/."""
    package = Path(str(files("distill")))
    packed = package / PACKED
    folder = packed if packed.is_dir() else package.parent / "recipes"
    if not folder.is_dir():
        raise ConfigError(
            f"the shipped recipes are missing (neither {packed} nor {folder}): reinstall distill"
        )
    return folder


def card_templates_dir() -> Path:
    """The folder of the shipped data-card templates (the data_cards package)."""
    return Path(str(files("data_cards")))


def shipped_file(*parts: str) -> Path:
    """A file under the shipped recipes folder, e.g. shipped_file("accelerate", "zero3.yaml")."""
    return recipes_dir().joinpath(*parts)


def shipped_path(path: Path) -> Path:
    """`path` when it exists; else, for a relative `recipes/...` path, the shipped copy when that exists."""
    if path.exists() or path.is_absolute() or not path.parts or path.parts[0] != "recipes":
        return path
    shipped = shipped_file(*path.parts[1:])
    return shipped if shipped.exists() else path


@dataclass(frozen=True)
class ShippedRecipe:
    """One recipe shipped with distill."""

    folder: str  # "" for recipes/ itself, else students / teachers / eval
    name: str  # the file's stem
    path: Path

    @property
    def qualified(self) -> str:
        return f"{self.folder}/{self.name}" if self.folder else self.name

    @property
    def description(self) -> str:
        """The first sentence of the recipe's opening comment (its prose lines, not its command examples)."""
        words: list[str] = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            text = line.removeprefix("#")
            if not line.startswith("#") or not text.strip() or text.startswith("   "):
                break
            words.append(text.strip())
        prose = " ".join(words)
        return prose.split(". ", 1)[0].rstrip(":").rstrip(".") + "." if prose else ""


def shipped_recipes() -> list[ShippedRecipe]:
    """Every shipped recipe, folder by folder (RECIPE_FOLDERS order), by name within a folder."""
    root = recipes_dir()
    found = []
    for folder in RECIPE_FOLDERS:
        for path in sorted(p for p in (root / folder).glob("*") if p.suffix in SUFFIXES):
            recipe = ShippedRecipe(folder, path.stem, path)
            if recipe.qualified not in NOT_RECIPES:
                found.append(recipe)
    return found


def resolve_recipe(value: Path | str, prefer: str = "") -> Path:
    """The YAML file a recipe argument names: an existing file, else a shipped recipe by name.

    `prefer` is the folder whose recipe a short name means when several folders have one
    (`distill sft` prefers students/, `distill eval` eval/, `distill generate` teachers/).
    """
    path = Path(value)
    if path.is_file():
        return path
    key = path.as_posix().removeprefix("recipes/")
    for suffix in SUFFIXES:
        key = key.removesuffix(suffix)
    recipes = shipped_recipes()
    matches = [r for r in recipes if key in (r.qualified, r.name)]
    if len(matches) > 1:
        matches = [r for r in matches if r.qualified == key] or [r for r in matches if r.folder == prefer]
    if len(matches) == 1:
        return matches[0].path
    if any(r.name == key for r in recipes):
        options = ", ".join(r.qualified for r in recipes if r.name == key)
        raise ConfigError(f"recipe {value!s} is ambiguous: name one of {options}")
    names = ", ".join(r.qualified for r in recipes)
    raise ConfigError(f"recipe {value!s}: no such file and no shipped recipe of that name; shipped: {names}")
