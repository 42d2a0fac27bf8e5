"""The storage contract: append-only records per (experiment, evaluation)."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, unquote

from dotevals.errors import ConfigurationError
from dotevals.results import Record

__all__ = ["RecordWriter", "Storage", "StoredEvaluation", "decode_name", "encode_name"]

_SAFE: str = "[]-_.,=+@"


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
    def write_summary(self, summary: dict[str, Any]) -> None:
        """Store a run's summary (metrics, counts, concurrency history)."""

    @abstractmethod
    def close(self) -> None:
        """Release the underlying file or connection."""


class StoredEvaluation:
    """What a store holds for one evaluation: its header, final records and last summary."""

    def __init__(
        self,
        header: dict[str, Any] | None,
        records: dict[int, Record],
        summary: dict[str, Any] | None,
        skipped_lines: int = 0,
    ) -> None:
        self.header = header
        self.records = records
        self.summary = summary
        self.skipped_lines = skipped_lines

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
    def open_writer(self, experiment: str, evaluation: str, header: dict[str, Any]) -> RecordWriter:
        """Open an evaluation for appending; ``header`` is written when it is new."""

    @abstractmethod
    def iter_entries(self, experiment: str, evaluation: str) -> Iterator[dict[str, Any]]:
        """Every stored entry in order: the header, records and summaries (``"type"`` tells)."""

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
        """Read one evaluation: the last record for each item wins."""
        header: dict[str, Any] | None = None
        summary: dict[str, Any] | None = None
        records: dict[int, Record] = {}
        for entry in self.iter_entries(experiment, evaluation):
            kind = entry.get("type", "record")
            if kind == "record":
                record = Record.from_dict(entry)
                records[record.item_id] = record
            elif kind == "header" and header is None:
                header = entry
            elif kind == "summary":
                summary = entry
        return StoredEvaluation(header, records, summary)
