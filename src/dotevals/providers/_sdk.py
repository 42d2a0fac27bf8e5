"""Providers whose resource is one SDK client per model name and config."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import Any

from dotevals.errors import ProviderError
from dotevals.providers._pool import SharedResourceProvider
from dotevals.providers.base import ModelHandle

__all__ = ["SDKClientProvider", "given"]


def given(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options that were given a value (None means "use the SDK's default")."""
    return {key: value for key, value in options.items() if value is not None}


class SDKClientProvider(SharedResourceProvider):
    """Shared SDK clients: made by :meth:`make`, closed with the last handle.

    Configuration comes from the constructor and from ``setup`` (whose values win); what
    neither gives comes from the environment as the SDK reads it. A client that cannot be
    made raises :class:`~dotevals.errors.ProviderError` naming the provider and the spec.

    Args:
        api_key: The API key (default: the SDK's environment variable).
        base_url: The API's base URL (default: the SDK's environment variable, else its own).
        timeout: Seconds (or an ``httpx.Timeout``) per request.
        max_retries: The SDK's own retries; default 0 (the engine owns the retry policy).
        default_headers: Headers sent with every request.
        **client_options: Any other argument of the SDK's client.
    """

    #: The provider's name in errors.
    name: str = "sdk"

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
        self.options: dict[str, Any] = given(
            {
                "api_key": api_key,
                "base_url": base_url,
                "timeout": timeout,
                "max_retries": max_retries,
                "default_headers": default_headers,
                **client_options,
            }
        )

    @abstractmethod
    def make(self, spec: str, options: dict[str, Any]) -> Any:
        """The client for ``spec`` with these SDK options (None values already dropped)."""

    async def setup(self, resource_spec: str, **config: Any) -> ModelHandle:
        """Return a handle on the shared client for ``resource_spec`` and ``config``.

        Args:
            resource_spec: The model name the client is bound to (``client.model``).
            **config: SDK client arguments; they override the constructor's.

        Returns:
            A handle whose ``model`` is the client; ``await handle.teardown()`` releases it.

        Raises:
            ProviderError: The client could not be made: the SDK is missing (the message
                names the extra to install), no API key is configured, or an option is
                invalid. The original error is chained.
        """
        try:
            return await super().setup(resource_spec, **config)
        except ProviderError:
            raise
        except Exception as exc:
            message = (
                f"provider {self.name!r} could not set up {resource_spec!r}: "
                f"{type(exc).__name__}: {exc}"
            )
            raise ProviderError(message, provider=self.name, spec=resource_spec) from exc

    async def create(self, resource_id: str, spec: str, config: dict[str, Any]) -> Any:
        """Make the client for ``spec`` from the constructor's options and ``config``."""
        return self.make(spec, {**self.options, **given(config)})

    async def destroy(self, resource_id: str, model: Any) -> None:
        """Close the client's connection pool."""
        await model.close()
