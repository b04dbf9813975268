"""Pacing requests: adaptive concurrency (429s lower it, successes raise it), RPM/TPM buckets, and retries.

All waiting goes through an injected `sleep` and all time through an injected `clock`, so tests run
in virtual time. The uncontended paths never await: a request that needs no waiting costs a few
attribute updates.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from distill.teachers.base import RequestFailed

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


class AdaptiveLimiter:
    """At most `limit` requests at once; `limit` drops ×`decrease` on a 429 and grows by one per window of successes."""

    def __init__(
        self,
        maximum: int,
        *,
        minimum: int = 1,
        enabled: bool = True,
        decrease: float = 0.7,
        cooldown_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.maximum = maximum
        self.minimum = max(1, min(minimum, maximum))
        self.limit = maximum
        self.enabled = enabled
        self.active = 0
        self._decrease = decrease
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._last_cut = float("-inf")
        self._successes = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def acquire(self) -> None:
        if not self.enabled:
            return
        if self.active < self.limit and not self._waiters:
            self.active += 1
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # we were handed a slot while being cancelled: give it back
            else:
                self._waiters.remove(future)
            raise

    def release(self) -> None:
        if not self.enabled:
            return
        self.active -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.active < self.limit:
            future = self._waiters.popleft()
            if not future.done():
                self.active += 1
                future.set_result(None)

    def on_rate_limited(self) -> None:
        """A 429: cut the limit, at most once per cooldown (a burst of 429s is one signal)."""
        now = self._clock()
        if not self.enabled or now - self._last_cut < self._cooldown_s:
            return
        self._last_cut = now
        self.limit = max(self.minimum, int(self.limit * self._decrease))
        self._successes = 0

    def on_success(self) -> None:
        if not self.enabled or self.limit >= self.maximum:
            return
        self._successes += 1
        if self._successes >= self.limit:
            self._successes = 0
            self.limit += 1
            self._wake()


class TokenBucket:
    """`per_minute` units a minute (requests or tokens); `acquire` waits until the amount is available."""

    def __init__(
        self, per_minute: float, *, clock: Callable[[], float] = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self.tokens = min(self.capacity, self.tokens + (now - self._updated) * self.rate)
        self._updated = now

    async def acquire(self, amount: float = 1.0) -> None:
        amount = min(amount, self.capacity)  # a single huge request must still pass eventually
        async with self._lock:  # first come, first served
            self._refill()
            while self.tokens < amount:
                await self._sleep((amount - self.tokens) / self.rate)
                self._refill()
            self.tokens -= amount

    def settle(self, delta: float) -> None:
        """Correct an estimate once the real amount is known (may leave the bucket in debt)."""
        self._refill()
        self.tokens = min(self.capacity, self.tokens - delta)


def backoff_s(
    attempt: int, error: RequestFailed, *, initial_s: float, max_s: float, rng: random.Random
) -> float:
    """Seconds to wait before retry `attempt` (1 = first retry): Retry-After if given, else exponential + jitter."""
    if error.retry_after_s is not None:
        return min(max_s, error.retry_after_s) * (1 + 0.1 * rng.random())
    return min(max_s, initial_s * 2 ** (attempt - 1)) + rng.uniform(0, initial_s)


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    sleep: Sleep,
    initial_s: float,
    max_s: float,
    rng: random.Random,
    on_retry: Callable[[RequestFailed], None] | None = None,
) -> tuple[T, int]:
    """Run `call`, retrying retryable RequestFailed up to `attempts` tries in all; returns (result, tries).

    The first try runs without tenacity's machinery (the common case stays cheap); retries use
    tenacity with our wait (Retry-After aware) and the injected sleep.
    """
    try:
        return await call(), 1
    except RequestFailed as e:
        if not e.retryable or attempts <= 1:
            e.attempts = 1  # type: ignore[attr-defined]
            raise
        first = e
    if on_retry is not None:
        on_retry(first)
    await sleep(backoff_s(1, first, initial_s=initial_s, max_s=max_s, rng=rng))

    from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

    def wait(state: object) -> float:
        error = state.outcome.exception()  # type: ignore[attr-defined]
        if on_retry is not None:
            on_retry(error)
        return backoff_s(state.attempt_number + 1, error, initial_s=initial_s, max_s=max_s, rng=rng)  # type: ignore[attr-defined]

    retrying = AsyncRetrying(
        stop=stop_after_attempt(attempts - 1),
        wait=wait,
        sleep=sleep,
        reraise=True,
        retry=retry_if_exception(lambda e: isinstance(e, RequestFailed) and e.retryable),
    )
    tries = 1
    try:
        async for attempt in retrying:
            with attempt:
                tries += 1
                result = await call()
    except RequestFailed as e:
        e.attempts = tries  # type: ignore[attr-defined]
        raise
    return result, tries
