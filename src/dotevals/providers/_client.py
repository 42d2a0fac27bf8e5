"""OpenAI SDK clients bound to a model name: what built-in providers hand to evaluations."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from dotevals import cache as _cache

if TYPE_CHECKING:
    from openai import AsyncOpenAI

__all__ = ["answer_calls_from_cache", "import_openai", "make_client", "use_cache"]

_MISSING_OPENAI = (
    "the openai provider needs the openai SDK: install it with `pip install 'dotevals[openai]'`"
)


def import_openai() -> Any:
    """The ``openai`` module, or an ImportError that names the extra to install."""
    try:
        import openai
    except ImportError as exc:
        raise ImportError(_MISSING_OPENAI) from exc
    return openai


def make_client(model_name: str, **options: Any) -> AsyncOpenAI:
    """An ``openai.AsyncOpenAI`` client whose ``.model`` attribute holds ``model_name``.

    ``options`` are the SDK's constructor arguments (``api_key``, ``base_url``, ``timeout``,
    ``max_retries``, ``default_headers``, ``http_client``); values left out come from the
    environment as the SDK reads it. Retries default to 0: the engine owns the retry policy.

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
    cache = _cache.active()
    if cache is not None:
        if options.get("http_client") is None:
            options["http_client"] = openai.DefaultAsyncHttpxClient()
        use_cache(options["http_client"], cache)
    client: AsyncOpenAI = openai.AsyncOpenAI(**options)
    client.model = model_name  # type: ignore[attr-defined]
    if cache is not None:
        answer_calls_from_cache(client, cache)
    return client


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
    stored answer as the SDK's own type, built as the SDK builds it (``construct``, without
    validation); the SDK's request building and response parsing, most of a cached call's
    cost, are skipped. A miss goes through the SDK and the HTTP layer (which counts it), and
    its answer is stored for the next call.

    Args:
        client: an ``openai.AsyncOpenAI`` client.
        cache: the response cache.
    """
    openai = import_openai()
    for path, endpoint, type_name in _CACHED_CALLS:
        resource: Any = client
        for attribute in path.split("."):
            resource = getattr(resource, attribute)
        returns: Any = openai.types
        for attribute in type_name.split("."):
            returns = getattr(returns, attribute)
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

    async def __call__(self, *args: Any, **params: Any) -> Any:
        key = None if args else self._key(params)
        if key is None:
            return await self._create(*args, **params)
        found = self._cache.get(key, count_miss=False)
        if found is not None:
            try:
                return self._returns.construct(**json.loads(found.body))
            except (ValueError, TypeError):
                pass  # an entry that does not decode: ask again and store a fresh one
        answer = await self._create(**params)
        if isinstance(answer, self._returns):
            body = json.dumps(answer.to_dict(), separators=(",", ":")).encode()
            self._cache.put(key, "CALL", self._endpoint, _cache.CachedResponse(200, [], body))
        return answer


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
    # httpx has no public setter for a built client's transports; ``_transport`` and
    # ``_mounts`` are how every httpx release since 0.18 (and httpx2) routes requests.
    transport = getattr(http_client, "_transport", None)
    mounts = getattr(http_client, "_mounts", None)
    if not hasattr(transport, "handle_async_request") or not isinstance(mounts, dict):
        return False
    http_client._transport = _wrapped(transport, cache)  # type: ignore[attr-defined]
    http_client._mounts = {  # type: ignore[attr-defined]
        pattern: None if inner is None else _wrapped(inner, cache)
        for pattern, inner in mounts.items()
    }
    return True


def _wrapped(transport: Any, cache: _cache.ResponseCache) -> _cache.CachingTransport:
    if isinstance(transport, _cache.CachingTransport):
        transport = transport.inner  # wrapped for an earlier cache: use the current one
    return _cache.CachingTransport(cache, transport)
