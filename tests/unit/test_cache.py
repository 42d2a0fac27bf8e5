"""The response cache: keys, what is stored, the transport, activation and broken files."""

from __future__ import annotations

import gzip
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from dotevals import cache as dcache
from dotevals.cache import (
    CachedResponse,
    CacheWarning,
    CachingTransport,
    ResponseCache,
    call_key,
    is_streaming,
    request_key,
)
from dotevals.providers._client import make_client, use_cache

URL = "http://127.0.0.1:1/v1/chat/completions"
BODY = {"model": "m", "messages": [{"role": "user", "content": "2+2"}], "temperature": 0}


def body(**changes: Any) -> bytes:
    return json.dumps({**BODY, **changes}).encode()


class Server:
    """A mock server that counts requests and answers with a chosen status."""

    def __init__(self, status: int = 200, *, gzipped: bool = False, raw: bool = False) -> None:
        self.status = status
        self.gzipped = gzipped
        self.raw = raw  # answer with an unread stream, as a network transport does
        self.requests = 0

    def __call__(self, request: Any) -> Any:
        self.requests += 1
        lib = httpx if isinstance(request, httpx.Request) else _httpx2()
        payload = json.dumps({"n": self.requests, "echo": json.loads(request.content)}).encode()
        headers = {"content-type": "application/json", "x-request": str(self.requests)}
        if self.gzipped:
            payload = gzip.compress(payload)
            headers["content-encoding"] = "gzip"
        if self.raw:
            return lib.Response(self.status, headers=headers, stream=lib.ByteStream(payload))
        return lib.Response(self.status, headers=headers, content=payload)


def _httpx2() -> ModuleType:
    module: ModuleType = pytest.importorskip("httpx2")
    return module


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[ResponseCache]:
    store = ResponseCache(tmp_path / "c.sqlite")
    yield store
    store.close()


@pytest.fixture(autouse=True)
def no_active_cache() -> Iterator[None]:
    dcache.configure(None)
    yield
    dcache.configure(None)


async def post(client: httpx.AsyncClient, content: bytes, url: str = URL) -> httpx.Response:
    return await client.post(url, content=content, headers={"content-type": "application/json"})


# -- keys --------------------------------------------------------------------------------------


def test_the_key_ignores_json_key_order_and_spacing() -> None:
    a = b'{"model": "m", "messages": [], "temperature": 0}'
    b = b'{"temperature":0,"messages":[],"model":"m"}'
    assert request_key("POST", URL, a) == request_key("post", URL, b)


@pytest.mark.parametrize(
    "other",
    [
        ("POST", URL, body(model="other")),
        ("POST", URL, body(temperature=1)),
        ("POST", URL, body(messages=[{"role": "user", "content": "2+3"}])),
        ("POST", URL, body(max_tokens=5)),
        ("POST", "http://other-host/v1/chat/completions", body()),
        ("POST", "http://127.0.0.1:1/v1/completions", body()),
        ("PUT", URL, body()),
    ],
)
def test_every_part_of_the_request_is_in_the_key(other: tuple[str, str, bytes]) -> None:
    assert request_key(*other) != request_key("POST", URL, body())


def test_call_keys_ignore_parameter_order_and_include_every_part() -> None:
    params = {"model": "a", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}
    key = call_key("http://x/v1", "/chat/completions", params)
    assert key == call_key("http://x/v1", "/chat/completions", dict(reversed(params.items())))
    others = [
        call_key("http://y/v1", "/chat/completions", params),
        call_key("http://x/v1", "/completions", params),
        call_key("http://x/v1", "/chat/completions", params | {"model": "b"}),
        call_key("http://x/v1", "/chat/completions", params | {"temperature": 1}),
    ]
    assert key is not None and key not in others and len(set(others)) == len(others)


@pytest.mark.parametrize("value", [object(), float("nan"), b"bytes"])
def test_calls_with_values_that_are_not_json_have_no_call_key(value: object) -> None:
    assert call_key("http://x/v1", "/chat/completions", {"model": "a", "x": value}) is None


def test_non_json_bodies_are_keyed_by_their_bytes() -> None:
    assert request_key("POST", URL, b"\xff\x00") == request_key("POST", URL, b"\xff\x00")
    assert request_key("POST", URL, b"\xff\x00") != request_key("POST", URL, b"\xff\x01")


@pytest.mark.parametrize(
    ("content", "streaming"),
    [
        (body(stream=True), True),
        (body(stream=False), False),
        (body(), False),
        (b'{"messages": [{"content": "\\"stream\\": true"}]}', False),
        (b"not json", False),
    ],
)
def test_is_streaming(content: bytes, streaming: bool) -> None:
    assert is_streaming(content) is streaming


# -- the store -------------------------------------------------------------------------------


def test_put_and_get(cache: ResponseCache) -> None:
    stored = CachedResponse(200, [("content-type", "application/json")], b'{"ok": 1}')
    cache.put("k", "POST", URL, stored)
    got = cache.get("k")
    assert got is not None
    assert (got.status, got.headers, got.body) == (200, stored.headers, stored.body)
    assert cache.get("missing") is None
    assert cache.stats() | {"path": None} == {
        "path": None,
        "enabled": True,
        "hits": 1,
        "misses": 1,
        "writes": 1,
        "bypassed": 0,
    }
    assert len(cache) == 1


@pytest.mark.parametrize("status", [301, 400, 401, 429, 500])
def test_non_2xx_responses_are_never_stored(cache: ResponseCache, status: int) -> None:
    cache.put("k", "POST", URL, CachedResponse(status, [], b"error"))
    assert cache.get("k") is None
    assert len(cache) == 0


def test_the_store_survives_reopening(tmp_path: Path) -> None:
    first = ResponseCache(tmp_path / "c.sqlite")
    first.put("k", "POST", URL, CachedResponse(200, [], b"kept"))
    first.close()
    second = ResponseCache(tmp_path / "c.sqlite")
    got = second.get("k")
    second.close()
    assert got is not None
    assert got.body == b"kept"


def test_the_directory_is_created(tmp_path: Path) -> None:
    store = ResponseCache(tmp_path / "a" / "b" / "c.sqlite")
    assert store.enabled
    store.close()


def test_wal_mode(cache: ResponseCache) -> None:
    conn = sqlite3.connect(cache.path)
    try:
        (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
    finally:
        conn.close()
    assert mode == "wal"


def test_a_closed_cache_misses_quietly(cache: ResponseCache) -> None:
    cache.put("k", "POST", URL, CachedResponse(200, [], b"x"))
    cache.close()
    cache.close()
    assert not cache.enabled
    assert cache.get("k") is None
    cache.put("k2", "POST", URL, CachedResponse(200, [], b"x"))
    assert len(cache) == 0


# -- broken files ------------------------------------------------------------------------------


def test_a_corrupt_file_warns_and_disables(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"garbage, not a database " * 200)
    with pytest.warns(CacheWarning, match=r"c\.sqlite.*Delete the file"):
        store = ResponseCache(path)
    assert not store.enabled
    assert store.get("k") is None
    store.put("k", "POST", URL, CachedResponse(200, [], b"x"))
    assert path.read_bytes().startswith(b"garbage")


def test_configure_with_a_corrupt_file_returns_none(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"\x00" * 4096 + b"junk")
    with pytest.warns(CacheWarning, match=str(path.name)):
        assert dcache.configure(path) is None
    assert dcache.active() is None
    assert dcache.stats()["enabled"] is False


def test_a_path_that_is_a_directory_warns(tmp_path: Path) -> None:
    with pytest.warns(CacheWarning):
        store = ResponseCache(tmp_path)
    assert not store.enabled


def test_a_locked_file_warns_once_and_runs_without_cache(tmp_path: Path) -> None:
    store = ResponseCache(tmp_path / "c.sqlite", timeout=0.05)
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # hold the write lock
    try:
        with pytest.warns(CacheWarning, match="writing failed.*locked"):
            store.put("k", "POST", URL, CachedResponse(200, [], b"x"))
        assert not store.enabled
        store.put("k2", "POST", URL, CachedResponse(200, [], b"x"))  # no second warning
        assert store.get("k") is None
    finally:
        other.execute("ROLLBACK")
        other.close()


# -- the transport ----------------------------------------------------------------------------


async def test_the_transport_answers_repeats_from_the_cache(cache: ResponseCache) -> None:
    server = Server()
    transport = CachingTransport(cache, httpx.MockTransport(server))
    async with httpx.AsyncClient(transport=transport) as client:
        first = await post(client, body())
        second = await post(client, body())
        other = await post(client, body(model="other"))
    assert server.requests == 2
    assert first.json() == second.json()
    assert first.json()["n"] == 1
    assert other.json()["n"] == 2
    assert "x-dotevals-cache" not in first.headers
    assert second.headers["x-dotevals-cache"] == "hit"
    assert second.headers["x-request"] == "1"
    assert cache.stats()["hits"] == 1
    assert cache.stats()["misses"] == 2


async def test_errors_pass_through_and_are_not_cached(cache: ResponseCache) -> None:
    server = Server(status=429)
    transport = CachingTransport(cache, httpx.MockTransport(server))
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await post(client, body())).status_code == 429
        server.status = 200
        assert (await post(client, body())).status_code == 200
        assert (await post(client, body())).status_code == 200
    assert server.requests == 2
    assert len(cache) == 1


async def test_streaming_requests_pass_through(cache: ResponseCache) -> None:
    server = Server()
    transport = CachingTransport(cache, httpx.MockTransport(server))
    async with httpx.AsyncClient(transport=transport) as client:
        await post(client, body(stream=True))
        await post(client, body(stream=True))
    assert server.requests == 2
    assert len(cache) == 0
    assert cache.stats()["bypassed"] == 2


@pytest.mark.parametrize("raw", [True, False], ids=["unread-stream", "read-already"])
async def test_encoded_bodies_are_decoded_once(cache: ResponseCache, raw: bool) -> None:
    server = Server(gzipped=True, raw=raw)
    transport = CachingTransport(cache, httpx.MockTransport(server))
    async with httpx.AsyncClient(transport=transport) as client:
        first = await post(client, body())
        second = await post(client, body())
    assert server.requests == 1
    assert first.json() == second.json() == {"n": 1, "echo": BODY}
    stored = cache.get(request_key("POST", URL, body()))
    assert stored is not None
    assert stored.body.startswith(b"\x1f\x8b") is raw  # stored as received: still gzipped


async def test_without_a_cache_everything_passes_through() -> None:
    server = Server()
    transport = CachingTransport(None, httpx.MockTransport(server))
    async with httpx.AsyncClient(transport=transport) as client:
        await post(client, body())
        await post(client, body())
    assert server.requests == 2


async def test_the_transport_serves_httpx2_clients(cache: ResponseCache) -> None:
    httpx2 = _httpx2()
    server = Server()
    transport = CachingTransport(cache, httpx2.MockTransport(server))
    async with httpx2.AsyncClient(transport=transport) as client:
        first = await client.post(URL, content=body())
        second = await client.post(URL, content=body())
    assert isinstance(second, httpx2.Response)
    assert server.requests == 1
    assert first.json() == second.json()


# -- activation and clients -----------------------------------------------------------------------


def test_configure_sets_and_clears_the_active_cache(tmp_path: Path) -> None:
    assert dcache.active() is None
    assert dcache.stats() == {
        "path": None,
        "enabled": False,
        "hits": 0,
        "misses": 0,
        "writes": 0,
        "bypassed": 0,
    }
    store = dcache.configure(tmp_path / "c.sqlite")
    assert store is not None
    assert dcache.active() is store
    assert dcache.stats()["path"] == str(tmp_path / "c.sqlite")
    replacement = dcache.configure(str(tmp_path / "d.sqlite"))
    assert dcache.active() is replacement
    assert not store.enabled  # the previous one is closed
    assert dcache.configure(None) is None
    assert dcache.active() is None


def _transport_of(client: Any) -> Any:
    return client._client._transport


async def test_make_client_uses_the_active_cache(tmp_path: Path) -> None:
    plain = make_client("m", base_url="http://127.0.0.1:1/v1", api_key="x")
    assert not isinstance(_transport_of(plain), CachingTransport)
    await plain.close()

    store = dcache.configure(tmp_path / "c.sqlite")
    cached = make_client("m", base_url="http://127.0.0.1:1/v1", api_key="x", timeout=3.0)
    transport = _transport_of(cached)
    assert isinstance(transport, CachingTransport)
    assert transport.cache is store
    assert cached.model == "m"  # type: ignore[attr-defined]
    assert cached.max_retries == 0
    assert cached.timeout == 3.0
    await cached.close()


async def test_make_client_wraps_a_given_http_client(tmp_path: Path) -> None:
    store = dcache.configure(tmp_path / "c.sqlite")
    assert store is not None
    inner = httpx.MockTransport(Server())
    http_client = httpx.AsyncClient(transport=inner)
    client = make_client(
        "m", base_url="http://127.0.0.1:1/v1", api_key="x", http_client=http_client
    )
    transport = _transport_of(client)
    sdk_client: Any = client._client
    assert sdk_client is http_client
    assert isinstance(transport, CachingTransport)
    assert transport.inner is inner
    await client.close()


async def test_wrapping_twice_keeps_one_layer_with_the_newest_cache(tmp_path: Path) -> None:
    old = ResponseCache(tmp_path / "old.sqlite")
    new = ResponseCache(tmp_path / "new.sqlite")
    inner = httpx.MockTransport(Server())
    async with httpx.AsyncClient(transport=inner) as http_client:
        assert use_cache(http_client, old)
        assert use_cache(http_client, new)
        transport = http_client._transport
        assert isinstance(transport, CachingTransport)
        assert transport.cache is new
        assert transport.inner is inner
    old.close()
    new.close()


def test_use_cache_leaves_other_objects_alone(cache: ResponseCache) -> None:
    assert not use_cache(object(), cache)


async def test_a_scope_header_stands_for_the_server_address(cache: ResponseCache) -> None:
    server = Server()
    transport = CachingTransport(cache, httpx.MockTransport(server))
    scoped = {"content-type": "application/json", "x-dotevals-cache-scope": "local:m"}
    async with httpx.AsyncClient(transport=transport) as client:
        await client.post(
            "http://127.0.0.1:8001/v1/chat/completions", content=body(), headers=scoped
        )
        await client.post(
            "http://127.0.0.1:9002/v1/chat/completions", content=body(), headers=scoped
        )
        await client.post("http://127.0.0.1:9002/v1/completions", content=body(), headers=scoped)
        other = {**scoped, "x-dotevals-cache-scope": "local:other"}
        await client.post(
            "http://127.0.0.1:9002/v1/chat/completions", content=body(), headers=other
        )
    assert server.requests == 3  # a new port with the same scope hits; path and scope count
