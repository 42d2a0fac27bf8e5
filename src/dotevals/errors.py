"""Errors raised by dotevals.

The tree::

    DotevalsError
    ├── ConfigurationError      bad options, unknown storage scheme, bad columns
    ├── DatasetChangedError     the rows under an experiment changed since it was stored
    ├── StorageError            a store that cannot be opened or written
    │   └── EvaluationLockedError   another process is running the same evaluation
    ├── PluginLoadError         an entry point that fails to import or names nothing
    ├── ProviderError           a model provider's setup failed
    │   └── ServerStartError    a local model server exited or never became healthy
    └── EvaluationFailed        an evaluation crashed, had every row error, or missed a threshold
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConfigurationError",
    "DatasetChangedError",
    "DotevalsError",
    "EvaluationFailed",
    "EvaluationLockedError",
    "PluginLoadError",
    "ProviderError",
    "ServerStartError",
    "StorageError",
]


class DotevalsError(Exception):
    """Base class of every error dotevals raises on purpose."""


class ConfigurationError(DotevalsError):
    """A value given by the user is not usable; the message says which and how to fix it."""


class DatasetChangedError(DotevalsError):
    """The dataset rows differ from those stored under the same experiment."""

    def __init__(self, message: str, *, item_id: int) -> None:
        super().__init__(message)
        self.item_id = item_id


class StorageError(DotevalsError):
    """A storage backend cannot be opened, read or written."""


class EvaluationLockedError(StorageError):
    """Another process holds the lock of an evaluation's store (``holder``: who, when known)."""

    def __init__(self, message: str, *, holder: dict[str, Any] | None) -> None:
        super().__init__(message)
        self.holder = holder


class PluginLoadError(DotevalsError):
    """An entry point could not be loaded."""

    def __init__(self, message: str, *, group: str, name: str) -> None:
        super().__init__(message)
        self.group = group
        self.name = name


class ProviderError(DotevalsError):
    """A model provider failed to set up a resource."""

    def __init__(self, message: str, *, provider: str, spec: str) -> None:
        super().__init__(message)
        self.provider = provider
        self.spec = spec


class ServerStartError(ProviderError):
    """A local model server exited early or did not become healthy in time."""


class EvaluationFailed(DotevalsError):
    """An evaluation did not complete successfully."""
