"""The typed results schema: every type round-trips, old stores read, new fields are kept."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from dotevals.results import (
    ErrorInfo,
    Header,
    IntervalValue,
    MetricValue,
    Record,
    Result,
    Score,
    Summary,
    Usage,
    format_metric,
    metric_name,
    to_result,
)
from dotevals.storage import JSONLStorage
from dotevals.storage.base import StoreWarning

USAGE = Usage(12, 30, 42, 4)
HEADER = Header(
    "exp",
    "eval_x[local:m]",
    ["q", "a"],
    "sha256:abc",
    "1.0",
    "deadbeef",
    1700000000.5,
    "m",
    "local",
    {"samples": 3, "concurrency": "Adaptive"},
)
RECORD = Record(
    3,
    {"q": "2+2", "a": 4},
    [Score("exact", True, ["accuracy"], {"case": "lower"})],
    "What is 2+2?",
    "4",
    None,
    1700000001.0,
    0.25,
    2,
    "m",
    USAGE,
)
SUMMARY = Summary(
    "eval_x[local:m]",
    "exp",
    "json://.dotevals",
    10,
    2,
    8,
    1.5,
    {"exact": {"accuracy": MetricValue(0.6, 0.15, 10, 0.31, 0.83)}},
    {
        "exact": {
            "accuracy": IntervalValue(0.75, math.nan, 8, 0.41, 0.93, "Wilson", 0.9, 3),
            "mean": IntervalValue(
                0.5,
                math.nan,
                2,
                None,
                None,
                "skew-corrected t",
                0.95,
                reason="all 2 values are equal: no spread",
            ),
            "median": MetricValue(0.75, math.nan, 8),
        }
    },
    {"TimeoutError": 2},
    [(0.0, 16), (0.5, 32)],
    None,
    10,
    USAGE,
    {"m": USAGE},
    0.0123,
    {"m": 0.0123},
    1700000002.0,
)


@pytest.mark.parametrize(
    "value",
    [HEADER, RECORD, SUMMARY, USAGE, ErrorInfo("E", "m", "tb"), Score("s", 1.5, ["mean"])],
    ids=lambda v: type(v).__name__,
)
def test_each_type_round_trips_through_json(value: object) -> None:
    data = json.loads(json.dumps(value.to_dict()))  # type: ignore[attr-defined]
    assert type(value).from_dict(data) == value  # type: ignore[attr-defined]


def test_a_figure_keeps_its_method_level_clusters_and_reason_through_a_summary() -> None:
    data = json.loads(json.dumps(SUMMARY.to_dict()))
    figures = Summary.from_dict(data).metrics_without_errors["exact"]
    accuracy, mean = figures["accuracy"], figures["mean"]
    assert isinstance(accuracy, IntervalValue) and isinstance(mean, IntervalValue)
    assert (accuracy.method, accuracy.level, accuracy.n_clusters) == ("Wilson", 0.9, 3)
    assert (mean.ci_low, mean.reason) == (None, "all 2 values are equal: no spread")
    assert type(figures["median"]) is MetricValue  # a figure that never said its method


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (
            SUMMARY.metrics_without_errors["exact"]["accuracy"],
            "0.750 [0.410, 0.930] n=8 (3 clusters) Wilson 90%",
        ),
        (
            SUMMARY.metrics_without_errors["exact"]["mean"],
            "0.500 [no interval: all 2 values are equal: no spread] n=2 skew-corrected t 95%",
        ),
        (MetricValue(0.6, 0.15, 10, 0.31, 0.83), "0.600 [0.310, 0.830] n=10"),
        (MetricValue(0.75, math.nan, 8), "0.750 n=8"),
    ],
)
def test_a_figure_prints_with_its_n_method_and_level(value: MetricValue, text: str) -> None:
    assert format_metric(value) == text


def test_a_brief_figure_is_the_value_and_its_bounds() -> None:
    brief = format_metric(SUMMARY.metrics_without_errors["exact"]["accuracy"], brief=True)
    assert brief == "0.750 [0.410, 0.930]"


def test_the_row_hash_is_the_same_for_the_live_row_and_the_stored_one() -> None:
    live = Record(0, ("q", {"b": 1, "a": [2]}))
    stored = Record.from_dict(json.loads(json.dumps(live.to_dict())))
    assert stored.dataset_row == ["q", {"b": 1, "a": [2]}]
    assert live.row_hash == stored.row_hash
    assert live.row_hash != Record(0, ("q", {"b": 2, "a": [2]})).row_hash


def test_an_errored_record_round_trips() -> None:
    record = Record(0, [1], error=ErrorInfo("ValueError", "bad", "Traceback..."), model="m")
    assert Record.from_dict(json.loads(json.dumps(record.to_dict()))) == record


#: Lines exactly as dotevals wrote them before the typed schema (no model, usage or hash).
OLD_LINES = [
    {
        "type": "header",
        "experiment": "exp",
        "evaluation": "ev",
        "columns": ["q"],
        "dataset_fingerprint": "sha256:1",
        "dotevals_version": "0.1.0",
        "git_commit": None,
        "started_at": 1.0,
    },
    {
        "item_id": 0,
        "dataset_row": ["a"],
        "prompt": None,
        "model_response": "A",
        "scores": [{"name": "ok", "value": True, "metrics": ["accuracy"], "metadata": {}}],
        "error": None,
        "timestamp": 2.0,
        "duration": 0.1,
        "attempts": 1,
    },
    {
        "item_id": 1,
        "dataset_row": ["b"],
        "prompt": None,
        "model_response": None,
        "scores": [],
        "error": {"type": "TimeoutError", "message": "slow", "traceback": "tb"},
        "timestamp": 3.0,
        "duration": 0.2,
        "attempts": 3,
    },
    {
        "type": "summary",
        "finished_at": 4.0,
        "total": 2,
        "errors": 1,
        "ran": 2,
        "duration": 0.3,
        "metrics": {"ok": {"accuracy": {"value": 0.5, "stderr": 0.5, "count": 2}}},
        "metrics_without_errors": {"ok": {"accuracy": 1.0}},
        "error_types": {"TimeoutError": 1},
        "concurrency": [[0.0, 1]],
        "failure": None,
        "dataset_size": 2,
    },
]


def _write_lines(tmp_path: Path, lines: list[dict[str, object]]) -> JSONLStorage:
    store = JSONLStorage(tmp_path)
    (tmp_path / "exp").mkdir()
    text = "".join(json.dumps(line) + "\n" for line in lines)
    (tmp_path / "exp" / "ev.jsonl").write_text(text)
    return store


def test_a_store_written_before_the_typed_schema_reads(
    tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    stored = _write_lines(tmp_path, OLD_LINES).load("exp", "ev")
    assert not [w for w in recwarn if issubclass(w.category, StoreWarning)]
    assert stored.header is not None and stored.header.columns == ["q"]
    assert stored.header.model is None and stored.header.options == {}
    ok, failed = stored.records[0], stored.records[1]
    assert ok.scores == [Score("ok", True, ["accuracy"])] and ok.usage is None
    assert failed.error == ErrorInfo("TimeoutError", "slow", "tb") and failed.attempts == 3
    summary = stored.summary
    assert summary is not None and stored.finished
    assert (summary.total, summary.errors, summary.dataset_size) == (2, 1, 2)
    assert summary.metrics["ok"]["accuracy"].value == 0.5
    assert summary.metrics_without_errors["ok"]["accuracy"].value == 1.0  # a bare number
    assert summary.concurrency == [(0.0, 1)] and summary.usage is None


def test_fields_of_a_newer_version_are_kept_with_one_warning(tmp_path: Path) -> None:
    lines = [dict(line) for line in OLD_LINES]
    lines[0]["judge"] = "gpt-x"
    lines[1]["latency_ms"] = 12
    lines[2]["latency_ms"] = 40
    lines[3]["carbon_g"] = 0.2
    with pytest.warns(StoreWarning) as caught:
        stored = _write_lines(tmp_path, lines).load("exp", "ev")
    assert len(caught) == 1
    assert "carbon_g, judge, latency_ms" in str(caught[0].message)
    assert stored.header is not None and stored.header.extra == {"judge": "gpt-x"}
    assert stored.records[0].extra == {"latency_ms": 12}
    assert stored.summary is not None and stored.summary.extra == {"carbon_g": 0.2}
    assert stored.records[0].to_dict()["latency_ms"] == 12  # written back as it was read


def test_a_summary_with_odd_values_reads_without_crashing() -> None:
    odd = {
        "total": "many",
        "metrics": {"s": {"accuracy": "high", "mean": 0.5}},
        "error_types": {"E": "x", "F": 2},
        "concurrency": [["a", 1], [0.5, 8], "x"],
        "usage": "lots",
        "usage_by_model": {"m": {"prompt_tokens": "x", "completion_tokens": 2}},
        "cost": True,
        "cost_by_model": {"m": "free", "n": 0.5},
        "dataset_size": 3.0,
    }
    summary = Summary.from_dict(odd)
    assert summary.total == 0 and summary.usage is None and summary.cost is None
    assert summary.metrics == {"s": {"mean": MetricValue(0.5)}}
    assert summary.error_types == {"F": 2} and summary.concurrency == [(0.5, 8)]
    assert summary.usage_by_model == {"m": Usage(0, 2, 0)}
    assert summary.cost_by_model == {"n": 0.5} and summary.dataset_size == 3


def test_usage_from_an_openai_response_and_its_dict() -> None:
    openai = pytest.importorskip("openai")
    completion = openai.types.chat.ChatCompletion.model_validate(
        {
            "id": "c",
            "object": "chat.completion",
            "created": 0,
            "model": "gpt-x",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "hi"},
                }
            ],
            "usage": {
                "prompt_tokens": 10,
                "completion_tokens": 5,
                "total_tokens": 15,
                "prompt_tokens_details": {"cached_tokens": 8},
            },
        }
    )
    assert Usage.from_response(completion) == Usage(10, 5, 15, 8)
    assert Usage.from_response(completion.to_dict()) == Usage(10, 5, 15, 8)
    result = Result(Score("s", True), model_response=completion)
    assert (result.model_response, result.model, result.usage) == (
        "hi",
        "gpt-x",
        Usage(10, 5, 15, 8),
    )
    given = Result(model_response=completion, model="mine", usage=Usage(1, 1, 2))
    assert (given.model, given.usage) == ("mine", Usage(1, 1, 2))


def test_usage_adds_and_splits_without_losing_tokens() -> None:
    assert Usage(1, 2, 3, 0) + Usage(10, 20, 30, 5) == Usage(11, 22, 33, 5)
    parts = Usage(10, 7, 17, 3).split(3)
    assert len(parts) == 3
    total = parts[0] + parts[1] + parts[2]
    assert total == Usage(10, 7, 17, 3)
    assert Usage.from_response({"choices": []}) is None
    assert Usage.from_response({"usage": {"prompt_tokens": 2, "completion_tokens": 3}}) == Usage(
        2, 3, 5, 0
    )


@pytest.mark.parametrize("attempts", [math.inf, math.nan, 1e400, 10**400, -2, 2.5, True])
def test_an_unusable_attempts_reads_as_one_and_is_named(attempts: object) -> None:
    bad: set[str] = set()
    record = Record.from_dict({"item_id": 0, "attempts": attempts}, bad)
    assert (record.attempts, bad) == (1, {"attempts"})


def test_usable_numbers_are_kept_and_name_nothing() -> None:
    bad: set[str] = set()
    data = {"item_id": 0, "attempts": 3.0, "duration": 0.25, "timestamp": 10}
    record = Record.from_dict(data, bad)
    assert (record.attempts, record.duration, record.timestamp, bad) == (3, 0.25, 10.0, set())
    assert Record.from_dict({"item_id": 0, "attempts": math.inf}).attempts == 1  # no collector


def test_a_summary_with_infinite_counts_reads_as_zero() -> None:
    data = {"total": math.inf, "errors": -1, "dataset_size": 1e400, "concurrency": [[1, 1e400]]}
    summary = Summary.from_dict(data)
    assert (summary.total, summary.errors, summary.dataset_size) == (0, 0, None)
    assert summary.concurrency == []


def test_integers_beyond_any_float_read_as_unusable_not_as_a_crash() -> None:
    data = {"total": 10**400, "dataset_size": 10**400, "duration": 10**400}
    summary = Summary.from_dict(data)
    assert (summary.total, summary.dataset_size) == (0, None)
    header = Header.from_dict({"experiment": "e", "evaluation": "v", "started_at": 10**400})
    assert header.evaluation == "v"


def test_to_result_gives_bare_values_one_shared_default_metric() -> None:
    (first,), *_ = to_result("e", True)
    (second,), *_ = to_result("e", False)
    (number,), *_ = to_result("e", 0.5)
    assert first.metrics[0] is second.metrics[0]  # built once, not once per row
    assert [metric_name(m) for m in (first.metrics[0], number.metrics[0])] == ["accuracy", "mean"]
    with pytest.raises(TypeError, match=r"e returned 'x' \(str\); return a Result, a Score"):
        to_result("e", "x")
