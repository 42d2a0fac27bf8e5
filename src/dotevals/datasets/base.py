"""What every dataset shares: the plugin base class, the bad-row marker, column selection."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from dotevals.errors import ConfigurationError

__all__ = [
    "BadRow",
    "Columns",
    "Dataset",
    "LoadedOnce",
    "column_map",
    "columns_of",
    "missing_columns",
    "pick_columns",
]

#: Columns to keep: names (``["question", "answer"]``), or a mapping from the name the function
#: takes to the name stored in the data (``{"question": "problem"}``).
Columns: TypeAlias = "Sequence[str] | Mapping[str, str] | None"


@dataclass(frozen=True)
class BadRow:
    """A row that could not be read; the engine records it as that row's error.

    Loaders yield it in the place of the row, so the other rows keep their positions (their
    ``item_id``), run as usual, and a resume after the data is fixed retries this one.

    Attributes:
        source: the file (or dataset) the row comes from.
        location: where in it: ``"line 3"``, ``"row group 2, index 17"``, ``"record 5"``.
        message: what is wrong with it.
    """

    source: str
    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}, {self.location}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        """What the row's record stores in place of the row."""
        return {"source": self.source, "location": self.location}


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


def column_map(columns: Columns) -> dict[str, str] | None:
    """``columns`` as ``{name the function takes: name stored}``, or None to keep every key.

    Raises:
        TypeError: ``columns`` is a single string, or holds something else than names.
    """
    if columns is None:
        return None
    if isinstance(columns, str):
        raise TypeError(f"columns={columns!r}: give a list of names or a mapping, not a string")
    pairs = columns.items() if isinstance(columns, Mapping) else ((c, c) for c in columns)
    mapping = {str(new): str(old) for new, old in pairs}
    if not mapping:
        raise TypeError("columns= selects no column: give at least one name")
    return mapping


def columns_of(columns: Columns, where: str) -> dict[str, str] | None:
    """:func:`column_map` of ``columns``, its errors naming ``where`` (the dataset).

    Raises:
        ConfigurationError: ``columns`` is a single string, or holds something else than names.
    """
    try:
        return column_map(columns)
    except TypeError as exc:
        raise ConfigurationError(f"{where}: {exc}") from exc


class LoadedOnce(ABC):
    """Rows of a dataset made (built, loaded) the first time they are needed, then kept."""

    #: What making the dataset is called, in the error of ``len()`` before it is made.
    made = "made"
    _kept: Any = None

    def __len__(self) -> int:
        """The kept dataset's length.

        Raises:
            TypeError: not made yet, or the dataset does not know its length.
        """
        if self._kept is None:
            raise TypeError(f"{self!r} is not {self.made} yet")
        return len(self._kept)

    def _once(self) -> Any:
        """The dataset, made the first time."""
        if self._kept is None:
            self._kept = self._make()
        return self._kept

    @abstractmethod
    def _make(self) -> Any:
        """Make the dataset (called once, unless it fails)."""


def pick_columns(row: Any, mapping: dict[str, str] | None) -> Any:
    """``row`` with only the mapped columns, renamed; None when a dict row lacks one of them.

    Rows that are not dicts are returned as they are: the engine judges them against the
    evaluation's columns.
    """
    if mapping is None or not isinstance(row, dict):
        return row
    try:
        return {new: row[old] for new, old in mapping.items()}
    except KeyError:
        return None


def missing_columns(
    row: dict[str, Any], mapping: dict[str, str], source: str, where: str
) -> BadRow:
    """The BadRow of a row that lacks some of the mapped columns."""
    missing = [old for old in mapping.values() if old not in row]
    keys = sorted(map(str, row))
    return BadRow(source, where, f"no column(s) {missing}; its columns are {keys}")
