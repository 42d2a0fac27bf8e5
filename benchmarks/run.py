"""dotevals benchmarks: ``python benchmarks/run.py`` (add ``--quick`` for a short run).

Every figure is printed next to a baseline measured in the same run:

* sync overhead: a trivial evaluation through ``dotevals.run`` against a plain Python loop
  that writes the same JSON line per row; per-row cost at 5k/20k/40k rows and peak memory;
* async: 2000 rows that each await 20 ms, default settings;
* HTTP: rows through the openai SDK to the local test server (20 ms latency), against a plain
  asyncio loop with a semaphore at the concurrency our run reached; with 10% HTTP 429; and a
  cached re-run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dotevals
from dotevals import foreach
from dotevals.providers._client import make_client
from dotevals.testing import ServerProcess


def plain_loop(n: int, path: Path) -> float:
    """The baseline: call a function and append one JSON line per row."""
    start = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    for i in range(n):
        value = i % 2 == 0
        line = {"item_id": i, "dataset_row": [i], "scores": [{"name": "s", "value": value}]}
        os.write(fd, (json.dumps(line) + "\n").encode())
    os.close(fd)
    return time.perf_counter() - start


def dotevals_sync(n: int, root: Path) -> float:
    @foreach("x", range(n))
    def trivial(x: int) -> bool:
        return x % 2 == 0

    start = time.perf_counter()
    dotevals.run(trivial, experiment=f"sync{n}", storage=f"json://{root}", progress=False)
    return time.perf_counter() - start


def peak_memory(fn: Callable[[], Any]) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def bench_sync(root: Path, sizes: list[int]) -> None:
    print("== sync per-row overhead (trivial evaluation) ==")
    dotevals_sync(100, root / "warmup")  # imports, git lookup: paid once per process
    per_row: dict[int, float] = {}
    for n in sizes:
        base = plain_loop(n, root / f"plain{n}.jsonl")
        ours = dotevals_sync(n, root)
        per_row[n] = ours / n
        print(
            f"{n:>6} rows: dotevals {n / ours:>9,.0f} rows/s ({ours / n * 1e6:5.1f} us/row)"
            f" | plain loop {base / n * 1e6:5.1f} us/row | ratio {ours / base:4.1f}x"
        )
    small, large = min(sizes), max(sizes)
    print(f"per-row cost {large} vs {small} rows: {per_row[large] / per_row[small]:.2f}x")
    mem_small = peak_memory(lambda: dotevals_sync(small, root / "mem_small"))
    mem_large = peak_memory(lambda: dotevals_sync(large, root / "mem_large"))
    print(f"peak traced memory: {small} rows {mem_small:.1f} MB, {large} rows {mem_large:.1f} MB")


def bench_async(root: Path, n: int) -> None:
    @foreach("x", range(n))
    async def sleepy(x: int) -> bool:
        await asyncio.sleep(0.02)
        return True

    start = time.perf_counter()
    dotevals.run(sleepy, experiment="async", storage=f"json://{root}", progress=False)
    took = time.perf_counter() - start

    async def baseline() -> None:
        sem = asyncio.Semaphore(256)

        async def one() -> None:
            async with sem:
                await asyncio.sleep(0.02)

        await asyncio.gather(*(one() for _ in range(n)))

    start = time.perf_counter()
    asyncio.run(baseline())
    base = time.perf_counter() - start
    print("== async rows awaiting 20 ms (default settings) ==")
    print(f"{n} rows: dotevals {took:.2f} s | gather+semaphore(256) {base:.2f} s")


def http_eval(n: int) -> Any:
    prompts = [(f"What is {i} + {i % 7}?", str(i + i % 7)) for i in range(n)]

    @foreach("q,a", prompts)
    async def ask(q: str, a: str, client: Any) -> bool:
        response = await client.chat.completions.create(
            model=client.model, messages=[{"role": "user", "content": q}]
        )
        return bool(response.choices[0].message.content == a)

    return ask


def run_http(server: ServerProcess, n: int, root: Path, name: str) -> tuple[float, Any]:
    async def go() -> tuple[float, Any]:
        client = make_client("bench", base_url=server.base_url, api_key="x")
        start = time.perf_counter()
        results = await dotevals.run_async(
            http_eval(n), experiment=name, storage=f"json://{root}", progress=False, client=client
        )
        took = time.perf_counter() - start
        await client.close()
        return took, results

    return asyncio.run(go())


def plain_http(server: ServerProcess, n: int, concurrency: int) -> float:
    async def go() -> float:
        client = make_client("bench", base_url=server.base_url, api_key="x", max_retries=5)
        sem = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with sem:
                await client.chat.completions.create(
                    model="bench", messages=[{"role": "user", "content": f"What is {i} + 1?"}]
                )

        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        took = time.perf_counter() - start
        await client.close()
        return took

    return asyncio.run(go())


def bench_http(root: Path, n: int) -> None:
    print("== HTTP through the openai SDK, local server with 20 ms latency ==")
    with ServerProcess(latency=0.02) as server:
        ours, results = run_http(server, n, root, "http")
        reached = max(limit for _, limit in results.report.concurrency)
        base = plain_http(server, n, reached)
        print(
            f"{n} rows: dotevals {ours:.2f} s | plain asyncio loop at concurrency {reached}: "
            f"{base:.2f} s | ratio {ours / base:.2f}x"
        )
    with ServerProcess(latency=0.02, error_rate=0.1, error_status=429) as server:
        throttled, results = run_http(server, n, root, "http429")
        errors = results.summary()["errors"]
        print(
            f"{n} rows with 10% HTTP 429: {throttled:.2f} s ({errors} errors) | "
            f"ratio to no-429 run {throttled / ours:.2f}x"
        )
    bench_cache(root, n)


def bench_cache(root: Path, n: int) -> None:
    from dotevals import cache

    with ServerProcess(latency=0.02) as server:
        cache.configure(root / "cache.sqlite")
        try:
            first, _ = run_http(server, n, root, "cache1")
            server.reset_stats()
            second, _ = run_http(server, n, root, "cache2")
            requests = server.stats()["requests"]
        finally:
            cache.configure(None)
    print(
        f"cached re-run of {n} rows: {second:.2f} s vs first run {first:.2f} s "
        f"({first / second:.1f}x faster), requests reaching the server: {requests}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    args = parser.parse_args()
    sizes = [1000, 4000] if args.quick else [5000, 20000, 40000]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bench_sync(root, sizes)
        bench_async(root, 500 if args.quick else 2000)
        bench_http(root, 200 if args.quick else 1000)


if __name__ == "__main__":
    main()
