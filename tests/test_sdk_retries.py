"""A client the user builds keeps no SDK retries under ours: the record's attempts are true.

The real openai SDK (its default httpx transport, as the seed page builds it) talks to the
test server, which answers every request 503; the server counts the requests it saw.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

import dotevals
from dotevals._sdk_retries import sdk_clients
from dotevals.testing import ServerProcess

FAILING = {"X-Dotevals-Status": "503"}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess() as process:
        yield process


@dotevals.foreach("prompt", ["1+1"], max_retries=2)
async def always_503(prompt: str, client: Any) -> bool:
    reply = await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": prompt}], extra_headers=FAILING
    )
    return bool(reply.choices)


always_503.__test__ = False  # run by the tests through dotevals.run, not collected


async def test_one_http_attempt_per_recorded_attempt(
    server: ServerProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=2)
    server.reset_stats()
    with caplog.at_level(logging.INFO, logger="dotevals"):
        results = await dotevals.run_async(
            always_503,
            experiment="sdk",
            storage=f"json://{tmp_path}",
            progress=False,
            client=client,
        )
    [record] = results.records
    assert record.error is not None
    assert record.attempts == 3  # ours: the first try and 2 retries
    assert server.stats()["requests"] == 3  # without the fix: 9 (3 SDK attempts each)
    assert client.max_retries == 2  # the user's setting is back after the run
    assert "AsyncOpenAI: its own 2 retries are off" in caplog.text
    await client.close()


def test_clients_are_found_directly_and_as_a_client_attribute() -> None:
    client = openai.OpenAI(base_url="http://127.0.0.1:9", api_key="x")

    class Holder:
        def __init__(self) -> None:
            self.client = client

    assert sdk_clients([client, Holder(), "text", 3]) == [client]
    client.close()
