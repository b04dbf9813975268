"""Retries of Hub steps: 5xx, 429, timeouts and connection errors again with exponential backoff; the rest
become one-line HubErrors that say what to do (a rejected token, a namespace the token may not write to).

The sleep is injected, so tests run the backoff schedule in virtual time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from distill.errors import HubError

__all__ = ["RETRY_STATUS", "HubRetry"]

log = logging.getLogger(__name__)
T = TypeVar("T")
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class HubRetry:
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
