"""OpenAI SDK clients bound to a model name: what built-in providers hand to evaluations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dotevals import cache as _cache

if TYPE_CHECKING:
    from openai import AsyncOpenAI

__all__ = ["import_openai", "make_client", "use_cache"]

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
    return client


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
