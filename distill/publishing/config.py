"""Settings of the card and push stages: how the data card describes the dataset, and where it is published."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from distill.config import StageConfig
from distill.errors import ConfigError
from distill.publishing.disclosure import PublicView

__all__ = ["CardConfig", "PushConfig", "check_repo_id"]


class CardConfig(StageConfig):
    """How the data card describes the dataset, and which tokenizer counts its tokens."""

    pretty_name: str | None = Field(
        None, description="Title of the dataset; defaults to the run folder's name."
    )
    description: str | None = Field(None, description="A paragraph shown under the title (markdown).")
    license: str = Field(
        "other",
        description="Hub license id (e.g. apache-2.0, mit, cc-by-4.0); teacher "
        "outputs follow the teacher's terms, so choose deliberately.",
    )
    language: list[str] = Field(default_factory=lambda: ["en"], description="ISO 639-1 codes.")
    task_categories: list[str] = Field(
        default_factory=lambda: ["text-generation"], description="Hub task categories."
    )
    tags: list[str] = Field(
        default_factory=lambda: ["synthetic", "distillation", "reasoning"],
        description="Hub tags; `distill` is always added.",
    )
    tokenizer: Path | None = Field(
        None,
        description="Tokenizer for `num_tokens`: a local folder, or a model id already in the Hugging Face "
        "cache (never downloaded); without one the teacher's usage or an approximation is used (the card says which).",
    )
    template: Path | None = Field(
        None, description="A Jinja2 card template; defaults to data_cards/dataset_card.md.j2."
    )
    default_config: Literal["all", "sft"] = Field(
        "all", description="The config `load_dataset(repo)` returns."
    )
    example_chars: int = Field(
        600, ge=0, description="Characters of one sample shown in the card; 0 shows none."
    )
    plots: bool = Field(True, description="Draw the token-length and pass-rate plots into RUN/plots/.")
    show_paths: bool = Field(
        False,
        description="Show local paths in the card and the pushed run.yaml (by default only file names).",
    )
    show_endpoints: bool = Field(
        False,
        description="Show teacher endpoints in full (by default a public provider's host, `local` or "
        "`private endpoint`).",
    )

    @property
    def view(self) -> PublicView:
        """What the card and the push may show of this machine."""
        return PublicView(show_paths=self.show_paths, show_endpoints=self.show_endpoints)


class PushConfig(StageConfig):
    """Where and how the run's dataset is published."""

    repo: str | None = Field(None, description="Dataset repo id, ORG/NAME (or NAME for your own namespace).")
    private: bool = Field(True, description="Create the repo private (the default); false makes it public.")
    revision: str | None = Field(
        None, description="Branch to commit to (created from main if missing); default main."
    )
    commit_message: str | None = Field(None, description="Commit title; default names distill and the run.")
    max_retries: int = Field(5, ge=0, description="Retries of each Hub step on 5xx/429/timeouts.")
    backoff_s: float = Field(2.0, gt=0, description="First retry wait; doubles each retry (capped at 60 s).")

    @field_validator("repo")
    @classmethod
    def _valid_repo_id(cls, value: str | None) -> str | None:
        if value is not None:
            check_repo_id(value)
        return value


def check_repo_id(repo_id: str) -> None:
    """Raise ConfigError unless `repo_id` is a valid Hub id (`NAME` or `ORG/NAME`); no network."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise ConfigError(
            f"push.repo: {repo_id!r} is not a valid repo id; use ORG/NAME with letters, digits, "
            f"'-', '_', '.' (at most 96 characters)"
        ) from e
