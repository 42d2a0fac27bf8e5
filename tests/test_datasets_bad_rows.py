"""Bad rows are data: the engine records a loader's BadRow as that row's error, runs the others,
and a resume after the file is fixed retries it."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import dotevals
from dotevals import foreach
from dotevals.datasets import jsonl, parquet

GOOD = ['{"problem": "1+1", "solution": "2"}', '{"problem": "2+3", "solution": "5"}']


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


#: A project that sets its loop scope, so pytest-asyncio has nothing to warn about.
INI = "[pytest]\nasyncio_default_fixture_loop_scope = session\n"


def test_a_malformed_line_is_its_rows_error_and_a_resume_after_the_fix_retries_it(
    tmp_path: Path,
) -> None:
    path = write_lines(tmp_path / "data.jsonl", [GOOD[0], '{"problem": "3+4", ', GOOD[1]])
    called: list[str] = []

    @foreach("question,answer", jsonl(path, columns={"question": "problem", "answer": "solution"}))
    def eval_math(question: str, answer: str) -> bool:
        called.append(question)
        return answer.isdigit()

    storage = f"json://{tmp_path / 'store'}"
    first = dotevals.run(eval_math, experiment="e", storage=storage, progress=False)
    assert called == ["1+1", "2+3"]
    records = {r.item_id: r for r in first.records}
    assert not records[0].is_error and not records[2].is_error
    error = records[1].error
    assert error is not None
    assert error.type == "BadRow"
    assert f"{path}, line 2: not a JSON line" in error.message
    assert records[1].dataset_row == {"source": str(path), "location": "line 2"}
    assert first.summary()["errors"] == 1

    write_lines(path, [GOOD[0], '{"problem": "3+4", "solution": "7"}', GOOD[1]])
    called.clear()
    second = dotevals.run(eval_math, experiment="e", storage=storage, progress=False)
    assert called == ["3+4"]
    assert [r.is_error for r in second.records] == [False, False, False]
    assert second.records[1].dataset_row == {"question": "3+4", "answer": "7"}


def test_parquet_rows_run_through_an_evaluation(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"x": list(range(6))}), path, row_group_size=3)

    @foreach("x", parquet(path))
    def eval_even(x: int) -> bool:
        return x % 2 == 0

    results = dotevals.run(eval_even, experiment="p", storage=f"json://{tmp_path}", progress=False)
    assert [r.scores[0].value for r in results.records] == [True, False] * 3


EVAL_FILE = """
from dotevals import foreach
from dotevals.datasets import jsonl

@foreach("problem,solution", jsonl({path!r}))
def eval_lines(problem, solution):
    return solution == "2"
"""


def test_under_pytest_a_bad_row_is_counted_not_a_failure(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    path = write_lines(tmp_path / "data.jsonl", [GOOD[0], "not json", GOOD[1]])
    pytester.makepyfile(eval_lines=EVAL_FILE.format(path=str(path)))
    pytester.makeini(INI)
    result = pytester.runpytest("--experiment", "bad")
    result.assert_outcomes(passed=1)
    stored = pytester.path / ".dotevals" / "bad" / "eval_lines.jsonl"
    errors = [
        json.loads(line)["error"]
        for line in stored.read_text().splitlines()
        if json.loads(line).get("error")
    ]
    assert len(errors) == 1
    assert errors[0]["type"] == "BadRow"
    assert "line 2" in errors[0]["message"]
