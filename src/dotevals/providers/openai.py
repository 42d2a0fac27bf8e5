"""The OpenAI provider: shared ``openai.AsyncOpenAI`` clients bound to a model name.

Registered as the ``openai`` entry point of ``dotevals.model_providers``; the pytest plugin
instantiates it with no arguments, so by default the SDK reads ``OPENAI_API_KEY`` and
``OPENAI_BASE_URL`` from the environment. Any OpenAI-compatible server works through
``base_url``.
"""

from __future__ import annotations

from typing import Any

from dotevals.providers._client import make_client
from dotevals.providers._sdk import SDKClientProvider

__all__ = ["OpenAIProvider"]

PROVIDER_NAME = "openai"


class OpenAIProvider(SDKClientProvider):
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

    Takes the arguments of :class:`~dotevals.providers._sdk.SDKClientProvider`: the API key
    defaults to ``OPENAI_API_KEY``, the base URL to ``OPENAI_BASE_URL`` (else OpenAI's), and
    ``**client_options`` are any other ``openai.AsyncOpenAI`` argument (``organization``,
    ``project``, ``http_client``, ...).
    """

    name = PROVIDER_NAME

    def make(self, spec: str, options: dict[str, Any]) -> Any:
        """An ``openai.AsyncOpenAI`` client bound to ``spec`` (the ``dotevals[openai]`` SDK)."""
        return make_client(spec, **options)
