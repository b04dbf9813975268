"""The errors `distill` raises on purpose; anything else is a bug.

    DistillError                  root: the CLI prints its one-line message and exits 1
    ├── ConfigError               a recipe or flag is wrong (unknown key, bad type, missing field)
    ├── InputError                an input file is wrong; names the file, row and field
    ├── TeacherError              the teacher cannot be used (unreachable, 401, gave up)
    │   └── ServerStartError      a `vllm serve` we started did not become healthy
    ├── VerifyError               a verifier cannot run at all (not: a sample that fails)
    ├── StageError                a stage cannot run yet (a previous stage has not run)
    └── HubError                  the Hub refused or could not be reached

Messages are one line and say what to do. Never put a secret in one.
"""

from __future__ import annotations

from pathlib import Path


class DistillError(Exception):
    """Root of every error `distill` raises on purpose."""


class ConfigError(DistillError):
    """A recipe, override or flag is invalid."""


class InputError(DistillError):
    """An input file is invalid; the message names the file, row and field."""

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        row: int | None = None,
        field: str | None = None,
    ) -> None:
        where = [str(p) for p in (path,) if p is not None]
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
        self.path, self.row, self.field = path, row, field


class TeacherError(DistillError):
    """The teacher cannot be used: unreachable, unauthorised, or it kept failing.

    `endpoint` is the base URL at fault (None: no single one), `status` the HTTP status it answered
    (None: it never answered), so callers decide on facts, not on the message's words.
    """

    def __init__(self, message: str, *, endpoint: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.status = status

    @property
    def is_refused(self) -> bool:
        """The endpoint answered and refused the credentials (401/403): no retry, no other endpoint helps."""
        return self.status in (401, 403)


class ServerStartError(TeacherError):
    """A server we started did not become healthy."""


class VerifyError(DistillError):
    """A verifier cannot run at all."""


class StageError(DistillError):
    """A stage cannot run: what it needs from an earlier stage is missing."""


class HubError(DistillError):
    """The Hugging Face Hub refused a request or could not be reached."""
