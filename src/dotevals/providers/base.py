"""The model provider contract, exactly as the "Model Providers API" page documents it."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ModelHandle", "ModelProvider", "ResourceHandle"]


class ModelProvider(ABC):
    """Abstract base class for managing model resources.

    A provider sets up expensive resources (API clients, local servers) and tears them down.
    Providers are session fixtures: ``setup`` is awaited once per model a session needs.
    """

    @abstractmethod
    async def setup(self, resource_spec: str, **config: Any) -> ModelHandle:
        """Set up a resource and return a handle."""

    @abstractmethod
    async def teardown(self, resource_id: str) -> None:
        """Tear down a resource by its ID."""


@dataclass
class ModelHandle:
    """Handle for managing resource lifecycle.

    ``await handle.teardown()`` calls the provider's ``teardown`` and, once that returns, marks
    the handle inactive (as the page does): later calls do nothing, while a teardown that raised
    leaves the handle active so that it can be retried. Concurrent calls are serialized, so the
    provider is called once.
    """

    resource_id: str
    model: Any
    manager: ModelProvider
    _active: bool = True
    # Not a constructor argument: the page's ``ModelHandle(resource_id, model, manager)`` holds.
    _lock: asyncio.Lock | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def is_active(self) -> bool:
        """Whether the resource has not been torn down through this handle yet."""
        return self._active

    async def teardown(self) -> None:
        """Tear down this model resource."""
        if not self._active:
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._active:  # another caller may have finished while this one waited
                await self.manager.teardown(self.resource_id)
                self._active = False


#: The page's examples annotate ``setup`` with ``-> ResourceHandle``: the same type.
ResourceHandle = ModelHandle
