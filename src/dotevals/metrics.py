"""Metrics: aggregations of a score's values over all rows, with standard errors.

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

import math
from collections.abc import Callable, Iterable
from typing import Any, Final

from dotevals.results import Metric, MetricValue, Score

__all__ = ["Metric", "RunningMetrics", "accuracy", "mean", "metric", "resolve_metric"]

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
    """Count, sum and sum of squared deviations (Welford): a mean and its standard error.

    The mean is ``total / n`` rather than Welford's running mean, so it does not depend on the
    order the rows completed in: a proportion's sum is a whole number, exact in any order.
    """

    __slots__ = ("m2", "mean", "n", "total")

    def __init__(self) -> None:
        self.n = 0
        self.total = 0.0
        self.mean = 0.0
        self.m2 = 0.0

    def add(self, x: float) -> None:
        self.n += 1
        self.total += x
        d = x - self.mean
        self.mean += d / self.n
        self.m2 += d * (x - self.mean)

    def value(self, extra_zeros: int = 0, proportion: bool = False) -> MetricValue:
        """The mean and its standard error, with ``extra_zeros`` more values of 0.

        For a proportion (accuracy) the interval is Wilson's, which stays within [0, 1].
        """
        n = self.n + extra_zeros
        if n == 0:
            return MetricValue(0.0, math.nan, 0)
        m = self.total / n
        low, high = _wilson(m, n) if proportion else (None, None)
        if n < 2:
            return MetricValue(m, math.nan, n, low, high)
        m2 = self.m2 + self.mean**2 * self.n * extra_zeros / n
        return MetricValue(m, math.sqrt(max(m2, 0.0) / (n - 1) / n), n, low, high)


def _wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``p`` over ``n`` trials."""
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, center - half), min(1.0, center + half))


class RunningMetrics:
    """Metrics of one evaluation, updated per record in O(1) for mean-like metrics.

    Errored rows count as failures (a value of 0) in the figures ``with_errors=True``, and are
    left out of the figures ``with_errors=False``. Metrics that are not mean-like keep their
    score's values and are computed when asked.
    """

    def __init__(self) -> None:
        self.total = 0
        self.errors = 0
        self._moments: dict[tuple[str, str], _Moments] = {}
        self._values: dict[tuple[str, str], tuple[Metric | None, list[Any]]] = {}

    def add(self, scores: Iterable[Score], is_error: bool) -> None:
        """Count one record; metrics given as objects are used, names are resolved."""
        self.total += 1
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

    def results(self, with_errors: bool = True) -> dict[str, dict[str, MetricValue]]:
        """``{score name: {metric name: value}}``."""
        extra = self.errors if with_errors else 0
        out: dict[str, dict[str, MetricValue]] = {}
        for (score, m_name), moments in self._moments.items():
            out.setdefault(score, {})[m_name] = moments.value(extra, m_name == "accuracy")
        for (score, m_name), (obj, values) in self._values.items():
            if obj is None:
                continue
            data = values + [False] * extra
            out.setdefault(score, {})[m_name] = MetricValue(float(obj(data)), math.nan, len(data))
        return out
