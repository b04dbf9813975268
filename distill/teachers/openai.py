"""An OpenAI-compatible endpoint (DeepSeek API, vLLM, SGLang, `transformers serve`, …) over bare aiohttp.

Why not the `openai` SDK on the hot path: measured here (bench/generate_throughput.py) it spends
milliseconds of client CPU per request, which dominates at high concurrency; one pooled aiohttp
session and `json` do the same work for a fraction. This module only moves bytes and classifies
failures; retries, rate limits and concurrency live in the engine (`distill.generation.engine`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import orjson

from distill.errors import TeacherError
from distill.teachers.base import ChatRequest, Choice, Completion, RequestFailed

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})


class OpenAITeacher:
    """One OpenAI-compatible base URL (`…/v1`), one pooled HTTP session."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        stream: bool = False,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 3600.0,
        request_timeout_s: float | None = None,
        max_connections: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = self.base_url
        self._url = f"{self.base_url}/chat/completions"
        self._headers = {"Content-Type": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._stream = stream
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._request_timeout_s = request_timeout_s
        self._max_connections = max_connections
        self._clock = clock
        self._session: Any = None

    def __repr__(self) -> str:  # never show the key
        return f"OpenAITeacher({self.base_url!r})"

    async def __aenter__(self) -> OpenAITeacher:
        connector = aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300, keepalive_timeout=60)
        # sock_read catches a server gone silent; total (the deadline) also catches one that trickles bytes.
        timeout = aiohttp.ClientTimeout(
            total=self._request_timeout_s, connect=self._connect_timeout_s, sock_read=self._read_timeout_s
        )
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, headers=self._headers)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ── preflight ──────────────────────────────────────────────────────────
    async def check(self) -> list[str]:
        """GET /models: fail fast naming the URL when it is unreachable or refuses the key."""
        timeout = aiohttp.ClientTimeout(
            total=max(self._connect_timeout_s * 3, 10), connect=self._connect_timeout_s
        )
        try:
            async with self._session.get(f"{self.base_url}/models", timeout=timeout) as resp:
                if resp.status in (401, 403):
                    raise TeacherError(
                        f"{self.base_url} refused the API key ({resp.status}): check the key's "
                        "environment variable (--api-key-env)",
                        endpoint=self.base_url,
                        status=resp.status,
                    )
                if resp.status == 404 and not self.base_url.endswith("/v1"):
                    await self._check_v1(timeout)
                if resp.status != 200:
                    return []  # some servers have no /models; the first request will tell
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            raise TeacherError(f"cannot reach {self.base_url}: {_describe(e)}", endpoint=self.base_url) from e
        except ValueError:
            return []
        data = body.get("data") if isinstance(body, dict) else None
        return [str(m.get("id")) for m in data or [] if isinstance(m, dict) and m.get("id")]

    async def _check_v1(self, timeout: Any) -> None:
        """A base URL without /v1 whose /v1/models answers: say so now, before every request fails with 404."""
        async with self._session.get(f"{self.base_url}/v1/models", timeout=timeout) as resp:
            if resp.status in (200, 401, 403):
                raise TeacherError(
                    f"{self.base_url} has no /models but {self.base_url}/v1 does: use --base-url {self.base_url}/v1",
                    endpoint=self.base_url,
                    status=404,
                )

    # ── the hot path ───────────────────────────────────────────────────────
    async def complete(self, request: ChatRequest) -> Completion:
        payload: dict[str, Any] = {
            "model": request.model,
            "messages": request.messages,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "max_tokens": request.max_tokens,
        }
        if request.n != 1:
            payload["n"] = request.n
        if request.seed is not None:
            payload["seed"] = request.seed
        if self._stream:
            payload["stream"] = True
            payload["stream_options"] = {"include_usage": True}
        payload.update(request.extra_body)
        started = self._clock()
        try:
            body = orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS)  # ~10× json.dumps; same JSON
            async with self._session.post(self._url, data=body) as resp:
                if resp.status != 200:
                    await self._raise_for_status(resp)
                if self._stream:
                    completion = await self._read_stream(resp)
                else:
                    completion = _parse_body(await resp.read(), self.base_url)
        except RequestFailed:
            raise
        except asyncio.TimeoutError as e:
            elapsed = self._clock() - started
            if self._request_timeout_s is not None and elapsed >= self._request_timeout_s * 0.99:
                why = (
                    f"no complete answer within the {self._request_timeout_s:g}s deadline (request_timeout_s)"
                )
            else:
                why = f"silent for {self._read_timeout_s:g}s (read_timeout_s)"
            raise RequestFailed(f"{self.base_url}: {why}", retryable=True, endpoint=self.base_url) from e
        except (aiohttp.ClientError, OSError) as e:
            raise RequestFailed(
                f"{self.base_url}: {_describe(e)}", retryable=True, endpoint=self.base_url
            ) from e
        return Completion(
            completion.choices,
            completion.prompt_tokens,
            completion.completion_tokens,
            self._clock() - started,
            self.base_url,
        )

    async def _raise_for_status(self, resp: Any) -> None:
        status = resp.status
        text = (await resp.text(errors="replace"))[:300]
        detail = _error_message(text)
        if status in (401, 403):
            raise TeacherError(
                f"{self.base_url} refused the request ({status}: {detail}): check the API key "
                "(--api-key-env) and your account",
                endpoint=self.base_url,
                status=status,
            )
        retry_after = _retry_after(resp.headers.get("Retry-After"))
        raise RequestFailed(
            f"{self.base_url}: HTTP {status}: {detail}",
            retryable=status in RETRYABLE_STATUS,
            status=status,
            retry_after_s=retry_after,
            endpoint=self.base_url,
        )

    async def _read_stream(self, resp: Any) -> Completion:
        contents: dict[int, list[str]] = {}
        reasonings: dict[int, list[str]] = {}
        finish: dict[int, str | None] = {}
        usage: dict[str, Any] = {}
        async for raw in resp.content:
            line = raw.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                break
            try:
                event = orjson.loads(data)
            except ValueError as e:
                raise _bad(self.base_url, "malformed stream event") from e
            if not isinstance(event, dict) or not isinstance(event.get("choices") or [], list):
                raise _bad(self.base_url, "a stream event is not an object with a `choices` list")
            if event.get("usage"):
                usage = event["usage"]
            for choice in event.get("choices") or ():
                i = _index(choice, self.base_url)
                delta = choice.get("delta") or {}
                if not isinstance(delta, dict):
                    raise _bad(self.base_url, "a stream `delta` is not an object")
                if delta.get("content"):
                    contents.setdefault(i, []).append(delta["content"])
                thought = delta.get("reasoning_content") or delta.get("reasoning")
                if thought:
                    reasonings.setdefault(i, []).append(thought)
                if choice.get("finish_reason"):
                    finish[i] = choice["finish_reason"]
                contents.setdefault(i, [])
        if not contents:
            raise _bad(self.base_url, "the stream ended without a choice")
        try:
            choices = [
                _choice(
                    "".join(contents[i]),
                    "".join(reasonings[i]) if i in reasonings else None,
                    finish.get(i),
                    self.base_url,
                )
                for i in sorted(contents)
            ]
        except TypeError as e:  # a delta whose text is not a string
            raise _bad(self.base_url, "a stream delta's text is not a string") from e
        prompt_tokens, completion_tokens = _usage(usage or None, self.base_url)
        return Completion(choices, prompt_tokens, completion_tokens, 0.0, self.base_url)


def _parse_body(body: bytes, endpoint: str) -> Completion:
    try:
        data = orjson.loads(body)  # 3× json.loads on a 4 KB reply; malformed JSON is a ValueError too
    except ValueError as e:
        start = body[:200].lstrip().lower()
        what = "an HTML page, not JSON" if start.startswith((b"<!doctype", b"<html")) else "malformed JSON"
        raise _bad(endpoint, f"the response is {what}") from e
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        raise _bad(endpoint, "the response has no `choices` list")
    choices = []
    for choice in sorted(data["choices"], key=lambda c: _index(c, endpoint)):
        message = choice.get("message")
        if not isinstance(message, dict):
            raise _bad(endpoint, "a choice has no `message` object")
        choices.append(
            _choice(
                message.get("content"),
                message.get("reasoning_content") or message.get("reasoning"),
                choice.get("finish_reason"),
                endpoint,
            )
        )
    if not choices:
        raise _bad(endpoint, "the response has no choices")
    prompt_tokens, completion_tokens = _usage(data.get("usage"), endpoint)
    return Completion(choices, prompt_tokens, completion_tokens, 0.0, endpoint)


# ── response validation: a 200 with a broken body is a failed request (retried), never a crash ──
def _bad(endpoint: str, what: str) -> RequestFailed:
    return RequestFailed(f"{endpoint}: {what}", retryable=True, endpoint=endpoint)


def _index(choice: Any, endpoint: str) -> int:
    index = choice.get("index", 0) if isinstance(choice, dict) else None
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < 1 << 16:
        raise _bad(endpoint, "a choice is not an object with an integer `index`")
    return index


def _choice(content: Any, reasoning: Any, finish_reason: Any, endpoint: str) -> Choice:
    """One validated choice: text fields are strings (or null), and it says something."""
    for name, value in (("content", content), ("reasoning", reasoning), ("finish_reason", finish_reason)):
        if value is not None and not isinstance(value, str):
            raise _bad(endpoint, f"`{name}` is {type(value).__name__}, not text")
    if not content and not reasoning:
        raise _bad(endpoint, 'the answer is empty (`content` is null or "")')
    return Choice(content, reasoning, finish_reason)


def _usage(usage: Any, endpoint: str) -> tuple[int, int]:
    """(prompt_tokens, completion_tokens) from `usage`; missing counts are 0, nonsense is a failed request."""
    if usage is None:
        return 0, 0
    if not isinstance(usage, dict):
        raise _bad(endpoint, f"`usage` is {type(usage).__name__}, not an object")
    counts = []
    for key in ("prompt_tokens", "completion_tokens"):
        value = usage.get(key) or 0
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 40:
            raise _bad(endpoint, f"`usage.{key}` is not a token count ({str(value)[:30]})")
        counts.append(value)
    return counts[0], counts[1]


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _error_message(text: str) -> str:
    try:
        data = json.loads(text)
        error = data.get("error", data) if isinstance(data, dict) else data
        message = error.get("message", error) if isinstance(error, dict) else error
        return str(message)[:200]
    except ValueError:
        return text.strip()[:200] or "no details"


def _describe(error: BaseException) -> str:
    if isinstance(error, asyncio.TimeoutError):
        return "timed out"
    text = str(error) or type(error).__name__
    return text.splitlines()[0][:200]
