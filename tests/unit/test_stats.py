"""Intervals, tests and sample sizes of dotevals.stats against scipy and numpy, computed here."""

from __future__ import annotations

import json
import math
import random
import statistics

import numpy as np
import pytest
from scipy import stats as sp

from dotevals.stats import (
    Interval,
    bootstrap_interval,
    format_interval,
    interval_for,
    items_needed,
    mcnemar_exact,
    mean_interval,
    paired_difference,
    proportion_interval,
    t_cdf,
    t_interval,
    t_quantile,
    wilson_interval,
)
from intervals import hall_t

LEVELS = [0.8, 0.9, 0.95, 0.99]


# --- distributions ------------------------------------------------------------------------------


@pytest.mark.parametrize("df", [1, 2, 3, 7, 29, 200, 5000])
def test_t_quantile_and_cdf_match_scipy(df: int) -> None:
    for p in (0.6, 0.9, 0.975, 0.995, 0.9995, 0.025):
        assert t_quantile(p, df) == pytest.approx(sp.t.ppf(p, df), rel=1e-9)
    for x in (-8.0, -1.3, 0.0, 0.4, 2.2, 30.0):
        assert t_cdf(x, df) == pytest.approx(sp.t.cdf(x, df), abs=1e-12)


def test_t_quantile_refuses_a_probability_outside_0_1() -> None:
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        t_quantile(1.0, 3)


# --- one sample ---------------------------------------------------------------------------------


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize(("k", "n"), [(0, 10), (1, 20), (81, 100), (20, 20), (512, 1000)])
def test_wilson_matches_scipy(k: int, n: int, level: float) -> None:
    expected = sp.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    got = wilson_interval(k, n, level)
    assert (got.lo, got.hi) == pytest.approx((expected.low, expected.high), abs=1e-12)
    assert (got.estimate, got.n, got.method, got.level) == (k / n, n, "Wilson", level)


def test_proportion_interval_counts_true_values() -> None:
    values = [True] * 7 + [False] * 3
    assert proportion_interval(values) == wilson_interval(7, 10)
    assert interval_for([1, 0, 1, 1]).method == "Wilson"


@pytest.mark.parametrize("level", LEVELS)
def test_mean_interval_is_halls_skew_corrected_t(level: float) -> None:
    values = [0.02, 0.9, 0.05, 0.1, 0.75, 0.01, 0.2, 0.03]
    got = mean_interval(values, level)
    assert (got.lo, got.hi) == pytest.approx(hall_t(values, level), rel=1e-9)
    assert got.stderr == pytest.approx(sp.sem(values))
    assert (got.method, got.n) == ("skew-corrected t", 8)
    assert interval_for(values, level) == got
    plain = sp.t.interval(level, 7, np.mean(values), sp.sem(values))
    assert got.hi - got.lo > plain[1] - plain[0]  # right-skewed: the upper side widens
    assert got.hi > plain[1]


@pytest.mark.parametrize("level", LEVELS)
def test_without_skew_it_is_students_t(level: float) -> None:
    values = [0.2, 0.4, 0.5, 0.6, 0.8]
    lo, hi = sp.t.interval(level, 4, np.mean(values), sp.sem(values))
    assert mean_interval(values, level).lo == pytest.approx(lo, rel=1e-12)
    plain = t_interval(0.5, float(np.var(values, ddof=1)), 5, level)
    assert (plain.lo, plain.hi, plain.method) == (pytest.approx(lo), pytest.approx(hi), "t")


def _cr1_se(values: list[float], labels: list[int]) -> float:
    """The CR1 sandwich standard error of an intercept-only regression, with numpy."""
    y = np.asarray(values)
    x = np.ones((len(y), 1))
    bread = np.linalg.inv(x.T @ x)
    resid = y - x @ (bread @ x.T @ y)
    groups = sorted(set(labels))
    meat = sum(
        np.outer(
            x[np.array(labels) == g].T @ resid[np.array(labels) == g],
            x[np.array(labels) == g].T @ resid[np.array(labels) == g],
        )
        for g in groups
    )
    g = len(groups)
    return float(np.sqrt((g / (g - 1) * bread @ meat @ bread)[0, 0]))


def test_clustered_mean_is_the_cr1_sandwich_with_g_minus_1_df() -> None:
    rng = random.Random(3)
    labels = [i // 4 for i in range(40)]
    values = [rng.random() + 0.3 * (label % 3) for label in labels]
    got = mean_interval(values, 0.9, clusters=labels)
    se = _cr1_se(values, labels)
    half = sp.t.ppf(0.95, 9) * se
    mean = statistics.fmean(values)
    assert (got.lo, got.hi) == pytest.approx((mean - half, mean + half), rel=1e-9)
    assert (got.n, got.n_clusters, got.method) == (40, 10, "cluster t")


def test_clustered_proportion_is_wilson_on_the_effective_n() -> None:
    labels = [i // 5 for i in range(50)]
    values = [(label % 2 == 0) or i % 5 == 0 for i, label in enumerate(labels)]
    got = proportion_interval(values, clusters=labels)
    p = sum(values) / 50
    n_eff = p * (1 - p) / _cr1_se([float(v) for v in values], labels) ** 2
    z = sp.t.ppf(0.975, 9)
    centre = (p + z * z / (2 * n_eff)) / (1 + z * z / n_eff)
    half = z * math.sqrt(p * (1 - p) / n_eff + z * z / (4 * n_eff**2)) / (1 + z * z / n_eff)
    assert (got.lo, got.hi) == pytest.approx((centre - half, centre + half), rel=1e-9)
    assert got.n_clusters == 10
    naive = proportion_interval(values)
    assert got.hi - got.lo > naive.hi - naive.lo  # type: ignore[operator]


def test_cluster_labels_must_match_the_values() -> None:
    with pytest.raises(ValueError, match="3 cluster labels for 2 values"):
        mean_interval([1.0, 2.0], clusters=[1, 2, 3])


# --- bootstrap ----------------------------------------------------------------------------------


def test_bootstrap_is_seeded_and_agrees_with_scipy() -> None:
    rng = random.Random(1)
    values = [rng.gauss(0, 1) ** 2 for _ in range(60)]
    first = bootstrap_interval(values, statistics.median, resamples=4000)
    assert bootstrap_interval(values, statistics.median, resamples=4000) == first
    assert bootstrap_interval(values, statistics.median, resamples=4000, seed=1) != first
    assert first.estimate == statistics.median(values)
    ours = bootstrap_interval(values, statistics.fmean, resamples=4000)
    reference = sp.bootstrap(
        (np.array(values),), np.mean, n_resamples=4000, method="percentile", rng=0
    ).confidence_interval
    width = reference.high - reference.low  # two random streams: equal up to resampling noise
    assert ours.lo == pytest.approx(reference.low, abs=0.05 * width)
    assert ours.hi == pytest.approx(reference.high, abs=0.05 * width)
    assert (first.method, first.n) == ("bootstrap", 60)


def test_cluster_bootstrap_resamples_whole_clusters() -> None:
    labels = [i // 10 for i in range(100)]
    values = [float(label % 2) for label in labels]  # all the spread is between clusters
    clustered = bootstrap_interval(values, statistics.fmean, clusters=labels, resamples=500)
    plain = bootstrap_interval(values, statistics.fmean, resamples=500)
    assert clustered.n_clusters == 10 and clustered.method == "cluster bootstrap"
    assert clustered.hi - clustered.lo > 2 * (plain.hi - plain.lo)  # type: ignore[operator]


# --- undefined intervals ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("interval", "reason"),
    [
        (mean_interval([]), "no values"),
        (mean_interval([0.4]), "n=1: one value has no spread"),
        (mean_interval([0.4, 0.4, 0.4]), "all 3 values are equal: no spread"),
        (t_interval(0.4, 0.0, 3), "all 3 values are equal: no spread"),
        (wilson_interval(0, 0), "no values"),
        (mean_interval([1.0, 2.0], clusters=["a", "a"]), "one cluster"),
        (proportion_interval([True, False], clusters=["a", "a"]), "one cluster"),
        (bootstrap_interval([5], max), "n=1: one value cannot be resampled"),
        (bootstrap_interval([2, 2, 2], max), "the metric is equal on every resample"),
    ],
)
def test_undefined_intervals_say_why_and_print_no_nan(interval: Interval, reason: str) -> None:
    assert not interval.defined
    assert (interval.lo, interval.hi) == (None, None)
    assert interval.reason is not None and interval.reason.startswith(reason)
    text = format_interval(interval)
    assert "nan" not in text.lower() and f"no interval: {interval.reason}" in text
    json.dumps(interval.to_dict(), allow_nan=False)


def test_format_states_n_clusters_method_and_level() -> None:
    assert format_interval(wilson_interval(81, 100)) == "0.81 [0.72, 0.87] n=100 Wilson 95%"
    clustered = mean_interval([0.1, 0.5, 0.9, 0.2], 0.9, clusters=[1, 1, 2, 2])
    assert str(clustered).endswith("n=4 (2 clusters) cluster t 90%")
    expected = "n/a [no interval: no values] n=0 skew-corrected t 95%"
    assert format_interval(mean_interval([]), 3) == expected
    skipped = Interval(2.0, None, None, 3, "bootstrap")  # a live display skips the bootstrap
    assert format_interval(skipped) == "2.00 [-] n=3 bootstrap 95%"


@pytest.mark.parametrize("level", [0.0, 1.0, 95])
def test_a_level_outside_0_1_is_refused(level: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        mean_interval([1.0, 2.0], level)


# --- paired -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("b", "c"), [(0, 0), (3, 9), (10, 10), (1, 25), (40, 61)])
def test_mcnemar_exact_is_the_two_sided_binomial_test(b: int, c: int) -> None:
    expected = 1.0 if b + c == 0 else sp.binomtest(b, b + c, 0.5).pvalue
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12)


def test_paired_binary_counts_discordant_items_and_uses_agresti_min() -> None:
    a = [True] * 30 + [True] * 4 + [False] * 11 + [False] * 15
    b = [True] * 30 + [False] * 4 + [True] * 11 + [False] * 15
    got = paired_difference(a, b)
    assert (got.n, got.a_only, got.b_only, got.binary) == (60, 4, 11, True)
    assert got.diff.estimate == pytest.approx(7 / 60)
    assert got.p_value == pytest.approx(sp.binomtest(4, 15, 0.5).pvalue)
    p01, p10 = 11.5 / 62, 4.5 / 62  # Agresti & Min (2005): 0.5 added to each cell
    se = math.sqrt((p01 + p10 - (p01 - p10) ** 2) / 62)
    z = sp.norm.ppf(0.975)
    assert (got.diff.lo, got.diff.hi) == pytest.approx((p01 - p10 - z * se, p01 - p10 + z * se))
    assert got.correlation == pytest.approx(np.corrcoef(a, b)[0, 1])
    assert got.detectable == pytest.approx((z + sp.norm.ppf(0.8)) * se)


def test_paired_numeric_is_the_paired_t_test() -> None:
    rng = random.Random(5)
    a = [rng.random() for _ in range(25)]
    b = [x + 0.05 + rng.gauss(0, 0.1) for x in a]
    got = paired_difference(a, b, 0.9)
    reference = sp.ttest_rel(b, a)
    assert got.p_value == pytest.approx(reference.pvalue, rel=1e-8)
    lo, hi = reference.confidence_interval(0.9)
    assert (got.diff.lo, got.diff.hi) == pytest.approx((lo, hi), rel=1e-9)
    assert (got.test, got.a_only, got.diff.method) == ("paired t", None, "paired t")


def test_paired_clustered_uses_cluster_robust_t() -> None:
    labels = [i // 5 for i in range(40)]
    a = [float(i % 3 == 0) for i in range(40)]
    b = [float(i % 2 == 0) for i in range(40)]
    got = paired_difference(a, b, clusters=labels)
    diffs = [y - x for x, y in zip(a, b)]
    se = _cr1_se(diffs, labels)
    assert got.diff.stderr == pytest.approx(se)
    expected_p = 2 * sp.t.sf(abs(statistics.fmean(diffs)) / se, 7)
    assert got.p_value == pytest.approx(expected_p, rel=1e-8)
    assert (got.test, got.diff.n_clusters) == ("cluster-robust paired t", 8)


def test_paired_refuses_unequal_or_empty_sides() -> None:
    with pytest.raises(ValueError, match="one value per item"):
        paired_difference([1, 0], [1])
    with pytest.raises(ValueError, match="no paired items"):
        paired_difference([], [])


# --- planning -----------------------------------------------------------------------------------


def test_items_needed_follows_the_normal_approximation() -> None:
    z = sp.norm.ppf(0.975) + sp.norm.ppf(0.8)
    va, vb = 0.7 * 0.3, 0.73 * 0.27
    got = items_needed(0.03, baseline=0.7, correlation=0.5)
    assert got.unpaired == math.ceil(z * z * (va + vb) / 0.03**2)
    assert got.paired == math.ceil(z * z * (va + vb - 2 * 0.5 * math.sqrt(va * vb)) / 0.03**2)
    clustered = items_needed(0.03, baseline=0.7, cluster_size=10, icc=0.3)
    var_d = va + vb - 2 * 0.5 * math.sqrt(va * vb)
    assert clustered.paired == math.ceil(z * z * var_d / 0.03**2 * 3.7)  # design effect 1 + 9 * 0.3
    assert clustered.clusters_paired == math.ceil(clustered.paired / 10)
    numeric = items_needed(0.1, sd=0.25, correlation=0.0, power=0.9)
    assert numeric.paired == numeric.unpaired


def test_items_needed_names_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"accuracies 0\.9 and 1\.1"):
        items_needed(0.2, baseline=0.9)
    with pytest.raises(ValueError, match=r"power=1\.5"):
        items_needed(0.03, power=1.5)
