"""OpenAIProvider: shared AsyncOpenAI clients bound to a model name, over real HTTP."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from dotevals._registry import load_entry_point
from dotevals.errors import ProviderError
from dotevals.providers import ModelHandle, OpenAIProvider, SharedResourceProvider
from dotevals.testing import ServerProcess


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess() as process:
        yield process


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, server: ServerProcess) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")


def test_is_the_openai_entry_point_and_needs_no_arguments() -> None:
    cls = load_entry_point("dotevals.model_providers", "openai")
    assert cls is OpenAIProvider
    assert isinstance(cls(), SharedResourceProvider)


async def test_setup_returns_a_client_bound_to_the_model(server: ServerProcess) -> None:
    provider = OpenAIProvider()
    handle = await provider.setup("gpt-4o-mini")
    client = handle.model
    assert isinstance(handle, ModelHandle)
    assert isinstance(client, openai.AsyncOpenAI)
    assert client.model == "gpt-4o-mini"
    assert str(client.base_url).rstrip("/") == server.base_url
    assert client.max_retries == 0
    response = await client.chat.completions.create(
        model=client.model, messages=[{"role": "user", "content": "What is 2+3?"}]
    )
    assert response.choices[0].message.content == "5"
    assert response.model == "gpt-4o-mini"
    await handle.teardown()


async def test_setup_config_overrides_constructor_options(server: ServerProcess) -> None:
    provider = OpenAIProvider(
        api_key="from-constructor", base_url="http://127.0.0.1:9/v1", max_retries=3, timeout=7.0
    )
    first = await provider.setup("m")
    assert first.model.api_key == "from-constructor"
    assert first.model.max_retries == 3
    assert first.model.timeout == 7.0
    second = await provider.setup("m", base_url=server.base_url, default_headers={"X-A": "1"})
    assert str(second.model.base_url).rstrip("/") == server.base_url
    assert second.model.api_key == "from-constructor"
    assert second.model.default_headers["X-A"] == "1"
    assert second.model is not first.model
    await provider.aclose()


async def test_clients_are_cached_per_model_and_config() -> None:
    provider = OpenAIProvider()
    a1, a2 = await provider.setup("a"), await provider.setup("a")
    b = await provider.setup("b")
    a_other = await provider.setup("a", timeout=3.0)
    assert a1.model is a2.model
    assert b.model is not a1.model and b.model.model == "b"
    assert a_other.model is not a1.model
    assert len(provider.active_resources()) == 3
    await provider.aclose()


async def test_concurrent_setup_of_one_spec_creates_one_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[str] = []
    real = OpenAIProvider.create

    async def slow_counting(self: OpenAIProvider, resource_id: str, spec: str, config: Any) -> Any:
        made.append(spec)
        await asyncio.sleep(0.01)  # every other setup runs meanwhile: only the lock serializes
        return await real(self, resource_id, spec, config)

    monkeypatch.setattr(OpenAIProvider, "create", slow_counting)
    provider = OpenAIProvider()
    handles = await asyncio.gather(*(provider.setup("gpt-4o-mini") for _ in range(20)))
    assert made == ["gpt-4o-mini"]
    assert len({id(h.model) for h in handles}) == 1
    for handle in handles:
        await handle.teardown()
    assert provider.active_resources() == []


async def test_client_is_closed_with_the_last_teardown() -> None:
    provider = OpenAIProvider()
    first, second = await provider.setup("m"), await provider.setup("m")
    client = first.model
    await first.teardown()
    assert not first.is_active and second.is_active
    assert not client.is_closed()
    await first.teardown()  # a second teardown of one handle does nothing
    assert not client.is_closed()
    await second.teardown()
    assert client.is_closed()
    assert provider.active_resources() == []


async def test_aclose_closes_every_client() -> None:
    provider = OpenAIProvider()
    clients = [(await provider.setup(name)).model for name in ("a", "b")]
    await provider.aclose()
    assert all(client.is_closed() for client in clients)
    assert provider.active_resources() == []


async def test_missing_api_key_is_a_provider_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(ProviderError) as info:
        await OpenAIProvider().setup("gpt-4o-mini")
    error = info.value
    assert error.provider == "openai" and error.spec == "gpt-4o-mini"
    assert "'openai'" in str(error) and "'gpt-4o-mini'" in str(error)
    assert isinstance(error.__cause__, openai.OpenAIError)


async def test_api_key_given_to_setup_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    provider = OpenAIProvider()
    handle = await provider.setup("gpt-4o-mini", api_key="sk-setup")
    assert handle.model.api_key == "sk-setup"
    await handle.teardown()


async def test_invalid_option_is_a_provider_error() -> None:
    with pytest.raises(ProviderError) as info:
        await OpenAIProvider(not_an_option=1).setup("m")
    assert isinstance(info.value.__cause__, TypeError)


async def test_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(ProviderError, match=r"dotevals\[openai\]") as info:
        await OpenAIProvider().setup("gpt-4o-mini")
    assert isinstance(info.value.__cause__, ImportError)
