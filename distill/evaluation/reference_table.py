"""DeepSeek's published scores (recipes/eval/reference.yaml), matched to the model under evaluation.

The report shows them beside the measured scores; a named reference that is not in the table is a
ConfigError before anything is generated.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from distill.resources import shipped_file

__all__ = [
    "load_reference",
    "match_reference",
    "recorded_model",
    "reference_scores",
    "resolve_reference",
]

log = logging.getLogger(__name__)


def load_reference(path: Path | None = None) -> dict[str, Any]:
    """The reference table (recipes/eval/reference.yaml); empty when the file is not there."""
    import yaml

    path = path or shipped_file("eval", "reference.yaml")
    if not path.exists():
        log.warning("reference table %s not found: results will not show DeepSeek's numbers", path)
        return {}
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def match_reference(model_id: str | None, table: dict[str, Any]) -> str | None:
    """The reference model that the model id (or checkpoint path) ends with, e.g. `…/DeepSeek-R1-Distill-Qwen-7B`."""
    if not model_id:
        return None
    wanted = _squash(model_id.rstrip("/").rsplit("/", 1)[-1])
    for name in table.get("models", {}):
        if _squash(name) == wanted or wanted.endswith(_squash(name)):
            return name
    return None


def reference_scores(table: dict[str, Any], model: str, benchmark: str) -> dict[str, float]:
    return {
        str(k): float(v) for k, v in (table.get("models", {}).get(model, {}).get(benchmark) or {}).items()
    }


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9.]", "", name.lower())


def resolve_reference(
    reference: str | None, model_id: str | None, path: Path | None = None
) -> tuple[dict[str, Any], str | None]:
    """The reference table and the row to show: matched from the model id (`auto`), or named."""
    from distill.errors import ConfigError

    if not reference:
        return {}, None
    table = load_reference(path)
    if reference == "auto":
        return table, match_reference(model_id, table)
    ref_model = match_reference(reference, table)
    if ref_model is None:
        known = ", ".join(table.get("models", {}))
        raise ConfigError(f"reference {reference!r} is not in the reference table; known: {known}")
    return table, ref_model


def recorded_model(out: Path, benchmarks: list[str]) -> str | None:
    """The model name the engine recorded in a benchmark's stats.json (for re-scoring)."""
    from distill.run import RunDir

    for name in benchmarks:
        run = RunDir(out).benchmark(name)
        teacher = run.read_json(run.stats).get("generate", {}).get("teacher")
        if teacher:
            return str(teacher)
    return None
