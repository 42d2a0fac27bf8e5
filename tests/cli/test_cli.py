"""The ``dotevals`` command over real JSONL and SQLite stores."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import dotevals
from dotevals.cli import main
from dotevals.results import ErrorInfo, Header, Record, Score, Summary
from dotevals.storage import JSONLStorage, Storage
from dotevals.storage.sqlite import SQLiteStorage

SRC = str(Path(dotevals.__file__).resolve().parents[1])


def _score(value: Any, metrics: list[str] | None = None) -> Score:
    return Score("exact", value, list(metrics or ["accuracy"]))


def _ok(item: int, correct: bool, metrics: list[str] | None = None) -> Record:
    return Record(
        item_id=item,
        dataset_row={"question": f"q{item}"},
        prompt=f"prompt {item}",
        model_response=f"answer {item}",
        scores=[_score(correct, metrics)],
        timestamp=time.time(),
    )


def _failed(item: int, kind: str = "ValueError") -> Record:
    error = ErrorInfo(kind, f"boom [{item}]", "Traceback...")
    return Record(item_id=item, dataset_row={"question": f"q{item}"}, error=error)


def write(
    store: Storage,
    experiment: str,
    evaluation: str,
    records: list[Record],
    summary: dict[str, Any] | None = None,
    finished: bool = True,
) -> None:
    """Store records with the real writer, as a run would.

    A finished run ends with its summary (``summary``, or a plain one); an unfinished one is
    what a killed run leaves: the header and some records, no summary after them.
    """
    header = Header(experiment, evaluation, dotevals_version="test")
    writer = store.open_writer(experiment, evaluation, header)
    try:
        for record in records:
            writer.append(record)
        if finished:
            errors = sum(1 for r in records if r.is_error)
            stored = summary or {"total": len(records), "errors": errors}
            writer.write_summary(Summary.from_dict(stored))
    finally:
        writer.close()


#: 6 correct, 2 wrong, 2 errored (a TimeoutError and a ValueError).
MIXED = [_ok(i, i < 6) for i in range(8)] + [_failed(8, "TimeoutError"), _failed(9)]


@pytest.fixture(params=["json", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "json":
        return JSONLStorage(tmp_path / "store")
    return SQLiteStorage(tmp_path / "results.db")


def run(store: Storage | str, *args: str, input: str | None = None) -> Result:
    url = store if isinstance(store, str) else store.url
    runner = CliRunner(env={"COLUMNS": "200"})
    return runner.invoke(main, [*args, "--storage", url], input=input, catch_exceptions=False)


def _ci(values: list[float]) -> tuple[float, float, float]:
    """Accuracy and its Wilson 95% interval, computed independently of dotevals."""
    n, p, z = len(values), statistics.fmean(values), statistics.NormalDist().inv_cdf(0.975)
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return p, center - half, center + half


WITH_ERRORS = [1.0] * 6 + [0.0] * 4
WITHOUT_ERRORS = [1.0] * 6 + [0.0] * 2


def _figure(values: list[float]) -> str:
    """How show prints the accuracy of ``values``: with its interval, n, method and level."""
    mean, low, high = _ci(values)
    return f"{mean:.3f} [{low:.3f}, {high:.3f}] n={len(values)} Wilson 95%"


# --- list ----------------------------------------------------------------------------------


def test_list_shows_counts_and_status(store: Storage) -> None:
    write(store, "with-errors", "eval_a", MIXED)
    write(store, "with-errors", "eval_b", [_ok(0, True)])
    write(store, "clean", "eval_a", [_ok(0, True), _ok(1, False)])
    result = run(store, "list")
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines() if "│" in line}
    cells = [c.strip() for c in lines["with-errors"].split("│")[1:-1]]
    assert cells[:5] == ["with-errors", "2", "11", "2", "has errors"]
    cells = [c.strip() for c in lines["clean"].split("│")[1:-1]]
    assert cells[:5] == ["clean", "1", "2", "0", "complete"]


def _list_cells(result: Result) -> dict[str, list[str]]:
    rows = [line.split("│")[1:-1] for line in result.output.splitlines() if "│" in line]
    return {cells[0].strip(): [c.strip() for c in cells] for cells in rows}


def test_list_says_incomplete_for_a_killed_run(store: Storage) -> None:
    write(store, "killed", "eval_a", [_ok(0, True), _ok(1, True)], finished=False)
    write(store, "header-only", "eval_a", [], finished=False)
    write(store, "rerun-killed", "eval_a", [_failed(0), _ok(1, True)])
    write(store, "rerun-killed", "eval_a", [_ok(0, True)], finished=False)
    write(store, "finished", "eval_a", [_ok(0, True), _ok(1, True)])
    result = run(store, "list")
    assert result.exit_code == 0, result.output
    cells = _list_cells(result)
    assert cells["killed"][:5] == ["killed", "1", "2", "0", "incomplete"]
    assert cells["header-only"][:5] == ["header-only", "1", "0", "0", "incomplete"]
    assert cells["rerun-killed"][:5] == ["rerun-killed", "1", "2", "0", "incomplete"]
    assert cells["finished"][:5] == ["finished", "1", "2", "0", "complete"]


def test_list_one_incomplete_evaluation_makes_the_experiment_incomplete(store: Storage) -> None:
    write(store, "exp", "eval_done", MIXED)
    write(store, "exp", "eval_killed", [_ok(0, True)], finished=False)
    assert _list_cells(run(store, "list"))["exp"][4] == "incomplete"


def test_list_says_incomplete_when_fewer_rows_than_the_dataset(store: Storage) -> None:
    rows = [_ok(0, True), _ok(1, True)]
    write(store, "interrupted", "e", rows, {"total": 2, "errors": 0, "dataset_size": 5})
    write(store, "all-rows", "e", rows, {"total": 2, "errors": 0, "dataset_size": 2})
    cells = _list_cells(run(store, "list"))
    assert cells["interrupted"][4] == "incomplete"
    assert cells["all-rows"][4] == "complete"


def test_list_says_failed_when_the_run_stopped_early(store: Storage) -> None:
    summary = {"total": 2, "errors": 2, "failure": "stopped after 2 rows failed the same way"}
    write(store, "stopped", "e", [_failed(0), _failed(1)], summary)
    assert _list_cells(run(store, "list"))["stopped"][4] == "failed"


def test_list_help_documents_the_statuses() -> None:
    result = CliRunner().invoke(main, ["list", "--help"])
    assert result.exit_code == 0
    for status in ("failed", "incomplete", "has errors", "complete"):
        assert f"\n    {status} " in result.output, result.output


def test_names_with_brackets_are_shown_literally(store: Storage) -> None:
    record = dataclasses.replace(_ok(0, True), scores=[Score("exact[strict]", True, ["accuracy"])])
    write(store, "exp[v2]", "eval_param[org/large]", [record])
    write(store, "unnamed-[x]", "e", [_ok(0, True)])
    listed = run(store, "list").output
    assert "exp[v2]" in listed
    shown = run(store, "show", "exp[v2]").output
    assert "Experiment exp[v2]" in shown
    assert "eval_param[org/large]: 1 rows, 0 errors" in shown
    assert "exact[strict]" in shown
    cleanup = run(store, "cleanup", "--older-than", "0", "--dry-run").output
    assert "unnamed-[x]" in cleanup


def test_list_filters_by_name(store: Storage) -> None:
    write(store, "alpha-run", "e", [_ok(0, True)])
    write(store, "beta-run", "e", [_ok(0, True)])
    result = run(store, "list", "--name", "alp")
    assert "alpha-run" in result.output
    assert "beta-run" not in result.output
    assert "No experiments matching 'zzz'" in run(store, "list", "--name", "zzz").output


def test_list_empty_store(tmp_path: Path) -> None:
    result = run(f"json://{tmp_path / 'nothing'}", "list")
    assert result.exit_code == 0
    assert "No experiments" in result.output


# --- show ----------------------------------------------------------------------------------


def test_show_metrics_with_and_without_errors(store: Storage) -> None:
    write(store, "exp", "eval_math", MIXED)
    result = run(store, "show", "exp")
    assert result.exit_code == 0, result.output
    assert "eval_math: 10 rows, 2 errors" in result.output
    assert _figure(WITH_ERRORS) in result.output
    assert _figure(WITHOUT_ERRORS) in result.output
    assert "TimeoutError: 1" in result.output
    assert "ValueError: 1" in result.output


def test_show_without_errors_has_equal_columns(store: Storage) -> None:
    write(store, "exp", "eval_math", [_ok(i, i < 3) for i in range(4)])
    result = run(store, "show", "exp")
    figure = _figure([1.0, 1.0, 1.0, 0.0])
    assert result.output.count(figure) == 2
    assert "4 rows, 0 errors" in result.output


def test_show_json_has_the_same_figures(store: Storage) -> None:
    write(store, "exp", "eval_math", MIXED)
    write(store, "exp", "eval_other", [_ok(0, True)])
    result = run(store, "show", "exp", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["experiment"] == "exp"
    evaluations = {e["name"]: e for e in document["evaluations"]}
    assert set(evaluations) == {"eval_math", "eval_other"}
    math_eval = evaluations["eval_math"]
    assert (math_eval["rows"], math_eval["errors"]) == (10, 2)
    assert math_eval["error_types"] == {"TimeoutError": 1, "ValueError": 1}
    [accuracy] = math_eval["metrics"]
    assert (accuracy["score"], accuracy["metric"], accuracy["source"]) == (
        "exact",
        "accuracy",
        "records",
    )
    for key, expected in (("with_errors", WITH_ERRORS), ("without_errors", WITHOUT_ERRORS)):
        got = accuracy[key]
        assert (got["value"], got["ci_low"], got["ci_high"]) == pytest.approx(_ci(expected))
    assert accuracy["with_errors"]["count"] == 10
    assert accuracy["without_errors"]["count"] == 8
    assert "errored_rows" not in math_eval
    assert "records" not in math_eval


def test_show_json_single_value_has_no_stderr_but_a_wilson_interval(store: Storage) -> None:
    write(store, "exp", "e", [_ok(0, True)])
    document = json.loads(run(store, "show", "exp", "--json").output)
    figures = document["evaluations"][0]["metrics"][0]["with_errors"]
    assert figures["value"] == 1.0
    assert figures["stderr"] is None
    assert figures["ci_low"] == pytest.approx(_ci([1.0])[1])
    assert figures["ci_high"] == 1.0


def test_show_errors_lists_errored_rows(store: Storage) -> None:
    write(store, "exp", "eval_math", MIXED)
    result = run(store, "show", "exp", "--errors")
    assert "Errored rows" in result.output
    assert "boom [8]" in result.output  # shown literally, not read as markup
    assert "boom [9]" in result.output
    document = json.loads(run(store, "show", "exp", "--errors", "--json").output)
    rows = document["evaluations"][0]["errored_rows"]
    assert rows == [
        {"item_id": 8, "type": "TimeoutError", "message": "boom [8]"},
        {"item_id": 9, "type": "ValueError", "message": "boom [9]"},
    ]


def test_show_full_lists_every_record(store: Storage) -> None:
    write(store, "exp", "eval_math", MIXED)
    result = run(store, "show", "exp", "--full")
    assert result.exit_code == 0, result.output
    for item in range(8):
        assert f"answer {item}" in result.output
    assert "exact=False" in result.output
    assert "TimeoutError: boom [8]" in result.output
    document = json.loads(run(store, "show", "exp", "--full", "--json").output)
    records = document["evaluations"][0]["records"]
    assert [r["item_id"] for r in records] == list(range(10))
    assert records[0]["dataset_row"] == {"question": "q0"}


def test_show_last_record_wins(store: Storage) -> None:
    write(store, "exp", "e", [_failed(0), _ok(1, False)])
    write(store, "exp", "e", [_ok(0, True)])  # a resumed run retried the errored item
    document = json.loads(run(store, "show", "exp", "--json").output)
    evaluation = document["evaluations"][0]
    assert (evaluation["rows"], evaluation["errors"]) == (2, 0)
    assert evaluation["metrics"][0]["with_errors"]["value"] == 0.5


def test_show_one_evaluation(store: Storage) -> None:
    write(store, "exp", "eval_a", [_ok(0, True)])
    write(store, "exp", "eval_b", [_ok(0, False)])
    result = run(store, "show", "exp", "--evaluation", "eval_b")
    assert "eval_b" in result.output
    assert "eval_a" not in result.output
    missing = run(store, "show", "exp", "--evaluation", "eval_c")
    assert missing.exit_code == 1
    assert "no evaluation 'eval_c'" in missing.output
    assert "eval_a, eval_b" in missing.output


def test_custom_metric_falls_back_to_summary(store: Storage) -> None:
    records = [_ok(i, i < 3, ["accuracy", "my_custom"]) for i in range(4)]
    summary = {
        "metrics": {"exact": {"my_custom": {"value": 0.42, "stderr": 0.01, "count": 4}}},
        "metrics_without_errors": {"exact": {"my_custom": 0.43}},
    }
    write(store, "exp", "with_summary", records, summary)
    write(store, "exp", "no_summary", records)
    document = json.loads(run(store, "show", "exp", "--json").output)
    evaluations = {e["name"]: e["metrics"] for e in document["evaluations"]}
    custom = evaluations["with_summary"][1]
    assert (custom["metric"], custom["source"]) == ("my_custom", "summary")
    assert custom["with_errors"]["value"] == 0.42
    assert custom["with_errors"]["ci_low"] == pytest.approx(0.42 - 1.96 * 0.01)
    assert custom["without_errors"]["value"] == 0.43
    missing = evaluations["no_summary"][1]
    assert (missing["source"], missing["with_errors"]) == ("none", None)
    text = run(store, "show", "exp", "--evaluation", "no_summary").output
    assert "n/a" in text


def test_custom_metric_with_null_stderr_and_ill_typed_bounds(store: Storage) -> None:
    records = [_ok(i, True, ["my_custom"]) for i in range(2)]
    figure = {"value": 0.5, "stderr": None, "count": None, "ci_low": "0.1", "ci_high": None}
    write(store, "exp", "e", records, {"metrics": {"exact": {"my_custom": figure}}})
    result = run(store, "show", "exp", "--json")
    assert result.exit_code == 0, result.output
    custom = json.loads(result.output)["evaluations"][0]["metrics"][0]
    assert custom["source"] == "summary"
    assert custom["with_errors"] == {
        "value": 0.5,
        "stderr": None,
        "ci_low": None,
        "ci_high": None,
        "count": 0,
    }
    assert "0.500" in run(store, "show", "exp").output


# --- delete, rename, cleanup ---------------------------------------------------------------


def test_delete_asks_then_deletes(store: Storage) -> None:
    write(store, "exp", "e", [_ok(0, True)])
    refused = run(store, "delete", "exp", input="n\n")
    assert refused.exit_code == 1
    assert store.has_experiment("exp")
    accepted = run(store, "delete", "exp", input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert not store.has_experiment("exp")


def test_delete_yes(store: Storage) -> None:
    write(store, "exp", "e", [_ok(0, True)])
    write(store, "keep", "e", [_ok(0, True)])
    result = run(store, "delete", "exp", "--yes")
    assert result.exit_code == 0, result.output
    assert store.list_experiments() == ["keep"]


def test_rename(store: Storage) -> None:
    write(store, "old", "e", MIXED)
    result = run(store, "rename", "old", "new")
    assert result.exit_code == 0, result.output
    assert store.list_experiments() == ["new"]
    assert len(store.load("new", "e").records) == 10


def test_rename_onto_existing_is_a_clean_error(store: Storage) -> None:
    write(store, "a", "e", [_ok(0, True)])
    write(store, "b", "e", [_ok(0, True)])
    result = run(store, "rename", "a", "b")
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert "Traceback" not in result.output


def _age(store: JSONLStorage, experiment: str, days: float) -> None:
    when = time.time() - days * 86400
    folder = store.path_of(experiment, "e").parent
    for path in [folder, *folder.iterdir()]:
        os.utime(path, (when, when))


def test_cleanup_deletes_only_old_unnamed(tmp_path: Path) -> None:
    store = JSONLStorage(tmp_path / "store")
    for name in ("unnamed-20240101-000000-abcd", "unnamed-new", "named-old"):
        write(store, name, "e", [_ok(0, True)])
    _age(store, "unnamed-20240101-000000-abcd", 10)
    _age(store, "named-old", 30)
    dry = run(store, "cleanup", "--dry-run")
    assert "unnamed-20240101-000000-abcd" in dry.output
    assert "would delete 1" in dry.output
    assert len(store.list_experiments()) == 3
    result = run(store, "cleanup", "--yes")
    assert result.exit_code == 0, result.output
    assert store.list_experiments() == ["named-old", "unnamed-new"]
    assert "No unnamed experiments older than 7 days" in run(store, "cleanup").output


def test_cleanup_older_than_and_confirmation(tmp_path: Path) -> None:
    store = JSONLStorage(tmp_path / "store")
    write(store, "unnamed-a", "e", [_ok(0, True)])
    _age(store, "unnamed-a", 2)
    assert "No unnamed" in run(store, "cleanup").output
    refused = run(store, "cleanup", "--older-than", "1", input="n\n")
    assert refused.exit_code == 1
    assert store.list_experiments() == ["unnamed-a"]
    run(store, "cleanup", "--older-than", "1", input="y\n")
    assert store.list_experiments() == []


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["show", "delete", "rename"])
def test_missing_experiment_names_it_and_suggests(store: Storage, command: str) -> None:
    write(store, "gsm8k-baseline", "e", [_ok(0, True)])
    write(store, "other", "e", [_ok(0, True)])
    args = [command, "gsm8k-basline"] + (["x"] if command == "rename" else [])
    result = run(store, *args)
    assert result.exit_code in (1, 2)
    assert "no experiment 'gsm8k-basline'" in result.output
    assert "did you mean 'gsm8k-baseline'" in result.output
    assert "gsm8k-baseline, other" in result.output
    assert "Traceback" not in result.output


def test_missing_experiment_in_empty_store(tmp_path: Path) -> None:
    result = run(f"sqlite://{tmp_path / 'none.db'}", "show", "exp")
    assert result.exit_code == 1
    assert "no experiment 'exp'" in result.output
    assert not (tmp_path / "none.db").exists()  # reading never creates the database


def test_unknown_scheme_is_a_clean_error() -> None:
    result = run("nosuch://x", "list")
    assert result.exit_code == 2
    assert "unknown storage scheme 'nosuch'" in result.output
    assert "json://" in result.output
    assert "sqlite://" in result.output


def test_storage_error_is_a_clean_error(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not an sqlite database, just text" * 100)
    result = run(f"sqlite://{garbage}", "list")
    assert result.exit_code == 1
    assert "cannot" in result.output
    assert "Traceback" not in result.output


def test_unreadable_line_is_a_warning_on_stderr(tmp_path: Path) -> None:
    store = JSONLStorage(tmp_path / "store")
    write(store, "exp", "e", [_ok(0, True)])
    with store.path_of("exp", "e").open("ab") as f:
        f.write(b"{torn")
    result = run(store, "show", "exp")
    assert result.exit_code == 0
    assert "warning:" in result.stderr
    assert "1 rows, 0 errors" in result.stdout


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert dotevals.__version__ in result.output


def test_module_entry_point_in_a_subprocess(tmp_path: Path) -> None:
    store = JSONLStorage(tmp_path / "store")
    write(store, "smoke-exp", "e", MIXED)
    env = {**os.environ, "PYTHONPATH": SRC, "COLUMNS": "200"}
    command = [sys.executable, "-m", "dotevals.cli", "list", "--storage", store.url]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "smoke-exp" in done.stdout
    assert "has errors" in done.stdout


def test_show_reads_unusable_numbers_with_a_warning_not_a_traceback(store: Storage) -> None:
    damaged = [_ok(0, True), _ok(1, False)]
    damaged[1].attempts = math.inf  # type: ignore[assignment]  # an old or corrupt store's
    write(store, "exp", "e", damaged, summary={"total": math.inf, "errors": 0})
    result = run(store, "show", "exp")
    assert result.exit_code == 0, result.output
    assert "unusable numbers (attempts) read as their defaults" in result.stderr
    assert "2 rows, 0 errors" in result.stdout
