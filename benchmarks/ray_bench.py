"""The Ray runner on a local cluster: ``python benchmarks/ray_bench.py`` (``--quick``: fewer rows).

A latency-bound evaluation: each row asks the local test server (a real subprocess answering
after 50 ms) through the ``openai`` provider's client, which every actor sets up from a recipe.
Each actor runs at most ``--concurrency`` rows at once (4), so the workers, not one event loop,
are the limit. Printed, all measured in this run:

* throughput of 2 actors against 1 actor (target >= 1.6x);
* the cost per row beyond the 50 ms / concurrency floor, for the Ray runner and for the
  in-process engine at the same concurrency;
* an actor ended with ``ray.kill`` mid-run: rows lost, and rows stored twice (both must be 0).

Needs ``pip install "dotevals[ray,openai]"``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import ray

import dotevals
from dotevals import foreach
from dotevals.runners import ModelRecipe
from dotevals.runners.ray import RayRunner
from dotevals.storage import open_storage
from dotevals.testing import ServerProcess

LATENCY = 0.05


def make_eval(n: int, concurrency: int) -> Any:
    @foreach("question", [f"What is {i} + 1?" for i in range(n)], concurrency=concurrency)
    async def ask(question: str, model: Any) -> bool:
        reply = await model.chat.completions.create(
            model=model.model, messages=[{"role": "user", "content": question}]
        )
        return bool(reply.choices[0].message.content)

    return ask


async def timed(evaluation: Any, experiment: str, store: str, **kwargs: Any) -> float:
    start = time.perf_counter()
    results = await dotevals.run_async(
        evaluation, experiment, storage=store, progress=False, **kwargs
    )
    elapsed = time.perf_counter() - start
    assert results.summary()["errors"] == 0, results.summary()
    return elapsed


def record_counts(store: str, experiment: str, name: str) -> Counter[int]:
    entries = open_storage(store).iter_entries(experiment, name)
    return Counter(e["item_id"] for e in entries if e.get("type", "record") == "record")


async def bench_kill(evaluation: Any, store: str, recipe: ModelRecipe, n: int) -> None:
    runner = RayRunner(workers=2, keep_actors=False)

    def kill_one() -> None:
        while len(record_counts(store, "kill", "ask")) < n // 4:
            time.sleep(0.01)
        while not runner.actors:
            time.sleep(0.01)
        ray.kill(runner.actors[0])

    killer = threading.Thread(target=kill_one)
    killer.start()
    await timed(evaluation, "kill", store, runner=runner, model=recipe)
    killer.join()
    counts = record_counts(store, "kill", "ask")
    lost = n - len(counts)
    twice = sum(1 for c in counts.values() if c > 1)
    print(
        f"actor killed after {n // 4} rows: actors died {runner.deaths}, rows lost {lost}, "
        f"rows stored twice {twice} (target 0 and 0)"
    )


async def on_ray(
    workers: int, evaluation: Any, store: str, recipe: ModelRecipe, concurrency: int
) -> tuple[float, float]:
    """(seconds of a first, 20-row run that starts the actors; seconds of the timed run)."""
    runner = RayRunner(workers=workers)
    try:
        small = make_eval(20, concurrency)
        cold = await timed(small, f"start{workers}", store, runner=runner, model=recipe)
        warm = await timed(evaluation, f"ray{workers}", store, runner=runner, model=recipe)
    finally:
        await runner.aclose()
    return cold, warm


async def measure(n: int, concurrency: int) -> None:
    evaluation = make_eval(n, concurrency)
    floor = LATENCY / concurrency  # seconds per row that one worker cannot go below
    with ServerProcess(latency=LATENCY) as server, tempfile.TemporaryDirectory() as tmp:
        store = f"json://{Path(tmp) / '.dotevals'}"
        config = {"base_url": server.base_url, "api_key": "unused"}
        recipe = ModelRecipe("openai", "test-model", config)
        handle = await recipe.setup()  # the in-process engine gets a live client
        local = await timed(evaluation, "local", store, model=handle.model)
        await handle.teardown()
        cold1, one = await on_ray(1, evaluation, store, recipe, concurrency)
        cold2, two = await on_ray(2, evaluation, store, recipe, concurrency)
        print(f"== Ray runner: {n} rows, {LATENCY * 1e3:.0f} ms latency, {concurrency}/actor ==")
        print("(actors started by a first 20-row run, then kept: as in a pytest session)")
        for label, secs, workers in (
            ("in-process", local, 1),
            ("Ray 1 actor", one, 1),
            ("Ray 2 actors", two, 2),
        ):
            over = (secs / n - floor / workers) * 1e3
            print(f"{label:<13}: {n / secs:6.1f} rows/s, {over:5.2f} ms/row over the floor")
        print(f"2 actors vs 1: {one / two:4.2f}x throughput (target >= 1.6x)")
        print(f"first 20-row run, actors starting: 1 actor {cold1:.1f} s, 2 actors {cold2:.1f} s")
        await bench_kill(evaluation, store, recipe, n)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 rows instead of 400")
    parser.add_argument("--concurrency", type=int, default=4, help="rows in flight per actor")
    args = parser.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        asyncio.run(measure(200 if args.quick else 400, args.concurrency))
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
