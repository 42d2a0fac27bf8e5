"""Whether a finished evaluation passes: no crash, not every row errored, thresholds met.

The pytest plugin's policy: ``dotevals.run`` returns the summary and leaves judging it to the
caller.
"""

from __future__ import annotations

from collections.abc import Mapping

from dotevals.cli._hints import show_hint
from dotevals.decorators import EvaluationSpec
from dotevals.errors import EvaluationFailed
from dotevals.results import MetricTable, MetricValue, Summary, format_metric

__all__ = ["check_thresholds", "raise_for_failure"]


def check_thresholds(spec: EvaluationSpec, report: Summary) -> str | None:
    """Why the evaluation failed, or None: a crash, every row errored, a missed threshold."""
    if report.failure:
        return report.failure
    if report.ran and report.errors == report.total:
        kinds = ", ".join(f"{k} x{n}" for k, n in report.error_types.items())
        hint = show_hint(report.experiment, "--errors")
        return f"every row errored ({kinds}); see `{hint}`"
    for key, minimum in spec.threshold.items():
        value = _find_metric(report.metrics, key)
        if value is None:
            return f"threshold on {key!r}: no such metric (have {_metric_keys(report.metrics)})"
        reason = _below(key, value, minimum)
        if reason is not None:
            return reason
    return None


def raise_for_failure(spec: EvaluationSpec, report: Summary) -> None:
    """Raise EvaluationFailed when :func:`check_thresholds` finds a reason."""
    reason = check_thresholds(spec, report)
    if reason is not None:
        raise EvaluationFailed(f"{report.evaluation}: {reason}")


def _below(key: str, value: MetricValue, minimum: float | Mapping[str, float]) -> str | None:
    """Why ``value`` misses the threshold ``minimum`` (a number, or ``{"lower": number}``)."""
    if not isinstance(minimum, Mapping):
        if value.value < minimum:
            return f"{key} = {value.value:.4f} is below the threshold {minimum}"
        return None
    lower, bound = minimum["lower"], value.ci95[0]
    if bound != bound or bound < lower:  # NaN: no interval, so no evidence it clears the bar
        return (
            f"{key} = {format_metric(value)}: the interval's lower bound is below the "
            f"threshold {lower}"
        )
    return None


def _find_metric(metrics: MetricTable, key: str) -> MetricValue | None:
    score, _, name = key.rpartition(".")
    for s, ms in metrics.items():
        if (not score or s == score) and name in ms:
            return ms[name]
    return None


def _metric_keys(metrics: MetricTable) -> list[str]:
    return [f"{s}.{m}" for s, ms in metrics.items() for m in ms]
