"""The shape of the code: the import graph of `distill` and `filters` has no cycles and no import pointing up.

Every import counts, also the ones inside functions, under `TYPE_CHECKING` and by name (a string that is
a module's dotted name): a function-local import hides a cycle from the interpreter, not from a reader. Floors, bottom first (a module may import its own
floor and the floors below, never a floor above):

    0  errors, schema
    1  config, run, progress, reports, sources, reasoning, teachers/, testing/, filters/
    2  the stages: generation/, verification/, filtering/, publishing/, training/, evaluation/, judge
    3  recipe, pipeline/, viewer/ (reads what the stages wrote)
    4  cli, reference, demo/, the package roots (their names load lazily)
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("distill", "filters")

FLOORS: tuple[tuple[str, ...], ...] = (
    ("distill.errors", "distill.schema"),
    ("distill.config", "distill.run", "distill.progress", "distill.reports", "distill.sources", "distill.resources",
     "distill.extras",
     "distill.reasoning", "distill.teachers", "distill.testing", "filters"),
    ("distill.generation", "distill.verification", "distill.filtering", "distill.publishing",
     "distill.training", "distill.evaluation", "distill.judge"),
    ("distill.recipe", "distill.pipeline", "distill.viewer"),
    ("distill.cli", "distill.reference", "distill.demo"),
)
# SFT on several GPUs: `sft()` hands over to `accelerate launch`, whose processes re-enter `sft()`.
ALLOWED_CYCLES = [{"distill.training.train", "distill.training.launch"}]


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name → file, for every module of the two packages."""
    out = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imported_modules(name: str, path: Path, known: set[str]) -> Iterator[str]:
    """The package modules `name` imports anywhere in its file (`from x import y` counts y if it is a module)."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in known:
            targets = [node.value]  # importlib.import_module("distill.x") by name: a dependency all the same
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    files = module_files(root)
    known = set(files)
    graph = {name: set(imported_modules(name, path, known)) for name, path in files.items()}
    for name in graph:  # a package root's own names load lazily, for the user: not a dependency of its modules
        graph[name] -= {p for p in PACKAGES if p != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def floor_of(module: str) -> int:
    if module in PACKAGES:
        return len(FLOORS) - 1
    for floor, prefixes in enumerate(FLOORS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return floor
    raise AssertionError(f"{module} is on no floor: add it to FLOORS in tests/test_architecture.py")


def upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted((a, b) for a, deps in graph.items() for b in deps if floor_of(b) > floor_of(a))


def half_modules(root: Path = ROOT) -> list[str]:
    """Modules of `distill` whose name starts with an underscore (filters/ keeps two private helpers)."""
    return [name for name, path in module_files(root).items()
            if name.startswith("distill") and path.stem.startswith("_") and not path.stem.endswith("__")]


def test_the_import_graph_has_no_cycle_but_the_sft_launcher() -> None:
    found = cycles(import_graph())
    assert [c for c in found if c not in ALLOWED_CYCLES] == []


def test_no_module_imports_a_floor_above_its_own() -> None:
    assert upward_imports(import_graph()) == []


def test_the_pipeline_never_imports_the_demo() -> None:
    """`distill run` fills the pipeline's `services=` seam with the demo's wiring; the pipeline knows no demo."""
    graph = import_graph()
    assert [(m, dep) for m, deps in graph.items() if m.startswith("distill.pipeline")
            for dep in deps if dep.startswith("distill.demo")] == []


def test_no_module_is_half_of_a_stage() -> None:
    """A leading underscore marked a module that was half of another one; each stage is a folder now."""
    assert half_modules() == []


def test_the_checks_catch_what_they_guard_against(tmp_path: Path) -> None:
    """On a tiny tree with a hidden (function-local) cycle and an upward import, the checks fire."""
    for rel, text in {
        "distill/__init__.py": "",
        "distill/errors.py": "def f():\n    from distill.cli import main\n",
        "distill/run.py": "import importlib\nrunner = importlib.import_module('distill.generation.stage')\n",
        "distill/cli.py": "from distill import errors\n",
        "distill/generation/__init__.py": "",
        "distill/generation/_half.py": "from . import stage\n",
        "distill/generation/stage.py": "from distill.generation import _half\nfrom distill import run\n",
        "filters/__init__.py": "",
    }.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    graph = import_graph(tmp_path)
    assert {"distill.errors", "distill.cli"} in cycles(graph)
    assert {"distill.run", "distill.generation.stage", "distill.generation._half"} in cycles(graph)
    assert ("distill.errors", "distill.cli") in upward_imports(graph)
    assert ("distill.run", "distill.generation.stage") in upward_imports(graph)
    assert half_modules(tmp_path) == ["distill.generation._half"]
