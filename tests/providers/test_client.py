"""The clients built-in providers hand out: the SDK's aiohttp client, honest connection errors."""

from __future__ import annotations

import socket
from typing import Any

import openai
import pytest

from dotevals.providers._client import default_http_client, make_client
from dotevals.testing import ServerProcess


def _innermost(transport: Any) -> Any:
    while hasattr(transport, "inner"):
        transport = transport.inner
    return transport


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_clients_talk_through_aiohttp_when_it_is_installed() -> None:
    pytest.importorskip("aiohttp")
    client = make_client("m", base_url="http://127.0.0.1:1/v1", api_key="x")
    transport: Any = client._client._transport  # type: ignore[attr-defined]
    assert type(_innermost(transport)).__name__ == "AiohttpTransport"
    await client.close()


async def test_without_the_aiohttp_extra_the_sdks_httpx_client_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Missing:
        def __init__(self, **options: Any) -> None:
            raise RuntimeError("To use the aiohttp client you must have installed the extra")

    monkeypatch.setattr(openai, "DefaultAioHttpClient", Missing)
    http_client = default_http_client()
    assert isinstance(http_client, openai.DefaultAsyncHttpxClient)
    await http_client.aclose()


async def test_a_server_that_is_down_is_a_connection_error_not_a_timeout() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    client = make_client("m", base_url=url, api_key="x")
    try:
        with pytest.raises(openai.APIConnectionError) as caught:
            await client.models.list()
    finally:
        await client.close()
    assert type(caught.value) is openai.APIConnectionError


async def test_a_slow_server_is_still_a_timeout() -> None:
    with ServerProcess(latency=2.0) as server:
        client = make_client("m", base_url=server.base_url, api_key="x", timeout=0.2)
        try:
            with pytest.raises(openai.APITimeoutError):
                await client.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "What is 1 + 1?"}]
                )
        finally:
            await client.close()
