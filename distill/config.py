"""Settings: the base of every stage's config, and the one way a command's settings are resolved.

Precedence is written once, in `resolve()`, and every command uses it:

    model defaults < the recipe (or, without one, the run's own run.yaml) < `key=value` overrides
                   < the command's contract flags (--n, --base-url, …)

An override names a key in full (`generate.temperature=0.6`); a command that works on one section also
takes the key alone (`distill sft R.yaml learning_rate=5e-5`). Each stage's config class lives at the
bottom of its package (`distill/generation/config.py`); `distill/recipe.py` composes them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from distill.errors import ConfigError

C = TypeVar("C", bound="StageConfig")

# Keys whose values are never written anywhere (run.yaml, cards, logs).
SECRET_KEYS = frozenset({"api_key", "token", "hf_token", "password", "secret"})


def _split_names(value: Any) -> Any:
    if isinstance(value, str):
        value = value.split(",")
    return [str(v).strip() for v in value if str(v).strip()] if isinstance(value, list) else value


# A list of names that a flag or a YAML value may also give as one comma-separated string.
NameList = Annotated[list[str], BeforeValidator(_split_names)]


class StageConfig(BaseModel):
    """Base of every stage's settings: unknown keys are errors, and settings have a fingerprint."""

    # inf/nan are never a setting (temperature=inf would be sent to the teacher as is)
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    # Fields that change how fast a stage runs but not what it produces.
    fingerprint_exclude: ClassVar[frozenset[str]] = frozenset()

    def with_flags(self: C, **flags: Any) -> C:
        """A copy with the CLI's contract flags applied; flags left as None keep the recipe's value."""
        updates = {k: v for k, v in flags.items() if v is not None}
        if not updates:
            return self
        try:
            return type(self).model_validate({**self.model_dump(), **updates})
        except ValidationError as e:
            raise ConfigError(describe_validation_error(e, "command-line flags")) from e

    def fingerprint(self) -> str:
        """A short hash of the settings that decide this stage's output."""
        data = self.model_dump(mode="json", exclude=set(self.fingerprint_exclude))
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def describe_validation_error(error: ValidationError, source: str) -> str:
    """One line naming the first bad key, e.g. `recipe.yaml: generate.temprature: unknown key`."""
    first = error.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    kind = first["type"]
    if kind == "extra_forbidden":
        what = "unknown key"
    elif kind == "missing":
        what = "required key is missing"
    else:
        what = f"{first['msg']} (got {first.get('input')!r})"[:200]
    more = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{source}: {key}: {what}{more}"


def parse_overrides(overrides: Sequence[str]) -> dict[str, Any]:
    """Turn `a.b=value` strings into a nested dict; each value is read as a YAML scalar."""
    nested: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r}: expected key=value, e.g. generate.temperature=0.6")
        node = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part!r} is both a value and a section")
        try:
            node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as e:
            raise ConfigError(
                f"--set {key.strip()}: the value {raw[:60]!r} is not YAML ({str(e).splitlines()[0]}); quote it"
            ) from e
    return nested


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing, unreadable or non-mapping file is a ConfigError."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: recipe not found") from e
    except IsADirectoryError as e:
        raise ConfigError(f"{path}: is a folder; give a recipe .yaml file") from e
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the recipe ({e.strerror or e})") from e
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe must be a mapping of sections, got {type(data).__name__}")
    return data


def load_config(
    model: type[C],
    path: Path | None = None,
    overrides: Sequence[str] = (),
    section: str | None = None,
    *,
    typed: Sequence[str] | None = None,
) -> C:
    """Build `model` from an optional YAML file (or one `section` of it) and `key=value` overrides.

    `typed` are the overrides as the user wrote them (before a section prefix was dropped): errors quote them.
    """
    data: dict[str, Any] = {}
    if path is not None:
        data = read_yaml(path)
        if section is not None:
            data = data.get(section) or {}
    if overrides:
        parsed = parse_overrides(overrides)
        if section is not None and section in parsed and set(parsed) == {section}:
            parsed = parsed[section]
        data = deep_merge(data, parsed)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        source = _blamed(e, path, overrides, section, typed or overrides)
        raise ConfigError(describe_validation_error(e, source)) from e


def _blamed(
    error: ValidationError,
    path: Path | None,
    overrides: Sequence[str],
    section: str | None,
    typed: Sequence[str],
) -> str:
    """Where the first bad value came from: the `key=value` override (--set) that set it, else the file."""
    loc = ".".join(str(p) for p in error.errors()[0]["loc"])
    prefix = f"{section}." if section else ""
    for item, as_typed in zip(overrides, typed, strict=False):
        key = item.partition("=")[0].strip()
        key = key[len(prefix) :] if prefix and key.startswith(prefix) else key
        if loc == key or loc.startswith(f"{key}.") or key.startswith(f"{loc}."):
            return f"override {as_typed}"
    return str(path) if path else "overrides"


def resolve(
    model: type[C],
    source: Path | None = None,
    overrides: Sequence[str] = (),
    *,
    section: str | None = None,
    flags: Mapping[str, Any] | None = None,
) -> C:
    """One command's settings: defaults < `source` < `key=value` overrides < contract `flags`.

    With `section`, `source` is a whole recipe (or run.yaml) of which that section is read, and an
    override may leave out the `section.` prefix. `flags` left as None keep what came before; a flag
    given as a mapping sets keys of a nested section (`{"generate": {"n": 8}}`, `{"vllm": {...}}`).
    """
    typed = list(overrides)
    if section is not None:
        prefix = f"{section}."
        overrides = [o[len(prefix) :] if o.startswith(prefix) else o for o in overrides]
    cfg = load_config(model, source, overrides, section=section, typed=typed)
    return _with_flags(cfg, flags or {})


def _with_flags(cfg: C, flags: Mapping[str, Any]) -> C:
    flags = {k: v for k, v in ((k, _given(v)) for k, v in flags.items()) if v is not None}
    nested = {
        k: v
        for k, v in flags.items()
        if isinstance(v, Mapping) and isinstance(getattr(cfg, k, None), StageConfig)
    }
    cfg = cfg.with_flags(**{k: v for k, v in flags.items() if k not in nested})
    if not nested:
        return cfg
    return cfg.model_copy(update={k: _with_flags(getattr(cfg, k), v) for k, v in nested.items()})


def _given(value: Any) -> Any:
    """A flag's value without the parts left unset (None); None when nothing in it was set."""
    if isinstance(value, Mapping):
        kept = {k: v for k, v in ((k, _given(v)) for k, v in value.items()) if v is not None}
        return kept or None
    return value


def redact(data: Any) -> Any:
    """A copy of `data` with the values of secret-looking keys removed."""
    if isinstance(data, dict):
        return {k: ("<redacted>" if k.lower() in SECRET_KEYS and v else redact(v)) for k, v in data.items()}
    if isinstance(data, list):
        return [redact(v) for v in data]
    return data


def to_yaml(model: BaseModel) -> str:
    """The resolved settings as YAML, secrets stripped (what goes into run.yaml)."""
    return yaml.safe_dump(redact(model.model_dump(mode="json")), sort_keys=False, allow_unicode=True)
