"""Tests of metrics: the built-ins, the ``@metric`` registry and ``RunningMetrics``."""

from __future__ import annotations

import math
import statistics
from typing import Any

import pytest

from dotevals.metrics import (
    IntervalValue,
    Metric,
    RunningMetrics,
    accuracy,
    mean,
    metric,
    resolve_metric,
)
from dotevals.results import Score


def scores(value: Any, *names: str, score: str = "s") -> list[Score]:
    """One score as a store gives it back: its metrics are names."""
    return [Score(score, value, list(names))]


def stderr_of(values: list[float]) -> float:
    """The standard error of the mean, computed the slow way."""
    return statistics.stdev(values) / math.sqrt(len(values))


# --- built-in metrics ---------------------------------------------------------------------------


def test_accuracy() -> None:
    acc = accuracy()
    assert acc.__name__ == "accuracy"
    assert acc([]) == 0.0
    assert acc([True, False]) == 0.5
    assert acc([True, True, True, False]) == 0.75
    assert acc([1, 0, None, "x"]) == 0.5


def test_mean() -> None:
    avg = mean()
    assert avg.__name__ == "mean"
    assert avg([]) == 0.0
    assert avg([1, 2, 3, 4]) == 2.5
    assert avg([True, False]) == 0.5
    assert avg([None, 2]) == 1.0


# --- @metric and resolve_metric -----------------------------------------------------------------


def test_custom_metric_is_named_after_its_factory(registry: Any) -> None:
    @metric
    def median_score() -> Metric:
        """The median."""

        def compute(values: list[Any]) -> float:
            return float(statistics.median(values))

        return compute

    made = median_score()
    assert median_score.__name__ == "median_score"
    assert median_score.__doc__ == "The median."
    assert made.__name__ == "median_score"
    assert made([1, 5, 3]) == 3.0

    resolved = resolve_metric("median_score")
    assert resolved is not None
    assert resolved.__name__ == "median_score"
    assert resolved([1, 2, 10]) == 2.0


def test_callable_object_without_writable_name(registry: Any) -> None:
    class Fixed:
        __slots__ = ()

        def __call__(self, values: list[Any]) -> float:
            return 1.0

    @metric
    def fixed() -> Metric:
        return Fixed()

    assert fixed()([]) == 1.0
    assert resolve_metric("fixed") is not None


def test_resolve_builtins_and_unknown() -> None:
    acc = resolve_metric("accuracy")
    assert acc is not None and acc.__name__ == "accuracy"
    assert acc([True, False, False, True]) == 0.5
    avg = resolve_metric("mean")
    assert avg is not None and avg([2, 4]) == 3.0
    assert resolve_metric("no_such_metric_anywhere") is None


# --- RunningMetrics: mean-like path -------------------------------------------------------------


def test_empty_running_metrics() -> None:
    running = RunningMetrics()
    assert running.total == 0
    assert running.errors == 0
    assert running.results() == {}


def test_running_accuracy_matches_slow_computation() -> None:
    values = [True, False, True, True, False, True, True, True]
    running = RunningMetrics()
    for v in values:
        running.add(scores(v, "accuracy"), is_error=False)
    got = running.results()["s"]["accuracy"]
    floats = [float(v) for v in values]
    p, n = statistics.fmean(floats), len(values)
    assert got.count == n
    assert got.value == pytest.approx(accuracy()(values))
    assert got.stderr == pytest.approx(stderr_of(floats))
    assert got.stderr == pytest.approx(math.sqrt(p * (1 - p) / (n - 1)))


def test_running_mean_matches_slow_computation() -> None:
    values = [0.5, 2.0, 3.25, -1.0, 7.0]
    running = RunningMetrics()
    for v in values:
        running.add(scores(v, "mean"), is_error=False)
    got = running.results()["s"]["mean"]
    assert got.value == pytest.approx(statistics.fmean(values))
    assert got.stderr == pytest.approx(stderr_of(values))
    assert got.count == len(values)


def test_single_value_has_no_stderr() -> None:
    running = RunningMetrics()
    running.add(scores(True, "accuracy"), is_error=False)
    got = running.results()["s"]["accuracy"]
    assert got.value == 1.0
    assert math.isnan(got.stderr)
    assert got.count == 1


def test_constant_values_have_no_interval_and_say_why() -> None:
    running = RunningMetrics()
    for _ in range(5):
        running.add(scores(0.1, "mean"), is_error=False)
    got = running.results()["s"]["mean"]
    assert isinstance(got, IntervalValue)
    assert got.value == pytest.approx(0.1)
    assert (got.ci_low, got.ci_high, got.method) == (None, None, "skew-corrected t")
    assert got.reason == "all 5 values are equal: no spread"
    assert math.isnan(got.stderr)


def test_stderr_is_accurate_for_large_values() -> None:
    values = [1e9 + 1, 1e9 + 2, 1e9 + 3]
    running = RunningMetrics()
    for v in values:
        running.add(scores(v, "mean"), is_error=False)
    assert running.results()["s"]["mean"].stderr == pytest.approx(stderr_of(values))


def test_accuracy_and_mean_of_one_score_together() -> None:
    running = RunningMetrics()
    for v in [1, 0, 3]:
        running.add(scores(v, "accuracy", "mean"), is_error=False)
    got = running.results()["s"]
    assert got["accuracy"].value == pytest.approx(2 / 3)
    assert got["mean"].value == pytest.approx(4 / 3)


def test_several_scores_are_kept_apart() -> None:
    running = RunningMetrics()
    running.add(scores(True, "accuracy", score="a") + scores(2.0, "mean", score="b"), False)
    running.add(scores(False, "accuracy", score="a") + scores(4.0, "mean", score="b"), False)
    out = running.results()
    assert out["a"]["accuracy"].value == 0.5
    assert out["b"]["mean"].value == 3.0


# --- RunningMetrics: errors ---------------------------------------------------------------------


def test_errors_count_as_failures_only_with_errors() -> None:
    running = RunningMetrics()
    for v in [True, True, False]:
        running.add(scores(v, "accuracy"), is_error=False)
    running.add([], is_error=True)
    assert running.total == 4
    assert running.errors == 1

    with_errors = running.results(with_errors=True)["s"]["accuracy"]
    assert with_errors.value == pytest.approx(0.5)
    assert with_errors.count == 4
    assert with_errors.stderr == pytest.approx(stderr_of([1.0, 1.0, 0.0, 0.0]))

    without = running.results(with_errors=False)["s"]["accuracy"]
    assert without.value == pytest.approx(2 / 3)
    assert without.count == 3
    assert without.stderr == pytest.approx(stderr_of([1.0, 1.0, 0.0]))


def test_scores_of_an_errored_record_are_ignored() -> None:
    running = RunningMetrics()
    running.add(scores(True, "accuracy"), is_error=False)
    running.add(scores(True, "accuracy"), is_error=True)
    assert running.results(with_errors=False)["s"]["accuracy"].value == 1.0
    assert running.results(with_errors=True)["s"]["accuracy"].value == 0.5


def test_errors_lower_the_mean() -> None:
    running = RunningMetrics()
    running.add(scores(4.0, "mean"), is_error=False)
    running.add(scores(2.0, "mean"), is_error=False)
    running.add([], is_error=True)
    assert running.results()["s"]["mean"].value == pytest.approx(2.0)
    assert running.results(with_errors=False)["s"]["mean"].value == pytest.approx(3.0)


# --- RunningMetrics: other metrics --------------------------------------------------------------


def test_custom_metric_from_kept_values(registry: Any) -> None:
    @metric
    def maximum() -> Metric:
        def compute(values: list[Any]) -> float:
            return float(max((float(v) for v in values), default=0.0))

        return compute

    running = RunningMetrics()
    for v in [3, 9, 4]:
        running.add(scores(v, "maximum", "mean"), is_error=False)
    out = running.results()["s"]
    assert (out["maximum"].value, out["maximum"].count) == (9.0, 3)
    assert isinstance(out["maximum"], IntervalValue) and out["maximum"].method == "bootstrap"
    assert out["mean"].value == pytest.approx(16 / 3)


def test_custom_metric_sees_errors_as_false(registry: Any) -> None:
    seen: list[list[Any]] = []

    @metric
    def recorder() -> Metric:
        def compute(values: list[Any]) -> float:
            seen.append(list(values))
            return float(len(values))

        return compute

    running = RunningMetrics()
    running.add(scores(7, "recorder"), is_error=False)
    running.add([], is_error=True)
    assert running.results(with_errors=True)["s"]["recorder"].count == 2
    assert running.results(with_errors=False)["s"]["recorder"].value == 1.0
    assert seen[0] == [7, False]  # the figure; the bootstrap's resamples follow
    assert [7] in seen


def test_live_metric_objects_are_used_over_the_registry() -> None:
    def spread(values: list[Any]) -> float:
        return float(max(values) - min(values))

    running = RunningMetrics()
    for v in [1, 6, 4]:
        running.add([Score("s", v, [spread])], is_error=False)
    assert running.results()["s"]["spread"].value == 5.0


def test_unknown_metric_names_are_left_out() -> None:
    running = RunningMetrics()
    running.add(scores(1, "no_such_metric_anywhere", "accuracy"), is_error=False)
    assert set(running.results()["s"]) == {"accuracy"}


def test_a_plain_metric_read_back_by_name_is_filled_in_by_a_live_row() -> None:
    def spread(values: list[Any]) -> float:
        return float(max(values) - min(values))

    running = RunningMetrics()
    for v in [1, 6]:  # stored records, as a resume reads them: the metric's code is unknown
        running.add(scores(v, "spread"), is_error=False)
    assert "s" not in running.results()
    running.add([Score("s", 4, [spread])], is_error=False)
    got = running.results()["s"]["spread"]
    assert (got.value, got.count, got.method) == (5.0, 3, "bootstrap")


def test_moments_of_zeros_and_ones_then_other_values_match_welford_throughout() -> None:
    from dotevals.metrics import _Moments

    values = [1.0, 0.0, 1.0, 1.0, 0.0, 0.5, 2.0, 1.0]
    fast, slow = _Moments(), _Moments()
    for x in values:
        fast.add(x)
    for x in [0.5, *values[:5], *values[6:]]:  # a non-0/1 value first: Welford from the start
        slow.add(x)
    assert (fast.n, fast.total, fast.binary) == (slow.n, slow.total, False)
    assert fast.mean == pytest.approx(slow.mean)
    assert fast.m2 == pytest.approx(slow.m2)
    assert fast.m3 == pytest.approx(slow.m3)
    mean = sum(values) / len(values)
    assert fast.m2 == pytest.approx(sum((x - mean) ** 2 for x in values))
    assert fast.m3 == pytest.approx(sum((x - mean) ** 3 for x in values))
