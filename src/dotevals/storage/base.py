"""The storage contract: append-only records per (experiment, evaluation)."""

from __future__ import annotations

import re
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from dotevals.errors import ConfigurationError

if TYPE_CHECKING:  # a plain pytest session opens a store and reads nothing
    from dotevals.results import Header, Record, Summary

__all__ = [
    "RecordWriter",
    "Storage",
    "StoreWarning",
    "StoredEvaluation",
    "decode_name",
    "encode_name",
    "entry_problem",
]

_SAFE: str = "[]-_.,=+@"


class StoreWarning(UserWarning):
    """A stored line could not be read or a value could not be stored as JSON."""


def _is_number_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _score_problem(score: Any) -> str | None:
    if not isinstance(score, dict) or not isinstance(score.get("name"), str):
        return "a score without a name"
    if "value" not in score:
        return f"score {score['name']!r} has no value"
    names = score.get("metrics")
    if names is not None and not (
        isinstance(names, list) and all(isinstance(n, str) for n in names)
    ):
        return f"score {score['name']!r} has metrics that are not a list of names"
    return None


def entry_problem(entry: dict[str, Any]) -> str | None:
    """Why a stored entry (valid JSON) is not one dotevals can use, or None when it is.

    A record (``"type": "record"`` or no type) needs a non-negative integer ``item_id``;
    its ``scores``, ``error``, ``timestamp``, ``duration`` and ``attempts`` must have the
    types :class:`~dotevals.results.Record` gives them. Headers, summaries and entries of
    other types are accepted as they are.
    """
    kind = entry.get("type", "record")
    if not isinstance(kind, str):
        return f"entry type {kind!r} is not a string"
    if kind != "record":
        return None
    item_id = entry.get("item_id")
    if isinstance(item_id, bool) or not isinstance(item_id, int) or item_id < 0:
        return f"a record needs an integer item_id, got {item_id!r}"
    scores = entry.get("scores")
    if scores is not None:
        if not isinstance(scores, list):
            return "scores is not a list"
        for score in scores:
            problem = _score_problem(score)
            if problem is not None:
                return problem
    error = entry.get("error")
    if error is not None and not (isinstance(error, dict) and isinstance(error.get("type"), str)):
        return "error is not an object with a type"
    if not all(_is_number_or_none(entry.get(k)) for k in ("timestamp", "duration", "attempts")):
        return "timestamp, duration or attempts is not a number"
    return None


def encode_name(name: str, what: str = "name") -> str:
    """A file-system-safe, reversible form of an experiment or evaluation name.

    Raises:
        ConfigurationError: the name is empty or is only dots (it would escape the root).
    """
    if not name or re.fullmatch(r"\.+", name):
        raise ConfigurationError(f"invalid {what} {name!r}: give a non-empty name with letters")
    encoded = quote(name, safe=_SAFE)
    # a leading dot would hide the folder or file; encode it so every name stays visible
    return "%2E" + encoded[1:] if encoded.startswith(".") else encoded


def decode_name(encoded: str) -> str:
    """The name that :func:`encode_name` encoded."""
    return unquote(encoded)


class RecordWriter(ABC):
    """Appends records of one evaluation as they complete."""

    @abstractmethod
    def append(self, record: Record) -> None:
        """Store one record durably enough that a killed process does not lose it."""

    @abstractmethod
    def write_summary(self, summary: Summary) -> None:
        """Store a run's summary (metrics, counts, concurrency history)."""

    @abstractmethod
    def close(self) -> None:
        """Release the underlying file or connection."""


class StoredEvaluation:
    """What a store holds for one evaluation: its header, final records and last summary.

    ``finished`` tells whether the last run wrote its summary: a run writes it when it ends,
    on Ctrl-C and exceptions too, while a killed process (SIGKILL, out of memory, power loss)
    leaves records, or only the header, after the last summary.
    """

    def __init__(
        self,
        header: Header | None,
        records: dict[int, Record],
        summary: Summary | None,
        skipped_lines: int = 0,
        finished: bool = False,
    ) -> None:
        self.header = header
        self.records = records
        self.summary = summary
        self.skipped_lines = skipped_lines
        self.finished = finished

    @property
    def errors(self) -> int:
        """How many final records are errors."""
        return sum(1 for r in self.records.values() if r.is_error)

    def completed_ids(self) -> set[int]:
        """Items whose final record is not an error: these are never recomputed."""
        return {i for i, r in self.records.items() if not r.is_error}


class Storage(ABC):
    """A place to keep experiments. Backends register in the ``dotevals.storage`` group."""

    #: The URL this storage was opened from.
    url: str

    @abstractmethod
    def open_writer(self, experiment: str, evaluation: str, header: Header) -> RecordWriter:
        """Open an evaluation for appending; ``header`` is written when it is new."""

    @abstractmethod
    def iter_entries(self, experiment: str, evaluation: str) -> Iterator[dict[str, Any]]:
        """Every stored entry in order: the header, records and summaries (``"type"`` tells).

        Entries that cannot be read, or that :func:`entry_problem` rejects, are skipped with
        a :class:`StoreWarning` saying where they are.
        """

    def lock_path(self, experiment: str, evaluation: str) -> Path | None:
        """The file whose advisory lock lets one process at a time run this evaluation.

        None (the default) means this store takes no lock.
        """
        return None

    def check_experiment(self, experiment: str) -> None:
        """Refuse an experiment name this store cannot hold (before anything runs).

        Raises:
            ConfigurationError: the name is empty, only dots, or reserved by the backend.
        """
        encode_name(experiment, "experiment name")

    @abstractmethod
    def list_experiments(self) -> list[str]:
        """Names of the stored experiments."""

    @abstractmethod
    def list_evaluations(self, experiment: str) -> list[str]:
        """Names of the evaluations stored under ``experiment``."""

    @abstractmethod
    def delete_experiment(self, experiment: str) -> None:
        """Remove an experiment and everything in it."""

    @abstractmethod
    def rename_experiment(self, old: str, new: str) -> None:
        """Give an experiment a new name."""

    @abstractmethod
    def experiment_mtime(self, experiment: str) -> float:
        """When the experiment was last written (seconds since the epoch)."""

    def has_experiment(self, experiment: str) -> bool:
        """Whether ``experiment`` exists."""
        return experiment in self.list_experiments()

    def load(self, experiment: str, evaluation: str) -> StoredEvaluation:
        """Read one evaluation: the last record for each item wins.

        The evaluation is :attr:`~StoredEvaluation.finished` when a summary comes after the
        last record (an unreadable record counts too: a run wrote it after that summary).
        Fields a newer dotevals wrote are kept in each entry's ``extra``, with one
        :class:`StoreWarning` naming them.
        """
        reader = _Reader(f"{self.url}: {experiment}/{evaluation}")
        for entry in self.iter_entries(experiment, evaluation):
            reader.add(entry)
        reader.warn_fields()
        return StoredEvaluation(
            reader.header, reader.records, reader.summary, finished=reader.finished
        )


class _Reader:
    """Folds stored entries into an evaluation's header, final records and last summary."""

    def __init__(self, where: str) -> None:
        from dotevals import results  # imported when a store is read, not when opened

        self._results = results
        self.where = where
        self.header: Header | None = None
        self.summary: Summary | None = None
        self.records: dict[int, Record] = {}
        self.finished = False
        self.unknown: set[str] = set()
        #: Fields whose stored values were no usable number, replaced by their defaults.
        self.bad: set[str] = set()

    def add(self, entry: dict[str, Any]) -> None:
        kind = entry.get("type", "record")
        if kind == "record":
            self.finished = False
            record = self._record(entry)
            if record is not None:
                self.records[record.item_id] = record
                self.unknown.update(record.extra)
        elif kind == "header" and self.header is None:
            self.header = self._results.Header.from_dict(entry)
            self.unknown.update(self.header.extra)
        elif kind == "summary":
            self.summary = self._results.Summary.from_dict(entry)
            self.unknown.update(self.summary.extra)
            self.finished = True

    def _record(self, entry: dict[str, Any]) -> Record | None:
        try:
            return self._results.Record.from_dict(entry, self.bad)
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            warnings.warn(
                StoreWarning(
                    f"{self.where}: unreadable record skipped ({type(exc).__name__}: {exc})"
                ),
                stacklevel=4,
            )
            return None

    def warn_fields(self) -> None:
        """One warning for unknown fields, one for unusable numbers (read as defaults)."""
        if self.unknown:
            names = ", ".join(sorted(self.unknown))
            warnings.warn(
                StoreWarning(
                    f"{self.where}: fields unknown to this dotevals version kept as they are "
                    f"({names}); a newer dotevals wrote them"
                ),
                stacklevel=3,
            )
        if self.bad:
            warnings.warn(
                StoreWarning(
                    f"{self.where}: unusable numbers ({', '.join(sorted(self.bad))}) read as "
                    "their defaults; the store may be damaged (the rest of it is read as stored)"
                ),
                stacklevel=3,
            )
