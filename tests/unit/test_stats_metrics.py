"""The metrics' figures carry their interval's method, level, n and clusters into summaries."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import dotevals
from dotevals import Result, Score, foreach
from dotevals.cli import main
from dotevals.metrics import RunningMetrics, accuracy, mean, metric
from dotevals.results import IntervalValue, Metric
from dotevals.storage import open_storage
from intervals import hall_t


def _running(values: list[Any], *names: str, **kwargs: Any) -> RunningMetrics:
    running = RunningMetrics(**kwargs)
    for v in values:
        running.add([Score("s", v, list(names))], is_error=False)
    return running


def test_a_mean_of_0_1_values_gets_wilson_and_other_means_skew_corrected_t() -> None:
    binary = _running([1, 0, 1, 1], "mean").results()["s"]["mean"]
    assert isinstance(binary, IntervalValue) and binary.method == "Wilson"
    values = [0.2, 0.9, 0.35, 0.6, 0.05]
    got = _running(values, "mean", level=0.9).results()["s"]["mean"]
    assert isinstance(got, IntervalValue)
    assert (got.ci_low, got.ci_high) == pytest.approx(hall_t(values, 0.9))
    assert (got.method, got.level, got.count) == ("skew-corrected t", 0.9, 5)
    assert str(got).endswith("n=5 skew-corrected t 90%")


def test_errors_count_as_zeros_in_the_t_interval() -> None:
    running = _running([0.5, 0.75, 1.0], "mean")
    running.add([], is_error=True)
    got = running.results(with_errors=True)["s"]["mean"]
    assert (got.ci_low, got.ci_high) == pytest.approx(hall_t([0.5, 0.75, 1.0, 0.0]))


def test_custom_metrics_get_a_seeded_bootstrap_interval(registry: Any) -> None:
    @metric
    def median() -> Metric:
        def compute(values: list[Any]) -> float:
            return float(statistics.median(values))

        return compute

    values = [3, 9, 4, 1, 7, 7, 2, 8, 5, 6]
    first = _running(values, "median").results()["s"]["median"]
    again = _running(values, "median").results()["s"]["median"]
    assert first == again and isinstance(first, IntervalValue)
    assert first.method == "bootstrap" and first.ci_low is not None
    assert first.ci_low <= first.value <= first.ci_high  # type: ignore[operator]
    quick = _running(values, "median").results(bootstrap=False)["s"]["median"]
    assert (quick.value, quick.ci_low) == (first.value, None)


def test_a_metric_failing_on_a_resample_is_an_undefined_interval(registry: Any) -> None:
    @metric
    def picky() -> Metric:
        def compute(values: list[Any]) -> float:
            if len(set(values)) < 3:
                raise ValueError("needs three distinct values")
            return 1.0

        return compute

    got = _running([1, 2, 3], "picky").results()["s"]["picky"]
    assert isinstance(got, IntervalValue) and got.value == 1.0
    assert got.reason is not None and "ValueError: needs three distinct values" in got.reason


def test_summary_dicts_are_strict_json_with_method_and_level() -> None:
    got = _running([True], "accuracy").results()["s"]["accuracy"]
    data = got.to_dict()
    json.dumps(data, allow_nan=False)
    assert data["method"] == "Wilson" and data["level"] == 0.95 and data["stderr"] is None
    undefined = _running([0.3, 0.3], "mean").results()["s"]["mean"].to_dict()
    assert undefined["reason"] == "all 2 values are equal: no spread"
    assert (undefined["ci_low"], undefined["ci_high"]) == (None, None)


def test_a_run_stores_the_method_level_and_n_of_every_figure(tmp_path: Path) -> None:
    @foreach("x", [0.1, 0.4, 0.8, 0.3, 0.9])
    def eval_scores(x: float) -> Result:
        return Result(Score("close", x, [mean()]), Score("high", x > 0.35, [accuracy()]))

    url = f"json://{tmp_path}"
    dotevals.run(eval_scores, "e", storage=url, progress=False)
    summary = open_storage(url).load("e", "eval_scores").summary
    assert summary is not None
    close, high = summary.metrics["close"]["mean"], summary.metrics["high"]["accuracy"]
    assert isinstance(close, IntervalValue) and isinstance(high, IntervalValue)
    assert (close.method, close.level, close.count) == ("skew-corrected t", 0.95, 5)
    assert (high.method, high.count) == ("Wilson", 5)
    assert close.ci_low == pytest.approx(hall_t([0.1, 0.4, 0.8, 0.3, 0.9])[0])


def test_show_json_states_each_figures_method_and_level(tmp_path: Path) -> None:
    @foreach("x", [0.1, 0.4, 0.4, 0.9])
    def eval_scores(x: float) -> Result:
        return Result(Score("close", x, [mean()]), Score("same", 1.0, [mean()]))

    url = f"json://{tmp_path}"
    dotevals.run(eval_scores, "e", storage=url, progress=False)
    shown = CliRunner().invoke(main, ["show", "e", "--json", "--storage", url])
    figures = {
        m["score"]: m["with_errors"] for m in json.loads(shown.output)["evaluations"][0]["metrics"]
    }
    assert (figures["close"]["method"], figures["close"]["level"]) == ("skew-corrected t", 0.95)
    assert figures["close"]["ci_low"] == pytest.approx(hall_t([0.1, 0.4, 0.4, 0.9])[0])
    assert figures["same"]["method"] == "Wilson"  # 1.0 every time: a 0/1 score
