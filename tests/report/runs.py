"""Stored runs for the report tests, written through the storage API as a run writes them."""

from __future__ import annotations

from typing import Any

from dotevals.results import Header, Record, Summary
from dotevals.storage import Storage

SCRIPT_RESPONSE = "<script>window.__pwned = 1</script>"
BREAKOUT_RESPONSE = '</script><img src=x onerror="window.__pwned = 2"><b>bold</b>'
JS_URL_PROMPT = "javascript:window.__pwned = 3"


def score(
    value: Any, name: str = "exact", metrics: tuple[str, ...] = ("accuracy",)
) -> dict[str, Any]:
    return {"name": name, "value": value, "metrics": list(metrics), "metadata": {"gold": "x"}}


def ok(item: int, value: Any, response: str = "", prompt: str = "") -> Record:
    return Record.from_dict(
        {
            "item_id": item,
            "dataset_row": {"question": f"question {item}"},
            "prompt": prompt or f"prompt {item}",
            "model_response": response or f"answer {item}",
            "scores": [score(value)],
            "timestamp": 1.0,
            "duration": 0.25,
        }
    )


def failed(item: int, message: str = "boom") -> Record:
    error = {"type": "ValueError", "message": message, "traceback": "Traceback: line 1"}
    row = {"question": f"question {item}"}
    return Record.from_dict(
        {"item_id": item, "dataset_row": row, "prompt": f"prompt {item}", "error": error}
    )


def header(**fields: Any) -> Header:
    """A header as a run writes it; ``fields`` replace the defaults."""
    defaults = {"dotevals_version": "0.1.0", "git_commit": "abc123", "started_at": 2.0}
    return Header.from_dict(defaults | {"dataset_fingerprint": "sha256:feed"} | fields)


def write_run(
    store: Storage,
    experiment: str,
    evaluation: str,
    records: list[Record],
    summary: dict[str, Any] | None = None,
) -> None:
    """Store ``records`` (and a summary) the way a run does."""
    writer = store.open_writer(
        experiment, evaluation, header(experiment=experiment, evaluation=evaluation)
    )
    for record in records:
        writer.append(record)
    stored = summary or {"duration": 1.5, "concurrency": [[0.0, 16], [0.5, 32]]}
    writer.write_summary(Summary.from_dict(stored))
    writer.close()


def two_model_records() -> tuple[list[Record], list[Record]]:
    """Rows 0-5 for models a and b; the browser tests' expectations follow from them.

    0 both right; 1 a right, b wrong; 2 a wrong, b right; 3 a errored, b right;
    4 both right, responses holding script and markup; 5 only a has a record.
    """
    a = [
        ok(0, True),
        ok(1, True),
        ok(2, False),
        failed(3),
        ok(4, True, SCRIPT_RESPONSE, JS_URL_PROMPT),
        ok(5, True, "Paris is the capital"),
    ]
    b = [ok(0, True), ok(1, False), ok(2, True), ok(3, True), ok(4, True, BREAKOUT_RESPONSE)]
    return a, b
