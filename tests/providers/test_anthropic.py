"""AnthropicProvider end to end: the Anthropic SDK over HTTP to the test server's Messages API."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest

import dotevals
import dotevals.cache
from dotevals.errors import ProviderError
from dotevals.providers import AnthropicProvider
from dotevals.providers.anthropic import openai_usage
from dotevals.results import Usage
from dotevals.retry import is_throttle, is_transient, retry_after
from dotevals.testing import ServerProcess, check_provider

QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
QUESTION = [{"role": "user", "content": "What is 2+3?"}]

ARITHMETIC = """
from dotevals import foreach

data = [("What is 2+3?", "5"), ("What is 6*7?", "42"), ("What is 14+14?", "28")]

@foreach("question,answer", data)
async def eval_math(question, answer, model):
    reply = await model.messages.create(
        model=model.model, max_tokens=64, messages=[{"role": "user", "content": question}]
    )
    return reply.content[0].text == answer
"""


@pytest.fixture(scope="module")
def keyed() -> Iterator[ServerProcess]:
    """The test server requiring a key, sending ``retry-after: 2`` with injected errors."""
    with ServerProcess(api_key="sk-ant-test", retry_after=2.0) as process:
        yield process


def provider_for(server: ServerProcess, **options: object) -> AnthropicProvider:
    return AnthropicProvider(api_key="sk-ant-test", base_url=server.url, **options)


async def test_messages_answer_with_usage_and_the_client_is_shared(keyed: ServerProcess) -> None:
    provider = provider_for(keyed, timeout=10)
    first, second = await provider.setup("dotevals-test"), await provider.setup("dotevals-test")
    client = first.model
    assert isinstance(client, anthropic.AsyncAnthropic) and client is second.model
    assert client.model == "dotevals-test" and client.max_retries == 0
    reply = await client.messages.create(
        model=client.model, max_tokens=64, system="Be brief.", messages=QUESTION
    )
    assert reply.content[0].text == "5" and reply.stop_reason == "end_turn"
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (5, 1)
    await first.teardown()
    assert not client.is_closed()
    await second.teardown()
    assert client.is_closed() and provider.active_resources() == []


async def test_streamed_messages(keyed: ServerProcess) -> None:
    handle = await provider_for(keyed).setup("dotevals-test")
    client = handle.model
    question = [{"role": "user", "content": "Say hello to everyone here"}]
    async with client.messages.stream(model=client.model, max_tokens=64, messages=question) as s:
        pieces = [piece async for piece in s.text_stream]
        final = await s.get_final_message()
    await handle.teardown()
    assert len(pieces) > 1 and "".join(pieces) == final.content[0].text
    plain = await provider_for(keyed).setup("dotevals-test")
    reply = await plain.model.messages.create(
        model="dotevals-test", max_tokens=64, messages=question
    )
    await plain.teardown()
    assert final.content[0].text == reply.content[0].text
    assert (final.stop_reason, final.usage.output_tokens) == ("end_turn", reply.usage.output_tokens)


async def test_answers_come_from_the_response_cache(tmp_path: Path) -> None:
    cache = dotevals.cache.configure(tmp_path / "cache.sqlite")
    assert cache is not None
    try:
        async with ServerProcess(api_key="sk-ant-test") as server:
            handle = await provider_for(server).setup("dotevals-test")
            client = handle.model
            replies = [
                await client.messages.create(model=client.model, max_tokens=8, messages=QUESTION)
                for _ in range(2)
            ]
            await handle.teardown()
            assert server.stats()["by_path"] == {"/v1/messages": 1}
    finally:
        dotevals.cache.configure(None)
    assert [reply.content[0].text for reply in replies] == ["5", "5"]
    assert (cache.hits, cache.misses) == (1, 1)


async def test_the_contract_holds(keyed: ServerProcess) -> None:
    async def ask(client: anthropic.AsyncAnthropic) -> None:
        reply = await client.messages.create(model=client.model, max_tokens=8, messages=QUESTION)
        assert reply.content[0].text == "5"

    await check_provider(provider_for(keyed), "dotevals-test", use=ask)


@pytest.mark.parametrize(
    ("status", "transient", "throttle"),
    [(429, True, True), (529, True, True), (500, True, False), (400, False, False)],
)
async def test_errors_are_classified_for_retries(
    keyed: ServerProcess, status: int, transient: bool, throttle: bool
) -> None:
    handle = await provider_for(keyed).setup("dotevals-test")
    client = handle.model
    with pytest.raises(anthropic.APIStatusError) as caught:
        await client.messages.create(
            model=client.model,
            max_tokens=8,
            messages=QUESTION,
            extra_headers={"X-Dotevals-Status": str(status)},
        )
    await handle.teardown()
    error = caught.value
    assert error.status_code == status
    assert (is_transient(error), is_throttle(error)) == (transient, throttle)
    assert retry_after(error) == 2.0  # the server's retry-after header


async def test_overloaded_answers_are_retried_by_the_engine(tmp_path: Path) -> None:
    """Every other request is a 529 with ``retry-after: 0``: every row still ends right."""
    rows = [(f"What is {i}+1?", str(i + 1)) for i in range(6)]

    @dotevals.foreach("q,a", rows)
    async def ask(q: str, a: str, client: Any) -> bool:
        reply = await client.messages.create(
            model=client.model, max_tokens=8, messages=[{"role": "user", "content": q}]
        )
        return bool(reply.content[0].text == a)

    async with ServerProcess(error_rate=0.5, error_status=529, retry_after=0.0) as server:
        handle = await AnthropicProvider(api_key="k", base_url=server.url).setup("m")
        result = await dotevals.run_async(
            ask, experiment="e", storage=f"json://{tmp_path}", progress=False, client=handle.model
        )
        await handle.teardown()
        assert server.stats()["errors_injected"] >= 3
    assert result.summary()["errors"] == 0 and result.summary()["total"] == len(rows)
    assert max(record.attempts for record in result.records) > 1
    # each row's usage: its own question (3 words) and answer (1 word), whatever the retries
    assert {record.usage for record in result.records} == {Usage(3, 1, 4, 0)}


async def test_max_tokens_is_required_and_truncates(keyed: ServerProcess) -> None:
    handle = await provider_for(keyed).setup("dotevals-test")
    client = handle.model
    long_question = [{"role": "user", "content": "Say hello to everyone here"}]
    reply = await client.messages.create(model=client.model, max_tokens=1, messages=long_question)
    assert reply.stop_reason == "max_tokens" and reply.usage.output_tokens == 1
    with pytest.raises(anthropic.BadRequestError, match="max_tokens"):
        await client.messages.create(model=client.model, messages=QUESTION, max_tokens=0)
    await handle.teardown()


async def test_a_wrong_key_is_not_retried(keyed: ServerProcess) -> None:
    handle = await AnthropicProvider(api_key="wrong", base_url=keyed.url).setup("m")
    with pytest.raises(anthropic.AuthenticationError) as caught:
        await handle.model.messages.create(model="m", max_tokens=8, messages=QUESTION)
    await handle.teardown()
    assert not is_transient(caught.value)


async def test_a_server_that_is_down_is_a_connection_error_to_retry() -> None:
    handle = await AnthropicProvider(api_key="k", base_url="http://127.0.0.1:9").setup("m")
    with pytest.raises(anthropic.APIConnectionError) as caught:
        await handle.model.messages.create(model="m", max_tokens=8, messages=QUESTION)
    await handle.teardown()
    assert is_transient(caught.value)


async def test_a_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "anthropic", None)
    with pytest.raises(ProviderError, match=r"pip install 'dotevals\[anthropic\]'") as caught:
        await AnthropicProvider(api_key="k").setup("claude-sonnet-4-5")
    assert caught.value.provider == "anthropic" and caught.value.spec == "claude-sonnet-4-5"


def test_model_option_end_to_end(
    pytester: pytest.Pytester, keyed: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", keyed.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    pytester.makepyfile(eval_math=ARITHMETIC)
    result = pytester.runpytest("--model", "anthropic:dotevals-test", "-v", *QUIET)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*eval_math[[]anthropic:dotevals-test[]] PASSED*"])
    # 2+3 and 6*7 right, 14+14 not; 3 rows of 3 prompt and 1 answer tokens
    result.stdout.fnmatch_lines(["*3/3*0*accuracy*12*", "*0.667*"])


def test_usage_counts_cache_reads_as_cached_prompt_tokens() -> None:
    usage = anthropic.types.Usage(
        input_tokens=10, cache_read_input_tokens=90, cache_creation_input_tokens=5, output_tokens=7
    )
    shaped = openai_usage(usage)
    assert Usage.from_response({"usage": shaped}) == Usage(105, 7, 112, 90)
    assert openai_usage(None) is None
