"""Fixtures for the teacher tests: a real OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from distill.testing.local_server import TeacherServer, default_responder


@pytest.fixture
def teacher_server() -> Iterator[TeacherServer]:
    """A running local teacher (default math-style responder, no latency, no faults)."""
    with TeacherServer(default_responder) as server:
        yield server


@pytest.fixture
def make_teacher_server() -> Iterator[Callable[..., TeacherServer]]:
    """Start local teachers with any responder and options; all are stopped after the test."""
    started: list[TeacherServer] = []

    def make(responder: Any = default_responder, **options: Any) -> TeacherServer:
        server = TeacherServer(responder, **options).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()
