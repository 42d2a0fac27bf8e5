"""Datasets: registered dataset classes and lazy file loaders.

A registered dataset is a class with ``columns`` (column names) that is built with its
arguments (``foreach.gsm8k("test")`` builds ``gsm8k("test")`` when the evaluation first reads
its rows, never at import or collection) and iterated for rows (tuples in column order, or
dicts). It is found by name in :data:`registry` (``registry.register(cls)``
registers ``cls.name``), then among the ``dotevals.datasets`` entry points (by entry-point name,
then by the loaded class's ``name``); ``from dotevals.datasets import gsm8k`` gives the class.
Subclassing :class:`Dataset` is the way dotevals 0.26 plugins are written; any class with
``columns`` works. Files are read lazily, one row at a time, and a row that cannot be read is
a :class:`BadRow` (the row's error record; the other rows run)::

    @foreach("question,answer", jsonl("data.jsonl", columns={"question": "problem"}))

Loaders: :func:`jsonl`, :func:`csv_rows`, :func:`json_rows` (ijson), :func:`parquet` (pyarrow)
and :func:`huggingface` (``datasets``), in :mod:`.files` and :mod:`.huggingface`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any, Final

from dotevals._registry import entry_point_names, load_entry_point, load_group
from dotevals.datasets.base import BadRow, Columns, Dataset, LoadedOnce
from dotevals.datasets.files import FileRows, csv_rows, json_rows, jsonl, parquet
from dotevals.datasets.huggingface import (
    HuggingFaceRows,
    huggingface,
    load_error,
)
from dotevals.errors import ConfigurationError, DotevalsError, PluginLoadError

__all__ = [
    "BadRow",
    "Columns",
    "Dataset",
    "DatasetRegistry",
    "FileRows",
    "HuggingFaceRows",
    "RegisteredDataset",
    "UnknownDatasetError",
    "csv_rows",
    "get_dataset_info",
    "huggingface",
    "json_rows",
    "jsonl",
    "list_available",
    "load_dataset",
    "parquet",
    "registered_dataset",
    "registry",
]

#: The entry-point group dataset plugins register in.
GROUP: Final = "dotevals.datasets"


class UnknownDatasetError(PluginLoadError, ValueError):
    """No dataset is registered under a name (a ValueError, as in dotevals 0.26)."""


class DatasetRegistry:
    """Dataset classes by name: those registered here, then the entry points."""

    def __init__(self) -> None:
        self._classes: dict[str, Any] = {}

    def register(self, dataset_class: Any) -> None:
        """Register a dataset class under its ``name`` (again with the same class: no-op).

        Raises:
            ValueError: the class has no ``name``, or another class has that name.
        """
        name = getattr(dataset_class, "name", "")
        if not name:
            raise ValueError(f"{dataset_class!r} has no `name` to register it under")
        known = self._classes.get(name)
        if known is not None and known is not dataset_class:
            raise ValueError(f"dataset {name!r} is already registered as {known!r}")
        self._classes[name] = dataset_class

    def get_dataset_class(self, name: str) -> Any:
        """The class registered as ``name``, here or as a ``dotevals.datasets`` entry point.

        Raises:
            UnknownDatasetError: no dataset has that name; the message lists those known.
            PluginLoadError: the entry point of that name fails to load.
        """
        found = self._classes.get(name)
        if found is None:
            found = _from_entry_points(name)
        if found is None:
            raise UnknownDatasetError(
                f"dataset {name!r} not found; available datasets: {self.list_datasets()}",
                group=GROUP,
                name=name,
            )
        return found

    def list_datasets(self) -> list[str]:
        """Names of the registered datasets and of the entry points, sorted (none imported)."""
        return sorted(set(self._classes) | set(entry_point_names(GROUP)))

    def discover_plugins(self, force: bool = False) -> None:
        """Import every ``dotevals.datasets`` entry point (kept for dotevals 0.26 callers).

        Args:
            force: accepted for compatibility; entry points are read once per process.
        """
        load_group(GROUP)


def _from_entry_points(name: str) -> Any:
    """The entry point called ``name``, else the entry point whose object has that ``name``.

    Each entry point is loaded on its own, so a broken plugin of another name does not hide the
    one asked for (it is reported with a warning when another one matched).

    Raises:
        PluginLoadError: the entry point called ``name`` fails to load; or none matched and an
            entry point failed to load (it may be the one asked for): the first such error,
            naming the entry point and its distribution, is chained.
    """
    names = entry_point_names(GROUP)
    if name in names:
        return load_entry_point(GROUP, name)
    broken: PluginLoadError | None = None
    for ep_name in names:
        try:
            obj = load_entry_point(GROUP, ep_name)
        except PluginLoadError as exc:
            broken = broken or exc
            continue
        if getattr(obj, "name", None) == name:
            if broken is not None:
                warnings.warn(
                    f"dataset {name!r} found, but another dataset plugin is broken: {broken}",
                    UserWarning,
                    stacklevel=3,
                )
            return obj
    if broken is not None:
        raise PluginLoadError(
            f"dataset {name!r} is neither registered nor an entry point name, and no "
            f"{GROUP!r} entry point that loads has a class of that name; one that fails to "
            f"load may be it: {broken}",
            group=GROUP,
            name=broken.name,
        ) from broken
    return None


#: The registry ``foreach.NAME(...)`` and ``from dotevals.datasets import NAME`` look in.
registry = DatasetRegistry()


def list_available() -> list[str]:
    """Names of the datasets ``foreach.NAME(...)`` can use, sorted."""
    return registry.list_datasets()


def get_dataset_info(name: str) -> dict[str, Any]:
    """``{"name", "splits", "columns", "num_rows"}`` of a dataset class, without building it.

    Raises:
        UnknownDatasetError: no dataset has that name.
    """
    cls = registry.get_dataset_class(name)
    return {
        "name": getattr(cls, "name", name),
        "splits": list(getattr(cls, "splits", ())),
        "columns": list(getattr(cls, "columns", ())),
        "num_rows": getattr(cls, "num_rows", None),
    }


def load_dataset(name: str, *args: Any, **kwargs: Any) -> Any:
    """Build the dataset called ``name`` with ``args`` (the split) and ``kwargs``.

    Raises:
        UnknownDatasetError: no dataset has that name.
        ConfigurationError: the dataset built has no ``columns``.
    """
    factory = registry.get_dataset_class(name)
    dataset = factory(*args, **kwargs)
    if not getattr(dataset, "columns", None):
        raise ConfigurationError(f"dataset {name!r} ({factory!r}) has no `columns` attribute")
    return dataset


def __getattr__(name: str) -> Any:
    """``from dotevals.datasets import gsm8k``: the dataset class registered as ``gsm8k``.

    Only registered names and ``dotevals.datasets`` entry-point names resolve, and only the
    entry point asked for is imported: any other name (``pytest_plugins``, a dunder) is an
    AttributeError at once, without importing any plugin. Finding a plugin by its class's
    ``name`` is left to :meth:`DatasetRegistry.get_dataset_class` (``foreach.NAME``).

    Raises:
        AttributeError: no dataset is registered or has an entry point under ``name``.
        PluginLoadError: the entry point called ``name`` fails to load (not an AttributeError,
            so that ``from dotevals.datasets import NAME`` shows why).
    """
    if not name.startswith("_"):
        found = registry._classes.get(name)
        if found is not None:
            return found
        if name in entry_point_names(GROUP):
            return load_entry_point(GROUP, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class RegisteredDataset(LoadedOnce):
    """A registered dataset, built (and so downloaded) when its rows are first read.

    ``foreach.gsm8k("test")`` makes one at import time: the plugin's class is imported for its
    ``columns``, and the class itself (whose constructor may download) is called in the
    evaluation, once; iterating again iterates the same built dataset.
    """

    made = "built"

    def __init__(self, name: str, factory: Any, args: tuple[Any, ...], kwargs: dict[str, Any]):
        """Keep what to build; see :func:`registered_dataset`."""
        self.name = name
        self.columns = list(factory.columns)
        self._factory = factory
        self._args = args
        self._kwargs = kwargs

    def __repr__(self) -> str:
        return f"<dataset {self.name!r} {self._args!r}>"

    def __iter__(self) -> Iterator[Any]:
        """The built dataset's rows."""
        return iter(self.build())

    def build(self) -> Any:
        """The dataset, built the first time.

        Raises:
            DatasetUnavailableError: it needs the network and the network cannot be reached.
            ConfigurationError: the dataset's class fails otherwise, or has no ``columns``.
        """
        return self._once()

    def _make(self) -> Any:
        try:
            return load_dataset(self.name, *self._args, **self._kwargs)
        except DotevalsError:
            raise
        # The dataset's class is a plugin's code: whatever it raises is handed on as an error
        # that names the dataset, and says so when it is the network that is missing.
        except Exception as exc:
            message = (
                f"dataset {self.name!r} ({self._factory!r}) failed to load with arguments "
                f"{self._args!r} {self._kwargs!r}: {type(exc).__name__}: {exc}"
            )
            raise load_error(self.name, exc, message) from exc


def registered_dataset(name: str, *args: Any, **kwargs: Any) -> Any:
    """The dataset called ``name``, to be built with ``args``/``kwargs`` when first read.

    A class with ``columns`` is not called yet (a :class:`RegisteredDataset`); one whose
    columns are known only once built is built now, as :func:`load_dataset` does.

    Raises:
        UnknownDatasetError: no dataset has that name.
    """
    factory = registry.get_dataset_class(name)
    if getattr(factory, "columns", None):
        return RegisteredDataset(name, factory, args, kwargs)
    return load_dataset(name, *args, **kwargs)
