"""Datasets: the ``dotevals.datasets`` registry and lazy file loaders.

A registered dataset is a class with ``columns`` (a tuple of names) that is built with its
arguments (``foreach.gsm8k("test")`` builds ``gsm8k("test")``) and iterated for rows.
Files are read lazily, one row at a time::

    @foreach("question,answer", jsonl("data.jsonl"))
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dotevals._registry import load_entry_point
from dotevals.errors import ConfigurationError

__all__ = ["Dataset", "csv_rows", "jsonl", "load_dataset"]


class Dataset:
    """A registered dataset: iterable rows and the names of their columns."""

    columns: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[Any]:
        raise NotImplementedError


def load_dataset(name: str, *args: Any, **kwargs: Any) -> Any:
    """Build the dataset registered as ``name`` in the ``dotevals.datasets`` group."""
    factory = load_entry_point("dotevals.datasets", name)
    dataset = factory(*args, **kwargs)
    if not getattr(dataset, "columns", None):
        raise ConfigurationError(f"dataset {name!r} ({factory!r}) has no `columns` attribute")
    return dataset


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
