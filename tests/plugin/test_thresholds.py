"""The plugin's pass/fail policy on a finished evaluation's summary."""

from __future__ import annotations

import math
from typing import Any

import pytest

from dotevals import foreach
from dotevals.decorators import EvaluationSpec, get_spec
from dotevals.errors import EvaluationFailed
from dotevals.pytest_plugin._thresholds import check_thresholds, raise_for_failure
from dotevals.results import MetricValue, Summary


def _spec(threshold: dict[str, Any] | None = None) -> EvaluationSpec:
    @foreach("x", [(1,)], threshold=threshold)
    def eval_it(x: int) -> bool:
        return True

    spec = get_spec(eval_it)
    assert spec is not None
    return spec


def _summary(accuracy: MetricValue, **counts: Any) -> Summary:
    return Summary("eval_it", "exp one", metrics={"eval_it": {"accuracy": accuracy}}, **counts)


def test_a_met_threshold_passes() -> None:
    spec = _spec({"eval_it.accuracy": 0.5})
    assert check_thresholds(spec, _summary(MetricValue(0.75), total=4, ran=4)) is None
    raise_for_failure(spec, _summary(MetricValue(0.75), total=4, ran=4))


def test_a_missed_threshold_names_the_figure_and_the_minimum() -> None:
    with pytest.raises(EvaluationFailed, match=r"eval_it: accuracy = 0.2500 is below the thr"):
        raise_for_failure(_spec({"accuracy": 0.5}), _summary(MetricValue(0.25), total=4, ran=4))


def test_an_unknown_metric_lists_the_known_ones() -> None:
    reason = check_thresholds(_spec({"f1": 0.5}), _summary(MetricValue(1.0), total=1, ran=1))
    assert reason == "threshold on 'f1': no such metric (have ['eval_it.accuracy'])"


def test_a_lower_bound_without_an_interval_fails() -> None:
    no_interval = MetricValue(0.9, ci_low=math.nan, ci_high=math.nan)
    reason = check_thresholds(_spec({"accuracy": {"lower": 0.5}}), _summary(no_interval))
    assert reason is not None and "lower bound is below the threshold 0.5" in reason


def test_every_row_errored_points_at_dotevals_show() -> None:
    summary = _summary(MetricValue(0.0), total=2, errors=2, ran=2, error_types={"KeyError": 2})
    reason = check_thresholds(_spec(), summary)
    assert reason == "every row errored (KeyError x2); see `dotevals show 'exp one' --errors`"
