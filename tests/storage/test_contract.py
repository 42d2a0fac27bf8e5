"""What every storage backend promises, checked on each built-in one."""

from __future__ import annotations

from pathlib import Path

import pytest

from dotevals.errors import ConfigurationError
from dotevals.results import ErrorInfo, MetricValue, Record, Summary
from dotevals.storage import JSONLStorage, Storage
from dotevals.storage.jsonl import StoreWarning
from dotevals.storage.sqlite import SQLiteStorage
from stores import HEADER, append, make_record


@pytest.fixture(params=["json", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "json":
        return JSONLStorage(tmp_path / "root")
    return SQLiteStorage(tmp_path / "results.db")


@pytest.mark.parametrize("name", ["", ".", ".."])
def test_names_that_would_escape_are_refused(store: Storage, name: str) -> None:
    with pytest.raises(ConfigurationError, match="invalid experiment name"):
        store.open_writer(name, "ev", HEADER)
    with pytest.raises(ConfigurationError, match="invalid evaluation name"):
        store.open_writer("exp", name, HEADER)


class _Opaque:
    def __repr__(self) -> str:
        return "<opaque thing>"


def test_non_json_value_stored_as_repr(store: Storage) -> None:
    writer = store.open_writer("exp", "ev", HEADER)
    with pytest.warns(StoreWarning, match="not JSON: stored as repr"):
        writer.append(Record(item_id=0, dataset_row={"x": _Opaque()}))
    writer.close()
    assert store.load("exp", "ev").records[0].dataset_row == {"x": "<opaque thing>"}


def test_a_warning_made_an_error_never_loses_the_record(store: Storage) -> None:
    writer = store.open_writer("exp", "ev", HEADER)
    with pytest.raises(StoreWarning, match="not JSON: stored as repr"):
        writer.append(Record(item_id=0, dataset_row=[_Opaque()]))  # the "error" filter is on
    writer.close()
    assert store.load("exp", "ev").records[0].dataset_row == ["<opaque thing>"]


def test_last_record_wins_and_names_round_trip(store: Storage) -> None:
    writer = store.open_writer("exp", "eval[org/model]", HEADER)
    writer.append(Record(item_id=0, dataset_row=[1], error=ErrorInfo("E", "m")))
    writer.append(Record(item_id=0, dataset_row=[1]))
    writer.close()
    stored = store.load("exp", "eval[org/model]")
    assert not stored.records[0].is_error
    assert store.list_evaluations("exp") == ["eval[org/model]"]


def test_finished_tells_whether_a_summary_follows_the_last_record(store: Storage) -> None:
    writer = store.open_writer("exp", "ev", HEADER)
    assert not store.load("exp", "ev").finished  # only the header: killed at once
    writer.append(Record(item_id=0, dataset_row=[0]))
    assert not store.load("exp", "ev").finished
    writer.write_summary(Summary(total=1))
    assert store.load("exp", "ev").finished
    writer.close()
    rerun = store.open_writer("exp", "ev", HEADER)
    assert store.load("exp", "ev").finished  # a new run's header alone changes nothing
    rerun.append(Record(item_id=1, dataset_row=[1]))
    stored = store.load("exp", "ev")
    assert not stored.finished and stored.summary == Summary(total=1)
    rerun.write_summary(Summary(total=2))
    rerun.close()
    assert store.load("exp", "ev").finished


def test_last_record_wins_and_header_written_once(store: Storage) -> None:
    append(store, [make_record(0, error=True), make_record(1, False)])
    append(store, [make_record(0, True)])
    loaded = store.load("exp", "ev")
    assert sorted(loaded.records) == [0, 1]
    assert not loaded.records[0].is_error
    assert loaded.errors == 0
    assert loaded.completed_ids() == {0, 1}
    assert loaded.header == HEADER
    kinds = [entry.get("type", "record") for entry in store.iter_entries("exp", "ev")]
    assert kinds == ["header", "record", "record", "record"]


def test_summary_last_one_kept(store: Storage) -> None:
    last = Summary(metrics={"s": {"accuracy": MetricValue(0.9, count=1)}})
    writer = store.open_writer("exp", "ev", HEADER)
    writer.write_summary(Summary.from_dict({"metrics": {"s": {"accuracy": 0.1}}}))
    writer.write_summary(last)
    writer.close()
    assert store.load("exp", "ev").summary == last
