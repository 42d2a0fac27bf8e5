"""Figures of stored evaluations, recomputed from their records: plain data, no output.

Metrics are computed again from the final records with :class:`RunningMetrics`, twice: with
errored rows counted as failures, and without errored rows. A metric whose name does not
resolve (a custom metric defined in user code) takes its value from the last stored summary:
``summary["metrics"][score][metric]`` for the figure with errors and
``summary["metrics_without_errors"][score][metric]`` for the one without, each either a
:meth:`MetricValue.to_dict` mapping or a bare number.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Final, Literal

from dotevals.metrics import IntervalValue, RunningMetrics
from dotevals.results import MetricValue, Record
from dotevals.storage import StoredEvaluation

__all__ = [
    "EvaluationFigures",
    "ExperimentOverview",
    "MetricFigures",
    "evaluation_figures",
    "evaluation_status",
    "figures_to_dict",
    "metric_value_dict",
]

#: Where a metric's figures come from: recomputed, the stored summary, or nowhere.
Source = Literal["records", "summary", "none"]
_WITH_ERRORS: Final = "metrics"
_WITHOUT_ERRORS: Final = "metrics_without_errors"


@dataclass(frozen=True)
class MetricFigures:
    """One metric of one score, with errored rows as failures and without them."""

    score: str
    metric: str
    with_errors: MetricValue | None
    without_errors: MetricValue | None
    source: Source


@dataclass(frozen=True)
class EvaluationFigures:
    """What ``dotevals show`` reports for one evaluation."""

    name: str
    records: list[Record]
    metrics: list[MetricFigures]
    header: dict[str, Any] | None = None

    @property
    def rows(self) -> int:
        """How many items have a final record."""
        return len(self.records)

    @property
    def errored(self) -> list[Record]:
        """The records whose final outcome is an error, by item id."""
        return [r for r in self.records if r.is_error]

    @property
    def error_types(self) -> dict[str, int]:
        """How many errored rows each exception type caused, most frequent first."""
        counts = Counter(_error_type(r) for r in self.errored)
        return dict(counts.most_common())


#: What ``dotevals list`` says of an evaluation, worst first (``dotevals list --help``).
Status = Literal["failed", "incomplete", "has errors", "complete"]


@dataclass(frozen=True)
class ExperimentOverview:
    """One line of ``dotevals list``; ``failed`` and ``incomplete`` count evaluations."""

    name: str
    evaluations: int
    rows: int
    errors: int
    modified: float
    failed: int = 0
    incomplete: int = 0

    @property
    def status(self) -> Status:
        """The worst status of the experiment's evaluations (``dotevals list --help``)."""
        if self.failed:
            return "failed"
        if self.incomplete:
            return "incomplete"
        return "complete" if self.errors == 0 else "has errors"


def evaluation_status(stored: StoredEvaluation) -> Status:
    """``failed``, ``incomplete``, ``has errors`` or ``complete`` for one evaluation.

    An evaluation whose last run did not finish (:attr:`StoredEvaluation.finished`) is
    incomplete; so is one with fewer records than the summary's ``dataset_size``, when the
    run stored it.
    """
    summary = stored.summary or {}
    finished = stored.finished
    if finished and summary.get("failure"):
        return "failed"
    size = _number(summary.get("dataset_size"))
    if not finished or (size is not None and len(stored.records) < size):
        return "incomplete"
    return "has errors" if stored.errors else "complete"


def evaluation_figures(name: str, stored: StoredEvaluation) -> EvaluationFigures:
    """Recompute an evaluation's figures from its final records."""
    records = [stored.records[item] for item in sorted(stored.records)]
    running = RunningMetrics()
    for record in records:
        running.add(record.scores, record.is_error)
    with_errors, without_errors = running.results(True), running.results(False)
    metrics = [
        _metric_figures(score, metric, with_errors, without_errors, stored.summary)
        for score, metric in _metric_keys(records, stored.summary)
    ]
    return EvaluationFigures(name, records, metrics, stored.header)


def _metric_keys(records: list[Record], summary: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Every (score, metric) pair the records name, then those only the summary names."""
    keys: dict[tuple[str, str], None] = {}
    for record in records:
        for score in record.scores:
            for metric in score.get("metrics") or ():
                keys[(str(score["name"]), str(metric))] = None
    for score_name, metrics in _summary_table(summary, _WITH_ERRORS).items():
        for metric_name in metrics:
            keys.setdefault((score_name, str(metric_name)), None)
    return list(keys)


def _metric_figures(
    score: str,
    metric: str,
    with_errors: dict[str, dict[str, MetricValue]],
    without_errors: dict[str, dict[str, MetricValue]],
    summary: dict[str, Any] | None,
) -> MetricFigures:
    computed = with_errors.get(score, {}).get(metric)
    if computed is not None:
        without = without_errors.get(score, {}).get(metric)
        return MetricFigures(score, metric, computed, without, "records")
    stored_with = _stored_value(summary, _WITH_ERRORS, score, metric)
    stored_without = _stored_value(summary, _WITHOUT_ERRORS, score, metric)
    found = stored_with is not None or stored_without is not None
    return MetricFigures(score, metric, stored_with, stored_without, "summary" if found else "none")


def _summary_table(summary: dict[str, Any] | None, key: str) -> dict[str, dict[str, Any]]:
    table = summary.get(key) if summary else None
    if not isinstance(table, dict):
        return {}
    return {str(score): values for score, values in table.items() if isinstance(values, dict)}


def _stored_value(
    summary: dict[str, Any] | None, key: str, score: str, metric: str
) -> MetricValue | None:
    raw = _summary_table(summary, key).get(score, {}).get(metric)
    return MetricValue.from_dict(raw if isinstance(raw, dict) else {"value": raw})


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _error_type(record: Record) -> str:
    return str((record.error or {}).get("type") or "Error")


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def metric_value_dict(value: MetricValue | None) -> dict[str, Any] | None:
    """A metric value as strict JSON: unknown figures (NaN) become ``null``; a recomputed
    figure also says its interval's method, level, clusters and why it has none."""
    if value is None:
        return None
    low, high = value.ci95
    out: dict[str, Any] = {
        "value": _finite(value.value),
        "stderr": _finite(value.stderr),
        "ci_low": _finite(low),
        "ci_high": _finite(high),
        "count": value.count,
    }
    if isinstance(value, IntervalValue):
        out.update(
            method=value.method,
            level=value.level,
            n_clusters=value.n_clusters,
            reason=value.reason,
        )
    return out


def figures_to_dict(
    figures: EvaluationFigures, errored: bool = False, full: bool = False
) -> dict[str, Any]:
    """The figures as one JSON-ready mapping; errored rows or all records when asked."""
    out: dict[str, Any] = {
        "name": figures.name,
        "rows": figures.rows,
        "errors": len(figures.errored),
        "error_types": figures.error_types,
        "metrics": [_metric_dict(m) for m in figures.metrics],
        "header": figures.header,
    }
    if errored:
        out["errored_rows"] = [_error_dict(r) for r in figures.errored]
    if full:
        out["records"] = [r.to_dict() for r in figures.records]
    return out


def _metric_dict(figures: MetricFigures) -> dict[str, Any]:
    return {
        "score": figures.score,
        "metric": figures.metric,
        "with_errors": metric_value_dict(figures.with_errors),
        "without_errors": metric_value_dict(figures.without_errors),
        "source": figures.source,
    }


def _error_dict(record: Record) -> dict[str, Any]:
    error = record.error or {}
    return {"item_id": record.item_id, "type": _error_type(record), "message": error.get("message")}
