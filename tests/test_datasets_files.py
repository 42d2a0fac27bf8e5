"""File loaders on files the tests write: good rows, malformed ones, empty and missing files."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dotevals.datasets import BadRow, FileRows, csv_rows, huggingface, json_rows, jsonl, parquet
from dotevals.errors import ConfigurationError

Loader = Callable[..., FileRows]

ROWS = [{"problem": "1+1", "solution": "2"}, {"problem": "2+3", "solution": "5"}]


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    lines = [",".join(rows[0])] + [",".join(r.values()) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_json(path: Path, rows: list[Any]) -> Path:
    path.write_text(json.dumps(rows, indent=1))
    return path


def write_parquet(path: Path, rows: list[dict[str, Any]], row_group_size: int = 1) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=row_group_size)
    return path


WRITERS: dict[str, tuple[Loader, Callable[[Path, list[Any]], Path]]] = {
    "jsonl": (jsonl, write_jsonl),
    "csv": (csv_rows, write_csv),
    "json": (json_rows, write_json),
    "parquet": (parquet, write_parquet),
}


@pytest.fixture(params=sorted(WRITERS))
def fmt(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_each_loader_reads_its_rows_again_on_every_iteration(tmp_path: Path, fmt: str) -> None:
    loader, write = WRITERS[fmt]
    rows = loader(write(tmp_path / f"data.{fmt}", ROWS))
    assert list(rows) == ROWS
    assert list(rows) == ROWS


def test_columns_select_and_rename(tmp_path: Path, fmt: str) -> None:
    loader, write = WRITERS[fmt]
    path = write(tmp_path / f"data.{fmt}", ROWS)
    assert list(loader(path, columns={"question": "problem"})) == [
        {"question": "1+1"},
        {"question": "2+3"},
    ]
    assert list(loader(path, columns=["solution"])) == [{"solution": "2"}, {"solution": "5"}]


def test_a_missing_file_a_directory_and_a_zero_byte_file_name_the_path(
    tmp_path: Path, fmt: str
) -> None:
    loader, _ = WRITERS[fmt]
    (tmp_path / "empty").write_bytes(b"")
    cases = {"missing": "does not exist", ".": "is a directory", "empty": r"is empty \(0 bytes\)"}
    for name, says in cases.items():
        path = tmp_path / name
        with pytest.raises(ConfigurationError, match=says) as caught:
            iter(loader(path))
        assert repr(str(path)) in str(caught.value)


@pytest.mark.parametrize(
    ("loader", "text", "should_hold"),
    [
        (jsonl, "\n  \n\n", "one JSON object per line"),
        (csv_rows, "problem,solution\n", "a header line"),
        (json_rows, "[ ]", "a JSON array"),
        (json_rows, '{"meta": 1}', 'whose "data" is one'),
    ],
)
def test_a_file_without_rows_says_what_it_should_hold(
    tmp_path: Path, loader: Loader, text: str, should_hold: str
) -> None:
    path = tmp_path / "data"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match="has no rows") as caught:
        iter(loader(path))
    assert should_hold in str(caught.value)


def test_a_parquet_file_without_rows_says_so(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"problem": pa.array([], pa.string())}), path)
    with pytest.raises(ConfigurationError, match="has no rows"):
        iter(parquet(path))


def test_malformed_jsonl_lines_are_bad_rows_in_their_place(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_bytes(b'{"problem": "a"}\n{"problem": \n\n{"problem": "c"}\n\xff\xfe\n{"x": 1}\n')
    rows = list(jsonl(path, columns={"question": "problem"}))
    assert rows[0] == {"question": "a"}
    assert rows[2] == {"question": "c"}
    bad = [r for r in rows if isinstance(r, BadRow)]
    assert [(b.source, b.location) for b in bad] == [
        (str(path), "line 2"),
        (str(path), "line 5"),
        (str(path), "line 6"),
    ]
    assert "not a JSON line" in bad[0].message
    assert "no column(s) ['problem']; its columns are ['x']" in bad[2].message
    assert str(bad[0]).startswith(f"{path}, line 2: not a JSON line")


def test_csv_rows_with_the_wrong_number_of_fields_are_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text('problem,solution\n1+1,2\n2+3\n"multi\nline",7\n4,5,6\n\n')
    rows = list(csv_rows(path))
    assert len(rows) == 4  # the blank last line is no row
    assert rows[0] == {"problem": "1+1", "solution": "2"}
    assert rows[2] == {"problem": "multi\nline", "solution": "7"}
    assert isinstance(rows[1], BadRow)
    assert rows[1].location == "line 3"
    assert "has 1 field(s), the header has 2" in rows[1].message
    assert isinstance(rows[3], BadRow)
    assert rows[3].location == "line 6"


def test_a_csv_line_the_reader_rejects_is_a_bad_row_and_reading_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("problem,solution\na,1\n" + "b" * 200_000 + ",2\nc,3\n")
    rows = list(csv_rows(path))
    assert rows[0] == {"problem": "a", "solution": "1"}
    assert isinstance(rows[1], BadRow)
    assert rows[1].location == "line 3"
    assert "field larger than field limit" in rows[1].message
    assert rows[2] == {"problem": "c", "solution": "3"}


def test_json_rows_reads_an_object_with_data_and_stops_at_a_syntax_error(tmp_path: Path) -> None:
    good = write_json(tmp_path / "good.json", [])
    good.write_text(json.dumps({"version": 2, "data": ROWS}))
    assert list(json_rows(good)) == ROWS
    broken = tmp_path / "broken.json"
    broken.write_text(
        '[{"problem": "a"},\n {"problem": "b"},\n {"problem": oops}, {"problem": "d"}]'
    )
    rows = list(json_rows(broken))
    assert rows[:2] == [{"problem": "a"}, {"problem": "b"}]
    assert len(rows) == 3
    assert isinstance(rows[2], BadRow)
    assert rows[2].location == "record 2, line 3 column 14"
    assert "reading stops here" in rows[2].message


def test_json_rows_gives_floats_not_decimals(tmp_path: Path) -> None:
    path = write_json(tmp_path / "data.json", [{"x": 0.5, "n": 3}])
    assert list(json_rows(path)) == [{"x": 0.5, "n": 3}]
    assert type(next(iter(json_rows(path)))["x"]) is float


def test_a_json_file_of_another_shape_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text('"just a string"')
    with pytest.raises(ConfigurationError, match="is not a JSON array of rows"):
        iter(json_rows(path))


def test_parquet_reads_row_groups_and_only_the_columns_asked_for(tmp_path: Path) -> None:
    rows = [{"problem": str(i), "solution": i, "big": "x" * 10} for i in range(2500)]
    path = write_parquet(tmp_path / "data.parquet", rows, row_group_size=1000)
    assert pq.ParquetFile(path).num_row_groups == 3
    assert list(parquet(path)) == rows
    picked = list(parquet(path, columns={"q": "problem", "a": "solution"}))
    assert picked[2499] == {"q": "2499", "a": 2499}


def test_a_parquet_column_that_is_not_there_is_named(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "data.parquet", ROWS)
    with pytest.raises(ConfigurationError, match=r"no column\(s\) \['question'\]") as caught:
        list(parquet(path, columns=["question"]))
    assert "['problem', 'solution']" in str(caught.value)


def test_a_file_that_is_not_parquet_is_named(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "data.parquet", ROWS)
    with pytest.raises(ConfigurationError, match="is not parquet"):
        iter(parquet(path))


def test_an_unreadable_row_group_is_bad_rows_and_the_others_are_read(tmp_path: Path) -> None:
    rows = [{"n": i, "s": f"value-{i}" * 20} for i in range(30)]
    path = tmp_path / "data.parquet"
    table = pa.Table.from_pylist(rows)
    pq.write_table(table, path, row_group_size=10, compression="snappy", use_dictionary=False)
    middle = pq.ParquetFile(path).metadata.row_group(1).column(1)
    start = middle.data_page_offset
    data = bytearray(path.read_bytes())
    data[start + 8 : start + middle.total_compressed_size - 8] = b"\xff" * (
        middle.total_compressed_size - 16
    )
    path.write_bytes(bytes(data))
    read = list(parquet(path))
    assert read[:10] == rows[:10]
    assert read[20:] == rows[20:]
    bad = read[10:20]
    assert all(isinstance(b, BadRow) for b in bad)
    assert [b.location for b in bad] == [f"row group 1, index {i}" for i in range(10)]


def test_columns_given_as_a_string_are_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    with pytest.raises(ConfigurationError, match=f"^dataset file {str(path)!r}: .*not a string"):
        jsonl(path, columns="question")


@pytest.mark.parametrize(
    ("make", "module", "extra"),
    [
        (lambda p: json_rows(write_json(p / "d.json", ROWS)), "ijson", "json"),
        (lambda p: parquet(write_parquet(p / "d.parquet", ROWS)), "pyarrow", "parquet"),
        (lambda p: huggingface(p), "datasets", "huggingface"),
    ],
)
def test_a_missing_optional_library_names_the_extra_to_install(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make: Callable[[Path], Any],
    module: str,
    extra: str,
) -> None:
    made = make(tmp_path)
    hint = f"pip install 'dotevals[{extra}]'"
    monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    with pytest.raises(ImportError, match=re.escape(hint)):
        make(tmp_path)
    with pytest.raises(ImportError, match=re.escape(hint)):  # made before it went missing
        list(made)


def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    for loader, text in ((csv_rows, "problem,solution\n1+1,2\n"), (jsonl, json.dumps(ROWS[0]))):
        path = tmp_path / "bom"
        path.write_bytes(b"\xef\xbb\xbf" + text.encode())
        assert list(loader(path, columns=["problem"])) == [{"problem": "1+1"}]
