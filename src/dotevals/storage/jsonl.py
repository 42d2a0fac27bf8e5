"""The default store: one JSON Lines file per evaluation under ``<root>/<experiment>/``.

A file starts with a header line; each record is one line written with a single ``write``
call as soon as it completes, so a killed process loses nothing already written. Files are
only ever appended to; a torn or garbled line is skipped with a warning naming file and line.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dotevals.errors import ConfigurationError, StorageError
from dotevals.storage.base import (
    RecordWriter,
    Storage,
    StoreWarning,
    decode_name,
    encode_name,
    entry_problem,
)

if TYPE_CHECKING:  # a plain pytest session opens a store and reads nothing
    from dotevals.results import Header, Record, Summary

__all__ = ["JSONLStorage", "StoreWarning", "encode_line", "warn_unencodable"]

_SUFFIX = ".jsonl"
#: The folder under the store root that holds the evaluations' lock files, never an experiment.
LOCK_DIR = ".locks"
#: The folder under the store root that holds model-server logs, never an experiment.
LOG_DIR = "logs"

#: One encoder for every line: building one per call costs as much as a small record. It
#: raises on values JSON cannot hold; those lines are encoded again, their values as reprs.
_ENCODER = json.JSONEncoder(ensure_ascii=False)


def encode_line(obj: dict[str, Any]) -> tuple[bytes, Sequence[str]]:
    """One JSON line, and a note for each value JSON cannot hold (stored as its repr).

    The notes are ``()`` for a line that JSON holds as it is (every line, nearly): writing a
    record then builds no list and calls nothing more.

    Nothing is warned here: the caller writes the line first, then passes the notes to
    :func:`warn_unencodable`, so a filter that turns warnings into errors cannot lose it.
    """
    try:
        return (_ENCODER.encode(obj) + "\n").encode(), ()
    except TypeError:
        pass
    notes: list[str] = []

    def as_repr(value: Any) -> str:
        notes.append(f"value {value!r} of type {type(value).__name__} is not JSON: stored as repr")
        return repr(value)

    text = json.JSONEncoder(default=as_repr, ensure_ascii=False).encode(obj)
    return (text + "\n").encode(), notes


def warn_unencodable(notes: Sequence[str], stacklevel: int = 3) -> None:
    """Warn (:class:`StoreWarning`) about each value :func:`encode_line` stored as a repr."""
    for note in notes:
        warnings.warn(StoreWarning(note), stacklevel=stacklevel)


class _JSONLWriter(RecordWriter):
    def __init__(self, path: Path, header: Header) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StorageError(f"cannot open {str(path)!r} for appending: {exc}") from exc
        self.path = path
        size = os.fstat(self._fd).st_size
        if size == 0:
            self._write({"type": "header", **header.to_dict()})
        elif not _ends_with_newline(path, size):
            os.write(self._fd, b"\n")  # a torn last line stays on a line of its own

    def _write(self, entry: dict[str, Any]) -> None:
        line, notes = encode_line(entry)
        os.write(self._fd, line)  # stored first: a warning raised as an error loses nothing
        if notes:
            warn_unencodable(notes, stacklevel=4)

    def append(self, record: Record) -> None:
        self._write(record.to_dict())

    def write_summary(self, summary: Summary) -> None:
        self._write({"type": "summary", **summary.to_dict()})

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _ends_with_newline(path: Path, size: int) -> bool:
    with path.open("rb") as f:
        f.seek(size - 1)
        return f.read(1) == b"\n"


class JSONLStorage(Storage):
    """JSON Lines files under a root folder: ``json://.dotevals`` (the default)."""

    def __init__(self, path: str | os.PathLike[str] = ".dotevals") -> None:
        self.root = Path(path)
        self.url = f"json://{self.root}"

    def _experiment_dir(self, experiment: str) -> Path:
        return self.root / encode_name(experiment, "experiment name")

    def _path(self, experiment: str, evaluation: str) -> Path:
        name = encode_name(evaluation, "evaluation name") + _SUFFIX
        return self._experiment_dir(experiment) / name

    def path_of(self, experiment: str, evaluation: str) -> Path:
        """The file holding an evaluation's records."""
        return self._path(experiment, evaluation)

    def lock_path(self, experiment: str, evaluation: str) -> Path:
        """``<root>/.locks/<experiment>/<evaluation>.lock``: out of the experiment's folder.

        No experiment is called ``.locks``: encoded names never start with a dot.
        """
        name = encode_name(evaluation, "evaluation name") + ".lock"
        return self.root / LOCK_DIR / encode_name(experiment, "experiment name") / name

    def check_experiment(self, experiment: str) -> None:
        """Refuse ``logs`` too: ``<root>/logs`` holds model-server logs.

        Raises:
            ConfigurationError: the name is invalid or ``logs``.
        """
        if encode_name(experiment, "experiment name") == LOG_DIR:
            raise ConfigurationError(
                f"experiment name {experiment!r} is reserved: {self.root / LOG_DIR} holds "
                "model-server logs; choose another name (--experiment NAME)"
            )

    def open_writer(self, experiment: str, evaluation: str, header: Header) -> RecordWriter:
        self.check_experiment(experiment)
        return _JSONLWriter(self._path(experiment, evaluation), header)

    def iter_entries(self, experiment: str, evaluation: str) -> Iterator[dict[str, Any]]:
        path = self._path(experiment, evaluation)
        if not path.exists():
            return
        with path.open("rb") as f:
            for lineno, line in enumerate(f, 1):
                entry = _parse(line, path, lineno)
                if entry is not None:
                    yield entry

    def list_experiments(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(decode_name(p.name) for p in self.root.iterdir() if _is_experiment(p))

    def list_evaluations(self, experiment: str) -> list[str]:
        folder = self._experiment_dir(experiment)
        if not folder.is_dir():
            return []
        names = (p.name[: -len(_SUFFIX)] for p in folder.iterdir() if p.name.endswith(_SUFFIX))
        return sorted(decode_name(n) for n in names)

    def delete_experiment(self, experiment: str) -> None:
        folder = self._experiment_dir(experiment)
        if not folder.is_dir():
            raise StorageError(f"no experiment {experiment!r} in {self.url}")
        shutil.rmtree(folder)

    def rename_experiment(self, old: str, new: str) -> None:
        self.check_experiment(new)
        src, dst = self._experiment_dir(old), self._experiment_dir(new)
        if not src.is_dir():
            raise StorageError(f"no experiment {old!r} in {self.url}")
        if dst.exists():
            raise ConfigurationError(f"experiment {new!r} already exists in {self.url}")
        src.rename(dst)

    def experiment_mtime(self, experiment: str) -> float:
        folder = self._experiment_dir(experiment)
        times = [p.stat().st_mtime for p in folder.iterdir()] if folder.is_dir() else []
        return max(times, default=folder.stat().st_mtime if folder.exists() else 0.0)


def _is_experiment(path: Path) -> bool:
    if not path.is_dir() or path.name.startswith("."):
        return False
    # the log folder is no experiment, unless an older version stored results there
    return path.name != LOG_DIR or any(path.glob(f"*{_SUFFIX}"))


def _parse(line: bytes, path: Path, lineno: int) -> dict[str, Any] | None:
    if not line.strip():
        return None
    entry: Any
    try:
        entry = json.loads(line)
    except ValueError:
        entry = None
    if not isinstance(entry, dict) or ("type" not in entry and "item_id" not in entry):
        problem: str | None = "torn write or corruption"
    else:
        problem = entry_problem(entry)
    if problem is not None:
        warnings.warn(
            StoreWarning(f"{path}:{lineno}: unreadable line skipped ({problem})"), stacklevel=2
        )
        return None
    valid: dict[str, Any] = entry
    return valid
