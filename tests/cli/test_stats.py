"""Reading stored metric values: :meth:`MetricValue.from_dict`, shared by ``show`` and runs."""

from __future__ import annotations

import math
from typing import Any

import pytest

from dotevals.results import MetricValue


def test_round_trips_to_dict() -> None:
    value = MetricValue(0.75, 0.05, 40, 0.6, 0.86)
    assert MetricValue.from_dict(value.to_dict()) == value


def test_unknown_figures_become_nan_zero_and_none() -> None:
    data = {"value": 0.5, "stderr": None, "count": "3", "ci_low": "0.1", "ci_high": True}
    value = MetricValue.from_dict(data)
    assert value is not None
    assert (value.value, value.count, value.ci_low, value.ci_high) == (0.5, 0, None, None)
    assert math.isnan(value.stderr)


def test_only_one_bound_falls_back_to_the_normal_interval() -> None:
    value = MetricValue.from_dict({"value": 0.5, "stderr": 0.1, "count": 10, "ci_low": 0.2})
    assert value is not None
    assert value.ci95 == pytest.approx((0.5 - 0.196, 0.5 + 0.196))


@pytest.mark.parametrize(
    "data", [None, 0.5, [0.5], {}, {"value": None}, {"value": "0.5"}, {"value": True}]
)
def test_no_numeric_value_is_none(data: Any) -> None:
    assert MetricValue.from_dict(data) is None
