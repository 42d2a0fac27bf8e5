"""Rows of a Hugging Face ``datasets`` dataset: saved to disk, local files, or from the Hub.

``huggingface(...)`` loads nothing when it is called: the dataset is loaded when its rows are
first read (in the evaluation, never at import or collection), then kept, so iterating again
reads the same dataset again. A ``datasets.Dataset`` or ``IterableDataset`` can also be given to
``@foreach`` as it is (it is re-iterable and yields dicts).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from dotevals.datasets.base import Columns, LoadedOnce, columns_of, missing_columns, pick_columns
from dotevals.datasets.files import require
from dotevals.errors import ConfigurationError, DatasetUnavailableError, DotevalsError

__all__ = [
    "HuggingFaceRows",
    "huggingface",
    "is_network_error",
    "load_error",
    "needs_network_error",
]

#: Files ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk`` write into the folder.
_SAVED_MARKERS: Final = ("state.json", "dataset_dict.json")
#: Names of the Hub client's errors for "offline" and "not in the cache" (no import needed).
_OFFLINE_ERRORS: Final = frozenset({"OfflineModeIsEnabled", "LocalEntryNotFoundError"})


def is_network_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it was raised from) says the network could not be used."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (ConnectionError, TimeoutError)):
            return True
        if type(seen).__name__ in _OFFLINE_ERRORS:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def needs_network_error(dataset: str, exc: BaseException) -> DatasetUnavailableError:
    """The error for a dataset that must be downloaded and could not be."""
    return DatasetUnavailableError(
        f"dataset {dataset!r} needs the network: it is downloaded from the Hugging Face Hub, "
        "and the Hub could not be reached and no copy is in the local cache (HF_HOME). "
        "Run once with network access (it is cached for offline runs then), or save it "
        f"with save_to_disk and use dotevals.datasets.huggingface(PATH). Cause: {exc}",
        dataset=dataset,
    )


def load_error(dataset: str, exc: BaseException, message: str) -> DotevalsError:
    """The error for a dataset that failed to load with ``exc``: it needs the network
    (:func:`needs_network_error`) when ``exc`` says so, else a ConfigurationError saying
    ``message``."""
    if is_network_error(exc):
        return needs_network_error(dataset, exc)
    return ConfigurationError(message)


class HuggingFaceRows(LoadedOnce):
    """Re-iterable rows (dicts) of a Hugging Face dataset, loaded at the first iteration."""

    made = "loaded"

    def __init__(
        self,
        source: Any,
        split: str | None,
        streaming: bool,
        columns: Columns,
        load_kwargs: dict[str, Any],
    ) -> None:
        """Keep what to load; see :func:`huggingface`."""
        self.source = source
        self.split = split
        self.streaming = streaming
        self.load_kwargs = load_kwargs
        self.columns = columns_of(columns, f"huggingface({self._name!r})")

    @property
    def _name(self) -> str:
        return str(self.source) if isinstance(self.source, (str, Path)) else repr(self.source)

    def __repr__(self) -> str:
        return f"huggingface({self._name!r}, split={self.split!r})"

    def __iter__(self) -> Iterator[Any]:
        """The rows, with the columns picked; the dataset is loaded the first time."""
        dataset = self.load()
        if self.columns is None:
            return iter(dataset)
        return self._picked(dataset, self.columns)

    def load(self) -> Any:
        """The dataset (loaded once, then kept).

        Raises:
            ImportError: ``datasets`` is not installed.
            DatasetUnavailableError: a Hub dataset is neither reachable nor in the cache.
            ConfigurationError: it cannot be loaded otherwise (bad path, split or column).
        """
        return self._once()

    def _make(self) -> Any:
        return self._select(self._load())

    def _load(self) -> Any:
        if not isinstance(self.source, (str, Path)):  # a Dataset or IterableDataset
            return self.source
        hf = require("datasets", "huggingface", "huggingface()")
        path = Path(self.source)
        if path.is_dir() and any((path / m).exists() for m in _SAVED_MARKERS):
            return self._from_disk(hf, path)
        try:
            return hf.load_dataset(
                str(self.source), split=self.split, streaming=self.streaming, **self.load_kwargs
            )
        # Loading runs the datasets library and the Hub client: any error they raise is
        # handed on as one that names the dataset (network errors say so).
        except Exception as exc:
            message = (
                f"Hugging Face dataset {self._name!r} could not be loaded: "
                f"{type(exc).__name__}: {exc}"
            )
            raise load_error(self._name, exc, message) from exc

    def _from_disk(self, hf: Any, path: Path) -> Any:
        loaded = hf.load_from_disk(str(path), **self.load_kwargs)
        if isinstance(loaded, hf.DatasetDict):
            splits = sorted(loaded)
            if self.split not in loaded:
                raise ConfigurationError(
                    f"{self._name!r} holds splits {splits}: give split= one of them "
                    f"(got {self.split!r})"
                )
            loaded = loaded[self.split]
        return loaded.to_iterable_dataset() if self.streaming else loaded

    def _select(self, dataset: Any) -> Any:
        names = getattr(dataset, "column_names", None)
        if self.columns is None or names is None:
            return dataset
        missing = [c for c in self.columns.values() if c not in names]
        if missing:
            raise ConfigurationError(
                f"Hugging Face dataset {self._name!r} has no column(s) {missing}; "
                f"its columns are {list(names)}"
            )
        return dataset.select_columns(list(dict.fromkeys(self.columns.values())))

    def _picked(self, dataset: Any, columns: dict[str, str]) -> Iterator[Any]:
        for index, row in enumerate(dataset):
            picked = pick_columns(row, columns)
            if picked is None:  # a streamed dataset whose columns were not known up front
                picked = missing_columns(row, columns, self._name, f"row {index}")
            yield picked


def huggingface(
    path_or_name: Any,
    split: str | None = None,
    *,
    streaming: bool = False,
    columns: Columns = None,
    **load_kwargs: Any,
) -> HuggingFaceRows:
    """Rows of a Hugging Face dataset, loaded when they are first read.

    Args:
        path_or_name: a folder written by ``save_to_disk``; a builder with local files
            (``"json"`` with ``data_files=...``, ``"parquet"``, ``"csv"``); a Hub name (needs the
            network, or the local cache); or a ``datasets.Dataset``/``IterableDataset``.
        split: the split to read (needed for a dataset with several).
        streaming: read the rows as a stream instead of preparing the dataset first.
        columns: the columns to keep: names, or ``{"question": "problem"}``.
        **load_kwargs: passed to ``datasets.load_dataset`` (``load_from_disk`` for a saved one).

    Raises:
        ImportError: ``datasets`` is not installed (``pip install 'dotevals[huggingface]'``).
    """
    require("datasets", "huggingface", "huggingface()", load=False)
    return HuggingFaceRows(path_or_name, split, streaming, columns, load_kwargs)
