"""The model provider contract, exactly as the "Model Providers API" page documents it."""

from __future__ import annotations

import asyncio
import weakref
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Final

from dotevals._registry import entry_point_name_of

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

    def __post_init__(self) -> None:
        _remember(self.model, type(self.manager))

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


_GROUP: Final = "dotevals.model_providers"
#: The provider class of each model a handle was made for, by the model's id; an entry goes
#: with its model (weakly held), so the registry keeps nothing alive.
_MANAGERS: dict[int, tuple[weakref.ref[Any], type[Any]]] = {}


def _remember(model: Any, manager: type[Any]) -> None:
    """Note which provider class made ``model``; silently not, for a model with no weakref."""
    key = id(model)
    try:
        ref = weakref.ref(model, lambda _: _MANAGERS.pop(key, None))
    except TypeError:  # a str, a number, an object whose __slots__ lack __weakref__
        return
    _MANAGERS[key] = (ref, manager)


def manager_class(value: Any) -> type[Any] | None:
    """The class of the provider behind ``value``: a handle, or a model a handle holds."""
    if isinstance(value, ModelHandle):
        return type(value.manager)
    entry = _MANAGERS.get(id(value))
    if entry is None or entry[0]() is not value:
        return None
    return entry[1]


def provider_name(value: Any) -> str | None:
    """The provider of a handle or of a handle's model, for the store's header.

    The provider class's entry-point name in ``dotevals.model_providers`` when it is
    registered there, else the class's name; None for a value no handle was made for.
    """
    cls = manager_class(value)
    if cls is None:
        return None
    return entry_point_name_of(_GROUP, cls) or cls.__name__
