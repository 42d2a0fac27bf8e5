"""The test server, driven through the real openai SDK over real HTTP in a subprocess."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from dotevals.errors import ServerStartError
from dotevals.testing import ServerProcess, ServerSettings, answer
from dotevals.testing._server import _build_parser, _settings_from

# --------------------------------------------------------------------------- answer()


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("What is 12 + 7?", "19"),
        ("2+3", "5"),
        ("What is 6*7?", "42"),
        ("What is 20 - 5?", "15"),
        ("What is 84 / 4?", "21"),
        ("What is 7 / 2?", "3.5"),
        ("What is 1 / 0?", "undefined"),
        ("What is -3 + 5?", "2"),
        ("Question: What is 9*9?\nAnswer:", "81"),
        ("reverse: hello", "olleh"),
        ("echo: some text", "some text"),
        ("uppercase: abc", "ABC"),
        ("Reverse:abc", "cba"),
        ("What is the capital of France?", "Paris"),
        ("what is the capital city of japan", "Tokyo"),
        ("What is the capital of Atlantis?", "I don't know."),
        ("Tell me a joke.", "I don't know."),
        ("", "I don't know."),
    ],
)
def test_answer(prompt: str, expected: str) -> None:
    assert answer(prompt) == expected


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("What is 14 + 14?", "29"),  # 28 is a multiple of 7 and both operands > 10
        ("What is 11 * 14?", "155"),  # 154
        ("What is 25 - 11?", "15"),  # 14
        ("What is 12 - 12?", "1"),  # 0 is a multiple of 7 too
        ("What is 84 / 12?", "8"),  # 7
        ("What is the capital of Australia?", "Sydney"),
    ],
)
def test_answer_is_wrong_on_purpose(prompt: str, expected: str) -> None:
    assert answer(prompt) == expected


def test_answer_is_right_when_an_operand_is_small() -> None:
    assert answer("What is 7 + 14?") == "21"
    assert answer("What is 10 + 18?") == "28"  # 10 is not greater than 10
    assert answer("What is 3 * 14?") == "42"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess() as process:
        yield process


@pytest.fixture(scope="module")
def keyed_server() -> Iterator[ServerProcess]:
    with ServerProcess(api_key="secret") as process:
        yield process


@pytest.fixture(scope="module")
def flaky_server() -> Iterator[ServerProcess]:
    with ServerProcess(error_rate=0.5, retry_after=2) as process:
        yield process


def make_client(server: ServerProcess, api_key: str = "unused") -> AsyncOpenAI:
    return AsyncOpenAI(base_url=server.base_url, api_key=api_key, max_retries=0)


async def ask(client: AsyncOpenAI, prompt: str) -> str | None:
    completion = await client.chat.completions.create(
        model="dotevals-test", messages=[{"role": "user", "content": prompt}]
    )
    return completion.choices[0].message.content


# --------------------------------------------------------------------------- endpoints


async def test_chat_completion(server: ServerProcess) -> None:
    async with make_client(server) as client:
        completion = await client.chat.completions.create(
            model="any-model",
            messages=[
                {"role": "system", "content": "You are a calculator."},
                {"role": "user", "content": "What is 12 + 7?"},
            ],
        )
    assert completion.object == "chat.completion"
    assert completion.model == "any-model"
    assert completion.id.startswith("chatcmpl-")
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "19"
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 9  # words in all messages
    assert completion.usage.completion_tokens == 1
    assert completion.usage.total_tokens == 10


async def test_chat_answers_are_deterministic_and_sometimes_wrong(server: ServerProcess) -> None:
    async with make_client(server) as client:
        assert await ask(client, "What is 6*7?") == "42"
        assert await ask(client, "What is 14 + 14?") == "29"
        assert await ask(client, "reverse: hello") == "olleh"
        assert await ask(client, "What is the capital of France?") == "Paris"
        assert await ask(client, "Hello?") == "I don't know."


async def test_chat_with_content_parts_and_n(server: ServerProcess) -> None:
    async with make_client(server) as client:
        completion = await client.chat.completions.create(
            model="m",
            n=3,
            messages=[{"role": "user", "content": [{"type": "text", "text": "uppercase: ok"}]}],
        )
    assert [choice.message.content for choice in completion.choices] == ["OK"] * 3
    assert [choice.index for choice in completion.choices] == [0, 1, 2]


async def test_max_tokens_truncates(server: ServerProcess) -> None:
    async with make_client(server) as client:
        completion = await client.chat.completions.create(
            model="m", max_tokens=2, messages=[{"role": "user", "content": "echo: a b c d"}]
        )
    assert completion.choices[0].message.content == "a b"
    assert completion.choices[0].finish_reason == "length"


async def test_chat_stream(server: ServerProcess) -> None:
    async with make_client(server) as client:
        stream = await client.chat.completions.create(
            model="m",
            stream=True,
            stream_options={"include_usage": True},
            messages=[{"role": "user", "content": "echo: the quick  brown fox"}],
        )
        async with stream:
            chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "the quick  brown fox"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4


async def test_completions(server: ServerProcess) -> None:
    async with make_client(server) as client:
        completion = await client.completions.create(
            model="text-model", prompt="Q: What is 2+3?\nA:"
        )
        batch = await client.completions.create(model="m", prompt=["2+2", "reverse: ab"])
    assert completion.object == "text_completion"
    assert completion.model == "text-model"
    assert completion.choices[0].text == "5"
    assert completion.choices[0].finish_reason == "stop"
    assert [choice.text for choice in batch.choices] == ["4", "ba"]


async def test_completions_stream(server: ServerProcess) -> None:
    async with make_client(server) as client:
        stream = await client.completions.create(model="m", prompt="echo: a b", stream=True)
        async with stream:
            texts = [chunk.choices[0].text async for chunk in stream]
    assert "".join(texts) == "a b"


async def test_models(server: ServerProcess) -> None:
    async with make_client(server) as client:
        models = [model.id async for model in client.models.list()]
    assert models == ["dotevals-test"]


async def test_health_and_unknown_path(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        health = await http.get("/health")
        missing = await http.post("/v1/nope", json={})
        wrong_method = await http.get("/v1/chat/completions")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "invalid_request_error"
    assert wrong_method.status_code == 405


async def test_malformed_json_is_400(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        broken = await http.post(
            "/v1/chat/completions",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
        not_messages = await http.post("/v1/chat/completions", json={"model": "m"})
        after = await http.get("/health")  # the connection stays usable
    assert broken.status_code == 400
    error = broken.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"]
    assert not_messages.status_code == 400
    assert not_messages.json()["error"]["param"] == "messages"
    assert after.status_code == 200


async def test_sdk_maps_400_to_bad_request(server: ServerProcess) -> None:
    async with make_client(server) as client:
        with pytest.raises(openai.BadRequestError):
            await client.chat.completions.create(model="m", messages=[])


# --------------------------------------------------------------------------- auth


async def test_api_key_required(keyed_server: ServerProcess) -> None:
    async with make_client(keyed_server, api_key="wrong") as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            await ask(client, "2+2")
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"
    async with make_client(keyed_server, api_key="secret") as client:
        assert await ask(client, "2+2") == "4"


async def test_api_key_missing_and_health_open(keyed_server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=keyed_server.url) as http:
        missing = await http.get("/v1/models")
        health = await http.get("/health")
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "invalid_request_error"
    assert health.status_code == 200


# --------------------------------------------------------------------------- errors


async def test_error_rate_injects_429_with_retry_after(flaky_server: ServerProcess) -> None:
    flaky_server.reset_stats()
    async with make_client(flaky_server) as client:
        assert await ask(client, "2+2") == "4"  # request 1 succeeds, request 2 fails
        with pytest.raises(openai.RateLimitError) as caught:
            await ask(client, "2+2")
        assert await ask(client, "2+2") == "4"
    response = caught.value.response
    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    stats = flaky_server.stats()
    assert stats["errors_injected"] == 1
    assert stats["requests"] == 3


async def test_error_rate_pattern_is_deterministic(flaky_server: ServerProcess) -> None:
    flaky_server.reset_stats()
    outcomes = []
    async with httpx.AsyncClient(base_url=flaky_server.base_url) as http:
        for _ in range(6):
            body = {"model": "m", "prompt": "1+1"}
            outcomes.append((await http.post("/completions", json=body)).status_code)
    assert outcomes == [200, 429] * 3
    assert flaky_server.stats()["errors_injected"] == 3


async def test_status_header_forces_an_error(server: ServerProcess) -> None:
    async with make_client(server) as client:
        with pytest.raises(openai.InternalServerError) as caught:
            await client.chat.completions.create(
                model="m",
                messages=[{"role": "user", "content": "2+2"}],
                extra_headers={"X-Dotevals-Status": "503"},
            )
    assert caught.value.status_code == 503
    assert "retry-after" not in caught.value.response.headers


async def test_status_header_200_bypasses_the_error_rate(flaky_server: ServerProcess) -> None:
    flaky_server.reset_stats()
    headers = {"X-Dotevals-Status": "200"}
    async with httpx.AsyncClient(base_url=flaky_server.base_url, headers=headers) as http:
        body = {"model": "m", "messages": [{"role": "user", "content": "1+1"}]}
        codes = [(await http.post("/chat/completions", json=body)).status_code for _ in range(4)]
    assert codes == [200] * 4


def test_sdk_retries_honour_retry_after() -> None:
    with ServerProcess(error_rate=1.0, error_status=503, retry_after=0.2) as flaky:
        client = openai.OpenAI(base_url=flaky.base_url, api_key="unused", max_retries=2)
        with client, pytest.raises(openai.InternalServerError):
            client.completions.create(model="m", prompt="1+1")
        assert flaky.stats()["errors_injected"] == 3


# --------------------------------------------------------------------------- latency, stats


async def test_latency_header(server: ServerProcess) -> None:
    async with make_client(server) as client:
        started = time.perf_counter()
        await client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "2+2"}],
            extra_headers={"X-Dotevals-Latency": "0.3"},
        )
        elapsed = time.perf_counter() - started
    assert elapsed >= 0.3


async def test_latency_flag_and_vllm_flags() -> None:
    extra = ["--model", "org/model-a", "--dtype", "auto", "--max-model-len", "4096"]
    extra += ["--tensor-parallel-size", "1", "--gpu-memory-utilization", "0.9"]
    async with ServerProcess(latency=0.2, extra_args=extra) as slow:
        async with make_client(slow) as client:
            models = [model.id async for model in client.models.list()]
            started = time.perf_counter()
            assert await ask(client, "3*3") == "9"
            elapsed = time.perf_counter() - started
    assert models == ["org/model-a"]
    assert elapsed >= 0.2


async def test_concurrent_requests_overlap(server: ServerProcess) -> None:
    server.reset_stats()
    async with make_client(server) as client:
        requests = [
            client.completions.create(
                model="m", prompt=f"{i}+1", extra_headers={"X-Dotevals-Latency": "0.2"}
            )
            for i in range(50)
        ]
        results = await asyncio.gather(*requests)
    assert [r.choices[0].text for r in results] == [str(i + 1) for i in range(50)]
    stats = server.stats()
    assert stats["requests"] == 50
    assert stats["max_in_flight"] > 1


async def test_capacity_queues_requests_beyond_it() -> None:
    async with ServerProcess(latency=0.1, extra_args=["--capacity", "2"]) as busy:
        async with make_client(busy) as client:
            started = time.perf_counter()
            results = await asyncio.gather(*(ask(client, f"{i}+1") for i in range(6)))
            elapsed = time.perf_counter() - started
        stats = busy.stats()
    assert results == [str(i + 1) for i in range(6)]
    assert stats["max_in_flight"] == 6
    assert stats["max_serving"] == 2
    assert elapsed >= 0.3  # three turns of two


@pytest.mark.parametrize("bad", ["0", "-2", "many"])
def test_capacity_must_be_a_positive_count(bad: str) -> None:
    process = ServerProcess(extra_args=["--capacity", bad])
    with pytest.raises(ServerStartError, match="--capacity"):
        process.start()


async def test_many_concurrent_connections(server: ServerProcess) -> None:
    async with make_client(server) as client:
        results = await asyncio.gather(*(ask(client, f"{i}*2") for i in range(300)))
    assert results == [answer(f"{i}*2") for i in range(300)]


async def test_stats_count_requests_and_reset(server: ServerProcess) -> None:
    server.reset_stats()
    assert server.stats()["requests"] == 0
    async with make_client(server) as client:
        await ask(client, "1+1")
        await ask(client, "1+2")
        await client.completions.create(model="m", prompt="1+3")
        _ = [model async for model in client.models.list()]
    stats = server.stats()
    assert stats["requests"] == 4
    assert stats["by_path"] == {
        "/v1/chat/completions": 2,
        "/v1/completions": 1,
        "/v1/models": 1,
    }
    assert stats["errors_injected"] == 0
    server.reset_stats()
    assert server.stats()["requests"] == 0


# --------------------------------------------------------------------------- process


def test_sigterm_exits_cleanly() -> None:
    process = ServerProcess()
    process.start()
    with httpx.Client(base_url=process.base_url) as http:
        assert http.get("/models").status_code == 200
    process.stop()
    process.stop()  # idempotent
    assert process.returncode == 0


async def test_sigint_exits_cleanly() -> None:
    async with ServerProcess() as process:
        assert process.process is not None
        process.process.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(process.process.wait, 10) == 0
    assert process.returncode == 0


def test_start_failure_reports_output() -> None:
    process = ServerProcess(extra_args=["--no-such-flag"])
    with pytest.raises(ServerStartError, match="unrecognized arguments: --no-such-flag"):
        process.start()
    assert process.returncode == 2


def test_port_before_start_raises() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        _ = ServerProcess().base_url


def test_listens_on_the_loopback_address_only() -> None:
    psutil = pytest.importorskip("psutil")
    with ServerProcess() as server:
        assert server.process is not None
        listening = [
            c.laddr
            for c in psutil.Process(server.process.pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        ]
    assert listening and {addr.ip for addr in listening} == {"127.0.0.1"}


# --------------------------------------------------------------------------- settings


def test_settings_round_trip_through_the_command_line() -> None:
    settings = ServerSettings(
        latency=0.25,
        error_rate=0.5,
        error_status=529,
        retry_after=1.5,
        api_key="k",
        capacity=2,
        model_names=("a", "b"),
    )
    assert _settings_from(_build_parser().parse_args(settings.argv())) == settings
    assert ServerSettings().argv() == []  # defaults need no flags


def test_settings_or_knobs_not_both() -> None:
    assert ServerProcess(latency=0.5).settings == ServerSettings(latency=0.5)
    with pytest.raises(TypeError, match="settings or keyword knobs"):
        ServerProcess(ServerSettings(), latency=0.5)
