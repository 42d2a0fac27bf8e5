"""Scores, results and stored records: plain data, no I/O."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, Final

from dotevals.stats import DEFAULT_LEVEL, Interval, format_interval

__all__ = [
    "ErrorInfo",
    "Header",
    "IntervalValue",
    "MetricTable",
    "MetricValue",
    "Record",
    "Result",
    "Returned",
    "Score",
    "Summary",
    "Usage",
    "add_usage",
    "carry_metrics",
    "format_metric",
    "to_result",
]

#: A metric: a callable over the list of a score's values, with ``__name__`` set.
Metric = Callable[[list[Any]], float]


@dataclass
class Score:
    """One named score of one row.

    Args:
        name: the score's name (an evaluator's name by default).
        value: the value: a bool, a number, or anything JSON can hold.
        metrics: metrics that aggregate this score over all rows (read back from a store,
            their names).
        metadata: extra data stored with the score (an evaluator's arguments).
    """

    name: str
    value: Any
    metrics: list[Metric | str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The score as stored: metric names instead of metric objects."""
        return {
            "name": self.name,
            "value": self.value,
            "metrics": [metric_name(m) for m in self.metrics],
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Score:
        """A stored score: its metrics are names."""
        metadata = data.get("metadata")
        return cls(
            str(data["name"]),
            data.get("value"),
            list(data.get("metrics") or ()),
            metadata if isinstance(metadata, dict) else {},
        )


def metric_name(metric: Metric | str) -> str:
    """The stored name of a metric."""
    return metric if isinstance(metric, str) else getattr(metric, "__name__", repr(metric))


class Result:
    """What an evaluation returns for one row.

    ``Result(score_a, score_b, prompt=..., model_response=...)`` holds scores;
    ``Result("text")`` records a response with no score. ``model=`` names the model that
    answered (else the evaluation's model is recorded); ``usage=`` gives its token counts. A
    ``model_response`` that is an openai SDK response is stored as its text, and its model
    and ``usage`` are recorded when not given.
    """

    __slots__ = ("error", "model", "model_response", "prompt", "scores", "usage")

    def __init__(
        self,
        *scores: Score | str,
        prompt: str | None = None,
        model_response: Any = None,
        error: str | None = None,
        model: str | None = None,
        usage: Usage | None = None,
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
        self.model = model
        self.usage = usage
        if model_response is not None and not isinstance(model_response, str):
            if hasattr(model_response, "usage") and hasattr(model_response, "choices"):
                self._take_response(model_response)

    def _take_response(self, response: Any) -> None:
        """Keep an SDK response's text, model and usage (its other fields are not stored)."""
        self.model_response = response_text(response)
        if self.usage is None:
            self.usage = Usage.from_response(response)
        if self.model is None and isinstance(getattr(response, "model", None), str):
            self.model = response.model

    def __repr__(self) -> str:
        return (
            f"Result(scores={self.scores!r}, prompt={self.prompt!r}, "
            f"model_response={self.model_response!r})"
        )


def response_text(response: Any) -> Any:
    """The text of an openai chat or completion response's first choice, else the response."""
    choices = getattr(response, "choices", None)
    if not choices:
        return response
    first = choices[0]
    message = getattr(first, "message", None)
    text = getattr(message, "content", None) if message is not None else None
    if text is None:
        text = getattr(first, "text", None)
    return text if isinstance(text, str) else response


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@dataclass(frozen=True)
class Usage:
    """Tokens a row used: prompt, completion, total, and cached prompt tokens when reported."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.total_tokens + other.total_tokens,
            self.cached_tokens + other.cached_tokens,
        )

    def split(self, parts: int) -> list[Usage]:
        """``parts`` usages that sum to this one (a batch call's usage over its rows)."""
        counts = (self.prompt_tokens, self.completion_tokens, self.total_tokens, self.cached_tokens)
        shares = [[n // parts + (1 if i < n % parts else 0) for n in counts] for i in range(parts)]
        return [Usage(*share) for share in shares]

    def to_dict(self) -> dict[str, int]:
        """The usage as stored."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cached_tokens": self.cached_tokens,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Usage | None:
        """A stored usage (:meth:`to_dict`); None for anything that is not a mapping."""
        if not isinstance(data, dict):
            return None
        return cls(
            _int(data.get("prompt_tokens")),
            _int(data.get("completion_tokens")),
            _int(data.get("total_tokens")),
            _int(data.get("cached_tokens")),
        )

    @classmethod
    def from_response(cls, response: Any) -> Usage | None:
        """The ``usage`` an openai SDK response (or its JSON as a dict) reports, or None."""
        usage = response.get("usage") if isinstance(response, dict) else None
        if usage is None:
            usage = getattr(response, "usage", None)
        if usage is None:
            return None
        if not isinstance(usage, dict):
            usage = usage.model_dump() if hasattr(usage, "model_dump") else vars(usage)
        details = usage.get("prompt_tokens_details")
        cached = details.get("cached_tokens") if isinstance(details, dict) else None
        prompt, completion = _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens"))
        total = _int(usage.get("total_tokens")) or prompt + completion
        return cls(prompt, completion, total, _int(cached))


def add_usage(table: dict[str, Usage], model: str | None, usage: Usage) -> None:
    """Add ``usage`` to ``table``'s entry for ``model`` ("" for rows of no known model)."""
    key = model or ""
    known = table.get(key)
    table[key] = usage if known is None else known + usage


@dataclass(frozen=True)
class ErrorInfo:
    """Why a row failed: the exception's type, message and traceback."""

    type: str
    message: str
    traceback: str = ""

    def to_dict(self) -> dict[str, str]:
        """The error as stored."""
        return {"type": self.type, "message": self.message, "traceback": self.traceback}

    @classmethod
    def from_dict(cls, data: Any) -> ErrorInfo | None:
        """A stored error; None for ``null``."""
        if data is None:
            return None
        return cls(str(data["type"]), str(data.get("message", "")), str(data.get("traceback", "")))


def _known(cls: type[Any]) -> frozenset[str]:
    return frozenset(f.name for f in fields(cls) if f.name != "extra")


def _unknown(data: dict[str, Any], known: frozenset[str]) -> dict[str, Any]:
    """Fields a newer dotevals wrote that this one does not know: kept as they are."""
    return {k: v for k, v in data.items() if k not in known and k != "type"}


@dataclass
class Record:
    """One row's outcome, as stored. The last record for an ``item_id`` wins.

    ``extra`` keeps fields that a newer dotevals wrote and this one does not know.
    """

    item_id: int
    dataset_row: Any
    scores: list[Score] = field(default_factory=list)
    prompt: str | None = None
    model_response: Any = None
    error: ErrorInfo | None = None
    timestamp: float = 0.0
    duration: float = 0.0
    attempts: int = 1
    model: str | None = None
    usage: Usage | None = None
    #: The row's cluster label, when the evaluation names a cluster column.
    cluster: str | None = None
    #: Which run of the row this record is, with ``repeats=K``.
    repeat: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_error(self) -> bool:
        """Whether the row failed."""
        return self.error is not None

    @property
    def row_hash(self) -> str:
        """A digest of the dataset row, to align rows across evaluations and runs.

        Computed from ``dataset_row`` (its JSON, keys sorted; other values as reprs), so the
        live row and the stored one give the same digest and no row pays for it while running.
        """
        blob = _HASH_ENCODER.encode(self.dataset_row).encode()
        return hashlib.blake2b(blob, digest_size=8).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """The record as one flat JSON object."""
        out = {
            "item_id": self.item_id,
            "dataset_row": self.dataset_row,
            "prompt": self.prompt,
            "model_response": self.model_response,
            "scores": [s.to_dict() for s in self.scores],
            "error": None if self.error is None else self.error.to_dict(),
            "timestamp": self.timestamp,
            "duration": self.duration,
            "attempts": self.attempts,
        }
        if self.model is not None:  # left out when unknown: a smaller line to write and read
            out["model"] = self.model
        if self.usage is not None:
            out["usage"] = self.usage.to_dict()
        if self.cluster is not None:
            out["cluster"] = self.cluster
        if self.repeat is not None:
            out["repeat"] = self.repeat
        if self.extra:
            return {**self.extra, **out}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], bad: set[str] | None = None) -> Record:
        """Rebuild a record read from storage (written by this or an older version).

        A timestamp, duration or attempts that is no usable number (``Infinity``, ``NaN``, a
        huge, negative or fractional count) takes its default, and its name is added to
        ``bad`` so that the reader can warn once.
        """
        model = data.get("model")
        return cls(
            item_id=int(data["item_id"]),
            dataset_row=data.get("dataset_row"),
            scores=[Score.from_dict(s) for s in data.get("scores") or ()],
            prompt=data.get("prompt"),
            model_response=data.get("model_response"),
            error=ErrorInfo.from_dict(data.get("error")),
            timestamp=_checked(data, "timestamp", _finite, bad) or 0.0,
            duration=_checked(data, "duration", _finite, bad) or 0.0,
            attempts=_checked(data, "attempts", _count, bad) or 1,
            model=model if isinstance(model, str) else None,
            usage=Usage.from_dict(data.get("usage")),
            cluster=_str(data.get("cluster")),
            repeat=_whole(data.get("repeat")),
            extra=_unknown(data, _RECORD_FIELDS),
        )


def _checked(
    data: dict[str, Any], key: str, parse: Callable[[Any], Any], bad: set[str] | None
) -> Any:
    """``parse(data[key])``; None when absent, or unusable (then ``key`` joins ``bad``)."""
    raw = data.get(key)
    if raw is None:
        return None
    value = parse(raw)
    if value is None and bad is not None:
        bad.add(key)
    return value


_RECORD_FIELDS: Final = _known(Record) | {"row_hash"}
_HASH_ENCODER: Final = json.JSONEncoder(sort_keys=True, default=repr, ensure_ascii=False)


@dataclass(frozen=True)
class Header:
    """What a store says about an evaluation when it is first written."""

    experiment: str
    evaluation: str
    columns: list[str] = field(default_factory=list)
    dataset_fingerprint: str | None = None
    dotevals_version: str | None = None
    git_commit: str | None = None
    started_at: float = 0.0
    model: str | None = None
    provider: str | None = None
    #: How the run was set up: samples, concurrency, retries.
    options: dict[str, Any] = field(default_factory=dict)
    #: The column naming each row's cluster (``@foreach(..., cluster=...)``), or None.
    cluster: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The header as stored (without its ``"type"``)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        return {**self.extra, **out}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Header:
        """A stored header; fields missing in older stores take their defaults."""
        columns = data.get("columns")
        options = data.get("options")
        return cls(
            experiment=str(data.get("experiment") or ""),
            evaluation=str(data.get("evaluation") or ""),
            columns=[str(c) for c in columns] if isinstance(columns, list) else [],
            dataset_fingerprint=_str(data.get("dataset_fingerprint")),
            dotevals_version=_str(data.get("dotevals_version")),
            git_commit=_str(data.get("git_commit")),
            started_at=_number(data.get("started_at")) or 0.0,
            model=_str(data.get("model")),
            provider=_str(data.get("provider")),
            options=dict(options) if isinstance(options, dict) else {},
            cluster=_str(data.get("cluster")),
            extra=_unknown(data, _HEADER_FIELDS),
        )


_HEADER_FIELDS: Final = _known(Header)


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

    def _key(self) -> tuple[Any, ...]:
        """The figures with unknown ones (NaN) as None, so that equal values compare equal."""
        low, high = self.ci95
        figures = (None if v != v else v for v in (self.value, self.stderr, low, high))
        return (*figures, self.count)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MetricValue):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

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
        figures = (
            value,
            math.nan if stderr is None else stderr,
            0 if count is None or not math.isfinite(count) else int(count),
            _number(data.get("ci_low")),
            _number(data.get("ci_high")),
        )
        method = data.get("method")
        if not isinstance(method, str) or not method:
            return cls(*figures)
        level, clusters = _number(data.get("level")), _number(data.get("n_clusters"))
        return IntervalValue(
            *figures,
            method,
            level if level is not None and 0 < level < 1 else DEFAULT_LEVEL,
            None if clusters is None or not math.isfinite(clusters) else int(clusters),
            _str(data.get("reason")),
            _number(data.get("within_variance")),
            _whole(data.get("repeats")),
        )


@dataclass(frozen=True, eq=False)
class IntervalValue(MetricValue):
    """A metric value that says how its interval was made: method, level, clusters, or why
    there is none (``reason``; the bounds are then None)."""

    method: str = ""
    level: float = DEFAULT_LEVEL
    n_clusters: int | None = None
    reason: str | None = None
    #: With repeated samples: the mean within-item variance of the repeats (Miller's split).
    within_variance: float | None = None
    repeats: int | None = None

    def _key(self) -> tuple[Any, ...]:
        return (
            *super()._key(), self.method, self.level, self.n_clusters, self.reason,
            self.within_variance, self.repeats,
        )  # fmt: skip

    @classmethod
    def of(cls, interval: Interval, value: float | None = None) -> IntervalValue:
        """The figure of an interval (``value`` when its estimate is None: no values)."""
        estimate = interval.estimate if interval.estimate is not None else value
        return cls(
            0.0 if estimate is None else estimate,
            math.nan if interval.stderr is None else interval.stderr,
            interval.n,
            interval.lo,
            interval.hi,
            interval.method,
            interval.level,
            interval.n_clusters,
            interval.reason,
        )

    @property
    def interval(self) -> Interval:
        """The figure as a :class:`~dotevals.stats.Interval`."""
        stderr = self.stderr if math.isfinite(self.stderr) else None
        estimate = self.value if self.count else None
        return Interval(
            estimate, self.ci_low, self.ci_high, self.count, self.method, self.level,
            self.n_clusters, stderr, self.reason,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The value as stored in a summary: strict JSON (``null``, never NaN)."""
        out: dict[str, Any] = {
            k: (v if not isinstance(v, float) or math.isfinite(v) else None)
            for k, v in super().to_dict().items()
        }
        out.update(
            method=self.method, level=self.level, n_clusters=self.n_clusters, reason=self.reason
        )
        if self.repeats is not None:
            out.update(within_variance=self.within_variance, repeats=self.repeats)
        return out

    def __str__(self) -> str:
        return format_interval(self.interval) + self.split()

    def split(self, digits: int = 3) -> str:
        """`` within-item var 0.012 (5 repeats)`` with repeated samples, else ``""``."""
        if self.repeats is None or self.within_variance is None:
            return ""
        return f" within-item var {self.within_variance:.{digits}f} ({self.repeats} repeats)"


def _number(value: Any) -> float | None:
    """The value as a float when it is an int or a float (not a bool), else None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:  # an integer beyond any float (10**400 in a damaged store)
            return math.inf
    return None


def _finite(value: Any) -> float | None:
    """The value as a float when it is a finite number, else None."""
    number = _number(value)
    return number if number is not None and math.isfinite(number) else None


def _count(value: Any) -> int | None:
    """The value as an int when it is a finite, whole, non-negative number, else None."""
    number = _finite(value)
    return int(number) if number is not None and number >= 0 and number.is_integer() else None


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


MetricTable = dict[str, dict[str, MetricValue]]


def _metrics_to_dict(metrics: MetricTable) -> dict[str, dict[str, dict[str, float]]]:
    return {s: {m: v.to_dict() for m, v in ms.items()} for s, ms in metrics.items()}


def _metrics_from_dict(data: Any) -> MetricTable:
    """A stored metric table; a figure may be a :meth:`MetricValue.to_dict` or a bare number."""
    out: MetricTable = {}
    for score, figures in (data if isinstance(data, dict) else {}).items():
        for name, raw in (figures if isinstance(figures, dict) else {}).items():
            value = MetricValue.from_dict(raw if isinstance(raw, dict) else {"value": raw})
            if value is not None:
                out.setdefault(str(score), {})[str(name)] = value
    return out


def _history(pairs: Any) -> list[tuple[float, int]]:
    """A stored concurrency history: ``[seconds, limit]`` pairs; odd entries are left out."""
    found = []
    for pair in pairs if isinstance(pairs, list) else ():
        if isinstance(pair, list) and len(pair) == 2:
            seconds, limit = _number(pair[0]), _count(pair[1])
            if seconds is not None and limit is not None:
                found.append((seconds, limit))
    return found


def _usage_by_model(data: Any) -> dict[str, Usage]:
    items = data.items() if isinstance(data, dict) else ()
    found = {str(k): Usage.from_dict(v) for k, v in items}
    return {k: v for k, v in found.items() if v is not None}


@dataclass(frozen=True)
class Summary:
    """How a run of an evaluation ended: counts, metrics, errors, tokens and cost.

    The run writes it to the store when it ends; ``dotevals.run``, the terminal summary and
    the xdist hand-over use it as it is. ``cost`` is None when no price table knows the
    models; ``extra`` keeps fields a newer dotevals wrote.
    """

    evaluation: str = ""
    experiment: str = ""
    storage_url: str = ""
    total: int = 0
    errors: int = 0
    ran: int = 0
    duration: float = 0.0
    metrics: MetricTable = field(default_factory=dict)
    metrics_without_errors: MetricTable = field(default_factory=dict)
    error_types: dict[str, int] = field(default_factory=dict)
    concurrency: list[tuple[float, int]] = field(default_factory=list)
    failure: str | None = None
    #: Rows in the dataset (after ``samples``), when the dataset has a length.
    dataset_size: int | None = None
    usage: Usage | None = None
    usage_by_model: dict[str, Usage] = field(default_factory=dict)
    cost: float | None = None
    cost_by_model: dict[str, float] = field(default_factory=dict)
    finished_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def brief(self) -> dict[str, Any]:
        """``{"total", "errors", "metrics"}`` with plain floats."""
        return {
            "total": self.total,
            "errors": self.errors,
            "metrics": {
                score: {name: value.value for name, value in metrics.items()}
                for score, metrics in self.metrics.items()
            },
        }

    def to_dict(self) -> dict[str, Any]:
        """The summary as stored (without its ``"type"``)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        out["metrics"] = _metrics_to_dict(self.metrics)
        out["metrics_without_errors"] = _metrics_to_dict(self.metrics_without_errors)
        out["concurrency"] = [list(pair) for pair in self.concurrency]
        out["usage"] = None if self.usage is None else self.usage.to_dict()
        out["usage_by_model"] = {k: v.to_dict() for k, v in self.usage_by_model.items()}
        return {**self.extra, **out}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Summary:
        """A stored summary; what older stores lack takes its default, odd values are ignored."""
        size = _count(data.get("dataset_size"))
        cost = _number(data.get("cost"))
        kinds = data.get("error_types")
        pairs = data.get("concurrency")
        costs = data.get("cost_by_model")
        return cls(
            evaluation=str(data.get("evaluation") or ""),
            experiment=str(data.get("experiment") or ""),
            storage_url=str(data.get("storage_url") or ""),
            total=_count(data.get("total")) or 0,
            errors=_count(data.get("errors")) or 0,
            ran=_count(data.get("ran")) or 0,
            duration=_number(data.get("duration")) or 0.0,
            metrics=_metrics_from_dict(data.get("metrics")),
            metrics_without_errors=_metrics_from_dict(data.get("metrics_without_errors")),
            error_types=(
                {str(k): int(v) for k, v in kinds.items() if isinstance(v, int)}
                if isinstance(kinds, dict)
                else {}
            ),
            concurrency=_history(pairs),
            failure=_str(data.get("failure")),
            dataset_size=size,
            usage=Usage.from_dict(data.get("usage")),
            usage_by_model=_usage_by_model(data.get("usage_by_model")),
            cost=cost,
            cost_by_model=(
                {str(k): float(v) for k, v in costs.items() if _number(v) is not None}
                if isinstance(costs, dict)
                else {}
            ),
            finished_at=_number(data.get("finished_at")) or 0.0,
            extra=_unknown(data, _SUMMARY_FIELDS),
        )


_SUMMARY_FIELDS: Final = _known(Summary)


def format_metric(value: MetricValue, digits: int = 3, brief: bool = False) -> str:
    """``0.810 [0.722, 0.874] n=100 Wilson 95%``: a figure, its interval, n, method and level.

    A figure that does not say how its interval was made (an older store's) prints as
    ``0.810 [0.722, 0.874] n=100``; ``brief`` gives only the value and its bounds (a live
    display).
    """
    if isinstance(value, IntervalValue) and not brief:
        return format_interval(value.interval, digits) + value.split(digits)
    low, high = value.ci95
    n = f" n={value.count}" if value.count and not brief else ""
    if math.isnan(low) or math.isnan(high):
        return f"{value.value:.{digits}f}{n}"
    return f"{value.value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]{n}"


def carry_metrics(live: MetricTable, last: MetricTable) -> MetricTable:
    """``live`` with the figures only the last summary holds (``live`` is extended).

    A custom metric whose code is not at hand (a plain function, not ``@metric``) cannot be
    computed from stored records; when a run added no record to those the last summary
    counted, that summary's figure for it is still exact, so it is kept.
    """
    for score, figures in last.items():
        for name, kept in figures.items():
            if name not in live.get(score, {}):
                live.setdefault(score, {})[name] = kept
    return live


#: What a row returned, normalised: scores, prompt, response, model and usage.
Returned = tuple[list[Score], str | None, Any, str | None, Usage | None]


def to_result(name: str, value: Any) -> Returned:
    """What an evaluation returned for one row: ``(scores, prompt, response, model, usage)``.

    A tuple, not a :class:`Result`, so that rows returning a bool or a number build nothing more.

    Raises:
        TypeError: the value is not a Result, Score, bool or number.
    """
    if isinstance(value, Result):
        return value.scores, value.prompt, value.model_response, value.model, value.usage
    if isinstance(value, Score):
        return [value], None, None, None, None
    if isinstance(value, bool):
        return [Score(name, value, [(_BARE or _make_bare())[0]])], None, None, None, None
    if isinstance(value, (int, float)):
        return [Score(name, value, [(_BARE or _make_bare())[1]])], None, None, None, None
    raise TypeError(_accepted(name, value))


#: ``accuracy()`` and ``mean()``, the metrics of bare bools and numbers: one instance each,
#: not one per row, made on first use (:mod:`dotevals.metrics` imports this module).
_BARE: Final[list[Metric]] = []


def _make_bare() -> list[Metric]:
    from dotevals.metrics import accuracy, mean

    if not _BARE:
        _BARE.extend((accuracy(), mean()))
    return _BARE


def _accepted(name: str, value: Any) -> str:
    return (
        f"{name} returned {value!r} ({type(value).__name__}); return a Result, a Score, "
        "a bool or a number"
    )
