"""Scores, results and stored records: plain data, no I/O."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ErrorInfo", "MetricValue", "Record", "Result", "Score", "format_metric"]

#: A metric: a callable over the list of a score's values, with ``__name__`` set.
Metric = Callable[[list[Any]], float]


@dataclass
class Score:
    """One named score of one row.

    Args:
        name: the score's name (an evaluator's name by default).
        value: the value: a bool, a number, or anything JSON can hold.
        metrics: metrics that aggregate this score over all rows.
        metadata: extra data stored with the score (an evaluator's arguments).
    """

    name: str
    value: Any
    metrics: list[Metric] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The score as stored: metric names instead of metric objects."""
        return {
            "name": self.name,
            "value": self.value,
            "metrics": [metric_name(m) for m in self.metrics],
            "metadata": self.metadata,
        }


def metric_name(metric: Metric | str) -> str:
    """The stored name of a metric."""
    return metric if isinstance(metric, str) else getattr(metric, "__name__", repr(metric))


class Result:
    """What an evaluation returns for one row.

    ``Result(score_a, score_b, prompt=..., model_response=...)`` holds scores;
    ``Result("text")`` records a response with no score.
    """

    __slots__ = ("error", "model_response", "prompt", "scores")

    def __init__(
        self,
        *scores: Score | str,
        prompt: str | None = None,
        model_response: str | None = None,
        error: str | None = None,
    ) -> None:
        kept: list[Score] = []
        for score in scores:
            if isinstance(score, Score):
                kept.append(score)
            elif isinstance(score, str) and model_response is None:
                model_response = score
            else:
                raise TypeError(
                    f"Result() takes Score objects (and one response string), got {score!r}"
                )
        self.scores = kept
        self.prompt = prompt
        self.model_response = model_response
        self.error = error

    def __repr__(self) -> str:
        return (
            f"Result(scores={self.scores!r}, prompt={self.prompt!r}, "
            f"model_response={self.model_response!r})"
        )


@dataclass
class ErrorInfo:
    """Why a row failed: the exception's type, message and traceback."""

    type: str
    message: str
    traceback: str = ""

    def to_dict(self) -> dict[str, str]:
        """The error as stored."""
        return {"type": self.type, "message": self.message, "traceback": self.traceback}


@dataclass
class Record:
    """One row's outcome, as stored. The last record for an ``item_id`` wins."""

    item_id: int
    dataset_row: Any
    scores: list[dict[str, Any]] = field(default_factory=list)
    prompt: str | None = None
    model_response: Any = None
    error: dict[str, str] | None = None
    timestamp: float = 0.0
    duration: float = 0.0
    attempts: int = 1

    @property
    def is_error(self) -> bool:
        """Whether the row failed."""
        return self.error is not None

    def to_dict(self) -> dict[str, Any]:
        """The record as one flat JSON object."""
        return {
            "item_id": self.item_id,
            "dataset_row": self.dataset_row,
            "prompt": self.prompt,
            "model_response": self.model_response,
            "scores": self.scores,
            "error": self.error,
            "timestamp": self.timestamp,
            "duration": self.duration,
            "attempts": self.attempts,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        """Rebuild a record read from storage."""
        return cls(
            item_id=int(data["item_id"]),
            dataset_row=data.get("dataset_row"),
            scores=list(data.get("scores") or []),
            prompt=data.get("prompt"),
            model_response=data.get("model_response"),
            error=data.get("error"),
            timestamp=float(data.get("timestamp") or 0.0),
            duration=float(data.get("duration") or 0.0),
            attempts=int(data.get("attempts") or 1),
        )


@dataclass(frozen=True)
class MetricValue:
    """An aggregate with its 95% confidence interval (``nan`` bounds when unknown).

    The interval is the normal approximation ``value ± 1.96 * stderr`` unless explicit bounds
    are given (accuracy uses the Wilson score interval, which stays within [0, 1]).
    """

    value: float
    stderr: float = math.nan
    count: int = 0
    ci_low: float | None = None
    ci_high: float | None = None

    @property
    def ci95(self) -> tuple[float, float]:
        """The 95% confidence interval."""
        if self.ci_low is not None and self.ci_high is not None:
            return (self.ci_low, self.ci_high)
        half = 1.96 * self.stderr
        return (self.value - half, self.value + half)

    def to_dict(self) -> dict[str, float]:
        """The value as stored in a summary."""
        low, high = self.ci95
        return {
            "value": self.value,
            "stderr": self.stderr,
            "ci_low": low,
            "ci_high": high,
            "count": self.count,
        }

    @classmethod
    def from_dict(cls, data: Any) -> MetricValue | None:
        """A value as a summary stores it (:meth:`to_dict`), or None without a numeric value.

        Figures that are missing, ``null`` or not numbers are unknown: ``stderr`` becomes
        ``nan``, ``count`` 0 and a confidence bound None (so :attr:`ci95` falls back to
        ``value ± 1.96 * stderr``).
        """
        if not isinstance(data, dict):
            return None
        value = _number(data.get("value"))
        if value is None:
            return None
        stderr, count = _number(data.get("stderr")), _number(data.get("count"))
        return cls(
            value,
            math.nan if stderr is None else stderr,
            0 if count is None or not math.isfinite(count) else int(count),
            _number(data.get("ci_low")),
            _number(data.get("ci_high")),
        )


def _number(value: Any) -> float | None:
    """The value as a float when it is an int or a float (not a bool), else None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def format_metric(value: MetricValue) -> str:
    """``0.750 [0.702, 0.793]``: a metric value and its 95% confidence interval."""
    low, high = value.ci95
    if math.isnan(low) or math.isnan(high):
        return f"{value.value:.3f}"
    return f"{value.value:.3f} [{low:.3f}, {high:.3f}]"
