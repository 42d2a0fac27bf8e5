"""The Anthropic provider: shared ``anthropic.AsyncAnthropic`` clients bound to a model name.

Registered as the ``anthropic`` entry point of ``dotevals.model_providers``; the pytest plugin
instantiates it with no arguments, so by default the SDK reads ``ANTHROPIC_API_KEY`` and
``ANTHROPIC_BASE_URL`` from the environment (``--model anthropic:claude-sonnet-4-5``).

The SDK's errors need no wrapping for the engine's retries: ``anthropic.APIStatusError``
carries ``status_code`` and the response's headers, so 429, 529 (overloaded) and other 5xx
answers are retried, ``retry-after`` is honoured, and 429/529 count as throttling;
``anthropic.APIConnectionError`` (timeouts included) is retried as a connection error. The
SDK's own retries default to 0: the engine owns the retry policy. The token usage of each
``messages.create`` answer goes on the record of the row that made the call.
"""

from __future__ import annotations

from typing import Any

from dotevals import _usage
from dotevals import cache as _cache
from dotevals._extras import import_extra
from dotevals.providers._client import use_cache
from dotevals.providers._sdk import SDKClientProvider

__all__ = ["AnthropicProvider"]

PROVIDER_NAME = "anthropic"
_MISSING_SDK = (
    "the anthropic provider needs the Anthropic SDK: "
    "install it with `pip install 'dotevals[anthropic]'`"
)


def import_anthropic() -> Any:
    """The ``anthropic`` module, or an ImportError that names the extra to install."""
    return import_extra("anthropic", _MISSING_SDK)


def make_anthropic_client(model_name: str, **options: Any) -> Any:
    """An ``anthropic.AsyncAnthropic`` client whose ``.model`` attribute holds ``model_name``.

    None values are dropped (the SDK's defaults and environment apply); retries default to 0.
    When a response cache is active (``--cache``), the client's HTTP transports answer
    repeated requests from it.
    """
    anthropic = import_anthropic()
    options = {key: value for key, value in options.items() if value is not None}
    options.setdefault("max_retries", 0)
    cache = _cache.active()
    if cache is not None:
        options.setdefault("http_client", anthropic.DefaultAsyncHttpxClient())
        use_cache(options["http_client"], cache)
    client = anthropic.AsyncAnthropic(**options)
    client.model = model_name
    client.messages.create = _Counted(client.messages.create)
    return client


def openai_usage(usage: Any) -> dict[str, Any] | None:
    """An Anthropic ``usage`` in the OpenAI shape that records store (cache reads counted in)."""
    if usage is None:
        return None
    read = getattr(usage, "cache_read_input_tokens", None) or 0
    written = getattr(usage, "cache_creation_input_tokens", None) or 0
    prompt = (getattr(usage, "input_tokens", None) or 0) + read + written
    completion = getattr(usage, "output_tokens", None) or 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": read},
    }


class _Counted:
    """``messages.create`` whose answers' usage goes on the record of the row (not streams)."""

    def __init__(self, create: Any) -> None:
        self._create = create

    async def __call__(self, *args: Any, **params: Any) -> Any:
        answer = await self._create(*args, **params)
        usage = openai_usage(getattr(answer, "usage", None))
        if usage is not None:
            _usage.count({"usage": usage})
        return answer


class AnthropicProvider(SDKClientProvider):
    """Provider for Anthropic's Messages API.

    ``setup(model_name, **config)`` returns a handle whose ``model`` is an
    ``anthropic.AsyncAnthropic`` client with a ``model`` attribute holding ``model_name``, so
    an evaluation calls ``client.messages.create(model=client.model, max_tokens=..., ...)``.
    Clients are shared: one per model name and config, closed when the last handle is torn
    down (or at :meth:`aclose`).

    Example::

        provider = AnthropicProvider(timeout=60)
        handle = await provider.setup("claude-sonnet-4-5")
        client = handle.model
        reply = await client.messages.create(
            model=client.model, max_tokens=256, messages=[{"role": "user", "content": "Hi"}]
        )
        await handle.teardown()

    Takes the arguments of :class:`~dotevals.providers._sdk.SDKClientProvider`: the API key
    defaults to ``ANTHROPIC_API_KEY``, the base URL to ``ANTHROPIC_BASE_URL`` (else
    Anthropic's), and ``**client_options`` are any other ``anthropic.AsyncAnthropic`` argument.
    """

    name = PROVIDER_NAME

    def make(self, spec: str, options: dict[str, Any]) -> Any:
        """An ``anthropic.AsyncAnthropic`` client bound to ``spec``."""
        return make_anthropic_client(spec, **options)
