"""Stores as the tests use them: records written through a store's writer, and a JSONL store
read the way the tests check it (every line, and each row's final record)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dotevals.results import ErrorInfo, Header, Record, Score
from dotevals.storage import Storage

HEADER = Header("exp", "ev", dotevals_version="test")


def make_record(item: int, value: object = True, error: bool = False) -> Record:
    """Row ``item``'s record: one ``accuracy`` score of ``value``, or a ValueError."""
    if error:
        failure = ErrorInfo("ValueError", "bad")
        return Record(item_id=item, dataset_row={"i": item}, error=failure)
    score = Score("s", value, ["accuracy"])
    return Record(item_id=item, dataset_row={"i": item}, scores=[score])


def append(
    store: Storage, records: list[Record], experiment: str = "exp", evaluation: str = "ev"
) -> None:
    """Write ``records`` through one writer (a run's header first), then close it."""
    writer = store.open_writer(experiment, evaluation, HEADER)
    for record in records:
        writer.append(record)
    writer.close()


def read_store(root: Path, experiment: str, evaluation: str) -> list[dict[str, Any]]:
    """Every JSON line of an evaluation's store under ``root/.dotevals``; torn lines skipped."""
    path = root / ".dotevals" / experiment / f"{evaluation}.jsonl"
    entries = []
    for line in path.read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue  # a torn line, as the store skips it
    return entries


def records(root: Path, experiment: str, evaluation: str) -> dict[int, dict[str, Any]]:
    """The final record of each row, by item id (the last record for a row wins)."""
    final: dict[int, dict[str, Any]] = {}
    for entry in read_store(root, experiment, evaluation):
        if "item_id" in entry:
            final[entry["item_id"]] = entry
    return final
