"""Push a run to the Hugging Face Hub as a dataset repo: data/ (both configs), the card, plots, run.yaml, stats.json.

Everything goes up in ONE commit (`create_commit`, not `upload_folder`, whose Xet pipeline may split
a large folder into several commits), so a reader never sees a half-pushed dataset. Large files
are uploaded first (Xet or LFS, as the library decides; both skip content the Hub already has, so a
re-run after a failure resumes rather than restarts), then the commit is sent; both steps are retried
with exponential backoff on 5xx, 429, timeouts and connection errors.

The token comes only from `HF_TOKEN` or the library's login, and is never printed, logged or written.
The repo is private unless `private: false` / `--public`; an existing repo whose visibility differs
from what was asked is an error rather than a silent public (or hidden) push.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import Field, field_validator

from distill.config import StageConfig
from distill.errors import ConfigError, HubError, StageError
from distill.run import RunDir

if TYPE_CHECKING:
    from distill.publishing.card import CardConfig

log = logging.getLogger(__name__)
T = TypeVar("T")

# What a pushed repo holds, relative to the run folder (generations/ and logs/ stay local).
PUSHED_FILES = ("README.md", "run.yaml", "stats.json")
PUSHED_FOLDERS = (("data/all", "*.parquet"), ("data/sft", "*.parquet"), ("plots", "*.png"))
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


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


@dataclass
class PushReport:
    """What `push` published."""

    repo_id: str
    url: str
    revision: str
    private: bool
    commit_url: str
    files: list[str] = field(default_factory=list)
    bytes: int = 0
    retries: int = 0  # Hub steps repeated after a transient failure

    @property
    def visibility(self) -> str:
        return "private" if self.private else "public"

    def summary(self) -> str:
        return (
            f"pushed {len(self.files)} files ({self.bytes / 1e6:,.1f} MB) to {self.url} ({self.visibility}), "
            f"revision {self.revision}"
        )

    def as_table(self) -> Any:
        from rich.table import Table

        table = Table(title="push", show_header=False)
        table.add_row("repo", f"{self.repo_id} ({self.visibility})")
        table.add_row("url", self.url)
        table.add_row("revision", self.revision)
        table.add_row("commit", self.commit_url)
        table.add_row("files", f"{len(self.files)} ({self.bytes / 1e6:,.1f} MB)")
        return table


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


def push(
    cfg: PushConfig,
    run: RunDir,
    *,
    card: CardConfig | None = None,
    endpoint: str | None = None,
    token: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PushReport:
    """Create the dataset repo if needed and upload the run in one commit; returns where it went.

    With `card` settings, a missing or stale data card is (re)written first; without, it is an error.
    `endpoint` defaults to $HF_ENDPOINT read now (huggingface_hub reads it only at import).
    """
    from huggingface_hub import CommitOperationAdd, HfApi, constants, get_token

    if not cfg.repo:
        raise ConfigError("push.repo is not set: pass --repo ORG/NAME")
    check_repo_id(cfg.repo)
    token = token or get_token()
    if not token:
        raise HubError(
            "no Hugging Face token: set HF_TOKEN or run `hf auth login` (a token with write access)"
        )
    if constants.is_offline_mode():
        raise HubError("HF_HUB_OFFLINE is set: unset it to push")
    files = _files_to_push(run, card)
    endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")
    api = HfApi(endpoint=endpoint, token=token, library_name="distill")
    retry = _Retry(cfg.max_retries, cfg.backoff_s, sleep)

    repo_id = cfg.repo if "/" in cfg.repo else f"{retry(lambda: api.whoami(), 'whoami')['name']}/{cfg.repo}"
    retry(
        lambda: api.create_repo(repo_id, repo_type="dataset", private=cfg.private, exist_ok=True),
        "create repo",
    )
    info = retry(lambda: api.dataset_info(repo_id), "read repo info")
    if info.private is not None and bool(info.private) != cfg.private:
        have, want = ("private", "public") if info.private else ("public", "private")
        raise HubError(
            f"{repo_id} already exists and is {have}, but a {want} push was asked: change its "
            f"visibility on the Hub or pass --{have}"
        )
    revision = cfg.revision or constants.DEFAULT_REVISION
    if revision != constants.DEFAULT_REVISION:
        retry(
            lambda: api.create_branch(repo_id, branch=revision, repo_type="dataset", exist_ok=True),
            "create branch",
        )

    operations = _operations(api, repo_id, revision, run, files, retry)
    message = cfg.commit_message or f"distill: publish run {run.root.resolve().name}"
    description = f"Pushed by distill {_version()} from the run folder `{run.root.resolve().name}`."
    additions = [op for op in operations if isinstance(op, CommitOperationAdd)]
    retry(
        lambda: api.preupload_lfs_files(
            repo_id, additions=additions, repo_type="dataset", revision=revision, free_memory=False
        ),
        "upload files",
    )
    commit = retry(
        lambda: api.create_commit(
            repo_id,
            operations=operations,
            commit_message=message,
            commit_description=description,
            repo_type="dataset",
            revision=revision,
        ),
        "commit",
    )
    log.info("pushed %d files to %s (%s)", len(files), repo_id, "private" if cfg.private else "public")
    return PushReport(
        repo_id=repo_id,
        url=f"{endpoint}/datasets/{repo_id}",
        revision=revision,
        private=cfg.private,
        commit_url=commit.commit_url,
        files=sorted(files),
        bytes=sum(p.stat().st_size for p in files.values()),
        retries=retry.retries,
    )


# ── what goes up ──────────────────────────────────────────────────────────
def _files_to_push(run: RunDir, card: CardConfig | None) -> dict[str, Path]:
    """{path in repo: local path}; raises StageError when the run has nothing publishable yet."""
    from distill.publishing.card import is_card_current, write_card

    if not run.root.is_dir():
        raise StageError(f"{run.root} is not a run folder")
    if not run.has_rows("all"):
        raise StageError(
            f"{run.root} has no data/ to push: run `distill generate` (and `distill card`) first"
        )
    if card is not None and not is_card_current(run):
        write_card(card, run)
    if not run.card.exists():
        raise StageError(f"{run.root} has no data card: run `distill card {run.root}` first")
    if not is_card_current(run):
        raise StageError(
            f"{run.card} is older than the data it describes: run `distill card {run.root}` again"
        )
    files = {name: run.root / name for name in PUSHED_FILES if (run.root / name).is_file()}
    for folder, pattern in PUSHED_FOLDERS:
        for path in sorted((run.root / folder).glob(pattern)):
            files[path.relative_to(run.root).as_posix()] = path
    return files


def _operations(
    api: Any, repo_id: str, revision: str, run: RunDir, files: dict[str, Path], retry: _Retry
) -> list[Any]:
    """Adds for every file, plus deletes of shards and plots from an earlier push that this one replaces."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    from distill.publishing.card import REPO_ID_PLACEHOLDER

    remote = retry(lambda: api.list_repo_files(repo_id, repo_type="dataset", revision=revision), "list files")
    stale = [p for p in remote if p.startswith(("data/", "plots/")) and p not in files]
    # The card gets the real repo id in its snippets; run.yaml is scrubbed again (a hand-edited run.yaml
    # must not leak a key); every other file goes up as it is on disk.
    rewritten = {
        "README.md": run.card.read_text(encoding="utf-8").replace(REPO_ID_PLACEHOLDER, repo_id).encode()
    }
    if "run.yaml" in files:
        rewritten["run.yaml"] = _scrubbed_yaml(files["run.yaml"])
    adds = [
        CommitOperationAdd(path_in_repo=name, path_or_fileobj=rewritten.get(name, str(path)))
        for name, path in files.items()
    ]
    return [*(CommitOperationDelete(path_in_repo=p) for p in stale), *adds]


def _scrubbed_yaml(path: Path) -> bytes:
    import yaml

    from distill.publishing.card_stats import scrub

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return yaml.safe_dump(scrub(data), sort_keys=False, allow_unicode=True).encode()


# ── retries ───────────────────────────────────────────────────────────────
class _Retry:
    """Call a Hub step, retrying 5xx/429/timeouts with exponential backoff; other errors become HubError."""

    def __init__(self, max_retries: int, backoff_s: float, sleep: Callable[[float], None]) -> None:
        self.max_retries, self.backoff_s, self.sleep = max_retries, backoff_s, sleep
        self.retries = 0

    def __call__(self, step: Callable[[], T], what: str) -> T:
        import httpx2
        from huggingface_hub.errors import HfHubHTTPError

        for attempt in range(self.max_retries + 1):
            try:
                return step()
            except (HfHubHTTPError, httpx2.HTTPError, ValueError) as e:
                status, retriable = _classify(e)
                if status is None and not retriable:
                    raise
                if not retriable or attempt == self.max_retries:
                    raise HubError(_describe(e, what, status, attempt + 1)) from e
                wait = min(60.0, self.backoff_s * 2**attempt)
                log.warning(
                    "Hub %s failed (%s); retry %d/%d in %.0f s",
                    what,
                    status or type(e).__name__,
                    attempt + 1,
                    self.max_retries,
                    wait,
                )
                self.retries += 1
                self.sleep(wait)
        raise AssertionError("unreachable")


def _classify(error: Exception) -> tuple[int | None, bool]:
    """(HTTP status or None, whether retrying may help) for an error raised by huggingface_hub."""
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(error, HfHubHTTPError):
        status = error.response.status_code if error.response is not None else None
        return status, status in RETRY_STATUS
    if isinstance(error, (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError)):
        return None, True
    if isinstance(error, ValueError) and "Invalid metadata in README.md" in str(error):
        return 400, False
    return None, False


def _describe(error: Exception, what: str, status: int | None, tries: int) -> str:
    hints = {
        401: "the token was rejected: check HF_TOKEN or run `hf auth login`",
        403: "the token may not write to this namespace (needs a write token and org membership)",
        404: "not found: check the repo id and revision",
        400: "the Hub refused the request",
    }
    first = (str(error).splitlines() or [type(error).__name__])[0][:200]
    reason = hints.get(status or 0, first)
    after = f" after {tries} tries" if tries > 1 else ""
    return f"Hub {what} failed{after} ({status or type(error).__name__}): {reason}"


def _version() -> str:
    from distill import __version__

    return __version__
