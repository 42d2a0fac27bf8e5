"""Rows of JSON Lines, CSV, JSON and parquet files, read lazily on every iteration.

Each loader returns a :class:`FileRows`: iterating it opens the file and reads one row at a
time (parquet: one batch of a row group at a time), so memory stays flat however long the file
is, and iterating it again reads the file again (parametrized evaluations, resumes). A row that
cannot be read is yielded as a :class:`~dotevals.datasets.base.BadRow` naming the file and the
line (or record, or row group and index): it becomes that row's error record and the other
rows run.
"""

from __future__ import annotations

import csv
import importlib
import importlib.util
import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

from dotevals._extras import import_extra
from dotevals.datasets.base import BadRow, Columns, columns_of, missing_columns, pick_columns
from dotevals.errors import ConfigurationError

__all__ = ["FileRows", "csv_rows", "json_rows", "jsonl", "parquet", "require"]

#: Rows converted to Python objects at a time when reading a parquet row group.
PARQUET_BATCH_ROWS: Final = 1024
#: Bytes read at a time from a column chunk (instead of the whole chunk at once).
PARQUET_BUFFER_BYTES: Final = 1 << 16

#: The largest JSON file parsed a second time to find the line of a syntax error.
JSON_RESCAN_BYTES: Final = 64 << 20

#: ``reader(path, columns) -> rows``; ``columns`` maps the function's names to stored ones.
Reader = Callable[[Path, "dict[str, str] | None"], Iterator[Any]]


def require(module: str, extra: str, what: str, *, load: bool = True) -> Any:
    """Import ``module``, or raise an ImportError that names the extra to install.

    Args:
        module: the module to import (``"pyarrow.parquet"``).
        extra: the dotevals extra that installs it (``"parquet"``).
        what: what needs it, for the message (``"parquet()"``).
        load: False to check that it is installed without importing it (None is returned):
            loaders check when they are made and import when their rows are read.
    """
    top = module.split(".")[0]
    message = f"{what} needs {top}: install it with `pip install 'dotevals[{extra}]'`"
    if not load:
        if importlib.util.find_spec(top) is None:
            raise ImportError(message)
        return None
    return import_extra(module, message)


class FileRows:
    """Re-iterable rows of one file; each iteration opens and reads it anew."""

    def __init__(self, path: str | Path, reader: Reader, columns: Columns, empty: str) -> None:
        """Check the arguments; the file itself is opened when the rows are read.

        Args:
            path: the file.
            reader: reads the file's rows.
            columns: the columns to keep (see :data:`~dotevals.datasets.base.Columns`).
            empty: what the file should hold, said when it has no rows.

        Raises:
            ConfigurationError: ``columns`` is not a list of names or a mapping.
        """
        self.path = Path(path)
        self._reader = reader
        self._empty = empty
        self.columns = columns_of(columns, f"dataset file {str(self.path)!r}")

    def __repr__(self) -> str:
        return f"{self._reader.__name__.strip('_')}({str(self.path)!r})"

    def __iter__(self) -> Iterator[Any]:
        """The rows, read as they are asked for.

        Raises:
            ConfigurationError: the path is missing, is a directory, or the file has no rows.
        """
        self._check_path()
        rows = self._reader(self.path, self.columns)
        first = next(rows, _END)
        if first is _END:
            raise ConfigurationError(
                f"dataset file {str(self.path)!r} has no rows: it should hold {self._empty}"
            )
        return itertools.chain((first,), rows)

    def _check_path(self) -> None:
        name = str(self.path)
        if not self.path.exists():
            raise ConfigurationError(f"dataset file {name!r} does not exist: check the path")
        if self.path.is_dir():
            raise ConfigurationError(f"dataset file {name!r} is a directory: give a file in it")
        if self.path.stat().st_size == 0:
            raise ConfigurationError(
                f"dataset file {name!r} is empty (0 bytes): it should hold {self._empty}"
            )


_END: Final = object()


def _picked(row: Any, columns: dict[str, str] | None, path: Path, kind: str, n: int) -> Any:
    """The row with its columns picked, or the BadRow (at ``kind n``) of one that lacks some."""
    picked = pick_columns(row, columns)
    if picked is None:
        assert columns is not None
        return missing_columns(row, columns, str(path), f"{kind} {n}")
    return picked


# -- JSON Lines ----------------------------------------------------------------------------
def _jsonl(path: Path, columns: dict[str, str] | None) -> Iterator[Any]:
    with path.open("rb") as f:
        for lineno, line in enumerate(f, 1):
            if line.isspace():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:  # UnicodeDecodeError is one too
                yield BadRow(str(path), f"line {lineno}", f"not a JSON line: {exc}")
                continue
            yield row if columns is None else _picked(row, columns, path, "line", lineno)


def jsonl(path: str | Path, *, columns: Columns = None) -> FileRows:
    """Rows of a JSON Lines file, one JSON value per line; blank lines are skipped.

    Args:
        path: the file.
        columns: the columns to keep: names, or ``{"question": "problem"}`` to give the
            function ``question`` from the stored ``problem``.
    """
    return FileRows(path, _jsonl, columns, "one JSON object per line")


# -- CSV -----------------------------------------------------------------------------------
def _csv(path: Path, columns: dict[str, str] | None) -> Iterator[Any]:
    with path.open(encoding="utf-8-sig", newline="") as f:  # a BOM (Excel) is not a name
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            return
        while True:
            line = reader.line_num
            try:
                fields = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as exc:
                yield BadRow(str(path), f"line {line + 1}", f"not a CSV row: {exc}")
                if reader.line_num == line:  # the reader cannot go past it
                    return
                continue
            if not fields:  # a blank line is no row, as for csv.DictReader
                continue
            yield _csv_row(header, fields, columns, path, reader.line_num)


def _csv_row(
    header: list[str], fields: list[str], columns: dict[str, str] | None, path: Path, line: int
) -> Any:
    if len(fields) != len(header):
        return BadRow(
            str(path),
            f"line {line}",
            f"has {len(fields)} field(s), the header has {len(header)}: {header}",
        )
    return _picked(dict(zip(header, fields)), columns, path, "line", line)


def csv_rows(path: str | Path, *, columns: Columns = None) -> FileRows:
    """Rows of a CSV file with a header line, as dicts of strings.

    Args:
        path: the file (UTF-8).
        columns: the columns to keep, as for :func:`jsonl`.
    """
    return FileRows(path, _csv, columns, "a header line and one line per row")


# -- JSON ----------------------------------------------------------------------------------
_JSON_SHAPE: Final = 'a JSON array of rows, or an object whose "data" is one'


def _json(path: Path, columns: dict[str, str] | None) -> Iterator[Any]:
    ijson = require("ijson", "json", "json_rows()")
    with path.open("rb") as f:
        prefix = _json_prefix(path, f.read(4096).lstrip()[:1])
        f.seek(0)
        count = 0
        try:
            for row in ijson.items(f, prefix, use_float=True):
                yield _picked(row, columns, path, "record", count)
                count += 1
        except ijson.JSONError as exc:  # the rest of the file cannot be read past it
            why = f"not valid JSON, so reading stops here: {exc}"
            yield BadRow(str(path), f"record {count}{_json_error_line(path)}", why)


def _json_error_line(path: Path) -> str:
    """``", line L column C"`` of a JSON syntax error, found with the standard parser.

    The streaming parser does not say where it stopped; the file is parsed again only on this
    error path, and only when it is small enough (:data:`JSON_RESCAN_BYTES`) to hold in memory.
    """
    if path.stat().st_size > JSON_RESCAN_BYTES:
        return ""
    try:
        json.loads(path.read_bytes())
    except json.JSONDecodeError as exc:
        return f", line {exc.lineno} column {exc.colno}"
    except ValueError:  # not UTF-8: no line to give
        return ""
    return ""


def _json_prefix(path: Path, start: bytes) -> str:
    if start == b"[":
        return "item"
    if start == b"{":
        return "data.item"
    raise ConfigurationError(f"dataset file {str(path)!r} is not {_JSON_SHAPE}")


def json_rows(path: str | Path, *, columns: Columns = None) -> FileRows:
    """Rows of a JSON file: an array of rows, or ``{"data": [...]}``; streamed with ijson.

    A syntax error ends the reading: the record where it happens becomes a bad row, and the
    records after it are not read (JSON cannot be resynchronised as JSON Lines can).

    Args:
        path: the file.
        columns: the columns to keep, as for :func:`jsonl`.
    """
    require("ijson", "json", "json_rows()", load=False)
    return FileRows(path, _json, columns, _JSON_SHAPE)


# -- parquet -------------------------------------------------------------------------------
def _parquet(path: Path, columns: dict[str, str] | None) -> Iterator[Any]:
    pa = require("pyarrow", "parquet", "parquet()")
    pq = require("pyarrow.parquet", "parquet", "parquet()")
    with path.open("rb") as f:
        try:
            file = pq.ParquetFile(f, buffer_size=PARQUET_BUFFER_BYTES, pre_buffer=False)
        except (pa.ArrowException, OSError) as exc:
            raise ConfigurationError(f"dataset file {str(path)!r} is not parquet: {exc}") from exc
        stored = None if columns is None else _stored_columns(path, file, columns)
        for group in range(file.num_row_groups):
            yield from _row_group(path, file, group, stored, columns, pa.ArrowException)


def _stored_columns(path: Path, file: Any, columns: dict[str, str]) -> list[str]:
    names = list(file.schema_arrow.names)
    missing = [c for c in columns.values() if c not in names]
    if missing:
        raise ConfigurationError(
            f"dataset file {str(path)!r} has no column(s) {missing}; its columns are {names}"
        )
    return list(dict.fromkeys(columns.values()))


def _row_group(
    path: Path,
    file: Any,
    group: int,
    stored: list[str] | None,
    columns: dict[str, str] | None,
    arrow_error: type[Exception],
) -> Iterator[Any]:
    """The rows of one row group; those it cannot decode become BadRows, one per row."""
    index = 0
    try:
        batches = file.iter_batches(
            PARQUET_BATCH_ROWS, row_groups=[group], columns=stored, use_threads=False
        )
        for batch in batches:
            for row in batch.to_pylist():
                yield row if columns is None else {new: row[old] for new, old in columns.items()}
                index += 1
    except (arrow_error, OSError) as exc:
        total = file.metadata.row_group(group).num_rows
        for i in range(index, total):
            where = f"row group {group}, index {i}"
            yield BadRow(str(path), where, f"cannot be read: {type(exc).__name__}: {exc}")


def parquet(path: str | Path, *, columns: Columns = None) -> FileRows:
    """Rows of a parquet file, as dicts, read one row group (in batches) at a time.

    Args:
        path: the file.
        columns: the columns to keep, as for :func:`jsonl`; only those are read.
    """
    require("pyarrow", "parquet", "parquet()", load=False)
    return FileRows(path, _parquet, columns, "a table with at least one row")
