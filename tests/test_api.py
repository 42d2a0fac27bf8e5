"""dotevals.run / run_async: the same engine without pytest."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import dotevals
from dotevals import Result, Score, foreach
from dotevals.errors import ConfigurationError
from dotevals.evaluators import exact_match
from dotevals.metrics import mean
from stores import records

ROWS = [{"q": "1+1", "a": "2", "extra": 0}, {"q": "2+2", "a": "5", "extra": 1}]


@foreach("q,a", ROWS)
def sync_eval(q: str, a: str, model: object) -> Result:
    return Result(exact_match(str(eval(q)), a), prompt=q, model_response=str(eval(q)))


sync_eval.__test__ = False  # run by the tests through dotevals.run, not collected


@foreach(["q", "a"], ROWS)
async def async_eval(q: str, a: str) -> Score:
    await asyncio.sleep(0)
    return Score("len", len(q), [mean()])


async_eval.__test__ = False  # run by the tests through dotevals.run, not collected


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


def test_one_client_serves_several_runs(tmp_path: Path) -> None:
    from dotevals.api import _run_on_thread_loop
    from dotevals.providers._client import make_client
    from dotevals.testing import ServerProcess

    @foreach("q", [("What is 1 + 1?",), ("What is 2 + 2?",)])
    async def ask(q: str, client: Any) -> bool:
        reply = await client.chat.completions.create(
            model=client.model, messages=[{"role": "user", "content": q}]
        )
        return reply.choices[0].message.content in {"2", "4"}

    with ServerProcess() as server:
        client = make_client("m", base_url=server.base_url, api_key="x")  # outside any loop
        storage = f"json://{tmp_path}"
        for n in range(3):
            results = dotevals.run(ask, experiment=f"e{n}", storage=storage, client=client)
            assert [r.error for r in results] == [None, None]
            assert results.summary()["metrics"] == {"ask": {"accuracy": 1.0}}
        _run_on_thread_loop(client.close)  # on the loop its connections belong to


SLOW_SCRIPT = """
import asyncio, dotevals
from dotevals import foreach

@foreach("x", range(2000), concurrency=4)
async def eval_slow(x):
    await asyncio.sleep(0.05)
    return True

dotevals.run(eval_slow, experiment="int", progress=False)
"""


def test_ctrl_c_stops_a_script_run_with_its_rows_stored(tmp_path: Path) -> None:
    (tmp_path / "script.py").write_text(SLOW_SCRIPT)
    store = tmp_path / ".dotevals" / "int" / "eval_slow.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "script.py"], cwd=tmp_path, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
        store.exists() and len(records(tmp_path, "int", "eval_slow")) >= 20
    ):
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err, err
    lines = [json.loads(line) for line in store.read_text().splitlines()]
    assert lines[-1]["type"] == "summary"  # the run closed its store on the way out
    stored = records(tmp_path, "int", "eval_slow")
    assert 20 <= len(stored) < 2000
    assert all(r["error"] is None for r in stored.values())
