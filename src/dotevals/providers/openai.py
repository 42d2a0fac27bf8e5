"""The OpenAI provider: shared ``openai.AsyncOpenAI`` clients bound to a model name.

Registered as the ``openai`` entry point of ``dotevals.model_providers``; the pytest plugin
instantiates it with no arguments, so by default the SDK reads ``OPENAI_API_KEY`` and
``OPENAI_BASE_URL`` from the environment. Any OpenAI-compatible server works through
``base_url``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dotevals.errors import ProviderError
from dotevals.providers._client import make_client
from dotevals.providers._pool import SharedResourceProvider
from dotevals.providers.base import ModelHandle

__all__ = ["OpenAIProvider"]

PROVIDER_NAME = "openai"


def _given(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options that were given a value (None means "use the SDK's default")."""
    return {key: value for key, value in options.items() if value is not None}


class OpenAIProvider(SharedResourceProvider):
    """Provider for OpenAI (and OpenAI-compatible) chat models.

    ``setup(model_name, **config)`` returns a handle whose ``model`` is an
    ``openai.AsyncOpenAI`` client with a ``model`` attribute holding ``model_name``, so an
    evaluation calls ``client.chat.completions.create(model=client.model, ...)``. Clients
    are shared: one per model name and config, however many evaluations ask for it at once,
    and closed when the last handle is torn down (or at :meth:`aclose`).

    Configuration comes from the constructor and from ``setup`` (whose values win); what
    neither gives comes from the environment as the SDK reads it. Retries default to 0:
    the evaluation engine owns the retry policy.

    Example::

        provider = OpenAIProvider(timeout=30)
        handle = await provider.setup("gpt-4o-mini", base_url="http://localhost:8000/v1")
        client = handle.model
        await client.chat.completions.create(model=client.model, messages=[...])
        await handle.teardown()

    Args:
        api_key: The API key; default ``OPENAI_API_KEY``.
        base_url: The API's base URL; default ``OPENAI_BASE_URL`` or OpenAI's.
        timeout: Seconds (or an ``httpx.Timeout``) per request.
        max_retries: The SDK's own retries; default 0.
        default_headers: Headers sent with every request.
        **client_options: Any other ``openai.AsyncOpenAI`` argument (``organization``,
            ``project``, ``http_client``, ...).
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | Any | None = None,
        max_retries: int | None = None,
        default_headers: Mapping[str, str] | None = None,
        **client_options: Any,
    ) -> None:
        super().__init__()
        self.options: dict[str, Any] = _given(
            {
                "api_key": api_key,
                "base_url": base_url,
                "timeout": timeout,
                "max_retries": max_retries,
                "default_headers": default_headers,
                **client_options,
            }
        )

    async def setup(self, resource_spec: str, **config: Any) -> ModelHandle:
        """Return a handle on the shared client for ``resource_spec`` and ``config``.

        Args:
            resource_spec: The model name the client is bound to (``client.model``).
            **config: ``openai.AsyncOpenAI`` arguments; they override the constructor's.

        Returns:
            A handle whose ``model`` is the client; ``await handle.teardown()`` releases it.

        Raises:
            ProviderError: The client could not be made: the SDK is missing (the message
                names the ``dotevals[openai]`` extra), no API key is configured, or an
                option is invalid. The original error is chained.
        """
        try:
            return await super().setup(resource_spec, **config)
        except ProviderError:
            raise
        except Exception as exc:
            message = (
                f"provider {PROVIDER_NAME!r} could not set up {resource_spec!r}: "
                f"{type(exc).__name__}: {exc}"
            )
            raise ProviderError(message, provider=PROVIDER_NAME, spec=resource_spec) from exc

    async def create(self, resource_id: str, spec: str, config: dict[str, Any]) -> Any:
        """Make the client for ``spec`` from the constructor's options and ``config``."""
        return make_client(spec, **{**self.options, **_given(config)})

    async def destroy(self, resource_id: str, model: Any) -> None:
        """Close the client's connection pool."""
        await model.close()
