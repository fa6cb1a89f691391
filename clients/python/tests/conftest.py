"""Shared fixtures: env hygiene, a Hookline stand-in on 127.0.0.1, a closed port, and a
LangGraph handler sending to a recording sink."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from _support import FakeHookline, Sink

from hookline.langgraph import HooklineCallbackHandler


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Hookline config and no LangSmith tracing leaks in from the environment."""
    for name in (
        "HOOKLINE_URL",
        "HOOKLINE_API_KEY",
        "LANGSMITH_TRACING",
        "LANGSMITH_TRACING_V2",
        "LANGCHAIN_TRACING",
        "LANGCHAIN_TRACING_V2",
        "LANGSMITH_API_KEY",
        "LANGCHAIN_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def hookline_server() -> Iterator[FakeHookline]:
    server = FakeHookline().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def handler(sink: Sink):
    h = HooklineCallbackHandler(sink, flush_interval=0.05, flush_at_exit=False)
    yield h
    h.close(timeout=5)
