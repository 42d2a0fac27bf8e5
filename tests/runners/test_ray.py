"""The Ray runner on a real local Ray cluster (one per module, two CPUs): sharding, resume,
an actor killed mid-run, models rebuilt on the actors, the rebuild error and the lock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dotevals
from dotevals.errors import ConfigurationError, EvaluationLockedError
from dotevals.runners import ModelRecipe
from dotevals.runners.ray import RayRunner
from dotevals.storage import open_storage
from dotevals.testing import ServerProcess
from runners import ray_evals  # the module, not its evaluations: those would be collected

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict[str, str]]:
    """A local cluster; its value is what a subprocess needs to join it (RAY_ADDRESS)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    # pytester moves HOME; joining needs the cluster's token under the real one
    yield {"RAY_ADDRESS": ray.get_runtime_context().gcs_address, "HOME": os.environ["HOME"]}
    ray.shutdown()


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"json://{tmp_path / '.dotevals'}"


def _store_lines(url: str, experiment: str, evaluation: str) -> list[dict[str, Any]]:
    path = Path(url.removeprefix("json://")) / experiment / f"{evaluation}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def _record_counts(url: str, experiment: str, evaluation: str) -> Counter[int]:
    lines = _store_lines(url, experiment, evaluation)
    return Counter(e["item_id"] for e in lines if "item_id" in e)


def test_rows_are_sharded_over_the_actors_and_completed_rows_never_sent(
    cluster: object, store: str, tmp_path: Path
) -> None:
    calls = tmp_path / "calls.txt"
    dotevals.run(
        ray_evals.where_rows_ran, "shard", samples=20, storage=store, progress=False, calls=calls
    )
    calls.write_text("")

    runner = RayRunner(workers=2, chunk_size=10)
    results = dotevals.run(
        ray_evals.where_rows_ran, "shard", storage=store, progress=False, runner=runner, calls=calls
    )

    assert Counter(int(x) for x in calls.read_text().split()) == Counter(range(20, 60))
    assert [r.item_id for r in results] == list(range(60))
    actor_pids = {r.model_response for r in results.records[20:]}
    assert len(actor_pids) == 2 and os.getpid() not in actor_pids
    assert results.summary()["metrics"] == {"even": {"accuracy": 0.5}}
    assert _record_counts(store, "shard", "where_rows_ran") == Counter(range(60))
    assert _store_lines(store, "shard", "where_rows_ran")[-1]["type"] == "summary"

    again = dotevals.run(
        ray_evals.where_rows_ran, "again", storage=store, progress=False, runner=runner, calls=calls
    )
    assert {r.model_response for r in again} == actor_pids  # the same actors, kept
    runner.close()
    assert runner.actors == []


def test_rows_of_a_killed_actor_run_elsewhere_and_stored_ones_never_again(
    cluster: object, store: str, tmp_path: Path
) -> None:
    calls = tmp_path / "calls.txt"
    runner = RayRunner(workers=2, chunk_size=8)
    results = dotevals.run(
        ray_evals.dies_once, "kill", storage=store, progress=False, runner=runner, calls=calls
    )

    assert (tmp_path / "killed").exists() and runner.deaths == 1
    assert [r.item_id for r in results] == list(range(40))
    assert all(r.error is None for r in results)
    # one record per row: no row whose record was stored ran again and was stored again
    assert _record_counts(store, "kill", "dies_once") == Counter(range(40))
    ran = Counter(int(x) for x in calls.read_text().split())
    assert set(ran) == set(range(40)) and ran[25] == 2  # the row in flight at the kill
    runner.close()


def test_a_sync_batch_evaluation_runs_on_the_actors(cluster: object, store: str) -> None:
    results = dotevals.run(
        ray_evals.multiples_of_three, "b", storage=store, progress=False, runner="ray"
    )
    assert [r.item_id for r in results] == list(range(30))
    assert [r.scores[0].value for r in results] == [x % 3 == 0 for x in range(30)]
    assert results.summary()["errors"] == 0


def test_a_model_recipe_is_set_up_on_each_actor(cluster: object, store: str) -> None:
    with ServerProcess() as server:
        config = {"base_url": server.base_url, "api_key": "sk-not-shown"}
        recipe = ModelRecipe("openai", "test-model", config)
        results = dotevals.run(
            ray_evals.asks_model,
            "m",
            storage=store,
            progress=False,
            runner="ray",
            workers=2,
            model=recipe,
        )
        assert server.stats()["requests"] == 2
    assert [r.error for r in results] == [None, None]
    assert results.summary()["metrics"]["asks_model"]["accuracy"] == 1.0
    assert "sk-not-shown" not in repr(recipe)


def test_a_fixture_that_cannot_be_rebuilt_is_named_with_the_fix(
    cluster: object, store: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        dotevals.run(
            ray_evals.where_rows_ran,
            "bad",
            storage=store,
            progress=False,
            runner="ray",
            calls=threading.Lock(),
        )
    message = str(caught.value)
    assert "fixture 'calls' (lock) cannot be rebuilt on a Ray worker" in message
    assert "dotevals.runners.rebuildable(" in message and "ModelRecipe(" in message
    assert _record_counts(store, "bad", "where_rows_ran") == Counter()  # no row was sent

    with pytest.raises(ConfigurationError, match="no model provider 'nosuch' is installed"):
        dotevals.run(
            ray_evals.asks_model,
            "bad",
            storage=store,
            progress=False,
            runner="ray",
            model=ModelRecipe("nosuch", "m"),
        )


def test_the_ray_driver_holds_the_evaluation_lock(
    cluster: object, store: str, tmp_path: Path
) -> None:
    calls = tmp_path / "calls.txt"
    box: dict[str, Any] = {}

    def drive() -> None:
        box["results"] = dotevals.run(
            ray_evals.waits_for_go, "lk", storage=store, progress=False, runner="ray", calls=calls
        )

    driver = threading.Thread(target=drive)
    driver.start()
    deadline = time.monotonic() + 60
    while not (tmp_path / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(EvaluationLockedError, match=f"being run by pid {os.getpid()}"):
        dotevals.run(ray_evals.waits_for_go, "lk", storage=store, progress=False, calls=calls)
    (tmp_path / "go").touch()
    driver.join(timeout=60)
    assert len(box["results"]) == 4


SLOW_EVAL = """
import asyncio
from pathlib import Path
import pytest
from dotevals import foreach

@pytest.fixture
def calls():
    return Path("calls.txt").resolve()  # actors run elsewhere: an absolute path

@foreach("x", range(300))
async def eval_slow(x, calls):
    with calls.open("a") as f:
        f.write(f"{x}\\n")
    await asyncio.sleep(0.02)
    return x % 3 == 0
"""


def _pytest_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]


def test_pytest_driver_killed_then_rerun_stores_each_row_once(
    cluster: dict[str, str], pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(eval_slow=SLOW_EVAL)
    env = {**os.environ, **cluster}
    cmd = _pytest_cmd("eval_slow.py", "--experiment", "k", "--dotevals-runner", "ray")
    cmd += ["--ray-workers", "2", "--concurrency", "4", "-q"]
    proc = subprocess.Popen(
        cmd, cwd=pytester.path, env=env, stdout=subprocess.DEVNULL, start_new_session=True
    )
    store = f"json://{pytester.path / '.dotevals'}"
    path = pytester.path / ".dotevals" / "k" / "eval_slow.jsonl"
    deadline = time.monotonic() + 90
    while not (path.exists() and len(_record_counts(store, "k", "eval_slow")) >= 40):
        assert proc.poll() is None and time.monotonic() < deadline, "no rows stored in time"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    stored = set(_record_counts(store, "k", "eval_slow"))
    assert 40 <= len(stored) < 300
    (pytester.path / "calls.txt").write_text("")

    again = pytester.runpytest(*cmd[cmd.index("eval_slow.py") :])  # in this process: faster
    again.assert_outcomes(passed=1)
    again.stdout.fnmatch_lines(["*eval_slow*300/300*"])
    ran = Counter(int(x) for x in (pytester.path / "calls.txt").read_text().split())
    assert not stored & set(ran), "a stored row ran again"
    assert set(ran) == set(range(300)) - stored
    assert _record_counts(store, "k", "eval_slow") == Counter(range(300))  # each row once


def test_ray_runner_without_ray_names_the_extra(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("import sys\nsys.modules['ray'] = None  # as if not installed\n")
    pytester.makepyfile(eval_slow=SLOW_EVAL)
    result = pytester.runpytest_subprocess("--dotevals-runner", "ray", "eval_slow.py")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert '--dotevals-runner: the Ray runner needs Ray: pip install "dotevals[ray]"' in str(
        result.stderr
    )


PROVIDER_EVAL = """
import os
import pytest
from dotevals import foreach

@pytest.fixture
async def model(openai_provider):
    handle = await openai_provider.setup(
        "test-model", base_url=os.environ["TEST_SERVER_URL"], api_key="unused"
    )
    yield handle.model
    await handle.teardown()

@foreach("question", ["What is 2 + 2?", "Name a colour.", "Say hi."])
async def eval_provider(question, model):
    reply = await model.chat.completions.create(
        model=model.model, messages=[{"role": "user", "content": question}]
    )
    return bool(reply.choices[0].message.content)
"""


def test_a_model_from_the_session_provider_is_rebuilt_on_the_actors(
    cluster: dict[str, str], pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(eval_provider=PROVIDER_EVAL)
    with ServerProcess() as server, pytest.MonkeyPatch.context() as patch:
        patch.setenv("TEST_SERVER_URL", server.base_url)
        result = pytester.runpytest("--experiment", "p", "--dotevals-runner", "ray")
        result.assert_outcomes(passed=1)
        # a client does not pickle: without its recipe the run would stop before any row
        assert server.stats()["requests"] == 3
    store = f"json://{pytester.path / '.dotevals'}"
    assert _record_counts(store, "p", "eval_provider") == Counter(range(3))


MODEL_OPTION_EVAL = """
from dotevals import foreach

@foreach("question", ["What is 2 + 3?", "What is 1 + 1?"])
async def eval_local(question, model):
    reply = await model.chat.completions.create(
        model=model.model, messages=[{"role": "user", "content": question}]
    )
    return bool(reply.choices[0].message.content)
"""


def test_a_model_option_is_set_up_on_the_actors_not_the_driver(
    cluster: object, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(eval_local=MODEL_OPTION_EVAL)
    args = ["--model", "local:test-model", "--dotevals-runner", "ray", "--experiment", "lm"]
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=1)
    stored = open_storage(f"json://{pytester.path / '.dotevals'}").load(
        "lm", "eval_local[local:test-model]"
    )
    assert sorted(stored.records) == [0, 1] and stored.errors == 0
    # the driver started no server of its own (it would log under its store)
    assert not (pytester.path / ".dotevals" / "logs").exists()
