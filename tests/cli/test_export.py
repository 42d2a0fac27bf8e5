"""``dotevals export``, ``dotevals.load`` and ``Results.to_pandas`` over real JSONL and SQLite."""

from __future__ import annotations

import csv
import json
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import dotevals
from dotevals import Result, Score, foreach
from dotevals.cli import main
from dotevals.export import scan, write
from dotevals.metrics import accuracy, mean
from dotevals.results import Header, Record, Usage
from dotevals.storage import JSONLStorage, Storage
from dotevals.storage.sqlite import SQLiteStorage

ROWS = [{"q": "one", "n": 1}, {"q": "two", "n": 2}, {"q": "three", "n": 3}]
PRICES = "[models.m]\ninput = 1000000\noutput = 2000000\n"


@pytest.fixture(params=["json", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "json":
        return JSONLStorage(tmp_path / "store")
    return SQLiteStorage(tmp_path / "results.db")


def _evaluate(store: Storage, fail: set[str]) -> dotevals.Results:
    @foreach("q,n", ROWS, model="m")
    def ev(q: str, n: int) -> Result:
        if q in fail:
            raise ValueError(f"no answer for {q}")
        scores = (Score("ok", n != 2, [accuracy()]), Score("len", len(q), [mean()]))
        return Result(
            *scores, prompt=f"say {q}", model_response=q.upper(), usage=Usage(n, 1, n + 1)
        )

    return dotevals.run(ev, experiment="exp", storage=store, progress=False)


@pytest.fixture
def stored(store: Storage) -> Storage:
    _evaluate(store, fail={"three"})
    _evaluate(store, fail=set())  # the errored row runs again: its last record wins
    return store


def export(store: Storage, *args: str) -> Any:
    return CliRunner().invoke(main, ["export", "exp", "--storage", store.url, *args])


def test_csv_has_one_flat_row_per_final_record(stored: Storage, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    prices = tmp_path / "prices.toml"
    prices.write_text(PRICES)
    result = export(stored, "-o", str(out), "--prices", str(prices))
    assert result.exit_code == 0, result.output
    assert "wrote 3 rows" in result.output
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["item_id"] for r in rows] == ["0", "1", "2"]
    first = rows[0]
    assert (first["evaluation"], first["model"], first["row.q"], first["row.n"]) == (
        "ev",
        "m",
        "one",
        "1",
    )
    assert (first["prompt"], first["response"]) == ("say one", "ONE")
    assert (first["score.ok"], first["score.len"]) == ("True", "3")
    assert (first["prompt_tokens"], first["completion_tokens"], first["total_tokens"]) == (
        "1",
        "1",
        "2",
    )
    assert float(first["cost"]) == pytest.approx(1 + 2)
    assert rows[2]["error_type"] == "" and rows[2]["response"] == "THREE"
    assert float(rows[0]["duration"]) >= 0 and rows[0]["row_hash"]


def test_jsonl_and_errors(store: Storage, tmp_path: Path) -> None:
    _evaluate(store, fail={"two"})
    out = tmp_path / "out.jsonl"
    assert export(store, "--format", "jsonl", "-o", str(out)).exit_code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    failed = rows[1]
    assert (failed["error_type"], failed["error_message"]) == ("ValueError", "no answer for two")
    assert failed["score.ok"] is None and failed["cost"] is None
    assert rows[0]["score.ok"] is True and rows[0]["row.n"] == 1


def test_parquet_reads_back_with_typed_columns(stored: Storage, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "out.parquet"
    assert export(stored, "-o", str(out)).exit_code == 0
    table = pq.read_table(out)
    assert table.num_rows == 3
    assert str(table.schema.field("score.ok").type) == "bool"
    assert str(table.schema.field("row.n").type) == "int64"
    assert table.column("response").to_pylist() == ["ONE", "TWO", "THREE"]
    assert table.column("total_tokens").to_pylist() == [2, 3, 4]


def test_an_existing_output_is_kept_unless_forced(stored: Storage, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    out.write_text("precious")
    refused = export(stored, "-o", str(out))
    assert (
        refused.exit_code != 0 and "exists: choose another path or pass --force" in refused.output
    )
    assert out.read_text() == "precious"
    assert export(stored, "-o", str(out), "--force").exit_code == 0
    assert out.read_text().startswith("evaluation,item_id,model")


def test_bad_format_missing_evaluation_and_missing_pyarrow(
    stored: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unknown = export(stored, "-o", str(tmp_path / "out.xlsx"))
    assert (
        "cannot tell the format" in unknown.output
        and "--format csv|jsonl|parquet" in unknown.output
    )
    bad = tmp_path / "bad.toml"
    bad.write_text('[models.m]\ninput = 1\noutput = "free"\n')
    priced = export(stored, "-o", str(tmp_path / "o.csv"), "--prices", str(bad))
    assert priced.exit_code == 2 and "bad.toml:3: models.'m'.output" in priced.output
    missing = export(stored, "--evaluation", "nope", "-o", str(tmp_path / "o.csv"))
    assert "no evaluation 'nope'" in missing.output
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if pyarrow were not installed
    no_arrow = export(stored, "-o", str(tmp_path / "o.parquet"))
    assert no_arrow.exit_code != 0
    assert 'pip install "dotevals[export]"' in no_arrow.output
    assert not (tmp_path / "o.parquet").exists()
    assert not (tmp_path / "o.parquet.partial").exists()


def test_load_and_to_pandas_give_the_same_table(store: Storage, tmp_path: Path) -> None:
    pytest.importorskip("pandas")
    results = _evaluate(store, fail=set())
    frame = results.to_pandas()
    loaded = dotevals.load("exp", storage=store)
    assert frame.equals(loaded)
    assert list(frame["score.len"]) == [3, 3, 5]
    prices = tmp_path / "prices.toml"
    prices.write_text(PRICES)
    priced = dotevals.load("exp", storage=store, evaluation="ev", prices=str(prices))
    assert list(priced["cost"]) == pytest.approx([3.0, 4.0, 5.0])


def test_export_memory_stays_flat_as_records_grow(tmp_path: Path) -> None:
    """Peak memory of an export does not grow with the records it streams."""

    def peak(count: int) -> int:
        store = JSONLStorage(tmp_path / str(count))
        writer = store.open_writer("exp", "ev", Header("exp", "ev", ["q"]))
        for i in range(count):
            writer.append(Record(i, [f"question {i}" * 4], [Score("s", i % 2 == 0, ["accuracy"])]))
        writer.close()
        tracemalloc.start()
        write(scan(store, "exp"), tmp_path / f"{count}.csv", "csv")
        found = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return found

    small, large = peak(200), peak(4_000)
    assert large < 2 * small + 200_000, (small, large)  # 20x the records, not 20x the memory
