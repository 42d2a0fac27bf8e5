"""Metrics: aggregations of a score's values over all rows, with confidence intervals.

Every figure is an :class:`~dotevals.results.IntervalValue`: the value, its interval, n, the
method and the level (:mod:`dotevals.stats` makes the intervals). Accuracy, and a mean of 0/1
values, get Wilson's interval; other means the skew-corrected t interval; any other metric a
seeded bootstrap over items.

A metric is a callable over a list of values with ``__name__`` set, made by a factory
decorated with :func:`metric`::

    @metric
    def median() -> Metric:
        def compute(values: list[float]) -> float:
            return statistics.median(values)
        return compute

``median()`` then returns a callable named ``median``. Factories are registered by name so
that metrics stored by name can be computed again when results are read back.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Callable, Hashable, Iterable
from typing import Any, Final

from dotevals.results import IntervalValue, Metric, MetricValue, Score, metric_name
from dotevals.stats import (
    DEFAULT_LEVEL,
    DEFAULT_RESAMPLES,
    bootstrap_interval,
    interval_for,
    skewness,
    t_interval,
    wilson_interval,
)

__all__ = [
    "IntervalValue",
    "Metric",
    "RunningMetrics",
    "accuracy",
    "mean",
    "metric",
    "resolve_metric",
]

#: Metric factories known by name: the built-ins, every ``@metric`` seen, and entry points.
_FACTORIES: dict[str, Callable[[], Metric]] = {}
#: Metrics that can be updated in O(1) per row: their value is the mean of the values.
_MEAN_LIKE: Final = frozenset({"accuracy", "mean"})


def metric(factory: Callable[[], Metric]) -> Callable[[], Metric]:
    """Register a metric factory; the metrics it makes are named after it."""
    name = factory.__name__

    def make() -> Metric:
        compute = factory()
        try:
            compute.__name__ = name
        except (AttributeError, TypeError):  # a callable object without a writable name
            pass
        return compute

    make.__name__ = name
    make.__qualname__ = factory.__qualname__
    make.__doc__ = factory.__doc__
    _FACTORIES[name] = make
    return make


def _as_number(value: Any) -> float:
    if value is None:
        return 0.0
    return float(value)


@metric
def accuracy() -> Metric:
    """The fraction of true values (``0.0`` for no values)."""

    def compute(values: list[Any]) -> float:
        if not values:
            return 0.0
        return sum(1.0 for v in values if v) / len(values)

    return compute


@metric
def mean() -> Metric:
    """The arithmetic mean of numeric values (``0.0`` for no values)."""

    def compute(values: list[Any]) -> float:
        if not values:
            return 0.0
        return sum(_as_number(v) for v in values) / len(values)

    return compute


def resolve_metric(name: str) -> Metric | None:
    """The metric stored under ``name``, or None when no factory of that name is known."""
    factory = _FACTORIES.get(name)
    if factory is None:
        from dotevals._registry import load_group

        found = load_group("dotevals.metrics").get(name)
        factory = found if callable(found) else None
    return factory() if factory is not None else None


class _Moments:
    """Count, sum and sums of squared and cubed deviations (Welford, Terriberry): a mean and
    its interval. While every value is 0 or 1 (accuracy), only the count and the sum are kept:
    the sums of deviations follow from them, and are set so when another value comes.

    The mean is ``total / n`` rather than Welford's running mean, so it does not depend on the
    order the rows completed in: a proportion's sum is a whole number, exact in any order.
    """

    __slots__ = ("binary", "m2", "m3", "mean", "n", "total")

    def __init__(self) -> None:
        self.n = 0
        self.total = 0.0
        self.mean = 0.0
        self.m2 = 0.0
        self.m3 = 0.0
        self.binary = True

    def add(self, x: float) -> None:
        self.n += 1
        self.total += x
        if self.binary:
            if x == 0.0 or x == 1.0:
                return  # only 0s and 1s so far: their moments follow from n and total
            self.binary = False
            self._of_zeros_and_ones(self.n - 1, self.total - x)
        d = x - self.mean
        d_n = d / self.n
        term = d * d_n * (self.n - 1)
        self.mean += d_n
        self.m3 += term * d_n * (self.n - 2) - 3 * d_n * self.m2
        self.m2 += term

    def _of_zeros_and_ones(self, n: int, ones: float) -> None:
        """Set the mean and the sums of deviations of ``n`` values, ``ones`` of them 1, else 0."""
        p = ones / n if n else 0.0
        self.mean = p
        self.m2 = n * p * (1 - p)
        self.m3 = n * p * (1 - p) * (1 - 2 * p)

    def value(self, extra_zeros: int = 0, level: float = DEFAULT_LEVEL) -> IntervalValue:
        """The mean and its interval, with ``extra_zeros`` more values of 0.

        0/1 values (accuracy) get Wilson's interval, which stays within [0, 1]; other values
        the skew-corrected t interval.
        """
        n = self.n + extra_zeros
        m = self.total / n if n else 0.0
        if self.binary:
            return IntervalValue.of(wilson_interval(self.total, n, level), m)
        m2, m3 = self._with_zeros(extra_zeros)
        variance = max(m2, 0.0) / max(n - 1, 1)
        return IntervalValue.of(t_interval(m, variance, n, level, skewness(n, m2, m3)), m)

    def _with_zeros(self, k: int) -> tuple[float, float]:
        """Sums of squared and cubed deviations with ``k`` zeros added (Chan et al.'s merge)."""
        if k == 0:
            return self.m2, self.m3
        n_a, n = self.n, self.n + k
        d = -self.mean
        m2 = self.m2 + d * d * n_a * k / n
        m3 = self.m3 + d**3 * n_a * k * (n_a - k) / (n * n) - 3 * d * k * self.m2 / n
        return m2, m3


class RunningMetrics:
    """Metrics of one evaluation, updated per record in O(1) for mean-like metrics.

    Errored rows count as failures (a value of 0) in the figures ``with_errors=True``, and are
    left out of the figures ``with_errors=False``. Metrics that are not mean-like keep their
    score's values and are computed when asked, with a bootstrap interval over the rows
    (``resamples`` draws from ``random.Random(seed)``: the same rows give the same interval).

    ``clustered=True`` makes every interval cluster-robust: each record is added with its
    cluster label (a record without one is a cluster of its own), and every metric keeps its
    values and labels (:func:`~dotevals.stats.interval_for`, or a cluster bootstrap).

    ``repeats=K`` (each row run K times; records added with their row's index as ``item``):
    each item is a cluster of its repeats unless a cluster label is given, so the mean is the
    mean of the item means with the between-item interval, and mean-like figures also carry
    the mean within-item variance of the repeats (Miller's split).
    """

    def __init__(
        self,
        level: float = DEFAULT_LEVEL,
        resamples: int = DEFAULT_RESAMPLES,
        seed: int = 0,
        clustered: bool = False,
        repeats: int = 1,
    ) -> None:
        self.level = level
        self.resamples = resamples
        self.seed = seed
        self.repeats = repeats
        self.clustered = clustered or repeats > 1
        self.total = 0
        self.errors = 0
        self._moments: dict[tuple[str, str], _Moments] = {}
        self._values: dict[tuple[str, str], tuple[Metric | None, list[Any]]] = {}
        #: Clustered: each metric's cluster labels (beside its values), and errored rows'.
        self._labels: dict[tuple[str, str], list[Hashable]] = {}
        self._error_labels: list[Hashable] = []
        #: With repeats: the item (row index) of each value, and of each errored record.
        self._items: dict[tuple[str, str], list[int]] = {}
        self._error_items: list[int] = []

    def add(
        self,
        scores: Iterable[Score],
        is_error: bool,
        cluster: str | None = None,
        item: int | None = None,
    ) -> None:
        """Count one record; metrics given as objects are used, names are resolved.

        ``cluster`` is the record's cluster label, ``item`` its row's index (with repeats).
        """
        self.total += 1
        if self.clustered:
            label: Hashable = cluster
            if cluster is None:  # alone in its cluster (with its repeats)
                label = ("row", self.total) if item is None else ("item", item)
            self._add_clustered(scores, is_error, label, item)
            return
        if is_error:
            self.errors += 1
            return
        for score in scores:
            name = score.name
            value = score.value
            for metric in score.metrics:
                if isinstance(metric, str):
                    m_name, code = metric, None
                else:  # what metric_name() gives, inline: this runs for every row
                    m_name, code = getattr(metric, "__name__", None) or repr(metric), metric
                key = (name, m_name)
                if m_name in _MEAN_LIKE:
                    moments = self._moments.get(key)
                    if moments is None:
                        moments = self._moments[key] = _Moments()
                    moments.add(_as_number(value) if m_name == "mean" else float(bool(value)))
                    continue
                slot = self._values.get(key)
                if slot is None:
                    slot = self._values[key] = (code or resolve_metric(m_name), [])
                elif slot[0] is None and code is not None:
                    # made from stored records (the metric's code unknown): a live row knows it
                    slot = self._values[key] = (code, slot[1])
                slot[1].append(value)

    def _add_clustered(
        self, scores: Iterable[Score], is_error: bool, label: Hashable, item: int | None
    ) -> None:
        if is_error:
            self.errors += 1
            self._error_labels.append(label)
            self._error_items.append(-self.total if item is None else item)
            return
        for score in scores:
            for metric in score.metrics:
                m_name = metric_name(metric)
                key = (score.name, m_name)
                slot = self._values.get(key)
                if slot is None or (slot[0] is None and not isinstance(metric, str)):
                    code = metric if not isinstance(metric, str) else resolve_metric(m_name)
                    slot = self._values[key] = (code, slot[1] if slot else [])
                slot[1].append(score.value)
                self._labels.setdefault(key, []).append(label)
                self._items.setdefault(key, []).append(-self.total if item is None else item)

    def results(
        self, with_errors: bool = True, bootstrap: bool = True
    ) -> dict[str, dict[str, MetricValue]]:
        """``{score name: {metric name: value}}``; ``bootstrap=False`` skips the bootstrap
        intervals of custom metrics (for a progress display redrawn many times a second)."""
        extra = self.errors if with_errors else 0
        out: dict[str, dict[str, MetricValue]] = {}
        for (score, m_name), moments in self._moments.items():
            out.setdefault(score, {})[m_name] = moments.value(extra, self.level)
        for (score, m_name), (obj, values) in self._values.items():
            if obj is None:
                continue
            data = values + [False] * extra
            labels = None
            if self.clustered:
                labels = self._labels[score, m_name] + self._error_labels[:extra]
            figure = self._custom(obj, data, bootstrap, labels)
            if self.repeats > 1 and m_name in _MEAN_LIKE:
                items = self._items[score, m_name] + self._error_items[:extra]
                figure = self._with_split(figure, data, items, m_name)
            out.setdefault(score, {})[m_name] = figure
        return out

    def _with_split(
        self, figure: IntervalValue, data: list[Any], items: list[int], m_name: str
    ) -> IntervalValue:
        """The figure with the mean within-item variance of the repeats (Miller's split)."""
        groups: dict[int, list[float]] = {}
        for value, item in zip(data, items):
            x = _as_number(value) if m_name == "mean" else float(bool(value))
            groups.setdefault(item, []).append(x)
        variances = [statistics.variance(g) for g in groups.values() if len(g) > 1]
        within = sum(variances) / len(variances) if variances else None
        return dataclasses.replace(figure, within_variance=within, repeats=self.repeats)

    def _custom(
        self, obj: Metric, data: list[Any], bootstrap: bool, labels: list[Hashable] | None = None
    ) -> IntervalValue:
        value = float(obj(data))
        if labels is not None and getattr(obj, "__name__", None) in _MEAN_LIKE:
            xs = [_as_number(v) if obj.__name__ == "mean" else float(bool(v)) for v in data]
            return IntervalValue.of(interval_for(xs, self.level, labels), value)
        if not bootstrap:
            return IntervalValue(value, math.nan, len(data), method="bootstrap", level=self.level)
        try:
            interval = bootstrap_interval(data, obj, self.level, labels, self.resamples, self.seed)
        except Exception as exc:  # noqa: BLE001 -- user metric code failing on a resample
            reason = f"the metric failed on a resample ({type(exc).__name__}: {exc})"
            return IntervalValue(value, math.nan, len(data), None, None, "bootstrap", self.level,
                                 reason=reason)  # fmt: skip
        return IntervalValue.of(interval, value)
