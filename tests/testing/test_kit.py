"""The provider authors' kit: it passes providers that keep the contract, and names each breach."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dotevals.providers import LocalModelProvider, ModelHandle, ModelProvider, OpenAIProvider
from dotevals.testing import ServerProcess, check_provider


class Unshared(ModelProvider):
    """Makes a new model on every setup: concurrent setups of one spec are not shared."""

    async def setup(self, resource_spec: str, **config: Any) -> ModelHandle:
        return ModelHandle(resource_spec, object(), self)

    async def teardown(self, resource_id: str) -> None:
        pass


class Leaky(ModelProvider):
    """Starts a server (in a session of its own) with a child; stops only the server itself."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []
        self.model: object | None = None

    async def setup(self, resource_spec: str, **config: Any) -> ModelHandle:
        if self.model is None:
            server = (
                "import subprocess, sys, time; "
                "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
                "print('up', flush=True); time.sleep(60)"
            )
            process = subprocess.Popen(
                [sys.executable, "-c", server], stdout=subprocess.PIPE, start_new_session=True
            )
            assert process.stdout is not None and process.stdout.readline() == b"up\n"
            self.started.append(process)
            self.model = object()
        return ModelHandle(resource_spec, self.model, self)

    async def teardown(self, resource_id: str) -> None:
        if self.model is not None:
            for process in self.started:
                process.kill()  # the server only: its child lives on, an orphan
                process.wait()
        self.model = None


class Strict(ModelProvider):
    """Refuses to tear down a resource twice."""

    def __init__(self) -> None:
        self.refs: dict[str, int] = {}
        self.model = object()

    async def setup(self, resource_spec: str, **config: Any) -> ModelHandle:
        self.refs[resource_spec] = self.refs.get(resource_spec, 0) + 1
        return ModelHandle(resource_spec, self.model, self)

    async def teardown(self, resource_id: str) -> None:
        if self.refs.get(resource_id, 0) <= 0:
            raise KeyError(f"unknown resource {resource_id}")
        self.refs[resource_id] -= 1


async def test_a_provider_that_keeps_the_contract_passes(tmp_path: Path) -> None:
    used: list[str] = []

    async def ask(client: Any) -> None:
        reply = await client.chat.completions.create(
            model=client.model, messages=[{"role": "user", "content": "What is 2+3?"}]
        )
        used.append(reply.choices[0].message.content)

    provider = LocalModelProvider(log_dir=tmp_path, stop_grace=1.0)
    checked = await check_provider(provider, "dotevals-test", use=ask)
    assert used == ["5"] and checked.resource_id == "dotevals-test"
    assert checked.processes  # the server and its watchdog, all gone now
    assert provider.active_resources() == []


async def test_an_sdk_provider_passes() -> None:
    async with ServerProcess() as server:
        provider = OpenAIProvider(base_url=server.base_url, api_key="k")
        checked = await check_provider(provider, "gpt-4o-mini", concurrency=8)
    assert checked.processes == frozenset()


async def test_unshared_models_are_named() -> None:
    with pytest.raises(AssertionError, match=r"Unshared.setup\('m'\): 4 concurrent setups made"):
        await check_provider(Unshared(), "m")


async def test_a_grandchild_left_behind_is_named() -> None:
    provider = Leaky()
    try:
        with pytest.raises(AssertionError, match="outlived the last teardown"):
            await check_provider(provider, "m", exit_timeout=0.5)
        assert all(process.returncode is not None for process in provider.started)
    finally:
        for process in provider.started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the orphan kept the server's group
            if process.stdout is not None:
                process.stdout.close()


async def test_a_teardown_that_is_not_idempotent_fails() -> None:
    with pytest.raises(AssertionError, match="released resource raised KeyError"):
        await check_provider(Strict(), "m")
