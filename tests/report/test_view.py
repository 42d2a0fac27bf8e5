"""The report's view model, read from real JSONL and SQLite stores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dotevals.comparison import compare_stored
from dotevals.errors import ConfigurationError
from dotevals.figures import evaluation_figures
from dotevals.report import build_view
from dotevals.results import IntervalValue, Record, Summary
from dotevals.stats import SKEW_T, mcnemar_exact, paired_difference
from dotevals.storage import JSONLStorage, Storage
from dotevals.storage.sqlite import SQLiteStorage
from report.runs import failed, header, ok, score, two_model_records, write_run


@pytest.fixture(params=["json", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "json":
        return JSONLStorage(tmp_path / ".dotevals")
    return SQLiteStorage(tmp_path / "results.db")


def test_models_of_one_run_are_side_by_side(store: Storage) -> None:
    a, b = two_model_records()
    write_run(store, "pair", "eval_x[local:a]", a)
    write_run(store, "pair", "eval_x[local:b]", b)
    (evaluation,) = build_view(store, ["pair"]).evaluations
    assert (evaluation.name, evaluation.models) == ("eval_x", ["local:a", "local:b"])
    rows = {row["i"]: row for row in evaluation.rows}
    assert [row["i"] for row in evaluation.rows] == [0, 1, 2, 3, 4, 5]
    assert [i for i, row in rows.items() if row["x"]] == [1, 2, 3]
    assert [[c and c["k"] for c in rows[i]["c"]] for i in (0, 2, 3, 5)] == [
        [1, 1],
        [0, 1],
        [-1, 1],
        [1, None],
    ]
    assert rows[3]["c"][0]["e"] == "ValueError: boom"
    (accuracy,) = evaluation.metrics
    assert [f and (f.estimate, f.n, f.method, f.level) for f in accuracy.figures] == [
        (4 / 6, 6, "Wilson", 0.95),
        (4 / 5, 5, "Wilson", 0.95),
    ]
    (difference,) = evaluation.differences
    # completed on both sides: items 0, 1, 2, 4 (3 errored for a, 5 missing for b)
    result = difference.comparison.result
    assert (result.n, difference.comparison.left_out, result.diff.estimate) == (4, 2, 0.0)
    assert (result.test, result.a_only, result.b_only, result.p_value) == (
        "McNemar exact",
        1,
        1,
        mcnemar_exact(1, 1),
    )


def test_figures_and_differences_are_those_of_show_and_compare(store: Storage) -> None:
    """The report computes nothing of its own: its figures are ``dotevals show``'s, its
    differences ``dotevals compare``'s (a paired t test for scores that are not 0/1)."""
    values = ([0.1, 0.4, 0.35, 0.8, 0.9], [0.3, 0.5, 0.3, 0.95, 1.0])
    names = ("eval_m[a]", "eval_m[b]")
    for name, side in zip(names, values):
        records = [ok(i, v) for i, v in enumerate(side)]
        for record in records:
            record.scores[0].metrics[:] = ["mean"]
        write_run(store, "graded", name, records)
    (evaluation,) = build_view(store, ["graded"]).evaluations
    (mean,) = evaluation.metrics
    shown = [evaluation_figures(n, store.load("graded", n)).metrics[0] for n in names]
    assert [f.with_errors for f in shown] == [IntervalValue.of(f) for f in mean.figures if f]
    assert {f.method for f in mean.figures if f} == {SKEW_T}
    (difference,) = evaluation.differences
    compared = compare_stored((store, "graded", names[0]), (store, "graded", names[1]))
    assert [difference.comparison] == compared
    expected = paired_difference(*values)
    assert difference.comparison.result == expected
    assert expected.test == "paired t" and expected.p_value is not None


def test_a_pair_that_cannot_be_compared_is_a_warning(store: Storage) -> None:
    write_run(store, "pair", "eval_x[a]", [ok(0, True), ok(1, True)])
    write_run(store, "pair", "eval_x[b]", [failed(0), failed(1)])
    (evaluation,) = build_view(store, ["pair"]).evaluations
    assert evaluation.differences == []
    (warning,) = evaluation.warnings
    assert warning.startswith("no paired difference of b and a: ")
    assert "no completed items in common" in warning


def test_experiments_side_by_side_are_named_after_the_experiments(store: Storage) -> None:
    write_run(store, "first", "eval_x", [ok(0, True), ok(1, True)])
    write_run(store, "second", "eval_x", [ok(0, True), ok(1, False)])
    (evaluation,) = build_view(store, ["first", "second"]).evaluations
    assert evaluation.models == ["first", "second"]
    assert build_view(store, ["first", "first"]).evaluations[0].models == ["first"]
    assert evaluation.differences[0].comparison.result.diff.estimate == pytest.approx(-0.5)


def test_one_evaluation_is_kept_by_either_name(store: Storage) -> None:
    write_run(store, "pair", "eval_x[local:a]", [ok(0, True)])
    write_run(store, "pair", "eval_y", [ok(0, True)])
    assert [e.name for e in build_view(store, ["pair"], "eval_x").evaluations] == ["eval_x"]
    kept = build_view(store, ["pair"], "eval_x[local:a]").evaluations
    assert [e.models for e in kept] == [["local:a"]]


def test_missing_names_are_errors_that_list_what_exists(store: Storage) -> None:
    write_run(store, "pair", "eval_x", [ok(0, True)])
    with pytest.raises(ConfigurationError, match=r"no experiment 'nope' .*available: pair"):
        build_view(store, ["pair", "nope"])
    with pytest.raises(ConfigurationError, match=r"no evaluation 'eval_z' .*available: eval_x"):
        build_view(store, ["pair"], "eval_z")


def test_a_custom_metric_comes_from_the_stored_summary(store: Storage) -> None:
    record = Record.from_dict(
        {"item_id": 0, "dataset_row": [1], "scores": [score(0.5, "sim", ("median",))]}
    )
    figure = {"value": 0.5, "stderr": 0.1, "ci_low": 0.3, "ci_high": 0.7, "count": 1}
    write_run(store, "custom", "eval_c", [record], {"metrics": {"sim": {"median": figure}}})
    (metric,) = build_view(store, ["custom"]).evaluations[0].metrics
    (interval,) = metric.figures
    assert interval is not None
    assert (interval.estimate, interval.lo, interval.hi, interval.method, interval.level) == (
        0.5,
        0.3,
        0.7,
        "stored summary",
        0.95,
    )


def test_run_facts_count_runs_retries_usage_and_cost(store: Storage) -> None:
    records = [ok(0, True), ok(1, True), failed(2)]
    records[0].attempts = 3
    write_run(store, "facts", "eval_f", records)
    writer = store.open_writer("facts", "eval_f", header())
    writer.append(ok(2, True))
    writer.write_summary(Summary.from_dict({"duration": 0.5, "concurrency": [[0.0, 8]]}))
    writer.close()
    (facts,) = build_view(store, ["facts"]).evaluations[0].facts
    assert (facts.runs, facts.rows, facts.errors, facts.retries) == (2, 3, 0, 2)
    assert facts.concurrency == [[16, 32], [8]]
    assert facts.duration == 2.0
    assert facts.header is not None and facts.header.git_commit == "abc123"


def test_usage_and_cost_stored_with_records_are_totalled(tmp_path: Path) -> None:
    """Records that carry ``usage`` and ``cost`` (as the typed schema will store them)."""
    store = JSONLStorage(tmp_path / ".dotevals")
    write_run(store, "paid", "eval_p", [ok(0, True)])
    extra = {"usage": {"prompt_tokens": 7, "completion_tokens": 2}, "cost": 0.25}
    lines = [ok(i, True).to_dict() | extra for i in (1, 2)]
    with (tmp_path / ".dotevals" / "paid" / "eval_p.jsonl").open("a") as f:
        f.writelines(json.dumps(line) + "\n" for line in lines)
    evaluation = build_view(store, ["paid"]).evaluations[0]
    (facts,) = evaluation.facts
    assert facts.usage == {"prompt_tokens": 14.0, "completion_tokens": 4.0}
    assert facts.cost == 0.5
    assert evaluation.rows[1]["c"][0]["u"] == json.dumps(extra["usage"])


def test_models_that_read_different_datasets_are_flagged(tmp_path: Path) -> None:
    store = JSONLStorage(tmp_path / ".dotevals")
    write_run(store, "pair", "eval_x[a]", [ok(0, True)])
    write_run(store, "pair", "eval_x[b]", [ok(0, True)])
    assert build_view(store, ["pair"]).evaluations[0].warnings == []
    store.open_writer("other", "eval_x", header(dataset_fingerprint="sha256:beef")).close()
    write_run(store, "other", "eval_x", [ok(0, True)])  # the first header is the one kept
    (warning,) = build_view(store, ["pair", "other"]).evaluations[0].warnings
    assert "pair a: sha256:feed" in warning and "other: sha256:beef" in warning


def test_without_costs_on_records_the_summary_cost_is_shown(tmp_path: Path) -> None:
    store = JSONLStorage(tmp_path / ".dotevals")
    write_run(store, "priced", "eval_p", [ok(0, True)], {"duration": 1.0, "cost": 0.75})
    assert build_view(store, ["priced"]).evaluations[0].facts[0].cost == 0.75
