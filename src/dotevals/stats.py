"""Confidence intervals, paired differences and sample sizes, in pure Python.

Every interval is an :class:`Interval`: the estimate, its bounds, ``n``, the number of clusters
when the data are clustered, the method and the level. An interval that the data cannot give
(no values, one value, no spread) is *undefined*: its bounds are None and ``reason`` says why.

Which interval (see docs/statistics.md for the coverage each one reaches):

* scores that are all 0/1 (or bools): Wilson's score interval;
* other numbers: the t interval of the mean, skew-corrected (Hall 1992): Student's interval
  undercovers skewed scores at small n (92% at n=20 for Beta(0.5, 4), the benchmark shows);
* any other metric: a percentile bootstrap over items, seeded, so one store gives one interval;
* with ``clusters`` (one label per value): the same, cluster-robust: a CR1 standard error with
  ``G - 1`` degrees of freedom (Wilson's interval on the effective sample size for 0/1 scores),
  or a bootstrap that resamples whole clusters.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from statistics import NormalDist
from typing import Any, Final

__all__ = [
    "Interval",
    "PairedDifference",
    "SampleSizes",
    "bootstrap_interval",
    "format_interval",
    "format_level",
    "interval_for",
    "is_binary",
    "items_needed",
    "mcnemar_exact",
    "mean_interval",
    "paired_difference",
    "proportion_interval",
    "skewness",
    "t_cdf",
    "t_interval",
    "t_quantile",
    "wilson_interval",
]

#: The confidence level used when none is given.
DEFAULT_LEVEL: Final = 0.95
#: The method name of :func:`mean_interval` without clusters.
SKEW_T: Final = "skew-corrected t"
#: Bootstrap resamples used when none is given.
DEFAULT_RESAMPLES: Final = 2000
_EPS: Final = 1e-300
#: A variance this small relative to the squared mean is rounding error: the values are equal.
_TINY: Final = 1e-24


@dataclass(frozen=True)
class Interval:
    """An estimate with its confidence interval, or with the reason it has none.

    ``lo``/``hi`` are None when the interval is undefined (``reason`` says why); ``estimate``
    is None only when there are no values at all.
    """

    estimate: float | None
    lo: float | None
    hi: float | None
    n: int
    method: str
    level: float = DEFAULT_LEVEL
    n_clusters: int | None = None
    stderr: float | None = None
    reason: str | None = None

    @property
    def defined(self) -> bool:
        """Whether the interval has bounds."""
        return self.reason is None

    def to_dict(self) -> dict[str, Any]:
        """Strict JSON: unknown figures are ``null``, never NaN."""
        return {
            "estimate": self.estimate,
            "lo": self.lo,
            "hi": self.hi,
            "n": self.n,
            "n_clusters": self.n_clusters,
            "method": self.method,
            "level": self.level,
            "stderr": self.stderr,
            "reason": self.reason,
        }

    def __str__(self) -> str:
        return format_interval(self)


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level {level!r} must lie between 0 and 1 (e.g. 0.95)")


def format_level(level: float) -> str:
    """``95%``, ``99.5%``."""
    return f"{level * 100:.10g}%"


def format_interval(interval: Interval, digits: int = 2) -> str:
    """``0.81 [0.72, 0.88] n=100 Wilson 95%``; an undefined interval says why instead."""
    est = "n/a" if interval.estimate is None else f"{interval.estimate:.{digits}f}"
    if interval.lo is not None and interval.hi is not None:
        bounds = f"[{interval.lo:.{digits}f}, {interval.hi:.{digits}f}]"
    elif interval.reason is not None:
        bounds = f"[no interval: {interval.reason}]"
    else:  # not computed (a live display skips the bootstrap)
        bounds = "[-]"
    clusters = f" ({interval.n_clusters} clusters)" if interval.n_clusters is not None else ""
    return (
        f"{est} {bounds} n={interval.n}{clusters} {interval.method} {format_level(interval.level)}"
    )


def _undefined(
    estimate: float | None,
    n: int,
    method: str,
    level: float,
    reason: str,
    n_clusters: int | None = None,
) -> Interval:
    return Interval(estimate, None, None, n, method, level, n_clusters, None, reason)


# --- distributions ----------------------------------------------------------------------------


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _EPS else _EPS)
    h = d
    for m in range(1, 500):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _EPS else _EPS)
            c = 1.0 + numerator / c
            c = c if abs(c) > _EPS else _EPS
            h *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def t_cdf(x: float, df: float) -> float:
    """P(T <= x) for Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + x * x))
    return 1.0 - tail if x > 0 else tail


@lru_cache(maxsize=1024)
def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (bisection on the CDF)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"quantile probability {p!r} must lie strictly between 0 and 1")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, max(2.0, NormalDist().inv_cdf(p) * 2)
    while t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return (lo + hi) / 2


def _z(level: float) -> float:
    return NormalDist().inv_cdf(0.5 + level / 2)


# --- one sample -------------------------------------------------------------------------------


def is_binary(values: Sequence[Any]) -> bool:
    """Whether every value is a bool or the number 0 or 1 (and there is at least one)."""
    return bool(values) and all(
        isinstance(v, bool) or (isinstance(v, (int, float)) and v in (0, 1)) for v in values
    )


def _wilson_bounds(p: float, n: float, z: float) -> tuple[float, float]:
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(max(p * (1 - p), 0.0) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, center - half), min(1.0, center + half))


def wilson_interval(successes: float, n: int, level: float = DEFAULT_LEVEL) -> Interval:
    """Wilson's score interval for ``successes`` out of ``n``."""
    _check_level(level)
    if n <= 0:
        return _undefined(None, 0, "Wilson", level, "no values")
    p = successes / n
    lo, hi = _wilson_bounds(p, n, _z(level))
    stderr = math.sqrt(p * (1 - p) / (n - 1)) if n > 1 else None  # the sample standard error
    return Interval(p, lo, hi, n, "Wilson", level, stderr=stderr)


def _as_floats(values: Sequence[Any]) -> list[float]:
    return [float(v) for v in values]


def _groups(clusters: Sequence[Hashable], n: int) -> list[list[int]]:
    """Indices of the values in each cluster, in order of first appearance."""
    if len(clusters) != n:
        raise ValueError(f"{len(clusters)} cluster labels for {n} values: give one per value")
    index: dict[Hashable, list[int]] = {}
    for i, label in enumerate(clusters):
        index.setdefault(label, []).append(i)
    return list(index.values())


def _cluster_variance(xs: list[float], groups: list[list[int]]) -> float:
    """The CR1 cluster-robust variance of the mean of ``xs``."""
    n, g = len(xs), len(groups)
    mean = sum(xs) / n
    totals = [sum(xs[i] - mean for i in members) for members in groups]
    return g / (g - 1) * sum(t * t for t in totals) / (n * n)


def mean_interval(
    values: Sequence[Any],
    level: float = DEFAULT_LEVEL,
    clusters: Sequence[Hashable] | None = None,
) -> Interval:
    """The skew-corrected t interval of the mean (:func:`t_interval`); with clusters the
    cluster-robust t interval (CR1 standard error, ``G - 1`` degrees of freedom)."""
    _check_level(level)
    xs = _as_floats(values)
    n = len(xs)
    if clusters is not None:
        if n == 0:
            return _undefined(None, 0, "cluster t", level, "no values")
        return _clustered_mean(xs, sum(xs) / n, _groups(clusters, n), level)
    if n == 0:
        return _undefined(None, 0, SKEW_T, level, "no values")
    mean = sum(xs) / n
    m2 = sum((x - mean) ** 2 for x in xs)
    m3 = sum((x - mean) ** 3 for x in xs)
    return t_interval(mean, m2 / max(n - 1, 1), n, level, skewness(n, m2, m3))


def skewness(n: int, m2: float, m3: float) -> float:
    """The sample skewness ``(m3 / n) / (m2 / n) ** 1.5`` from sums of centred powers (0 when
    there is no spread)."""
    if n < 2 or m2 <= 0.0:
        return 0.0
    return float((m3 / n) / (m2 / n) ** 1.5)


def t_interval(
    mean: float,
    variance: float,
    n: int,
    level: float = DEFAULT_LEVEL,
    skew: float | None = None,
) -> Interval:
    """The t interval of a mean from its sample ``variance`` (``n - 1`` divisor).

    Without ``skew`` it is Student's. With the sample skewness it is Hall's (1992) skew-corrected
    t: the t statistic ``T`` is transformed by ``g(T) = T + a T^2 + a^2 T^3 / 3 + b``, with
    ``a = skew / (3 sqrt(n))`` and ``b = skew / (6 sqrt(n))``, which is close to t-distributed
    when the scores are skewed; ``g`` is inverted in closed form. With no skew it is Student's.
    """
    _check_level(level)
    method = "t" if skew is None else SKEW_T
    if n == 0:
        return _undefined(None, 0, method, level, "no values")
    if n == 1:
        return _undefined(mean, 1, method, level, "n=1: one value has no spread")
    if variance <= _TINY * max(1.0, mean * mean):  # equal values, up to rounding
        return _undefined(mean, n, method, level, f"all {n} values are equal: no spread")
    se = math.sqrt(variance / n)
    q = t_quantile(0.5 + level / 2, n - 1)
    if not skew:
        return Interval(mean, mean - q * se, mean + q * se, n, method, level, stderr=se)
    t_high, t_low = _hall_inverse(q, skew, n), _hall_inverse(-q, skew, n)
    return Interval(mean, mean - t_high * se, mean - t_low * se, n, method, level, stderr=se)


def _hall_inverse(x: float, skew: float, n: int) -> float:
    """The ``T`` with ``g(T) = x`` for Hall's transformation (``g`` increases everywhere)."""
    a, b = skew / (3 * math.sqrt(n)), skew / (6 * math.sqrt(n))
    if abs(a) < 1e-9:  # the closed form loses its digits; g is T + b to this order
        return x - b
    inner = 1 + 3 * a * (x - b)
    return (math.copysign(abs(inner) ** (1 / 3), inner) - 1) / a


def _clustered_mean(
    xs: list[float], mean: float, groups: list[list[int]], level: float
) -> Interval:
    n, g = len(xs), len(groups)
    if g < 2:
        return _undefined(mean, n, "cluster t", level, "one cluster: no between-cluster spread", g)
    se = math.sqrt(_cluster_variance(xs, groups))
    if se * se <= _TINY * max(1.0, mean * mean):
        return _undefined(mean, n, "cluster t", level, "every cluster has the same mean", g)
    half = t_quantile(0.5 + level / 2, g - 1) * se
    return Interval(mean, mean - half, mean + half, n, "cluster t", level, g, se)


def proportion_interval(
    values: Sequence[Any],
    level: float = DEFAULT_LEVEL,
    clusters: Sequence[Hashable] | None = None,
) -> Interval:
    """Wilson's interval of the share of true values.

    With clusters it is Wilson's interval on the effective sample size ``p(1-p) / V`` (``V``
    the CR1 variance, never more than ``n``; the number of clusters when every value is equal)
    with the ``t`` quantile on ``G - 1`` degrees of freedom.
    """
    xs = [1.0 if v else 0.0 for v in values]
    if clusters is None:
        return wilson_interval(sum(xs), len(xs), level)
    _check_level(level)
    n = len(xs)
    if n == 0:
        return _undefined(None, 0, "cluster Wilson", level, "no values")
    groups = _groups(clusters, n)
    p, g = sum(xs) / n, len(groups)
    if g < 2:
        reason = "one cluster: no between-cluster spread"
        return _undefined(p, n, "cluster Wilson", level, reason, g)
    var = _cluster_variance(xs, groups)
    n_eff = float(g) if var == 0.0 and p in (0.0, 1.0) else min(float(n), p * (1 - p) / var)
    lo, hi = _wilson_bounds(p, n_eff, t_quantile(0.5 + level / 2, g - 1))
    return Interval(p, lo, hi, n, "cluster Wilson", level, g, math.sqrt(var))


def bootstrap_interval(
    values: Sequence[Any],
    statistic: Callable[[list[Any]], float],
    level: float = DEFAULT_LEVEL,
    clusters: Sequence[Hashable] | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Interval:
    """A percentile bootstrap interval of ``statistic`` over items (whole clusters if given).

    The resamples come from ``random.Random(seed)``: the same values give the same interval.
    """
    _check_level(level)
    items = list(values)
    n = len(items)
    method = "bootstrap" if clusters is None else "cluster bootstrap"
    if n == 0:
        return _undefined(None, 0, method, level, "no values")
    estimate = float(statistic(items))
    groups = [[i] for i in range(n)] if clusters is None else _groups(clusters, n)
    g = None if clusters is None else len(groups)
    if len(groups) < 2:
        what = "n=1: one value" if clusters is None else "one cluster"
        return _undefined(estimate, n, method, level, f"{what} cannot be resampled", g)
    rng = random.Random(seed)
    draws = sorted(
        float(statistic([items[i] for c in rng.choices(groups, k=len(groups)) for i in c]))
        for _ in range(resamples)
    )
    lo, hi = _percentile(draws, (1 - level) / 2), _percentile(draws, (1 + level) / 2)
    if lo == hi:
        return _undefined(estimate, n, method, level, "the metric is equal on every resample", g)
    se = _stdev(draws)
    return Interval(estimate, lo, hi, n, method, level, g, se)


def _percentile(ordered: list[float], q: float) -> float:
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _stdev(xs: list[float]) -> float:
    mean = sum(xs) / len(xs)
    return math.sqrt(sum((x - mean) ** 2 for x in xs) / max(len(xs) - 1, 1))


def interval_for(
    values: Sequence[Any],
    level: float = DEFAULT_LEVEL,
    clusters: Sequence[Hashable] | None = None,
) -> Interval:
    """The interval the data call for: Wilson for 0/1 values, skew-corrected t for others."""
    if is_binary(values):
        return proportion_interval(values, level, clusters)
    return mean_interval(values, level, clusters)


# --- two paired samples -----------------------------------------------------------------------


@dataclass(frozen=True)
class PairedDifference:
    """B minus A on the same items: the difference with its interval, and a test of it.

    For 0/1 scores ``a_only``/``b_only`` count the discordant items (true for one side only)
    and ``p_value`` is McNemar's exact test; otherwise it is the paired t test (cluster-robust
    with clusters). ``detectable`` is the smallest difference this comparison had 80% power
    to detect at ``alpha = 1 - level`` (two-sided).
    """

    n: int
    mean_a: float
    mean_b: float
    diff: Interval
    correlation: float | None
    binary: bool
    a_only: int | None
    b_only: int | None
    p_value: float | None
    test: str
    detectable: float | None

    def to_dict(self) -> dict[str, Any]:
        """Strict JSON (no NaN)."""
        return {
            "n": self.n,
            "mean_a": self.mean_a,
            "mean_b": self.mean_b,
            "diff": self.diff.to_dict(),
            "correlation": self.correlation,
            "binary": self.binary,
            "a_only": self.a_only,
            "b_only": self.b_only,
            "p_value": self.p_value,
            "test": self.test,
            "detectable": self.detectable,
        }


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """McNemar's exact two-sided p-value from the discordant counts."""
    k, m = min(a_only, b_only), a_only + b_only
    if m == 0:
        return 1.0
    return min(1.0, 2 * sum(math.comb(m, i) for i in range(k + 1)) / (1 << m))


def _correlation(xs: list[float], ys: list[float]) -> float | None:
    n = len(xs)
    if n < 2:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else None


def paired_difference(
    a: Sequence[Any],
    b: Sequence[Any],
    level: float = DEFAULT_LEVEL,
    clusters: Sequence[Hashable] | None = None,
) -> PairedDifference:
    """Compare paired scores ``b[i]`` and ``a[i]`` of the same items.

    Raises:
        ValueError: the two sides have different lengths or no items.
    """
    _check_level(level)
    if len(a) != len(b):
        raise ValueError(
            f"paired scores need one value per item on each side: {len(a)} != {len(b)}"
        )
    if not a:
        raise ValueError("no paired items to compare")
    binary = is_binary(a) and is_binary(b)
    xs, ys = _as_floats(a), _as_floats(b)
    n = len(xs)
    diffs = [y - x for x, y in zip(xs, ys)]
    a_only = sum(1 for x, y in zip(xs, ys) if x > y) if binary else None
    b_only = sum(1 for x, y in zip(xs, ys) if y > x) if binary else None
    if clusters is not None:
        diff = mean_interval(diffs, level, clusters)
        diff = replace(diff, method="paired cluster t")
        test, p = "cluster-robust paired t", _t_p_value(diff, (diff.n_clusters or 1) - 1)
    elif binary:
        assert a_only is not None and b_only is not None
        diff = _agresti_min(a_only, b_only, n, level)
        test, p = "McNemar exact", mcnemar_exact(a_only, b_only)
    else:
        mean_d = sum(diffs) / n
        var_d = sum((d - mean_d) ** 2 for d in diffs) / max(n - 1, 1)
        diff = replace(t_interval(mean_d, var_d, n, level), method="paired t")
        test, p = "paired t", _t_p_value(diff, n - 1)
    detectable = None
    if diff.stderr is not None:
        detectable = (_z(level) + NormalDist().inv_cdf(0.8)) * diff.stderr
    mean_a, mean_b = sum(xs) / n, sum(ys) / n
    corr = _correlation(xs, ys)
    return PairedDifference(
        n, mean_a, mean_b, diff, corr, binary, a_only, b_only, p, test, detectable
    )


def _t_p_value(diff: Interval, df: int) -> float | None:
    if diff.stderr is None or diff.estimate is None or df < 1:
        return None
    return 2 * (1 - t_cdf(abs(diff.estimate) / diff.stderr, df))


def _agresti_min(a_only: int, b_only: int, n: int, level: float) -> Interval:
    """Agresti and Min's interval for a difference of paired proportions (0.5 added per cell)."""
    estimate = (b_only - a_only) / n
    if n < 2:
        return _undefined(estimate, n, "paired Agresti-Min", level, "n=1: one item has no spread")
    m = n + 2
    p01, p10 = (b_only + 0.5) / m, (a_only + 0.5) / m
    center = p01 - p10
    se = math.sqrt(max((p01 + p10 - center**2) / m, 0.0))
    half = _z(level) * se
    lo, hi = max(-1.0, center - half), min(1.0, center + half)
    return Interval(estimate, lo, hi, n, "paired Agresti-Min", level, stderr=se)


# --- planning ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleSizes:
    """Items needed to detect a difference: paired (both models on the same items) and unpaired
    (items per model); ``clusters_*`` are the clusters needed when a cluster size was given."""

    paired: int
    unpaired: int
    clusters_paired: int | None = None
    clusters_unpaired: int | None = None


def items_needed(
    diff: float,
    baseline: float | None = None,
    sd: float | None = None,
    correlation: float = 0.5,
    power: float = 0.8,
    alpha: float = 0.05,
    cluster_size: int = 1,
    icc: float = 0.0,
) -> SampleSizes:
    """Items needed for ``power`` to detect ``diff`` with a two-sided test at ``alpha``.

    Scores are 0/1 with accuracy ``baseline`` (0.5 when neither it nor ``sd`` is given) unless
    ``sd``, the standard deviation of a numeric score, is given. Clustered items multiply the
    count by the design effect ``1 + (cluster_size - 1) * icc``.

    Raises:
        ValueError: an argument is out of range; the message names it.
    """
    var_a, var_b = _variances(diff, baseline, sd)
    _check_planning(diff, correlation, power, alpha, cluster_size, icc)
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    deff = 1 + (cluster_size - 1) * icc
    var_d = max(var_a + var_b - 2 * correlation * math.sqrt(var_a * var_b), 0.0)
    paired = max(2, math.ceil(z * z * var_d / diff**2 * deff))
    unpaired = max(2, math.ceil(z * z * (var_a + var_b) / diff**2 * deff))
    if cluster_size == 1:
        return SampleSizes(paired, unpaired)
    return SampleSizes(
        paired, unpaired, math.ceil(paired / cluster_size), math.ceil(unpaired / cluster_size)
    )


def _variances(diff: float, baseline: float | None, sd: float | None) -> tuple[float, float]:
    if sd is not None:
        if sd <= 0:
            raise ValueError(f"sd={sd!r}: the standard deviation must be positive")
        return sd * sd, sd * sd
    p_a = 0.5 if baseline is None else baseline
    p_b = p_a + diff
    if not (0 < p_a < 1 and 0 < p_b < 1):
        raise ValueError(
            f"baseline={p_a!r} and diff={diff!r} give accuracies {p_a!r} and {p_b!r}: "
            "both must lie strictly between 0 and 1"
        )
    return p_a * (1 - p_a), p_b * (1 - p_b)


def _check_planning(
    diff: float, correlation: float, power: float, alpha: float, cluster_size: int, icc: float
) -> None:
    checks = [
        ("diff", diff, diff != 0),
        ("correlation", correlation, -1 <= correlation <= 1),
        ("power", power, 0 < power < 1),
        ("alpha", alpha, 0 < alpha < 1),
        ("cluster_size", cluster_size, cluster_size >= 1),
        ("icc", icc, 0 <= icc <= 1),
    ]
    bad = [f"{name}={value!r}" for name, value, ok in checks if not ok]
    if bad:
        raise ValueError(
            ", ".join(bad) + " out of range: diff must be non-zero, correlation in [-1, 1], "
            "power and alpha in (0, 1), cluster_size at least 1, icc in [0, 1]"
        )
