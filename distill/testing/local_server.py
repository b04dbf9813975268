"""A local OpenAI-compatible teacher: real HTTP on 127.0.0.1, for tests, the offline demo and benchmarks.

    with TeacherServer(my_responder, latency_s=0.5, faults={"429": 0.1}) as srv:
        srv.base_url          # "http://127.0.0.1:PORT/v1"

It serves `/v1/chat/completions` (plain and `stream=true`, `n`, `usage`), `/v1/models` and
`/health`. A `responder(messages, params, index) -> Reply` decides what the "model" says; the
server can put the reasoning in `reasoning_content` (DeepSeek, vLLM), in `reasoning`, or inline in
`<think>` tags; an async responder is awaited (one that batches concurrent requests, say). Faults
(429 + Retry-After, 500, 401, connection reset, malformed JSON, slow body) are injected by rate or
by request number. `mode="thread"` runs it on a background thread of this
process; `mode="process"` runs it in its own process (needs a picklable responder), which is what a
benchmark wants so the server does not share the client's CPU time.

Also a command: `python -m distill.testing.local_server [MODEL] --port 8000 [--latency 2]`; it
ignores unknown options, so it can stand in for `vllm serve` in tests.

Why one file of ~500 lines: it is a whole server (routing, streaming, faults, thread and process modes)
that tests, the demo and the benchmarks read as one thing; it is test support, not a stage.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import json
import multiprocessing
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from distill.teachers.base import die_with_parent

# Faults that answer 200 with a body an OpenAI client must reject (a failed request, never a crash).
BAD_200_KINDS = (
    "html",
    "empty_choices",
    "content_null",
    "content_empty",
    "content_list",
    "content_int",
    "usage_list",
    "usage_string",
    "usage_huge",
    "bad_event",
)
FAULT_KINDS = (
    "429",
    "500",
    "401",
    "400",
    "404",
    "413",
    "501",
    "reset",
    "malformed",
    "slow_body",
    "hang",
    "trickle",
    *BAD_200_KINDS,
)
ReasoningField = Literal["reasoning_content", "reasoning", "inline"]


@dataclass(frozen=True)
class Reply:
    """What the local teacher says for one choice."""

    content: str
    reasoning: str | None = None
    finish_reason: str = "stop"
    completion_tokens: int | None = None


Responder = Callable[[list[dict], dict, int], Reply | Awaitable[Reply]]  # an async one is awaited


def count_tokens(text: str) -> int:
    """A rough token count (≈4 characters a token), used for `usage`."""
    return max(1, len(text) // 4) if text else 0


def default_responder(messages: list[dict], params: dict, index: int) -> Reply:
    """A deterministic math-style reply: a short reasoning and a boxed answer derived from the prompt."""
    prompt = str(messages[-1].get("content", "")) if messages else ""
    digest = int(hashlib.sha256(prompt.encode()).hexdigest()[:8], 16)
    answer = digest % 100
    reasoning = f"Let me work through the problem carefully (sample {index}).\nThe answer should be {answer}."
    return Reply(content=f"The final answer is $\\boxed{{{answer}}}$.", reasoning=reasoning)


@dataclass(frozen=True)
class SizedResponder:
    """Replies with about `size` bytes (half reasoning, half answer): the benchmark's fixed workload."""

    size: int = 4096

    def __call__(self, messages: list[dict], params: dict, index: int) -> Reply:
        half = max(1, self.size // 2)
        reasoning = ("thinking " * (half // 9 + 1))[:half]
        return Reply(content=("The answer is \\boxed{7}. " * (half // 24 + 1))[:half], reasoning=reasoning)


@dataclass
class Faults:
    """Which requests fail, and how: by rate (`{"429": 0.05, "reset": 0.02}`) and/or by request number.

    Request numbers count from 1 in arrival order. `retry_after_s` is sent with 429s; a slow body
    sends half the response, waits `slow_body_s`, then sends the rest. `hang` answers nothing for
    `hang_s`; `trickle` sends the response one byte every `trickle_s` (so no read timeout fires).
    BAD_200_KINDS answer 200 with a broken body (HTML, no choices, null/list/int content, bad usage,
    a stream event that is not an object).
    """

    rates: Mapping[str, float] = field(default_factory=dict)
    schedule: Mapping[int, str] = field(default_factory=dict)
    seed: int = 0
    retry_after_s: float = 0.0
    slow_body_s: float = 0.2
    hang_s: float = 3600.0
    trickle_s: float = 0.5

    def __post_init__(self) -> None:
        for kind in [*self.rates, *self.schedule.values()]:
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault {kind!r}; choose from {', '.join(FAULT_KINDS)}")
        self._rng = random.Random(self.seed)

    def pick(self, request_no: int) -> str | None:
        if request_no in self.schedule:
            return self.schedule[request_no]
        roll = self._rng.random()
        for kind, rate in self.rates.items():
            if roll < rate:
                return kind
            roll -= rate
        return None


class TeacherServer:
    """A local OpenAI-compatible server; use it as a context manager."""

    def __init__(
        self,
        responder: Responder = default_responder,
        *,
        latency_s: float = 0.0,
        faults: Faults | Mapping[str, float] | None = None,
        model: str = "local-teacher",
        reasoning_field: ReasoningField = "reasoning_content",
        api_key: str | None = None,
        port: int = 0,
        mode: Literal["thread", "process"] = "thread",
        record: bool = True,
    ) -> None:
        self.responder = responder
        self.latency_s = latency_s
        self.faults = faults if isinstance(faults, Faults) or faults is None else Faults(rates=dict(faults))
        self.model = model
        self.reasoning_field = reasoning_field
        self.api_key = api_key
        self.mode = mode
        self.record = record
        self.port = port
        # What the server saw (thread mode only): request bodies and fault counts.
        self.requests: list[dict] = []
        self.fault_counts: Counter[str] = Counter()
        self.request_count = 0
        self._arrived = threading.Condition()  # notified on every chat request (thread mode)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._process: Any = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def wait_for_requests(self, count: int, timeout_s: float = 60.0) -> bool:
        """Block until `count` chat requests have arrived (thread mode); False when the timeout passes first."""
        with self._arrived:
            return self._arrived.wait_for(lambda: self.request_count >= count, timeout_s)

    # ── lifecycle ──────────────────────────────────────────────────────────
    def start(self) -> TeacherServer:
        if self.mode == "process":
            self._start_process()
        else:
            self._start_thread()
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.join(5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
            self._process = None
        if self._thread is not None and self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> TeacherServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start_thread(self) -> None:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve(ready))
            except BaseException as e:  # surfaced to start() below
                failure.append(e)
                ready.set()
            finally:
                leftover = asyncio.all_tasks(loop)  # handlers still sleeping (slow bodies, latency)
                for task in leftover:
                    task.cancel()
                if leftover:
                    loop.run_until_complete(asyncio.wait(leftover))
                loop.close()

        self._thread = threading.Thread(target=run, name="teacher-server", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]

    def _start_process(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        settings = dict(
            responder=self.responder,
            latency_s=self.latency_s,
            faults=self.faults,
            model=self.model,
            reasoning_field=self.reasoning_field,
            api_key=self.api_key,
            port=self.port,
            record=False,
        )
        self._process = ctx.Process(target=_process_main, args=(settings, child), daemon=True)
        self._process.start()
        from multiprocessing.connection import wait

        wait([parent, self._process.sentinel], 60)
        if not parent.poll():
            self.stop()
            raise RuntimeError("the local teacher server process did not start (see its stderr)")
        self.port = parent.recv()

    async def _serve(
        self,
        ready: threading.Event | None = None,
        on_port: Callable[[int], None] | None = None,
    ) -> None:
        from aiohttp import web

        self._stopped = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024**2)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/health", self._health)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port, backlog=4096)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        if on_port is not None:
            on_port(self.port)
        if ready is not None:
            ready.set()
        try:
            await self._stopped.wait()
        finally:
            await runner.cleanup()

    # ── handlers ───────────────────────────────────────────────────────────
    async def _health(self, request: Any) -> Any:
        from aiohttp import web

        return web.Response(text="ok")

    async def _models(self, request: Any) -> Any:
        from aiohttp import web

        if (denied := self._check_key(request)) is not None:
            return denied
        return web.json_response(
            {
                "object": "list",
                "data": [{"id": self.model, "object": "model", "created": 0, "owned_by": "distill"}],
            }
        )

    def _check_key(self, request: Any) -> Any:
        from aiohttp import web

        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response(
                {
                    "error": {
                        "message": "Incorrect API key provided",
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                    }
                },
                status=401,
            )
        return None

    async def _chat(self, request: Any) -> Any:
        from aiohttp import web

        self.request_count += 1
        with self._arrived:
            self._arrived.notify_all()
        number = self.request_count
        if (denied := self._check_key(request)) is not None:
            return denied
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return web.json_response(
                {"error": {"message": "body is not JSON", "type": "invalid_request_error"}}, status=400
            )
        if self.record:
            self.requests.append(body)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return web.json_response(
                {"error": {"message": "messages is required", "type": "invalid_request_error"}}, status=400
            )
        fault = self.faults.pick(number) if self.faults is not None else None
        if fault is not None:
            self.fault_counts[fault] += 1
        if fault == "429":
            retry = self.faults.retry_after_s if self.faults else 0
            return web.json_response(
                {"error": {"message": "Rate limit reached", "type": "rate_limit_error"}},
                status=429,
                headers={"Retry-After": f"{retry:g}"},
            )
        if fault == "500":
            return web.json_response(
                {"error": {"message": "internal error", "type": "server_error"}}, status=500
            )
        if fault == "401":
            return web.json_response(
                {"error": {"message": "Incorrect API key provided", "type": "auth"}}, status=401
            )
        if fault in ("400", "404", "413", "501"):
            return web.json_response(
                {"error": {"message": f"fault {fault}: the server refused this request", "type": "invalid"}},
                status=int(fault),
            )
        if fault == "html":
            return web.Response(text="<html><body>502 Bad Gateway</body></html>", content_type="text/html")
        if fault == "hang":
            await asyncio.sleep(self.faults.hang_s if self.faults else 3600)
        if fault == "reset":
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # aiohttp drops the connection without a response
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        n = int(body.get("n") or 1)
        params = {k: v for k, v in body.items() if k != "messages"}
        replies = await asyncio.gather(*(self._reply(messages, params, i) for i in range(n)))
        prompt_tokens = sum(count_tokens(str(m.get("content", ""))) for m in messages)
        completion_tokens = [
            r.completion_tokens
            if r.completion_tokens is not None
            else count_tokens(r.content) + count_tokens(r.reasoning or "")
            for r in replies
        ]
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": sum(completion_tokens),
            "total_tokens": prompt_tokens + sum(completion_tokens),
        }
        created = int(time.time())
        ident = f"chatcmpl-{number}"
        model = body.get("model") or self.model
        if fault == "malformed":
            return web.Response(
                body=b'{"id": "chatcmpl-broken", "choices": [{"mess', content_type="application/json"
            )
        if (
            fault in BAD_200_KINDS
            and fault not in ("html", "bad_event")
            or (fault == "bad_event" and not body.get("stream"))
        ):
            return web.json_response(_bad_body(fault, ident, model, replies, usage, self._message))
        if body.get("stream"):
            return await self._stream(
                request,
                ident,
                created,
                model,
                replies,
                usage,
                bool((body.get("stream_options") or {}).get("include_usage")),
                fault,
            )
        choices = [
            {"index": i, "message": self._message(r), "finish_reason": r.finish_reason, "logprobs": None}
            for i, r in enumerate(replies)
        ]
        payload = json.dumps(
            {
                "id": ident,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": choices,
                "usage": usage,
            }
        ).encode()
        if fault == "slow_body":
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            response.content_length = len(payload)
            await response.prepare(request)
            await response.write(payload[: len(payload) // 2])
            await asyncio.sleep(self.faults.slow_body_s if self.faults else 0.2)
            await response.write(payload[len(payload) // 2 :])
            await response.write_eof()
            return response
        if fault == "trickle":
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            response.content_length = len(payload)
            await response.prepare(request)
            for i in range(len(payload)):
                await response.write(payload[i : i + 1])
                await asyncio.sleep(self.faults.trickle_s if self.faults else 0.5)
            await response.write_eof()
            return response
        return web.Response(body=payload, content_type="application/json")

    async def _reply(self, messages: list[dict], params: dict, index: int) -> Reply:
        """The responder's reply; an async responder (one that batches requests) is awaited."""
        reply = self.responder(messages, params, index)
        return await reply if inspect.isawaitable(reply) else reply

    def _message(self, reply: Reply) -> dict:
        if self.reasoning_field == "inline":
            content = (
                f"<think>\n{reply.reasoning}\n</think>\n\n{reply.content}"
                if reply.reasoning
                else reply.content
            )
            return {"role": "assistant", "content": content}
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.reasoning is not None:
            message[self.reasoning_field] = reply.reasoning
        return message

    async def _stream(
        self,
        request: Any,
        ident: str,
        created: int,
        model: str,
        replies: list[Reply],
        usage: dict,
        include_usage: bool,
        fault: str | None,
    ) -> Any:
        from aiohttp import web

        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)

        def chunk(choices: list[dict], extra: dict | None = None) -> bytes:
            data = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": choices,
                **(extra or {}),
            }
            return b"data: " + json.dumps(data).encode() + b"\n\n"

        if fault == "bad_event":
            await response.write(b"data: [1, 2, 3]\n\n")
        for i, reply in enumerate(replies):
            await response.write(
                chunk([{"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
            )
            message = self._message(reply)
            for key in ("reasoning_content", "reasoning", "content"):
                text = message.get(key) or ""
                for start in range(0, len(text), 64):
                    await response.write(
                        chunk([{"index": i, "delta": {key: text[start : start + 64]}, "finish_reason": None}])
                    )
                if fault == "slow_body" and key == "content":
                    await asyncio.sleep(self.faults.slow_body_s if self.faults else 0.2)
            await response.write(chunk([{"index": i, "delta": {}, "finish_reason": reply.finish_reason}]))
        if include_usage:
            await response.write(chunk([], {"usage": usage}))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _bad_body(
    fault: str, ident: str, model: str, replies: list[Reply], usage: dict, message: Callable[[Reply], dict]
) -> dict:
    """A 200 body with one thing wrong, as `fault` names."""
    choices = [
        {"index": i, "message": message(r), "finish_reason": r.finish_reason} for i, r in enumerate(replies)
    ]
    content = {
        "content_null": None,
        "content_empty": "",
        "content_list": [{"type": "text", "text": "hi"}],
        "content_int": 42,
    }
    if fault in content:
        choices = [{**c, "message": {"role": "assistant", "content": content[fault]}} for c in choices]
    if fault == "empty_choices":
        choices = []
    bad_usage = {
        "usage_list": [1, 2],
        "usage_string": "lots",
        "usage_huge": {"prompt_tokens": 2**64, "completion_tokens": 2**70},
    }
    return {
        "id": ident,
        "object": "chat.completion",
        "model": model,
        "choices": choices,
        "usage": bad_usage.get(fault, usage),
    }


def _process_main(settings: dict, pipe: Any) -> None:
    if sys.platform == "linux":
        die_with_parent()
    server = TeacherServer(**settings)
    asyncio.run(server._serve(on_port=pipe.send))


def main(argv: list[str] | None = None) -> None:
    """Serve a local teacher until killed (`python -m distill.testing.local_server`)."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="*", default=["local-teacher"])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each response")
    parser.add_argument("--size", type=int, default=0, help="reply bytes (0: the default math-style reply)")
    parser.add_argument(
        "--reasoning-field", default="reasoning_content", choices=["reasoning_content", "reasoning", "inline"]
    )
    parser.add_argument("--served-model-name", default=None)
    for ignored in ("--host", "--tensor-parallel-size", "--data-parallel-size", "--reasoning-parser"):
        parser.add_argument(ignored, help=argparse.SUPPRESS)  # vllm serve's flags, accepted and ignored
    args, _unknown = parser.parse_known_args(argv)
    model = args.served_model_name or (args.model[-1] if args.model else "local-teacher")
    responder: Responder = SizedResponder(args.size) if args.size else default_responder
    server = TeacherServer(
        responder,
        latency_s=args.latency,
        model=model,
        reasoning_field=args.reasoning_field,
        port=args.port,
        record=False,
    )

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(
            server._serve(on_port=lambda p: print(f"serving on {server.base_url}", flush=True))
        )
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: server._stopped.set() if server._stopped else None)
        await task

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
