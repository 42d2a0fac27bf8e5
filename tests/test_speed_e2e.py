"""End to end: retries, fail-fast, adaptive concurrency and the response cache.

Every test runs an async ``@foreach`` evaluation on the real engine with a client from
``make_client`` that talks HTTP to the test server (``python -m dotevals.testing``) in a
subprocess. The client is made and closed inside the test's event loop (``run_async``), so
its connections never outlive the loop that opened them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dotevals
from dotevals import cache as dcache
from dotevals.api import Results
from dotevals.cache import CacheWarning
from dotevals.providers._client import make_client
from dotevals.testing import ServerProcess

ROWS = [(f"What is {a} + {a + 1}?", str(2 * a + 1)) for a in range(1, 41)]


def asking(rows: list[tuple[str, str]]) -> Any:
    """An evaluation that asks the server each row's prompt; a row passes when it is right."""

    @dotevals.foreach("prompt,expected", rows)
    async def sums(prompt: str, expected: str, client: Any) -> bool:
        reply = await client.chat.completions.create(
            model=client.model, messages=[{"role": "user", "content": prompt}]
        )
        return bool(reply.choices[0].message.content == expected)

    return sums


sums = asking(ROWS)
sums.__test__ = False  # run by the tests through dotevals.run, not collected


async def run_rows(
    fn: Any,
    server: ServerProcess,
    storage: Path,
    experiment: str,
    *,
    model: str = "m",
    api_key: str = "x",
) -> Results:
    """Run ``fn`` against ``server`` with a fresh client, closed afterwards."""
    client = make_client(model, base_url=server.base_url, api_key=api_key)
    try:
        return await dotevals.run_async(
            fn, experiment=experiment, storage=f"json://{storage}", progress=False, client=client
        )
    finally:
        await client.close()


@pytest.fixture
def no_cache() -> Iterator[None]:
    """Make sure no process-wide cache leaks into or out of a test."""
    dcache.configure(None)
    yield
    dcache.configure(None)


pytestmark = pytest.mark.usefixtures("no_cache")


# -- retries -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retry_after"),
    [(429, 0.01), (429, None), (500, 0.01), (503, None)],
    ids=["429-retry-after", "429-backoff", "500", "503"],
)
async def test_transient_errors_are_retried_until_every_row_passes(
    tmp_path: Path, status: int, retry_after: float | None
) -> None:
    with ServerProcess(error_rate=0.1, error_status=status, retry_after=retry_after) as server:
        results = await run_rows(sums, server, tmp_path, "retried")
        stats = server.stats()

    assert results.report.errors == 0
    assert results.report.failure is None
    assert len(results) == len(ROWS)
    attempts = [record.attempts for record in results]
    assert all(a >= 1 for a in attempts)
    assert any(a > 1 for a in attempts)
    assert stats["errors_injected"] > 0
    # every injected error cost exactly one more attempt of some row, and nothing else
    assert sum(attempts) == stats["requests"]
    assert sum(a - 1 for a in attempts) == stats["errors_injected"]


async def test_a_401_is_not_retried_and_the_run_stops_early(tmp_path: Path) -> None:
    many = [(f"What is {a} + 1?", str(a + 1)) for a in range(200)]

    @dotevals.foreach("prompt,expected", many)
    async def keyed(prompt: str, expected: str, client: Any) -> bool:
        reply = await client.chat.completions.create(
            model=client.model, messages=[{"role": "user", "content": prompt}]
        )
        return bool(reply.choices[0].message.content == expected)

    with ServerProcess(api_key="right-key") as server:
        results = await run_rows(keyed, server, tmp_path, "unauthorized", api_key="wrong-key")
        stats = server.stats()

    report = results.report
    assert report.failure is not None
    assert "AuthenticationError" in report.failure
    assert 10 <= len(results) < len(many)
    assert all(record.attempts == 1 for record in results)
    assert all(record.error is not None for record in results)
    assert stats["requests"] == len(results)


# -- concurrency -----------------------------------------------------------------------------


async def test_adaptive_concurrency_grows_past_its_start(tmp_path: Path) -> None:
    rows = [(f"What is {a} * 2?", str(2 * a)) for a in range(600)]

    doubles = asking(rows)

    with ServerProcess(latency=0.05) as server:
        results = await run_rows(doubles, server, tmp_path, "adaptive")
        stats = server.stats()

    assert results.report.errors == 0
    history = results.report.concurrency
    assert history[0][1] == 16
    assert max(limit for _, limit in history) > 16
    assert all(1 <= limit <= 256 for _, limit in history)
    assert stats["max_in_flight"] > 16


# -- the response cache -----------------------------------------------------------------------


async def test_a_second_run_is_answered_from_the_cache(tmp_path: Path) -> None:
    cache = dcache.configure(tmp_path / "c.sqlite")
    assert cache is not None
    with ServerProcess() as server:
        first = await run_rows(sums, server, tmp_path, "first")
        assert server.stats()["requests"] == len(ROWS)
        assert dcache.stats()["misses"] == len(ROWS)
        assert dcache.stats()["hits"] == 0

        server.reset_stats()
        second = await run_rows(sums, server, tmp_path, "second")
        assert server.stats()["requests"] == 0
        assert dcache.stats()["hits"] == len(ROWS)

        third = await run_rows(sums, server, tmp_path, "other-model", model="another-model")
        assert server.stats()["requests"] == len(ROWS)
        assert dcache.stats()["hits"] == len(ROWS)
        assert dcache.stats()["misses"] == 2 * len(ROWS)

    assert second.summary() == first.summary() == third.summary()
    assert [r.scores for r in second] == [r.scores for r in first]
    # each answer is stored twice: as the HTTP response and as the SDK call's result
    assert len(cache) == 2 * 2 * len(ROWS)


async def test_cache_hits_do_not_teach_the_concurrency_limit(tmp_path: Path) -> None:
    # answered in a fraction of a millisecond, hits would read as a server without a knee
    dcache.configure(tmp_path / "c.sqlite")
    rows = [(f"What is {a} + {a}?", str(2 * a)) for a in range(200)]

    twice = asking(rows)

    with ServerProcess(latency=0.01) as server:
        first = await run_rows(twice, server, tmp_path, "first")
        second = await run_rows(twice, server, tmp_path, "second")
        assert server.stats()["requests"] == len(rows)
    assert max(limit for _, limit in first.report.concurrency) > 16  # the server's latency
    assert second.report.concurrency == [(0.0, 16)]  # every row a hit: nothing learnt
    assert dcache.stats()["hits"] == len(rows)


async def ask(client: Any, prompt: str = "What is 2 + 3?", **params: Any) -> Any:
    return await client.chat.completions.create(
        model=client.model, messages=[{"role": "user", "content": prompt}], **params
    )


async def test_a_hit_is_the_sdks_own_answer_without_a_request(tmp_path: Path) -> None:
    openai = pytest.importorskip("openai")
    dcache.configure(tmp_path / "c.sqlite")
    with ServerProcess() as server:
        client = make_client("m", base_url=server.base_url, api_key="x")
        try:
            first = await ask(client, temperature=0.5)
            server.reset_stats()
            again = await ask(client, temperature=0.5)
            assert server.stats()["requests"] == 0
            other = await ask(client, temperature=0.7)  # another parameter: another entry
            assert server.stats()["requests"] == 1
        finally:
            await client.close()

    assert type(again) is type(first) is openai.types.chat.ChatCompletion
    assert again.to_dict() == first.to_dict()
    assert again.choices[0].message.content == "5" == other.choices[0].message.content
    assert dcache.stats() | {"path": None} == {
        "path": None,
        "enabled": True,
        "hits": 1,
        "misses": 2,
        "writes": 4,
        "bypassed": 0,
    }


async def test_raw_response_calls_are_cached_at_the_http_layer(tmp_path: Path) -> None:
    dcache.configure(tmp_path / "c.sqlite")
    with ServerProcess() as server:
        client = make_client("m", base_url=server.base_url, api_key="x")
        try:
            raw = client.chat.completions.with_raw_response
            messages = [{"role": "user", "content": "What is 1 + 1?"}]
            await raw.create(model="m", messages=messages)
            server.reset_stats()
            response = await raw.create(model="m", messages=messages)
            assert server.stats()["requests"] == 0
        finally:
            await client.close()

    assert response.headers["x-dotevals-cache"] == "hit"
    assert response.parse().choices[0].message.content == "2"


ODD = {"id": "x", "object": "chat.completion", "created": "yesterday", "model": "m",
       "choices": [{"index": 0, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "odd"}}]}  # fmt: skip


@pytest.mark.parametrize(
    ("stored", "content", "hits"),
    [
        # does not decode: asked again; the HTTP layer answers and a fresh entry is stored
        (b"\xff\x00", "5", 3),
        (json.dumps(ODD), "odd", 2),  # does not validate: built as the SDK builds it
    ],
)
async def test_a_damaged_call_entry_never_fails_the_call(
    tmp_path: Path, stored: bytes | str, content: str, hits: int
) -> None:
    cache = dcache.configure(tmp_path / "c.sqlite")
    assert cache is not None
    with ServerProcess() as server:
        client = make_client("m", base_url=server.base_url, api_key="x")
        try:
            await ask(client)
            with cache._lock:
                assert cache._conn is not None
                damage = "UPDATE responses SET body = ? WHERE method = 'CALL'"
                cache._conn.execute(damage, (stored,))
            answer = await ask(client)
            again = await ask(client)
            assert server.stats()["requests"] == 1  # the first call, no more
        finally:
            await client.close()

    assert answer.choices[0].message.content == content == again.choices[0].message.content
    assert dcache.stats()["hits"] == hits
    if content == "odd":
        assert answer.created == "yesterday"  # an int in the SDK's type: kept as it came


async def test_errors_are_never_cached(tmp_path: Path) -> None:
    dcache.configure(tmp_path / "c.sqlite")
    with ServerProcess(error_rate=0.1, retry_after=0.01) as server:
        await run_rows(sums, server, tmp_path, "first")
        injected = server.stats()["errors_injected"]
        server.reset_stats()
        again = await run_rows(sums, server, tmp_path, "second")
        assert server.stats()["requests"] == 0

    assert injected > 0
    assert again.report.errors == 0
    assert dcache.stats()["writes"] == 2 * len(ROWS)  # HTTP response and SDK call, per row


async def test_a_corrupt_cache_file_warns_and_the_run_completes(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not a SQLite database, just garbage " * 100)
    with pytest.warns(CacheWarning, match=r"c\.sqlite.*Delete the file"):
        assert dcache.configure(path) is None
    assert dcache.active() is None

    with ServerProcess() as server:
        results = await run_rows(sums, server, tmp_path, "uncached")
        assert server.stats()["requests"] == len(ROWS)

    assert results.report.errors == 0
    assert len(results) == len(ROWS)
