"""Intervals and paired differences for the report: plain functions over lists of numbers.

Kept here until the shared statistics module lands; only :mod:`dotevals.report._view` calls
them, so switching over is local to that module.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

__all__ = ["Difference", "Interval", "mean_interval", "paired_difference", "wilson_interval"]

#: The normal quantile of a two-sided 95% interval.
Z95: Final = 1.959963984540054


@dataclass(frozen=True)
class Interval:
    """A figure with its 95% interval, the number of values behind it and how it was made."""

    value: float
    low: float
    high: float
    n: int
    method: str


def wilson_interval(successes: float, n: int) -> Interval:
    """The proportion ``successes / n`` with its Wilson score interval (within [0, 1])."""
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, "Wilson")
    p = successes / n
    denominator = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denominator
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denominator
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half), n, "Wilson")


def _mean_and_stderr(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return mean, math.nan
    variance = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(variance / n)


def mean_interval(values: Sequence[float]) -> Interval:
    """The mean with a normal-approximation interval (``mean ± 1.96 * stderr``)."""
    if not values:
        return Interval(math.nan, math.nan, math.nan, 0, "normal")
    mean, stderr = _mean_and_stderr(values)
    half = Z95 * stderr
    return Interval(mean, mean - half, mean + half, len(values), "normal")


@dataclass(frozen=True)
class Difference:
    """``mean(b - a)`` over paired items, its 95% interval and two-sided p-value."""

    interval: Interval
    p_value: float


def paired_difference(a: Sequence[float], b: Sequence[float]) -> Difference:
    """The mean of ``b[i] - a[i]`` with a normal interval and the p-value of "no difference"."""
    diffs = [y - x for x, y in zip(a, b)]
    interval = mean_interval(diffs)
    method = "paired, normal"
    if not diffs:
        return Difference(Interval(math.nan, math.nan, math.nan, 0, method), math.nan)
    _, stderr = _mean_and_stderr(diffs)
    mean = interval.value
    if math.isnan(stderr) or stderr == 0:
        p_value = math.nan if math.isnan(stderr) else (1.0 if mean == 0 else 0.0)
    else:
        p_value = math.erfc(abs(mean / stderr) / math.sqrt(2))
    low, high = (mean, mean) if stderr == 0 else (interval.low, interval.high)
    return Difference(Interval(mean, low, high, len(diffs), method), p_value)
