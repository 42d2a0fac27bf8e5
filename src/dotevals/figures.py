"""Figures of stored evaluations, recomputed from their records: plain data, no output.

Metrics are computed again from the final records with :class:`RunningMetrics`, twice: with
errored rows counted as failures, and without errored rows. A metric whose name does not
resolve (a custom metric defined in user code) takes its value from the last stored summary
(:class:`~dotevals.results.Summary`: ``metrics`` with errors, ``metrics_without_errors``
without). Token usage is summed per model from the records.

``dotevals show`` prints these figures and ``dotevals report`` draws them: both read them here,
so the two always agree.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from dotevals.metrics import RunningMetrics
from dotevals.pricing import Prices
from dotevals.results import (
    Header,
    IntervalValue,
    MetricValue,
    Record,
    Summary,
    Usage,
    add_usage,
    metric_name,
)
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
    header: Header | None = None
    #: Tokens used, by model ("" for rows of no known model).
    usage_by_model: dict[str, Usage] = field(default_factory=dict)
    #: Cost by model, for the models the price table knows.
    cost_by_model: dict[str, float] = field(default_factory=dict)

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
    summary = stored.summary or Summary()
    finished = stored.finished
    if finished and summary.failure:
        return "failed"
    size = summary.dataset_size
    if not finished or (size is not None and len(stored.records) < size):
        return "incomplete"
    return "has errors" if stored.errors else "complete"


def evaluation_figures(
    name: str, stored: StoredEvaluation, prices: Prices | None = None
) -> EvaluationFigures:
    """Recompute an evaluation's figures from its final records (cost when priced)."""
    records = [stored.records[item] for item in sorted(stored.records)]
    header = stored.header or Header("", "")
    repeats = header.options.get("repeats")
    k = repeats if isinstance(repeats, int) and repeats > 1 else 1
    running = RunningMetrics(clustered=header.cluster is not None, repeats=k)
    for record in records:
        item = None if record.repeat is None else record.item_id // k
        running.add(record.scores, record.is_error, record.cluster, item)
    with_errors, without_errors = running.results(True), running.results(False)
    summary = stored.summary or Summary()
    metrics = [
        _metric_figures(score, metric, with_errors, without_errors, summary)
        for score, metric in _metric_keys(records, summary)
    ]
    usage = usage_by_model(records)
    costs = prices.costs(usage) if prices is not None else {}
    return EvaluationFigures(name, records, metrics, stored.header, usage, costs)


def usage_by_model(records: list[Record]) -> dict[str, Usage]:
    """Tokens the records used, summed per model ("" for rows of no known model)."""
    out: dict[str, Usage] = {}
    for record in records:
        if record.usage is not None:
            add_usage(out, record.model, record.usage)
    return out


def _metric_keys(records: list[Record], summary: Summary) -> list[tuple[str, str]]:
    """Every (score, metric) pair the records name, then those only the summary names."""
    keys: dict[tuple[str, str], None] = {}
    for record in records:
        for score in record.scores:
            for metric in score.metrics:
                keys[(score.name, metric_name(metric))] = None
    for score_name, metrics in summary.metrics.items():
        for name in metrics:
            keys.setdefault((score_name, name), None)
    return list(keys)


def _metric_figures(
    score: str,
    metric: str,
    with_errors: dict[str, dict[str, MetricValue]],
    without_errors: dict[str, dict[str, MetricValue]],
    summary: Summary,
) -> MetricFigures:
    computed = with_errors.get(score, {}).get(metric)
    if computed is not None:
        without = without_errors.get(score, {}).get(metric)
        return MetricFigures(score, metric, computed, without, "records")
    stored_with = summary.metrics.get(score, {}).get(metric)
    stored_without = summary.metrics_without_errors.get(score, {}).get(metric)
    found = stored_with is not None or stored_without is not None
    return MetricFigures(score, metric, stored_with, stored_without, "summary" if found else "none")


def _error_type(record: Record) -> str:
    return record.error.type if record.error is not None and record.error.type else "Error"


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def metric_value_dict(value: MetricValue | None) -> dict[str, Any] | None:
    """A metric value as strict JSON: unknown figures (NaN) become ``null``; a recomputed
    figure also says its interval's method, level, clusters and why it has none, and with
    repeated samples the within-item variance."""
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
        if value.repeats is not None:
            out.update(within_variance=value.within_variance, repeats=value.repeats)
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
        "header": None if figures.header is None else figures.header.to_dict(),
        "usage_by_model": {m: u.to_dict() for m, u in figures.usage_by_model.items()},
        "cost_by_model": figures.cost_by_model,
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
    message = record.error.message if record.error is not None else None
    return {"item_id": record.item_id, "type": _error_type(record), "message": message}
