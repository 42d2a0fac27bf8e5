"""Reading a JSONL store the way the tests check it: every line, and each row's final record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


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
