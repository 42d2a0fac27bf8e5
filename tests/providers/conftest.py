"""A local OpenAI-compatible server for provider tests, and the environment pointing at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dotevals.testing import ServerProcess


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess() as process:
        yield process


@pytest.fixture
def openai_env(monkeypatch: pytest.MonkeyPatch, server: ServerProcess) -> ServerProcess:
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    return server
