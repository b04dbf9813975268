"""The recipe reference: every key of every section, with its default and description.

    python -m distill.reference > recipe-reference.md

Generated from the settings classes themselves (each field is documented once, in its
`Field(description=...)`), so it is never out of date.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from distill.config import StageConfig
from distill.recipe import Recipe


def reference_markdown() -> str:
    """Every recipe key with its type, default and description, as markdown tables (from the models)."""
    lines = [
        "# Recipe reference",
        "",
        "Generated from the settings classes by `python -m distill.reference`: always current.",
        "",
    ]
    _describe_model(Recipe, "", lines, top=True)
    for name, field in Recipe.model_fields.items():
        model = _model_of(field.annotation)
        if model is not None:
            lines += ["", f"## `{name}`", "", (model.__doc__ or "").strip().splitlines()[0], ""]
            _describe_model(model, f"{name}.", lines)
    return "\n".join(lines) + "\n"


def _model_of(annotation: object) -> type[StageConfig] | None:
    import typing

    candidates = [annotation, *typing.get_args(annotation)]
    return next((c for c in candidates if isinstance(c, type) and issubclass(c, StageConfig)), None)


def _describe_model(model: type[StageConfig], prefix: str, lines: list[str], top: bool = False) -> None:
    from pydantic_core import PydanticUndefined

    lines += ["| key | default | description |", "|---|---|---|"]
    nested = []
    sections = {m: name for name, f in Recipe.model_fields.items() if (m := _model_of(f.annotation))}
    for name, field in model.model_fields.items():
        sub = _model_of(field.annotation)
        if top and sub is not None:
            lines.append(f"| `{name}` | | see [`{name}`](#{name}) |")
            continue
        if (
            not top and sub is not None and sub in sections
        ):  # another stage's settings (eval.engine): documented once, there
            section = sections[sub]
            description = (field.description or "").replace("|", "\\|")
            lines.append(
                f"| `{prefix}{name}` | `{{}}` | {description} Keys: see [`{section}`](#{section}). |"
            )
            continue
        if sub is not None:
            nested.append((name, sub))
        default = field.get_default(call_default_factory=True)
        shown = "required" if default is PydanticUndefined else _show(default)
        if sub is not None and default is not None and default is not PydanticUndefined:
            shown = "(section)"
        description = (field.description or "").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{prefix}{name}` | {shown} | {description} |")
    for name, sub in nested:
        lines += ["", f"`{prefix}{name}`: {(sub.__doc__ or '').strip().splitlines()[0]}", ""]
        _describe_model(sub, f"{prefix}{name}.", lines)


def _show(value: Any) -> str:
    """A default as it would be written in YAML/JSON (null, true, 'runs/x')."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    text = json.dumps(value, default=str, ensure_ascii=False)
    return f"`{text}`".replace("|", "\\|")


if __name__ == "__main__":
    print(reference_markdown(), end="")
