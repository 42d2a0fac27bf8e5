"""Stored results as one flat table: a row per final record, streamed from the store.

Columns: ``evaluation``, ``item_id``, ``model``, one ``row.NAME`` per dataset column,
``prompt``, ``response``, one ``score.NAME`` per score, ``error_type``, ``error_message``,
the token counts, ``cost`` (with a price table), ``duration``, ``attempts`` and ``row_hash``.
Values that are neither text, numbers nor booleans (lists, mappings) become JSON text.

Reading takes two passes over the store and keeps one integer per item: the first finds each
item's last record and the columns, the second yields rows, so memory stays flat however many
records an evaluation holds.
"""

from __future__ import annotations

import csv
import json
import os
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from dotevals._extras import import_extra
from dotevals.errors import ConfigurationError
from dotevals.pricing import Prices
from dotevals.results import Header, Record
from dotevals.storage import Storage

__all__ = ["FORMATS", "Table", "load", "scan", "write"]

Format = Literal["csv", "jsonl", "parquet"]
FORMATS: Final = ("csv", "jsonl", "parquet")
_MISSING_EXTRA: Final = (
    'needs pandas and pyarrow: install them with `pip install "dotevals[export]"`'
)
_BATCH: Final = 10_000
_TOKENS: Final = ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens")


def _import(module: str, what: str) -> Any:
    return import_extra(module, f"{what} {_MISSING_EXTRA}")


@dataclass
class _Column:
    """A column and the kinds of value seen in it (to choose a parquet type)."""

    kinds: set[type] = field(default_factory=set)

    def see(self, value: Any) -> None:
        if value is not None:
            self.kinds.add(type(value) if isinstance(value, (bool, int, float, str)) else dict)


@dataclass
class _Evaluation:
    name: str
    header: Header | None
    #: The index (among its records) of each item's final record; -1 for none.
    last: array[int] = field(default_factory=lambda: array("q"))


@dataclass
class Table:
    """What :func:`scan` found: the evaluations, their final records and the columns."""

    storage: Storage
    experiment: str
    evaluations: list[_Evaluation]
    row_columns: dict[str, _Column]
    score_columns: dict[str, _Column]
    prices: Prices | None = None

    @property
    def columns(self) -> list[str]:
        """Every column, in order."""
        head = ["evaluation", "item_id", "model"]
        rows = [f"row.{c}" for c in self.row_columns]
        scores = [f"score.{s}" for s in self.score_columns]
        tail = ["error_type", "error_message", *_TOKENS, "cost", "duration", "attempts"]
        return [*head, *rows, "prompt", "response", *scores, *tail, "row_hash"]

    def rows(self) -> Iterator[dict[str, Any]]:
        """One flat mapping per final record (every column present), evaluation by evaluation."""
        for evaluation in self.evaluations:
            for record in _final_records(self.storage, self.experiment, evaluation):
                yield self._row(evaluation, record)

    def _row(self, evaluation: _Evaluation, record: Record) -> dict[str, Any]:
        out: dict[str, Any] = dict.fromkeys(self.columns)
        header = evaluation.header
        out.update(evaluation=evaluation.name, item_id=record.item_id, model=record.model)
        for name, value in _dataset_columns(header, record.dataset_row).items():
            out[f"row.{name}"] = _flat(value)
        out["prompt"], out["response"] = _flat(record.prompt), _flat(record.model_response)
        for score in record.scores:
            out[f"score.{score.name}"] = _flat(score.value)
        if record.error is not None:
            out["error_type"], out["error_message"] = record.error.type, record.error.message
        if record.usage is not None:
            out.update(record.usage.to_dict())
            if self.prices is not None:
                out["cost"] = self.prices.cost(record.model, record.usage)
        out.update(duration=record.duration, attempts=record.attempts, row_hash=record.row_hash)
        return out


def _flat(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, ensure_ascii=False, default=repr)


def _dataset_columns(header: Header | None, row: Any) -> dict[str, Any]:
    """A dataset row by column: a mapping's keys, or the header's columns by position."""
    if isinstance(row, dict):
        return {str(k): v for k, v in row.items()}
    columns = header.columns if header is not None else []
    if isinstance(row, list) and len(row) == len(columns):
        return dict(zip(columns, row))
    return {columns[0] if len(columns) == 1 else "value": row}


def scan(
    storage: Storage,
    experiment: str,
    evaluation: str | None = None,
    prices: Prices | None = None,
) -> Table:
    """The first pass: each evaluation's final records and the table's columns.

    Raises:
        ConfigurationError: the experiment or the evaluation is not in the store.
    """
    names = storage.list_evaluations(experiment)
    if not names:
        raise ConfigurationError(f"no experiment {experiment!r} in {storage.url}")
    if evaluation is not None:
        if evaluation not in names:
            raise ConfigurationError(
                f"no evaluation {evaluation!r} in experiment {experiment!r}; have {names}"
            )
        names = [evaluation]
    table = Table(storage, experiment, [], {}, {}, prices)
    for name in names:
        table.evaluations.append(_scan_one(table, name))
    return table


def _scan_one(table: Table, name: str) -> _Evaluation:
    found = _Evaluation(name, None)
    index = 0
    for entry in table.storage.iter_entries(table.experiment, name):
        kind = entry.get("type", "record")
        if kind == "header" and found.header is None:
            found.header = Header.from_dict(entry)
        if kind != "record":
            continue
        item = entry["item_id"]
        if item >= len(found.last):
            found.last.extend([-1] * (item + 1 - len(found.last)))
        found.last[item] = index
        index += 1
        for column, value in _dataset_columns(found.header, entry.get("dataset_row")).items():
            table.row_columns.setdefault(column, _Column()).see(value)
        for score in entry.get("scores") or ():
            table.score_columns.setdefault(str(score["name"]), _Column()).see(score.get("value"))
    return found


def _final_records(storage: Storage, experiment: str, evaluation: _Evaluation) -> Iterator[Record]:
    """The second pass: the records :func:`scan` found final, in the order they were stored."""
    index = 0
    for entry in storage.iter_entries(experiment, evaluation.name):
        if entry.get("type", "record") != "record":
            continue
        item = entry["item_id"]
        if item < len(evaluation.last) and evaluation.last[item] == index:
            yield Record.from_dict(entry)
        index += 1


def load(table: Table) -> Any:
    """The table as a ``pandas.DataFrame``.

    Raises:
        ImportError: pandas is not installed; the message names the extra.
    """
    pandas = _import("pandas", "a DataFrame")
    return pandas.DataFrame.from_records(list(table.rows()), columns=table.columns)


def write(table: Table, path: str | os.PathLike[str], fmt: Format, force: bool = False) -> int:
    """Write the table to ``path``; returns the number of rows.

    The file is written next to ``path`` and moved there when complete, so a failed export
    leaves no half-written file under the name.

    Raises:
        ConfigurationError: ``path`` exists and ``force`` is not set, or ``fmt`` is unknown.
        ImportError: a parquet export without pyarrow; the message names the extra.
    """
    target = Path(path)
    if target.exists() and not force:
        raise ConfigurationError(f"{target} exists: choose another path or pass --force")
    writers = {"csv": _write_csv, "jsonl": _write_jsonl, "parquet": _write_parquet}
    if fmt not in writers:
        raise ConfigurationError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    partial = target.with_name(target.name + ".partial")
    try:
        count = writers[fmt](table, partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return count


def _write_csv(table: Table, path: Path) -> int:
    count = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, table.columns)
        writer.writeheader()
        for row in table.rows():
            writer.writerow(row)
            count += 1
    return count


def _write_jsonl(table: Table, path: Path) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as f:
        for row in table.rows():
            f.write(json.dumps(row, ensure_ascii=False, default=repr) + "\n")
            count += 1
    return count


def _arrow_type(pa: Any, column: _Column | None, name: str) -> Any:
    if column is None:
        fixed = {"item_id": pa.int64(), "attempts": pa.int64(), "duration": pa.float64()}
        fixed.update({t: pa.int64() for t in _TOKENS} | {"cost": pa.float64()})
        return fixed.get(name, pa.string())
    kinds = column.kinds
    if kinds == {bool}:
        return pa.bool_()
    if kinds == {int}:
        return pa.int64()
    if kinds and kinds <= {int, float}:
        return pa.float64()
    return pa.string()


def _schema(pa: Any, table: Table) -> Any:
    fields = []
    for name in table.columns:
        prefix, _, rest = name.partition(".")
        column = {"row": table.row_columns, "score": table.score_columns}.get(prefix, {}).get(rest)
        fields.append(pa.field(name, _arrow_type(pa, column, name)))
    return pa.schema(fields)


def _write_parquet(table: Table, path: Path) -> int:
    pa = _import("pyarrow", "a parquet export")
    pq = _import("pyarrow.parquet", "a parquet export")
    schema = _schema(pa, table)
    strings = [f.name for f in schema if f.type == pa.string()]
    count = 0
    with pq.ParquetWriter(str(path), schema) as writer:
        batch: list[dict[str, Any]] = []
        for row in table.rows():
            for name in strings:  # a mixed column: every value as text
                value = row[name]
                if value is not None and not isinstance(value, str):
                    row[name] = json.dumps(value)
            batch.append(row)
            if len(batch) == _BATCH:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                count, batch = count + len(batch), []
        if batch or count == 0:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            count += len(batch)
    return count
