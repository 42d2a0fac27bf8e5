"""The SQLite store: one append-only table, each record committed as it is appended."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import dotevals
from dotevals.errors import ConfigurationError, StorageError
from dotevals.storage import open_storage
from dotevals.storage.jsonl import StoreWarning
from dotevals.storage.sqlite import SQLiteStorage
from stores import HEADER, append, make_record

SRC = str(Path(dotevals.__file__).resolve().parents[1])


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStorage:
    return SQLiteStorage(tmp_path / "sub" / "results.db")


def test_open_storage_url(tmp_path: Path) -> None:
    store = open_storage(f"sqlite://{tmp_path / 'r.db'}")
    assert isinstance(store, SQLiteStorage)
    assert store.url == f"sqlite://{tmp_path / 'r.db'}"
    with pytest.raises(ConfigurationError, match="needs a file path"):
        open_storage("sqlite://")


def test_wal_mode_and_table(store: SQLiteStorage) -> None:
    append(store, [make_record(0)])
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        rows = conn.execute("SELECT experiment, evaluation, kind FROM entries ORDER BY seq")
        assert rows.fetchall() == [("exp", "ev", "header"), ("exp", "ev", "record")]
    conn.close()


def test_entries_look_like_jsonl(store: SQLiteStorage) -> None:
    append(store, [make_record(0)])
    header, record = store.iter_entries("exp", "ev")
    assert header == {"type": "header", **HEADER.to_dict()}
    assert record == make_record(0).to_dict()


def test_records_visible_before_close(store: SQLiteStorage) -> None:
    writer = store.open_writer("exp", "ev", HEADER)
    writer.append(make_record(0))
    assert list(store.load("exp", "ev").records) == [0]  # committed, not buffered
    writer.close()
    writer.close()  # idempotent
    with pytest.raises(StorageError, match="closed"):
        writer.append(make_record(1))


def test_reading_a_missing_file_creates_nothing(store: SQLiteStorage) -> None:
    assert store.list_experiments() == []
    assert store.list_evaluations("exp") == []
    assert not store.has_experiment("exp")
    assert list(store.iter_entries("exp", "ev")) == []
    assert store.experiment_mtime("exp") == 0.0
    assert not store.path.exists()
    with pytest.raises(StorageError, match="no experiments"):
        store.delete_experiment("exp")


def test_not_a_database_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "text.db"
    path.write_text("hello " * 1000)
    with pytest.raises(StorageError, match="not a database"):
        SQLiteStorage(path).list_experiments()
    with pytest.raises(StorageError, match="not a database"):
        SQLiteStorage(path).open_writer("exp", "ev", HEADER)


def test_corrupt_entry_is_skipped_with_a_warning(store: SQLiteStorage) -> None:
    append(store, [make_record(0), make_record(1)])
    with sqlite3.connect(store.path) as conn:
        conn.execute("UPDATE entries SET json = '{torn' WHERE seq = 2")
    conn.close()
    with pytest.warns(StoreWarning, match=r"results\.db: unreadable entry seq=2"):
        assert list(store.load("exp", "ev").records) == [1]


def test_valid_json_that_is_no_record_is_skipped(store: SQLiteStorage) -> None:
    append(store, [make_record(0), make_record(1)])
    with sqlite3.connect(store.path) as conn:
        conn.execute("""UPDATE entries SET json = '{"item_id": "zz"}' WHERE seq = 2""")
    conn.close()
    with pytest.warns(StoreWarning, match=r"seq=2 skipped \(a record needs an integer item_id"):
        assert list(store.load("exp", "ev").records) == [1]


def test_names_are_kept_verbatim(store: SQLiteStorage) -> None:
    hostile = ["a/b", "../../escape", "..\\x", ".hidden/..", "ü n ì"]
    for name in hostile:
        append(store, [make_record(0)], name, name)
    assert store.list_experiments() == sorted(hostile)
    for name in hostile:
        assert store.list_evaluations(name) == [name]
        assert list(store.load(name, name).records) == [0]
    assert sorted(p.name for p in store.path.parent.iterdir() if p.suffix == ".db") == [
        "results.db"
    ]


def test_rename_delete_list_mtime(store: SQLiteStorage) -> None:
    before = time.time()
    append(store, [make_record(0)], "exp", "ev1")
    append(store, [make_record(0)], "exp", "ev2")
    append(store, [make_record(0)], "other", "ev")
    assert store.list_experiments() == ["exp", "other"]
    assert store.list_evaluations("exp") == ["ev1", "ev2"]
    assert before <= store.experiment_mtime("exp") <= time.time()
    store.rename_experiment("exp", "new")
    assert store.list_experiments() == ["new", "other"]
    assert list(store.load("new", "ev2").records) == [0]
    with pytest.raises(ConfigurationError, match="already exists"):
        store.rename_experiment("new", "other")
    with pytest.raises(StorageError, match="no experiment 'exp'"):
        store.rename_experiment("exp", "x")
    store.delete_experiment("new")
    assert store.list_experiments() == ["other"]
    with pytest.raises(StorageError, match="no experiment 'new'"):
        store.delete_experiment("new")


def test_writers_and_readers_in_threads(store: SQLiteStorage) -> None:
    failures: list[BaseException] = []

    def run(evaluation: str) -> None:
        try:
            append(store, [make_record(i) for i in range(50)], "exp", evaluation)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(f"ev{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert [len(store.load("exp", f"ev{i}").records) for i in range(4)] == [50] * 4


def test_opening_waits_for_a_writer_holding_a_new_file(tmp_path: Path) -> None:
    """Switching a new file to WAL while another connection writes it: SQLite refuses at once,
    without its busy timeout; the store waits as it does for any write."""
    path = tmp_path / "results.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE other (x)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO other VALUES (1)")
    release = threading.Timer(0.3, holder.execute, args=("COMMIT",))
    release.start()
    try:
        append(SQLiteStorage(path), [make_record(0)], "exp", "ev")
    finally:
        release.join()
        holder.close()
    assert len(SQLiteStorage(path).load("exp", "ev").records) == 1


def test_writer_belongs_to_its_thread(store: SQLiteStorage) -> None:
    writer = store.open_writer("exp", "ev", HEADER)
    failures: list[BaseException] = []

    def append_elsewhere() -> None:
        try:
            writer.append(make_record(0))
        except StorageError as exc:
            failures.append(exc)

    thread = threading.Thread(target=append_elsewhere)
    thread.start()
    thread.join()
    writer.close()
    assert len(failures) == 1
    assert "thread" in str(failures[0])


_KILLED_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    from dotevals.results import ErrorInfo, Header, MetricValue, Record, Score, Summary
    from dotevals.storage.sqlite import SQLiteStorage

    writer = SQLiteStorage(sys.argv[1]).open_writer("exp", "ev", Header("exp", "ev"))
    for item in range(int(sys.argv[2])):
        writer.append(Record(item_id=item, dataset_row={"i": item}))
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_records_survive_a_killed_process(store: SQLiteStorage) -> None:
    command = [sys.executable, "-c", _KILLED_WRITER, str(store.path), "200"]
    done = subprocess.run(command, env={"PYTHONPATH": SRC}, capture_output=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr
    loaded = store.load("exp", "ev")
    assert sorted(loaded.records) == list(range(200))
    append(store, [make_record(200)])  # the database is still writable
    assert len(store.load("exp", "ev").records) == 201
