"""A store in one SQLite file: ``sqlite://results.db``.

Every entry (header, record, summary) is one row of an append-only ``entries`` table, keyed by
experiment and evaluation and ordered by ``seq``. Each append is its own committed transaction
and the database runs in WAL mode, so a killed process loses nothing already appended and
readers never block a writer. ``synchronous=NORMAL`` makes commits survive a killed process
(not a power cut) without an ``fsync`` per record, matching the JSONL store.

Storage methods open a short-lived connection per call, so they can be called from any thread;
a writer keeps one connection, usable from the thread that opened it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from dotevals.errors import ConfigurationError, StorageError
from dotevals.storage.base import RecordWriter, Storage, StoreWarning, encode_name, entry_problem
from dotevals.storage.jsonl import encode_line, warn_unencodable

if TYPE_CHECKING:  # a plain pytest session opens a store and reads nothing
    from dotevals.results import Header, Record, Summary

__all__ = ["SQLiteStorage"]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    experiment TEXT NOT NULL,
    evaluation TEXT NOT NULL,
    kind TEXT NOT NULL,
    json TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_by_evaluation ON entries (experiment, evaluation, seq);
"""
#: How long a connection waits for another process's write lock before giving up.
_BUSY_TIMEOUT_S: Final = 30.0
#: The pause between attempts to switch a new file to WAL while another connection holds it.
_RETRY_S: Final = 0.005
_INSERT: Final = (
    "INSERT INTO entries (experiment, evaluation, kind, json, created) VALUES (?, ?, ?, ?, ?)"
)


class SQLiteStorage(Storage):
    """Experiments in one SQLite database file: ``sqlite://results.db``.

    Args:
        path: the database file; it and its folder are created by the first writer.
    """

    def __init__(self, path: str | os.PathLike[str] = "results.db") -> None:
        if not str(path):
            raise ConfigurationError("sqlite:// needs a file path, e.g. sqlite://results.db")
        self.path = Path(path)
        self.url = f"sqlite://{self.path}"

    def lock_path(self, experiment: str, evaluation: str) -> Path:
        """``<file>.locks/<experiment>/<evaluation>.lock``: a lock per evaluation, not per file."""
        folder = self.path.with_name(self.path.name + ".locks")
        name = encode_name(evaluation, "evaluation name") + ".lock"
        return folder / encode_name(experiment, "experiment name") / name

    def _open_for_writing(self) -> sqlite3.Connection:
        with _mapped_errors(self.url, "open"):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = _connect(self.path)
            try:
                _prepare(conn)
            except sqlite3.Error:
                conn.close()
                raise
        return conn

    def _open_for_reading(self) -> sqlite3.Connection | None:
        """A connection, or None when the file or its table does not exist yet."""
        if not self.path.is_file():
            return None
        with _mapped_errors(self.url, "open"):
            conn = _connect(self.path)
            try:
                ready = _has_table(conn)
            except sqlite3.Error:
                conn.close()
                raise
        if not ready:
            conn.close()
            return None
        return conn

    def _query(self, sql: str, params: tuple[str, ...] = ()) -> list[tuple[Any, ...]]:
        conn = self._open_for_reading()
        if conn is None:
            return []
        with closing(conn), _mapped_errors(self.url, "read"):
            return conn.execute(sql, params).fetchall()

    def open_writer(self, experiment: str, evaluation: str, header: Header) -> RecordWriter:
        encode_name(experiment, "experiment name")
        encode_name(evaluation, "evaluation name")
        conn = self._open_for_writing()
        try:
            return _SQLiteWriter(self.url, conn, (experiment, evaluation), header)
        except StorageError:
            conn.close()
            raise

    def iter_entries(self, experiment: str, evaluation: str) -> Iterator[dict[str, Any]]:
        conn = self._open_for_reading()
        if conn is None:
            return
        sql = "SELECT seq, json FROM entries WHERE experiment = ? AND evaluation = ? ORDER BY seq"
        with closing(conn), _mapped_errors(self.url, "read"):
            for seq, text in conn.execute(sql, (experiment, evaluation)):
                entry = self._parse(text, seq)
                if entry is not None:
                    yield entry

    def _parse(self, text: str, seq: int) -> dict[str, Any] | None:
        try:
            entry = json.loads(text)
        except ValueError:
            entry = None
        problem = entry_problem(entry) if isinstance(entry, dict) else "not a JSON object"
        if problem is not None:
            warnings.warn(
                StoreWarning(f"{self.path}: unreadable entry seq={seq} skipped ({problem})"),
                stacklevel=3,
            )
            return None
        assert isinstance(entry, dict)
        return entry

    def list_experiments(self) -> list[str]:
        rows = self._query("SELECT DISTINCT experiment FROM entries ORDER BY experiment")
        return [row[0] for row in rows]

    def list_evaluations(self, experiment: str) -> list[str]:
        sql = "SELECT DISTINCT evaluation FROM entries WHERE experiment = ? ORDER BY evaluation"
        return [row[0] for row in self._query(sql, (experiment,))]

    def has_experiment(self, experiment: str) -> bool:
        sql = "SELECT 1 FROM entries WHERE experiment = ? LIMIT 1"
        return bool(self._query(sql, (experiment,)))

    def experiment_mtime(self, experiment: str) -> float:
        rows = self._query("SELECT MAX(created) FROM entries WHERE experiment = ?", (experiment,))
        return float(rows[0][0]) if rows and rows[0][0] is not None else 0.0

    def delete_experiment(self, experiment: str) -> None:
        with self._transaction("delete from") as conn:
            cursor = conn.execute("DELETE FROM entries WHERE experiment = ?", (experiment,))
            if cursor.rowcount == 0:
                raise StorageError(f"no experiment {experiment!r} in {self.url}")

    def rename_experiment(self, old: str, new: str) -> None:
        encode_name(new, "experiment name")
        with self._transaction("rename in") as conn:
            taken = conn.execute("SELECT 1 FROM entries WHERE experiment = ? LIMIT 1", (new,))
            if taken.fetchone() is not None:
                raise ConfigurationError(f"experiment {new!r} already exists in {self.url}")
            sql = "UPDATE entries SET experiment = ? WHERE experiment = ?"
            if conn.execute(sql, (new, old)).rowcount == 0:
                raise StorageError(f"no experiment {old!r} in {self.url}")

    @contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        """A write transaction, committed when the block ends and rolled back if it raises."""
        conn = self._open_for_reading()
        if conn is None:
            raise StorageError(f"no experiments in {self.url}")
        with closing(conn), _mapped_errors(self.url, action):
            conn.execute("BEGIN IMMEDIATE")
            with conn:  # commits, or rolls back on any exception
                yield conn


class _SQLiteWriter(RecordWriter):
    """Appends one evaluation's entries, each committed on its own."""

    def __init__(
        self,
        url: str,
        conn: sqlite3.Connection,
        key: tuple[str, str],
        header: Header,
    ) -> None:
        self._url = url
        self._conn: sqlite3.Connection | None = conn
        self._key = key
        notes: Sequence[str] = ()
        with _mapped_errors(url, "write to"):
            conn.execute("BEGIN IMMEDIATE")  # two writers must not both see "no header yet"
            with conn:
                sql = "SELECT 1 FROM entries WHERE experiment = ? AND evaluation = ? LIMIT 1"
                if conn.execute(sql, key).fetchone() is None:
                    notes = self._insert("header", {"type": "header", **header.to_dict()})
        if notes:
            warn_unencodable(notes, stacklevel=4)

    def _insert(self, kind: str, entry: dict[str, Any]) -> Sequence[str]:
        """Insert one entry; the notes on values stored as reprs, to warn about once stored."""
        if self._conn is None:
            raise StorageError(f"writer for {self._key!r} in {self._url} is closed")
        line, notes = encode_line(entry)
        text = line.decode().rstrip("\n")
        self._conn.execute(_INSERT, (*self._key, kind, text, time.time()))
        return notes

    def append(self, record: Record) -> None:
        with _mapped_errors(self._url, "write to"):
            notes = self._insert("record", record.to_dict())
        if notes:  # stored first: a warning raised as an error loses nothing
            warn_unencodable(notes)

    def write_summary(self, summary: Summary) -> None:
        with _mapped_errors(self._url, "write to"):
            notes = self._insert("summary", {"type": "summary", **summary.to_dict()})
        if notes:
            warn_unencodable(notes)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@contextmanager
def _mapped_errors(url: str, action: str) -> Iterator[None]:
    """Turn SQLite and file-system errors into StorageError naming the store."""
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        raise StorageError(f"cannot {action} {url}: {exc}") from exc


def _connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode: each statement outside BEGIN commits at once."""
    return sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)


def _prepare(conn: sqlite3.Connection) -> bool:
    """Switch to WAL and create the table when missing; True once ready."""
    _use_wal(conn)
    conn.execute("PRAGMA synchronous=NORMAL")
    if not _has_table(conn):
        conn.executescript(_SCHEMA)
    return True


def _use_wal(conn: sqlite3.Connection) -> None:
    """Put the file in WAL mode (it stays so), waiting for other connections as writes do.

    Switching needs an exclusive lock, and SQLite answers "database is locked" at once,
    without its busy timeout, when connections opening a new file at the same time collide.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return  # a file system without WAL keeps its mode, as SQLite decides
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(_RETRY_S)


def _has_table(conn: sqlite3.Connection) -> bool:
    sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'entries'"
    return conn.execute(sql).fetchone() is not None
