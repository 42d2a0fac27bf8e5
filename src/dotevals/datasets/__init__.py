"""Datasets: registered dataset classes and lazy file loaders.

A registered dataset is a class with ``columns`` (column names) that is built with its
arguments (``foreach.gsm8k("test")`` builds ``gsm8k("test")``) and iterated for rows (tuples in
column order, or dicts). It is found by name in :data:`registry` (``registry.register(cls)``
registers ``cls.name``), then among the ``dotevals.datasets`` entry points (by entry-point name,
then by the loaded class's ``name``); ``from dotevals.datasets import gsm8k`` gives the class.
Subclassing :class:`Dataset` is the way dotevals 0.26 plugins are written; any class with
``columns`` works. Files are read lazily, one row at a time::

    @foreach("question,answer", jsonl("data.jsonl"))
"""

from __future__ import annotations

import csv
import json
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from dotevals._registry import entry_point_names, load_entry_point, load_group
from dotevals.errors import ConfigurationError, PluginLoadError

__all__ = [
    "Dataset",
    "DatasetRegistry",
    "UnknownDatasetError",
    "csv_rows",
    "get_dataset_info",
    "jsonl",
    "list_available",
    "load_dataset",
    "registry",
]

#: The entry-point group dataset plugins register in.
GROUP: Final = "dotevals.datasets"


class Dataset(ABC):
    """Base class of dataset plugins, with the attributes dotevals 0.26 defines.

    Attributes:
        name: the name the dataset is registered under (``foreach.NAME(...)``).
        splits: the splits it has (``["train", "test"]``); empty when it has none.
        columns: the column names, in the order of the values of each row.
        num_rows: the number of rows when known (shown as the progress total), else None.
    """

    name: str = ""
    splits: Sequence[str] = ()
    columns: Sequence[str] = ()
    num_rows: int | None = None

    def __init__(self, split: str | None = None, **kwargs: Any) -> None:
        """Keep the split; subclasses load (or prepare to stream) their rows.

        Args:
            split: the split to read, or None for a dataset without splits.
            **kwargs: dataset-specific options.
        """
        self.split = split

    @abstractmethod
    def __iter__(self) -> Iterator[Any]:
        """The rows: tuples of values in ``columns`` order, or dicts keyed by column."""

    def __len__(self) -> int:
        """``num_rows`` when known.

        Raises:
            TypeError: the number of rows is not known (``num_rows`` is None).
        """
        if self.num_rows is None:
            raise TypeError(f"{type(self).__name__} does not know its number of rows")
        return self.num_rows

    def __bool__(self) -> bool:
        """A dataset is true even when its length is unknown."""
        return True


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


class _Lazy:
    """Re-iterable rows read from a file on each iteration."""

    def __init__(self, path: str | Path, reader: Any) -> None:
        self.path = Path(path)
        self._reader = reader

    def __iter__(self) -> Iterator[Any]:
        if not self.path.exists():
            raise ConfigurationError(f"dataset file {str(self.path)!r} does not exist")
        return self._reader(self.path)  # type: ignore[no-any-return]


def _jsonl_rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise ConfigurationError(f"{path}:{lineno}: not a JSON line: {exc}") from exc


def _csv_rows(path: Path) -> Iterator[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        yield from csv.DictReader(f)


def jsonl(path: str | Path) -> Any:
    """Rows of a JSON Lines file (dicts), read lazily."""
    return _Lazy(path, _jsonl_rows)


def csv_rows(path: str | Path) -> Any:
    """Rows of a CSV file with a header line (dicts), read lazily."""
    return _Lazy(path, _csv_rows)
