"""The teacher seam: one request type, one completion type, one protocol, and the errors a teacher raises.

    TeacherError (distill.errors)      the run cannot go on: unreachable, 401/403 → stop at once
    RequestFailed                      this request failed; `retryable` says whether to try again
                                       (429, 5xx, connection/read errors, malformed JSON) and
                                       `retry_after_s` carries the server's Retry-After

Every back-end (an OpenAI-compatible endpoint, a pool of them, a vLLM server we started) answers
`async complete(request) -> Completion` and is opened/closed with `async with`.
"""

from __future__ import annotations

import contextlib
import signal
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion call: `n` samples of one prompt."""

    messages: list[dict[str, str]]
    model: str
    temperature: float
    top_p: float
    max_tokens: int
    n: int = 1
    seed: int | None = None
    extra_body: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Choice:
    """One sample as the server sent it (reasoning separate when the server split it)."""

    content: str | None
    reasoning: str | None
    finish_reason: str | None


@dataclass(frozen=True)
class Completion:
    """A server's answer to one ChatRequest; token counts are for the whole request."""

    choices: list[Choice]
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    endpoint: str = ""


class RequestFailed(Exception):
    """A request failed; `retryable` tells whether a later attempt may succeed."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after_s: float | None = None,
        endpoint: str = "",
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after_s = retry_after_s
        self.endpoint = endpoint

    @property
    def is_rate_limit(self) -> bool:
        return self.status == 429


class Teacher(Protocol):
    """Anything that completes chat requests."""

    name: str

    async def __aenter__(self) -> Teacher: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def complete(self, request: ChatRequest) -> Completion: ...

    async def check(self) -> list[str]:
        """Fail fast (TeacherError) if the teacher cannot be used; returns the model ids it serves."""
        ...


def die_with_parent() -> None:
    """In a child process: ask Linux to SIGTERM us when our parent dies, so no server is orphaned."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
