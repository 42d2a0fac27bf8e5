"""Clustered designs and thresholds on an interval's lower bound, end to end."""

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
from dotevals.errors import ConfigurationError
from dotevals.evaluators import exact_match
from dotevals.results import Header, Record
from dotevals.stats import proportion_interval, wilson_interval

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

#: 40 questions over 8 passages; passage p answers "x" for all its questions or none of them,
#: so the clustered interval is much wider than the naive one.
ROWS = [{"q": f"q{i}", "a": "x" if (i // 5) % 4 else "y", "pid": f"p{i // 5}"} for i in range(40)]


def _run(tmp_path: Path, rows: list[Any], experiment: str = "c", **options: Any) -> Any:
    @foreach("q,a", rows, cluster="pid", **options)
    def eval_passages(q: str, a: str) -> Result:
        return Result(exact_match(a, "x"))

    storage = f"json://{tmp_path / 'store'}"
    return dotevals.run(eval_passages, experiment=experiment, storage=storage, progress=False)


def test_a_cluster_column_makes_every_interval_cluster_robust(tmp_path: Path) -> None:
    results = _run(tmp_path, ROWS)
    figure = results.report.metrics["exact_match"]["accuracy"]
    values = [r["a"] == "x" for r in ROWS]
    expected = proportion_interval(values, clusters=[r["pid"] for r in ROWS])
    assert (figure.method, figure.n_clusters, figure.count) == ("cluster Wilson", 8, 40)
    assert figure.ci95 == pytest.approx((expected.lo, expected.hi))
    naive = wilson_interval(sum(values), len(values))
    assert figure.ci95[1] - figure.ci95[0] > 1.5 * (naive.hi - naive.lo)  # type: ignore[operator]
    assert [r.cluster for r in results.records][:6] == ["p0"] * 5 + ["p1"]
    header = results.storage.load("c", "eval_passages").header
    assert header is not None and header.cluster == "pid"


def test_records_and_headers_round_trip_the_cluster_and_old_stores_still_read() -> None:
    record = Record(3, {"q": "a"}, cluster="p7")
    assert Record.from_dict(json.loads(json.dumps(record.to_dict()))).cluster == "p7"
    assert "cluster" not in Record(3, {"q": "a"}).to_dict()
    assert Record.from_dict({"item_id": 1, "dataset_row": None}).cluster is None
    header = Header("e", "ev", cluster="pid")
    assert Header.from_dict(header.to_dict()).cluster == "pid"
    assert Header.from_dict({"experiment": "e"}).cluster is None


def test_a_row_without_the_cluster_column_is_its_error_record(tmp_path: Path) -> None:
    results = _run(tmp_path, [*ROWS[:10], {"q": "lost", "a": "x"}])
    by_id = {r.item_id: r for r in results.records}
    assert by_id[10].error is not None and "no cluster column 'pid'" in by_id[10].error.message
    assert all(not by_id[i].is_error for i in range(10))
    figure = results.report.metrics["exact_match"]["accuracy"]
    assert (figure.count, figure.n_clusters) == (11, 3)  # the errored row is a cluster alone


def test_a_resumed_run_stays_clustered(tmp_path: Path) -> None:
    _run(tmp_path, ROWS, samples=20)
    figure = _run(tmp_path, ROWS).report.metrics["exact_match"]["accuracy"]
    assert (figure.method, figure.n_clusters, figure.count) == ("cluster Wilson", 8, 40)


def test_custom_metrics_get_a_cluster_bootstrap(tmp_path: Path) -> None:
    from dotevals.metrics import metric

    @metric
    def share_of_x() -> Any:
        return lambda values: sum(1.0 for v in values if v) / max(len(values), 1)

    @foreach("q,a", ROWS, cluster="pid")
    def eval_custom(q: str, a: str) -> Result:
        return Result(Score("exact_match", a == "x", [share_of_x()]))

    storage = f"json://{tmp_path / 'store'}"
    report = dotevals.run(eval_custom, experiment="b", storage=storage, progress=False).report
    figure = report.metrics["exact_match"]["share_of_x"]
    assert (figure.method, figure.n_clusters) == ("cluster bootstrap", 8)


def test_show_and_its_json_state_the_clusters(tmp_path: Path) -> None:
    _run(tmp_path, ROWS)
    storage = f"json://{tmp_path / 'store'}"
    text = CliRunner().invoke(main, ["show", "c", "--storage", storage], env={"COLUMNS": "200"})
    assert "(8 clusters)" in text.output and "cluster Wilson" in text.output, text.output
    out = CliRunner().invoke(main, ["show", "c", "--storage", storage, "--json"]).output
    assert '"n_clusters": 8' in out and '"method": "cluster Wilson"' in out


def test_compare_uses_the_stored_cluster_column(tmp_path: Path) -> None:
    _run(tmp_path, ROWS, experiment="a")
    _run(tmp_path, ROWS, experiment="b")
    found = dotevals.compare("a", "b", storage=f"json://{tmp_path / 'store'}")
    assert [s.cluster for s in found.scores] == ["pid"]


@pytest.mark.parametrize("cluster", [3, "", ["pid"]])
def test_a_cluster_that_is_not_a_column_name_is_refused(cluster: Any) -> None:
    with pytest.raises(ConfigurationError, match="cluster="):
        foreach("q", ["a"], cluster=cluster)


@pytest.mark.parametrize("threshold", [{"accuracy": {"low": 0.7}}, {"accuracy": "0.7"}, 0.7])
def test_a_threshold_of_another_shape_is_refused(threshold: Any) -> None:
    with pytest.raises(ConfigurationError, match='"lower"'):
        foreach("q", ["a"], threshold=threshold)


def test_a_pytest_session_reports_clusters_and_gates_on_the_lower_bound(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        eval_designs=f"""
        from dotevals import Result, Score, foreach
        from dotevals.evaluators import exact_match
        ROWS = {ROWS!r}

        @foreach("q,a", ROWS, cluster="pid", threshold={{"accuracy": 0.7}})
        def eval_point(q, a):
            return Result(exact_match(a, "x"))

        @foreach("q,a", ROWS, cluster="pid", threshold={{"accuracy": {{"lower": 0.7}}}})
        def eval_lower(q, a):
            return Result(exact_match(a, "x"))
        """
    )
    # -rN: no short summary, whose width (and so what it repeats) depends on the terminal
    result = pytester.runpytest("--experiment", "s", "-rN")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*eval_lower: accuracy = 0.750 [[]0.330, 0.948[]] n=40 (8 clusters) cluster Wilson 95%:"
            " the interval's lower bound is below the threshold 0.7",
        ]
    )
    assert result.stdout.str().count("n=40 (8 clusters) cluster") == 3  # the summary's 2 rows


# -- repeated samples -------------------------------------------------------------------------

#: Question i is answered right on the repeats r with (i + r) % 3 != 0 when i is even, always
#: when i is odd: items differ, and so do the repeats of the even ones.
QUESTIONS = [{"q": i} for i in range(12)]


def _repeated(tmp_path: Path, calls: list[tuple[int, int]], **options: Any) -> Any:
    seen: dict[int, int] = {}

    @foreach("q", QUESTIONS, repeats=3, **options)
    def eval_repeated(q: int) -> bool:
        r = seen[q] = seen.get(q, -1) + 1
        calls.append((q, r))
        return q % 2 == 1 or (q + r) % 3 != 0

    storage = f"json://{tmp_path / 'store'}"
    return dotevals.run(eval_repeated, experiment="rep", storage=storage, progress=False)


def _expected_values() -> dict[int, list[bool]]:
    return {i: [i % 2 == 1 or (i + r) % 3 != 0 for r in range(3)] for i in range(12)}


def test_repeats_run_each_row_k_times_as_records_of_their_own(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    results = _repeated(tmp_path, calls)
    assert len(calls) == 36
    got = [(r.item_id, r.repeat, r.dataset_row["q"]) for r in results.records]
    assert got == [(3 * i + r, r, i) for i in range(12) for r in range(3)]
    assert results.report.dataset_size == 36
    assert Record.from_dict(results.records[4].to_dict()).repeat == 1


def test_repeats_give_the_between_item_interval_and_the_within_item_variance(
    tmp_path: Path,
) -> None:
    figure = _repeated(tmp_path, []).report.metrics["eval_repeated"]["accuracy"]
    by_item = _expected_values()
    item_means = [sum(v) / 3 for v in by_item.values()]
    assert figure.value == pytest.approx(sum(item_means) / 12)
    flat = [v for vs in by_item.values() for v in vs]
    between = proportion_interval(flat, clusters=[i for i in by_item for _ in range(3)])
    assert figure.ci95 == pytest.approx((between.lo, between.hi))
    assert figure.n_clusters == 12
    within = sum(statistics.variance(map(float, v)) for v in by_item.values()) / 12
    assert (figure.within_variance, figure.repeats) == (pytest.approx(within), 3)
    assert "within-item var 0.167 (3 repeats)" in str(figure)


def test_a_resumed_run_runs_only_the_missing_repeats(tmp_path: Path) -> None:
    first: list[tuple[int, int]] = []
    _repeated(tmp_path, first, samples=5)
    assert len(first) == 15
    second: list[tuple[int, int]] = []
    results = _repeated(tmp_path, second)
    assert sorted({q for q, _ in second}) == list(range(5, 12)) and len(second) == 21
    assert len(results.records) == 36 and results.report.metrics["eval_repeated"]["accuracy"]


def test_show_and_json_report_the_within_item_variance(tmp_path: Path) -> None:
    _repeated(tmp_path, [])
    storage = f"json://{tmp_path / 'store'}"
    text = CliRunner().invoke(main, ["show", "rep", "--storage", storage], env={"COLUMNS": "250"})
    assert "within-item var 0.167 (3 repeats)" in text.output, text.output
    out = json.loads(
        CliRunner().invoke(main, ["show", "rep", "--storage", storage, "--json"]).output
    )
    figure = out["evaluations"][0]["metrics"][0]["with_errors"]
    assert figure["repeats"] == 3 and figure["within_variance"] == pytest.approx(1 / 6)


@pytest.mark.parametrize("repeats", [0, -1, 1.5, True])
def test_a_repeat_count_that_is_not_a_whole_number_is_refused(repeats: Any) -> None:
    with pytest.raises(ConfigurationError, match="repeats="):
        foreach("q", ["a"], repeats=repeats)


def test_a_pytest_session_shows_the_split(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    pytester.makepyfile(
        eval_rep="""
        from dotevals import foreach
        @foreach("q", range(6), repeats=2)
        def eval_twice(q):
            return q % 2 == 0
        """
    )
    result = pytester.runpytest("--experiment", "r")
    result.assert_outcomes(passed=1)
    assert "n=12 (6 clusters) cluster Wilson 95% within-item var 0.000 (2 repeats)" in (
        result.stdout.str()
    )


def test_compare_of_repeated_runs_clusters_by_row(tmp_path: Path) -> None:
    storage = f"json://{tmp_path / 'store'}"
    for experiment in ("a", "b"):

        @foreach("q", QUESTIONS, repeats=3)
        def eval_repeated(q: int) -> bool:
            return q % 2 == 1

        dotevals.run(eval_repeated, experiment=experiment, storage=storage, progress=False)
    found = dotevals.compare("a", "b", storage=storage).scores[0].result
    assert found.diff.n_clusters == 12


def test_an_errored_repeat_alone_runs_again(tmp_path: Path) -> None:
    storage = f"json://{tmp_path / 'store'}"
    calls: list[int] = []
    failing = {"on": True}

    @foreach("q", QUESTIONS, repeats=3)
    def eval_flaky(q: int) -> bool:
        calls.append(q)
        if failing["on"] and q == 4 and calls.count(4) == 2:
            raise RuntimeError("flaky")
        return True

    first = dotevals.run(eval_flaky, experiment="f", storage=storage, progress=False)
    assert [r.item_id for r in first.records if r.is_error] == [13]
    failing["on"], calls[:] = False, []
    second = dotevals.run(eval_flaky, experiment="f", storage=storage, progress=False)
    assert calls == [4] and not any(r.is_error for r in second.records)
    assert {r.item_id: r.repeat for r in second.records}[13] == 1
