"""Shared, reference-counted resources: one per (spec, config), however many ask at once."""

from __future__ import annotations

import asyncio
import hashlib
import json
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any

from dotevals.providers.base import ModelHandle, ModelProvider

__all__ = ["SharedResourceProvider"]


@dataclass
class _Entry:
    model: Any
    refs: int = 0


def resource_key(spec: str, config: dict[str, Any]) -> str:
    """A stable id for a spec and its config: the spec alone when there is no config."""
    if not config:
        return spec
    blob = json.dumps(config, sort_keys=True, default=repr).encode()
    return f"{spec}#{hashlib.sha256(blob).hexdigest()[:12]}"


class SharedResourceProvider(ModelProvider):
    """A provider whose resources are shared between handles and closed with the last one.

    Subclasses implement :meth:`create` and :meth:`destroy`; concurrent ``setup`` calls for the
    same spec and config wait for one ``create``.
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @abstractmethod
    async def create(self, resource_id: str, spec: str, config: dict[str, Any]) -> Any:
        """Create the resource (the handle's ``model``)."""

    @abstractmethod
    async def destroy(self, resource_id: str, model: Any) -> None:
        """Release the resource made by :meth:`create`."""

    async def setup(self, resource_spec: str, **config: Any) -> ModelHandle:
        """Return a handle on the shared resource for this spec and config, creating it once."""
        resource_id = resource_key(resource_spec, config)
        lock = self._locks.setdefault(resource_id, asyncio.Lock())
        async with lock:
            entry = self._entries.get(resource_id)
            if entry is None:
                model = await self.create(resource_id, resource_spec, config)
                entry = self._entries[resource_id] = _Entry(model)
            entry.refs += 1
        return ModelHandle(resource_id=resource_id, model=entry.model, manager=self)

    async def teardown(self, resource_id: str) -> None:
        """Release one reference; the resource is destroyed with the last one."""
        lock = self._locks.setdefault(resource_id, asyncio.Lock())
        async with lock:
            entry = self._entries.get(resource_id)
            if entry is None:
                return
            entry.refs -= 1
            if entry.refs > 0:
                return
            del self._entries[resource_id]
            await self.destroy(resource_id, entry.model)

    async def aclose(self) -> None:
        """Destroy every resource still held (end of session)."""
        for resource_id in list(self._entries):
            entry = self._entries.pop(resource_id)
            await self.destroy(resource_id, entry.model)

    def active_resources(self) -> list[str]:
        """Ids of the resources alive now."""
        return list(self._entries)
