"""The model provider contract, exactly as the "Model Providers API" page documents it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
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

    ``await handle.teardown()`` calls the provider once; later calls do nothing.
    """

    resource_id: str
    model: Any
    manager: ModelProvider
    _active: bool = True

    @property
    def is_active(self) -> bool:
        """Whether the resource has not been torn down through this handle yet."""
        return self._active

    async def teardown(self) -> None:
        """Tear down this model resource."""
        if self._active:
            self._active = False
            await self.manager.teardown(self.resource_id)


#: The page's examples annotate ``setup`` with ``-> ResourceHandle``: the same type.
ResourceHandle = ModelHandle
