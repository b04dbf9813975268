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

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distill.errors import ConfigError, HubError, StageError
from distill.publishing.config import CardConfig, PushConfig, check_repo_id
from distill.publishing.disclosure import Leak, PublicView, find_leaks
from distill.publishing.hub_retry import HubRetry
from distill.reports import key_value_table
from distill.run import RunDir

log = logging.getLogger(__name__)

# What a pushed repo holds, relative to the run folder (generations/ and logs/ stay local).
PUSHED_FILES = ("README.md", "run.yaml", "stats.json")
PUSHED_FOLDERS = (("data/all", "*.parquet"), ("data/sft", "*.parquet"), ("plots", "*.png"))


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

    def table_rows(self) -> list[tuple[str, str]]:
        return [
            ("repo", f"{self.repo_id} ({self.visibility})"),
            ("url", self.url),
            ("revision", self.revision),
            ("commit", self.commit_url),
            ("files", f"{len(self.files)} ({self.bytes / 1e6:,.1f} MB)"),
        ]

    def as_table(self) -> Any:
        return key_value_table("push", self.table_rows())

    def to_stats(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_stats(cls, stats: Mapping[str, Any]) -> PushReport:
        known = {k: v for k, v in stats.items() if k in cls.__dataclass_fields__}
        return cls(**{"repo_id": "", "url": "", "revision": "", "private": True, "commit_url": "", **known})


@dataclass
class PushPlan:
    """What a push would send, computed without any network call (`distill push --dry-run`)."""

    repo_id: str
    endpoint: str
    url: str
    revision: str
    private: bool
    files: dict[
        str, bytes | Path
    ]  # path in the repo -> the bytes that go up (rewritten) or the file as it is
    metadata: dict[str, Any]
    leaks: list[Leak] = field(default_factory=list)

    @property
    def visibility(self) -> str:
        return "private" if self.private else "public"

    def size(self, name: str) -> int:
        content = self.files[name]
        return len(content) if isinstance(content, bytes) else content.stat().st_size

    @property
    def bytes(self) -> int:
        return sum(self.size(name) for name in self.files)

    def summary(self) -> str:
        return (
            f"dry run: would push {len(self.files)} files ({self.bytes / 1e6:,.1f} MB) to {self.url} "
            f"({self.visibility}), revision {self.revision}; nothing was sent"
        )

    def as_table(self) -> Any:
        from rich.table import Table

        table = Table(title=f"push --dry-run → {self.url} ({self.visibility}, revision {self.revision})")
        table.add_column("file in the run")
        table.add_column("size", justify="right")
        table.add_column("goes to (path in the repo)")
        for name in sorted(self.files):
            source = self.files[name]
            local = name if isinstance(source, bytes) else source.name if "/" not in name else name
            note = "  (its public view)" if isinstance(source, bytes) else ""
            table.add_row(local, f"{self.size(name):,} B", f"{name}{note}")
        return table

    def metadata_table(self) -> Any:
        from rich.table import Table

        table = Table(title="card metadata", show_header=False)
        for key, value in self.metadata.items():
            table.add_row(key, str(value))
        return table


def plan_push(
    cfg: PushConfig, run: RunDir, *, card: CardConfig | None = None, endpoint: str | None = None
) -> PushPlan:
    """Every file a push would upload, as it would be uploaded, with no network call and no token.

    `repo_id` stays `<your namespace>/NAME` when the repo id has no namespace (finding it needs the Hub).
    """
    from huggingface_hub import DatasetCard, constants

    repo = _checked_repo(cfg)
    view = (card or _card_settings(run)).view
    files = _files_to_push(run, card)
    repo_id = repo if "/" in repo else f"<your namespace>/{repo}"
    endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")
    contents = _publishable(run, files, repo_id, view)
    texts = {name: c.decode("utf-8") for name, c in contents.items() if isinstance(c, bytes)}
    return PushPlan(
        repo_id=repo_id,
        endpoint=endpoint,
        url=f"{endpoint}/datasets/{repo_id}",
        revision=cfg.revision or constants.DEFAULT_REVISION,
        private=cfg.private,
        files=contents,
        metadata=DatasetCard(texts["README.md"]).data.to_dict(),
        leaks=find_leaks(texts, show_paths=view.show_paths, show_endpoints=view.show_endpoints),
    )


def push(
    cfg: PushConfig,
    run: RunDir,
    *,
    card: CardConfig | None = None,
    endpoint: str | None = None,
    token: str | None = None,
    force: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> PushReport:
    """Create the dataset repo if needed and upload the run in one commit; returns where it went.

    With `card` settings, a missing or stale data card is (re)written first; without, it is an error.
    A repo that already holds another dataset (another run's, or not made by distill) is refused
    unless `force`, which replaces its files. `endpoint` defaults to $HF_ENDPOINT read now
    (huggingface_hub reads it only at import).
    """
    from huggingface_hub import CommitOperationAdd, HfApi, constants, get_token

    repo = _checked_repo(cfg)  # before the token: a bad repo id is the first thing to say
    token = token or get_token()
    if not token:
        raise HubError(
            "no Hugging Face token: set HF_TOKEN or run `hf auth login` (a token with write access)"
        )
    if constants.is_offline_mode():
        raise HubError("HF_HUB_OFFLINE is set: unset it to push")
    plan = plan_push(cfg, run, card=card, endpoint=endpoint)
    if plan.leaks:
        raise StageError(
            f"{plan.leaks[0]} would be published ({len(plan.leaks)} such line(s)): remove it, or set "
            f"card.show_paths / card.show_endpoints if it is meant to be public"
        )
    endpoint = plan.endpoint
    api = HfApi(endpoint=endpoint, token=token, library_name="distill")
    retry = HubRetry(cfg.max_retries, cfg.backoff_s, sleep)

    repo_id = repo if "/" in repo else f"{retry(lambda: api.whoami(), 'whoami')['name']}/{repo}"
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
    revision = plan.revision
    if revision != constants.DEFAULT_REVISION:
        retry(
            lambda: api.create_branch(repo_id, branch=revision, repo_type="dataset", exist_ok=True),
            "create branch",
        )

    contents = {
        **plan.files,
        "README.md": _card_bytes(run, repo_id),
    }  # the card's snippets name the real repo
    operations = _operations(api, repo_id, revision, run, contents, retry, force=force)
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
    log.info("pushed %d files to %s (%s)", len(contents), repo_id, "private" if cfg.private else "public")
    return PushReport(
        repo_id=repo_id,
        url=f"{endpoint}/datasets/{repo_id}",
        revision=revision,
        private=cfg.private,
        commit_url=commit.commit_url,
        files=sorted(contents),
        bytes=sum(len(c) if isinstance(c, bytes) else c.stat().st_size for c in contents.values()),
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


def _publishable(
    run: RunDir, files: dict[str, Path], repo_id: str, view: PublicView
) -> dict[str, bytes | Path]:
    """The files as they go up: the card with the real repo id, run.yaml and stats.json in their public view.

    The local run.yaml keeps full values (a run resumes from it); the copy that leaves the machine shows
    file names for paths and `local` / `private endpoint` for hosts, and is scrubbed of secrets again
    (a hand-edited run.yaml must not leak a key). Every other file goes up as it is on disk.
    """
    import yaml

    out: dict[str, bytes | Path] = dict(files)
    out["README.md"] = _card_bytes(run, repo_id)
    if "run.yaml" in files:
        data = view.apply(yaml.safe_load(files["run.yaml"].read_text(encoding="utf-8")))
        out["run.yaml"] = yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode()
    if "stats.json" in files:
        data = view.apply(run.read_json(files["stats.json"]))
        out["stats.json"] = (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()
    return out


def _card_bytes(run: RunDir, repo_id: str) -> bytes:
    """The data card as it goes up: its load snippets name `repo_id`."""
    from distill.publishing.card import REPO_ID_PLACEHOLDER

    return run.card.read_text(encoding="utf-8").replace(REPO_ID_PLACEHOLDER, repo_id).encode()


def _checked_repo(cfg: PushConfig) -> str:
    """`push.repo`, checked (no network); ConfigError when it is missing or not a Hub id."""
    if not cfg.repo:
        raise ConfigError("push.repo is not set: pass --repo ORG/NAME")
    check_repo_id(cfg.repo)
    return cfg.repo


def _card_settings(run: RunDir) -> CardConfig:
    """The card section of the run's run.yaml (its show_paths / show_endpoints), or the defaults."""

    recipe = run.read_settings()
    section = (recipe or {}).get("card") if isinstance(recipe, dict) else None
    return CardConfig.model_validate(section) if isinstance(section, dict) else CardConfig()


def _operations(
    api: Any,
    repo_id: str,
    revision: str,
    run: RunDir,
    contents: dict[str, bytes | Path],
    retry: HubRetry,
    *,
    force: bool,
) -> list[Any]:
    """Adds for every file, plus deletes of what an earlier push left that this one replaces.

    A repo holding files of another dataset (its card carries another run id, or none) is refused
    unless `force`, which deletes everything of it but `.gitattributes`.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    remote = retry(lambda: api.list_repo_files(repo_id, repo_type="dataset", revision=revision), "list files")
    theirs = [p for p in remote if p != ".gitattributes"]
    if theirs and not force:
        other = _remote_run_id(api, repo_id, revision, retry) if "README.md" in remote else None
        if other != run.run_id:
            what = (
                f"the dataset of another run ({other})" if other else "a dataset not published from this run"
            )
            raise HubError(
                f"{repo_id} already holds {what}: pass --force to replace it, or choose another --repo"
            )
    stale = [p for p in theirs if p not in contents and (force or p.startswith(("data/", "plots/")))]
    adds = [
        CommitOperationAdd(path_in_repo=name, path_or_fileobj=c if isinstance(c, bytes) else str(c))
        for name, c in contents.items()
    ]
    return [*(CommitOperationDelete(path_in_repo=p) for p in stale), *adds]


def _remote_run_id(api: Any, repo_id: str, revision: str, retry: HubRetry) -> str | None:
    """The `distill_run_id` in the repo's card metadata, or None when it has none."""
    import tempfile

    from huggingface_hub import DatasetCard

    with tempfile.TemporaryDirectory() as tmp:
        path = retry(
            lambda: api.hf_hub_download(
                repo_id, "README.md", repo_type="dataset", revision=revision, cache_dir=tmp
            ),
            "read the repo's card",
        )
        try:
            data = DatasetCard(Path(path).read_text(encoding="utf-8")).data.to_dict()
        except ValueError:
            return None
    value = data.get("distill_run_id")
    return str(value) if value else None


def _version() -> str:
    from distill import __version__

    return __version__
