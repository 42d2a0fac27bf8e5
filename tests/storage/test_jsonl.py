"""The JSONL store: append-only files that survive torn writes and hostile names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dotevals.errors import ConfigurationError, StorageError
from dotevals.storage import JSONLStorage, open_storage
from dotevals.storage.jsonl import StoreWarning
from stores import HEADER, append, make_record


@pytest.fixture
def store(tmp_path: Path) -> JSONLStorage:
    return JSONLStorage(tmp_path / "root")


def test_open_storage_urls(tmp_path: Path) -> None:
    assert isinstance(open_storage(f"json://{tmp_path}"), JSONLStorage)
    assert isinstance(open_storage(str(tmp_path)), JSONLStorage)
    with pytest.raises(ConfigurationError, match=r"unknown storage scheme 'nope'.*json://"):
        open_storage("nope://x")


def test_layout_header_then_flat_records(store: JSONLStorage) -> None:
    append(store, [make_record(0)])
    path = store.root / "exp" / "ev.jsonl"
    assert store.path_of("exp", "ev") == path
    header, record = (json.loads(line) for line in path.read_text().splitlines())
    assert header == {"type": "header", **HEADER.to_dict()}
    assert record["item_id"] == 0
    assert record["scores"][0]["metrics"] == ["accuracy"]


def test_torn_last_line_is_skipped_and_appending_continues(store: JSONLStorage) -> None:
    append(store, [make_record(0), make_record(1)])
    path = store.path_of("exp", "ev")
    full_line = json.dumps(make_record(2).to_dict())
    with path.open("ab") as f:
        f.write(full_line[: len(full_line) // 2].encode())  # killed mid-write
    with pytest.warns(StoreWarning, match=r"ev\.jsonl:4: unreadable line"):
        assert sorted(store.load("exp", "ev").records) == [0, 1]
    append(store, [make_record(2)])
    with pytest.warns(StoreWarning):
        assert sorted(store.load("exp", "ev").records) == [0, 1, 2]


def test_garbage_line_in_the_middle(store: JSONLStorage) -> None:
    append(store, [make_record(0)])
    with store.path_of("exp", "ev").open("ab") as f:
        f.write(b"\x00\xffnot json at all\n")
        f.write(b"[1, 2, 3]\n")  # valid JSON, but not an entry
    append(store, [make_record(1)])
    with pytest.warns(StoreWarning) as caught:
        assert sorted(store.load("exp", "ev").records) == [0, 1]
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2
    assert f"{store.path_of('exp', 'ev')}:3:" in messages[0]
    assert ":4:" in messages[1]


def test_names_with_slashes_and_dots_stay_under_root(store: JSONLStorage) -> None:
    hostile = ["a/b", "../../escape", "..\\..\\x", "x/..", "a..b/..", "ü n ì c ø d é"]
    for name in hostile:
        writer = store.open_writer(name, name, HEADER)
        writer.append(make_record(0))
        writer.close()
    root = store.root.resolve()
    for path in root.parent.rglob("*"):
        assert path == root or root in path.resolve().parents
    for name in hostile:
        assert store.path_of(name, name).resolve().parent.parent == root
        assert store.list_evaluations(name) == [name]
        assert list(store.load(name, name).records) == [0]
    assert {"a/b", "x/..", "a..b/..", "ü n ì c ø d é"} <= set(store.list_experiments())


def test_names_starting_with_a_dot_are_listed(store: JSONLStorage) -> None:
    append(store, [make_record(0)])
    writer = store.open_writer("../up", "ev", HEADER)
    writer.close()
    assert store.list_experiments() == ["../up", "exp"]


def test_rename_delete_list_mtime(store: JSONLStorage) -> None:
    assert store.list_experiments() == []
    append(store, [make_record(0)])
    assert store.experiment_mtime("exp") > 0
    store.rename_experiment("exp", "new")
    assert store.list_experiments() == ["new"]
    assert store.list_evaluations("new") == ["ev"]
    with pytest.raises(StorageError, match="no experiment 'exp'"):
        store.rename_experiment("exp", "other")
    store.delete_experiment("new")
    assert store.list_experiments() == []
    with pytest.raises(StorageError, match="no experiment 'new'"):
        store.delete_experiment("new")


@pytest.mark.parametrize(
    "line",
    [
        '{"item_id": "zz"}',
        '{"type": "record"}',
        '{"item_id": true}',
        '{"item_id": 5, "scores": [5]}',
        '{"item_id": 5, "scores": [{"value": 1}]}',
        '{"item_id": 5, "scores": "x"}',
        '{"item_id": 5, "error": "boom"}',
        '{"item_id": 5, "timestamp": "noon"}',
        '{"item_id": 5, "attempts": "twice"}',
        '{"type": 7}',
    ],
)
def test_valid_json_that_is_no_record_is_skipped_with_its_line(
    store: JSONLStorage, line: str
) -> None:
    append(store, [make_record(0)])
    with store.path_of("exp", "ev").open("a") as f:
        f.write(line + "\n")
    with pytest.warns(StoreWarning, match=rf"{store.path_of('exp', 'ev')}:3: unreadable line"):
        assert sorted(store.load("exp", "ev").records) == [0]


def test_an_experiment_named_logs_is_refused_not_hidden(store: JSONLStorage) -> None:
    with pytest.raises(ConfigurationError, match=r"'logs' is reserved.*--experiment NAME"):
        store.open_writer("logs", "ev", HEADER)
    append(store, [make_record(0)])
    with pytest.raises(ConfigurationError, match="'logs' is reserved"):
        store.rename_experiment("exp", "logs")
    (store.root / "logs").mkdir()
    (store.root / "logs" / "local-model-8000.log").write_text("server output\n")
    assert store.list_experiments() == ["exp"]  # the provider log folder is no experiment


def test_results_an_older_version_stored_under_logs_stay_listed(store: JSONLStorage) -> None:
    folder = store.root / "logs"
    folder.mkdir(parents=True)
    line = json.dumps(make_record(0).to_dict())
    header = json.dumps({"type": "header", **HEADER.to_dict()})
    (folder / "ev.jsonl").write_text(header + "\n" + line + "\n")
    assert store.list_experiments() == ["logs"]
    assert list(store.load("logs", "ev").records) == [0]


BAD_NUMBERS = [
    '{"item_id": 1, "attempts": Infinity}',
    '{"item_id": 2, "attempts": NaN, "duration": -Infinity}',
    '{"item_id": 3, "attempts": 1e400, "timestamp": NaN}',
    '{"item_id": 4, "attempts": 2.5}',
    '{"type": "summary", "total": Infinity, "ran": 1e400, "concurrency": [[0.5, Infinity]]}',
]


def test_unusable_numbers_are_read_as_defaults_with_one_warning(store: JSONLStorage) -> None:
    """An old or damaged store: every record is kept, no OverflowError, one warning."""
    append(store, [make_record(0)])
    with store.path_of("exp", "ev").open("a") as f:
        f.write("\n".join(BAD_NUMBERS) + "\n")
    with pytest.warns(StoreWarning) as caught:
        loaded = store.load("exp", "ev")
    assert [str(w.message) for w in caught] == [
        f"{store.url}: exp/ev: unusable numbers (attempts, duration, timestamp) read as their "
        "defaults; the store may be damaged (the rest of it is read as stored)"
    ]
    assert sorted(loaded.records) == [0, 1, 2, 3, 4]
    assert {r.attempts for r in loaded.records.values()} == {1}
    assert (loaded.records[2].duration, loaded.records[3].timestamp) == (0.0, 0.0)
    assert loaded.summary is not None
    assert (loaded.summary.total, loaded.summary.ran, loaded.summary.concurrency) == (0, 0, [])
