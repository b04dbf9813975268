"""Several endpoints serving one model: each request goes to the healthy endpoint with the least work
outstanding; an endpoint that fails (connection errors, 5xx) is drained for a while and then tried again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from distill.errors import TeacherError
from distill.teachers.base import ChatRequest, Completion, RequestFailed, Teacher


class PoolTeacher:
    """Spreads requests over `teachers` by outstanding work; drains failing ones with growing cool-downs."""

    def __init__(
        self,
        teachers: Sequence[Teacher],
        *,
        drain_s: float = 5.0,
        max_drain_s: float = 120.0,
        failures_to_drain: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not teachers:
            raise ValueError("a pool needs at least one teacher")
        self.teachers = list(teachers)
        self.name = ",".join(t.name for t in self.teachers)
        self.outstanding = [0] * len(self.teachers)
        self.served = [0] * len(self.teachers)
        self._failures = [0] * len(self.teachers)
        self._drained_until = [0.0] * len(self.teachers)
        self._drain_s = drain_s
        self._max_drain_s = max_drain_s
        self._failures_to_drain = failures_to_drain
        self._clock = clock

    async def __aenter__(self) -> PoolTeacher:
        for teacher in self.teachers:
            await teacher.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for teacher in self.teachers:
            await teacher.__aexit__(*exc)

    async def check(self) -> list[str]:
        """Every endpoint is checked; unreachable ones are drained, and all unreachable is an error."""
        models: list[str] = []
        problems: list[str] = []
        for i, teacher in enumerate(self.teachers):
            try:
                models.extend(m for m in await teacher.check() if m not in models)
            except TeacherError as e:
                if e.is_refused:  # a bad key is not an endpoint's bad day
                    raise
                problems.append(str(e))
                self._drained_until[i] = self._clock() + self._drain_s
        if len(problems) == len(self.teachers):
            raise TeacherError(f"no endpoint is reachable: {'; '.join(problems)}")
        return models

    def _pick(self) -> int:
        now = self._clock()
        healthy = [i for i in range(len(self.teachers)) if self._drained_until[i] <= now]
        if not healthy:  # all drained: try the one that comes back first
            return min(range(len(self.teachers)), key=lambda i: self._drained_until[i])
        return min(healthy, key=lambda i: self.outstanding[i])

    async def complete(self, request: ChatRequest) -> Completion:
        i = self._pick()
        self.outstanding[i] += 1
        try:
            completion = await self.teachers[i].complete(request)
        except RequestFailed as e:
            if e.retryable and not e.is_rate_limit:
                self._failed(i)
            raise
        finally:
            self.outstanding[i] -= 1
        self._failures[i] = 0
        self.served[i] += 1
        return completion

    def _failed(self, i: int) -> None:
        self._failures[i] += 1
        if self._failures[i] >= self._failures_to_drain:
            rounds = self._failures[i] - self._failures_to_drain
            self._drained_until[i] = self._clock() + min(self._max_drain_s, self._drain_s * 2**rounds)
