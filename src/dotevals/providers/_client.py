"""OpenAI SDK clients bound to a model name: what built-in providers hand to evaluations."""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from dotevals import _usage
from dotevals import cache as _cache
from dotevals._extras import import_extra

if TYPE_CHECKING:
    from openai import AsyncOpenAI

__all__ = [
    "answer_calls_from_cache",
    "count_usage",
    "default_http_client",
    "import_openai",
    "make_client",
    "use_cache",
    "wrap_transports",
]

_MISSING_OPENAI = (
    "the openai provider needs the openai SDK: install it with `pip install 'dotevals[openai]'`"
)


def import_openai() -> Any:
    """The ``openai`` module, or an ImportError that names the extra to install."""
    return import_extra("openai", _MISSING_OPENAI)


def make_client(model_name: str, **options: Any) -> AsyncOpenAI:
    """An ``openai.AsyncOpenAI`` client whose ``.model`` attribute holds ``model_name``.

    ``options`` are the SDK's constructor arguments (``api_key``, ``base_url``, ``timeout``,
    ``max_retries``, ``default_headers``, ``http_client``); values left out come from the
    environment as the SDK reads it. Retries default to 0: the engine owns the retry policy.
    Without an ``http_client``, the client gets :func:`default_http_client` (aiohttp when
    installed).

    When a response cache is active (:func:`dotevals.cache.configure`, ``--cache``), the
    client's HTTP transports are wrapped in a :class:`~dotevals.cache.CachingTransport`: those
    of the SDK's default HTTP client, or of the ``http_client`` given (see :func:`use_cache`).

    Args:
        model_name: the model the evaluation calls, stored as ``client.model``.
        **options: ``openai.AsyncOpenAI`` constructor arguments; None values are dropped.

    Returns:
        The client.
    """
    openai = import_openai()
    options = {k: v for k, v in options.items() if v is not None}
    options.setdefault("max_retries", 0)
    if options.get("http_client") is None:
        options["http_client"] = default_http_client()
    cache = _cache.active()
    if cache is not None:
        use_cache(options["http_client"], cache)
    client: AsyncOpenAI = openai.AsyncOpenAI(**options)
    client.model = model_name  # type: ignore[attr-defined]
    if cache is not None:
        answer_calls_from_cache(client, cache)
    count_usage(client)
    return client


def count_usage(client: Any) -> None:
    """Report the ``usage`` of each completion ``client`` returns to the row being evaluated.

    ``client.chat.completions.create`` and ``client.completions.create`` are wrapped on this
    client (after the cache, so cached answers count their stored usage too).
    """
    for path, _endpoint, _type_name in _CACHED_CALLS:
        resource = operator.attrgetter(path)(client)
        resource.create = _Counted(resource.create)


class _Counted:
    """An SDK ``create`` method whose answers are counted by :mod:`dotevals._usage`."""

    def __init__(self, create: Any) -> None:
        self._create = create

    async def __call__(self, *args: Any, **params: Any) -> Any:
        answer = await self._create(*args, **params)
        _usage.count(answer)
        return answer


#: SDK calls answered from the cache before a request is built: the resource (a path of
#: attributes on the client), its API endpoint, and the type the SDK returns (in openai.types).
_CACHED_CALLS: tuple[tuple[str, str, str], ...] = (
    ("chat.completions", "/chat/completions", "chat.ChatCompletion"),
    ("completions", "/completions", "Completion"),
)


def answer_calls_from_cache(client: Any, cache: _cache.ResponseCache) -> None:
    """Answer ``client``'s completion calls from ``cache`` without building requests.

    ``client.chat.completions.create`` and ``client.completions.create`` are replaced on this
    client (copies made by ``with_options`` keep the HTTP-layer cache only). A hit is the
    stored answer as the SDK's own type (validated by pydantic, or built without validation
    as the SDK builds answers that do not validate); the SDK's request building and response
    parsing, most of a cached call's cost, are skipped. A miss goes through the SDK and the
    HTTP layer (which counts it), and its answer is stored for the next call.

    Args:
        client: an ``openai.AsyncOpenAI`` client.
        cache: the response cache.
    """
    types = import_openai().types
    for path, endpoint, type_name in _CACHED_CALLS:
        resource = operator.attrgetter(path)(client)
        returns = operator.attrgetter(type_name)(types)
        resource.create = _CachedCall(client, resource.create, endpoint, returns, cache)


class _CachedCall:
    """One SDK ``create`` method answered from the cache when it can be."""

    def __init__(
        self, client: Any, create: Any, endpoint: str, returns: Any, cache: _cache.ResponseCache
    ) -> None:
        self._client = client
        self._create = create
        self._endpoint = endpoint
        self._returns = returns
        self._cache = cache

    def _key(self, params: dict[str, Any]) -> str | None:
        # extra_headers mark the SDK's raw/streaming wrappers (which need the SDK's own
        # response objects) and may change the answer: such calls take the HTTP path.
        if not self._cache.enabled or "extra_headers" in params or params.get("stream"):
            return None
        scope = self._client.default_headers.get(_cache.SCOPE_HEADER)
        origin = f"scope:{scope}" if scope else str(self._client.base_url)
        keyed = {k: v for k, v in params.items() if k != "timeout"}
        return _cache.call_key(origin, self._endpoint, keyed)

    def _decode(self, body: bytes) -> Any:
        """A stored answer as the SDK's type; None for one that does not decode."""
        try:  # pydantic's JSON parser: some 20x faster than the SDK's construct
            return self._returns.model_validate_json(body)
        except ValueError:  # pydantic's ValidationError among them
            pass
        try:  # what the SDK does with answers that do not validate: build them as they are
            return self._returns.construct(**json.loads(body))
        except (ValueError, TypeError):
            return None  # ask again and store a fresh answer

    async def __call__(self, *args: Any, **params: Any) -> Any:
        key = None if args else self._key(params)
        if key is None:
            return await self._create(*args, **params)
        found = self._cache.get(key, count_miss=False)
        if found is not None:
            answer = self._decode(found.body)
            if answer is not None:
                return answer
        answer = await self._create(**params)
        if isinstance(answer, self._returns):
            body = json.dumps(answer.to_dict(), separators=(",", ":")).encode()
            self._cache.put(key, "CALL", self._endpoint, _cache.CachedResponse(200, [], body))
        return answer


def default_http_client(**options: Any) -> Any:
    """The openai SDK's HTTP client on aiohttp when its ``aiohttp`` extra is installed.

    ``openai.DefaultAioHttpClient`` keeps its cost per request flat as requests in flight
    grow; the SDK's default (``httpx`` on ``httpcore``) spends time proportional to its open
    connections on every request, which made 64 rows in flight 3x slower than 16 on a 2-core
    machine (``benchmarks/run.py``). Without the extra (or with an ``openai`` release that
    predates it) this is ``openai.DefaultAsyncHttpxClient``.

    Args:
        **options: ``httpx.AsyncClient`` arguments (``timeout``, ``limits``, ``trust_env``).
    """
    openai = import_openai()
    aiohttp_client = getattr(openai, "DefaultAioHttpClient", None)
    if aiohttp_client is not None:
        try:
            client = aiohttp_client(**options)
        except RuntimeError:
            pass  # "install the package with the `aiohttp` extra": use httpx
        else:
            wrap_transports(client, _RefusedIsNotTimeout)
            return client
    return openai.DefaultAsyncHttpxClient(**options)


def use_cache(http_client: object, cache: _cache.ResponseCache) -> bool:
    """Route ``http_client``'s requests through ``cache``, keeping its transports' settings.

    The transports of an ``httpx.AsyncClient`` (or an ``httpx2.AsyncClient``, which recent
    ``openai`` releases use) are wrapped in place: the default one and those mounted for
    proxies, so connection limits, proxies and TLS settings stay as they were. Wrapping again
    replaces the cache an earlier call set.

    Args:
        http_client: the client to change.
        cache: the response cache to answer from.

    Returns:
        Whether the client was changed (False for an object without httpx's transports).
    """

    def wrapped(transport: Any) -> _cache.CachingTransport:
        if isinstance(transport, _cache.CachingTransport):
            transport = transport.inner  # wrapped for an earlier cache: use the current one
        return _cache.CachingTransport(cache, transport)

    return wrap_transports(http_client, wrapped)


def wrap_transports(http_client: object, wrap: Callable[[Any], Any]) -> bool:
    """Replace each transport of an ``httpx`` (or ``httpx2``) client by ``wrap(transport)``.

    Args:
        http_client: the client to change: its default transport and those mounted for
            proxies.
        wrap: makes the transport that stands in front of a given one.

    Returns:
        Whether the client was changed (False for an object without httpx's transports).
    """
    # httpx has no public setter for a built client's transports; ``_transport`` and
    # ``_mounts`` are how every httpx release since 0.18 (and httpx2) routes requests.
    transport = getattr(http_client, "_transport", None)
    mounts = getattr(http_client, "_mounts", None)
    if not hasattr(transport, "handle_async_request") or not isinstance(mounts, dict):
        return False
    http_client._transport = wrap(transport)  # type: ignore[attr-defined]
    http_client._mounts = {  # type: ignore[attr-defined]
        pattern: None if inner is None else wrap(inner) for pattern, inner in mounts.items()
    }
    return True


class _RefusedIsNotTimeout(httpx.AsyncBaseTransport):
    """Reports a connection that could not be made as ``ConnectError``, not a timeout.

    The SDK's aiohttp adapter maps every aiohttp connection error to ``ConnectTimeout``, so a
    server that is down would read "Request timed out"; a real timeout stays a timeout.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self.inner.handle_async_request(request)
        except Exception as exc:
            lib = _cache.http_library(request)
            if isinstance(exc, lib.ConnectTimeout) and not isinstance(exc.__cause__, TimeoutError):
                raise lib.ConnectError(str(exc), request=request) from exc.__cause__
            raise

    async def aclose(self) -> None:
        await self.inner.aclose()
