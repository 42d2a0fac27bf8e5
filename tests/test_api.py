"""dotevals.run / run_async: the same engine without pytest."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import dotevals
from dotevals import Result, Score, foreach
from dotevals.errors import ConfigurationError
from dotevals.evaluators import exact_match
from dotevals.metrics import mean

ROWS = [{"q": "1+1", "a": "2", "extra": 0}, {"q": "2+2", "a": "5", "extra": 1}]


@foreach("q,a", ROWS)
def sync_eval(q: str, a: str, model: object) -> Result:
    return Result(exact_match(str(eval(q)), a), prompt=q, model_response=str(eval(q)))


@foreach(["q", "a"], ROWS)
async def async_eval(q: str, a: str) -> Score:
    await asyncio.sleep(0)
    return Score("len", len(q), [mean()])


def test_run_returns_results(tmp_path: Path) -> None:
    results = dotevals.run(
        sync_eval, experiment="api", storage=f"json://{tmp_path}", progress=False, model=None
    )
    assert len(results) == 2
    assert results[0].model_response == "2"
    assert results.summary() == {
        "total": 2,
        "errors": 0,
        "metrics": {"exact_match": {"accuracy": 0.5}},
    }
    assert [r.item_id for r in results] == [0, 1]


def test_run_resumes_the_same_experiment(tmp_path: Path) -> None:
    storage = f"json://{tmp_path}"
    dotevals.run(async_eval, experiment="again", storage=storage, progress=False)
    second = dotevals.run(async_eval, experiment="again", storage=storage, progress=False)
    assert second.report.ran == 0
    assert second.summary()["metrics"] == {"len": {"mean": 3.0}}


async def test_run_inside_a_running_loop(tmp_path: Path) -> None:
    results = dotevals.run(async_eval, storage=f"json://{tmp_path}", progress=False)
    assert len(results) == 2
    direct = await dotevals.run_async(async_eval, storage=f"json://{tmp_path}", progress=False)
    assert direct.summary()["total"] == 2


def test_missing_fixture_values_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"needs values for \['model'\]"):
        dotevals.run(sync_eval, storage=f"json://{tmp_path}")


def test_public_names() -> None:
    assert set(dotevals.__all__) >= {
        "foreach",
        "batch",
        "ForEach",
        "Batch",
        "Result",
        "Score",
        "run",
        "run_async",
        "__version__",
    }
    for name in dotevals.__all__:
        assert hasattr(dotevals, name)
