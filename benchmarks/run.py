"""dotevals benchmarks: ``python benchmarks/run.py`` (``--quick`` for a short run).

Every figure is printed as a ratio against a baseline measured in the same run:

* sync rows: a trivial evaluation returning a bare ``bool``, and one returning
  ``Result(exact_match(a, b))``, each against a plain loop that computes the same value and
  appends the same JSON line; per-row cost from the smallest to the largest size; peak memory;
* async rows awaiting 20 ms (a server without a knee), default settings, against the best
  plain ``asyncio`` loop (a semaphore at 8, 16, 32, 64 or 128);
* HTTP to the bundled test server (a real subprocess), default settings, against the best
  plain loop over the same concurrencies on the same client: the seed page's path (a user-built
  ``AsyncOpenAI``, the SDK's httpx transport), the built-in providers' path (aiohttp), and a
  server at capacity (32 requests served at once, the rest queued: the knee); then 10 % of
  requests answered 429 against the run without; then a cached re-run. Each HTTP run gets a
  fresh client (a pool left large by the run before would slow the next), and each figure is
  the fastest of two runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

import dotevals
from dotevals import Result, foreach
from dotevals.evaluators import exact_match
from dotevals.providers._client import import_openai, make_client
from dotevals.testing import ServerProcess

#: The fixed concurrencies of the plain-loop baselines.
LEVELS = (8, 16, 32, 64, 128)
#: Each HTTP figure, ours and the plain loops', is the fastest of this many runs (the run-to-run
#: spread of a one-second run on a small machine is about 10%).
TRIES = 2
#: Calls that warm a fresh client (connections, the SDK's lazy imports) before it is timed.
WARM_CALLS = 32


def ratio_line(label: str, ours: float, base: float, target: float, base_label: str) -> str:
    verdict = "ok" if ours / base <= target else "OVER"
    return (
        f"{label}: dotevals {ours:.3f} s | {base_label} {base:.3f} s | "
        f"ratio {ours / base:.2f}x (target <= {target}x) {verdict}"
    )


# -- sync rows -------------------------------------------------------------------------------


def _line(i: int, row: Any, score: dict[str, Any], duration: float) -> dict[str, Any]:
    """The JSON line dotevals stores for a row (the same keys, values and float widths)."""
    return {
        "item_id": i,
        "dataset_row": row,
        "prompt": None,
        "model_response": None,
        "scores": [score],
        "error": None,
        "timestamp": time.time(),
        "duration": duration,
        "attempts": 1,
    }


def plain_loop(n: int, path: Path, evaluator_path: bool) -> float:
    """The baseline: compute the same value, timed, and append the same JSON line per row."""
    rows = _match_rows(n)
    start = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    for i in range(n):
        began = time.perf_counter()
        if evaluator_path:
            a, b = rows[i]
            value, metadata, row = a == b, {"result": a, "expected": b}, list(rows[i])
            name = "exact_match"
        else:
            value, metadata, row, name = i % 2 == 0, {}, i, "trivial"
        score = {"name": name, "value": value, "metrics": ["accuracy"], "metadata": metadata}
        line = _line(i, row, score, time.perf_counter() - began)
        os.write(fd, (json.dumps(line) + "\n").encode())
    os.close(fd)
    return time.perf_counter() - start


def _match_rows(n: int) -> list[tuple[str, str]]:
    return [(str(i % 3), "1") for i in range(n)]


def sync_eval(n: int, evaluator_path: bool) -> Any:
    """A trivial evaluation over ``n`` rows: a bare bool, or ``Result(exact_match(a, b))``."""
    if evaluator_path:

        @foreach("a,b", _match_rows(n))
        def matched(a: str, b: str) -> Result:
            return Result(exact_match(a, b))

        return matched

    @foreach("x", range(n))
    def trivial(x: int) -> bool:
        return x % 2 == 0

    return trivial


def dotevals_sync(n: int, root: Path, evaluator_path: bool, name: str) -> float:
    fn = sync_eval(n, evaluator_path)
    start = time.perf_counter()
    dotevals.run(fn, experiment=name, storage=f"json://{root}", progress=False)
    return time.perf_counter() - start


def peak_memory(n: int, root: Path) -> float:
    """Peak memory of a run above its dataset (built before measuring), in KiB."""
    fn = sync_eval(n, True)
    tracemalloc.start()
    dotevals.run(fn, experiment="memory", storage=f"json://{root}", progress=False)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**10


def bench_sync(root: Path, sizes: list[int]) -> None:
    print("== sync rows (trivial evaluations), per row, against a plain loop ==")
    dotevals_sync(100, root / "warmup", True, "warmup")  # imports, git lookup: once a process
    for evaluator_path, label, target in ((False, "bare bool", 2.0), (True, "exact_match", 2.5)):
        per_row: dict[int, float] = {}
        for n in sizes:
            base = min(plain_loop(n, root / f"plain{n}-{i}.jsonl", evaluator_path) for i in (0, 1))
            ours = min(
                dotevals_sync(n, root, evaluator_path, f"s{label[0]}{n}-{i}") for i in (0, 1)
            )
            per_row[n] = ours / n
            print(
                f"  {label:>11} {n:>6} rows: {ours / n * 1e6:5.1f} us/row | plain loop "
                f"{base / n * 1e6:5.1f} us/row | ratio {ours / base:.2f}x (target <= {target}x)"
            )
        small, large = min(sizes), max(sizes)
        flat = per_row[large] / per_row[small]
        print(f"  {label:>11} per-row cost {large} vs {small} rows: {flat:.2f}x (target <= 1.1x)")
    small, large = min(sizes), max(sizes)
    mem_small = peak_memory(small, root / "m1")
    mem_large = peak_memory(large, root / "m2")
    print(
        f"  peak traced memory: {small} rows {mem_small:.0f} KiB, {large} rows {mem_large:.0f} KiB"
        f" | ratio {mem_large / mem_small:.2f}x (flat: target <= 1.5x)"
    )


# -- async and HTTP ----------------------------------------------------------------------------

Call = Callable[[int], Awaitable[Any]]


async def plain_asyncio(call: Call, n: int, concurrency: int) -> float:
    """The baseline: ``asyncio.gather`` under a semaphore, the same calls."""
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            await call(i)

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - start


async def best_plain(call: Call, n: int) -> tuple[float, int, str]:
    """The best plain-loop time over :data:`LEVELS`, its concurrency, and all timings."""
    timings = {level: await plain_asyncio(call, n, level) for level in LEVELS}
    return _best(timings)


def _best(timings: dict[int, float]) -> tuple[float, int, str]:
    best = min(timings, key=timings.__getitem__)
    shown = ", ".join(f"{level}: {took:.2f}" for level, took in timings.items())
    return timings[best], best, shown


async def ours(fn: Any, root: Path, name: str, **fixtures: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    results = await dotevals.run_async(
        fn, experiment=name, storage=f"json://{root}", progress=False, **fixtures
    )
    return time.perf_counter() - start, results


def reached(results: Any) -> str:
    history = results.report.concurrency
    return f"peak {max(limit for _, limit in history)}, final {history[-1][1]}"


async def bench_async(root: Path, n: int) -> None:
    async def call(i: int) -> bool:
        await asyncio.sleep(0.02)
        return True

    @foreach("i", range(n))
    async def sleepy(i: int) -> bool:
        return await call(i)

    took, results = await ours(sleepy, root, "async")
    base, level, shown = await best_plain(call, n)
    print(f"== {n} async rows awaiting 20 ms (no knee), default settings ==")
    print("  " + ratio_line("rows", took, base, 1.15, f"best plain loop (at {level})"))
    print(f"  concurrency {reached(results)}; plain loop by concurrency: {shown} s")


def http_eval(n: int) -> Any:
    prompts = [(f"What is {i} + {i % 7}?", str(i + i % 7)) for i in range(n)]

    @foreach("q,a", prompts)
    async def ask(q: str, a: str, client: Any) -> bool:
        response = await client.chat.completions.create(
            model="bench", messages=[{"role": "user", "content": q}]
        )
        return bool(response.choices[0].message.content == a)

    return ask


def http_call(client: Any) -> Call:
    async def call(i: int) -> Any:
        return await client.chat.completions.create(
            model="bench", messages=[{"role": "user", "content": f"What is {i} + {i % 7}?"}]
        )

    return call


Build = Callable[[ServerProcess], Any]


async def fresh(build: Build, server: ServerProcess) -> Any:
    """A new client with a few connections open, as a run's first rows find it.

    Every measurement gets its own: a pool left large by the previous one (httpx keeps idle
    connections 5 s, and scans them all on each request) would slow the next.
    """
    client = build(server)
    await plain_asyncio(http_call(client), WARM_CALLS, 8)
    return client


async def ours_fresh(build: Build, server: ServerProcess, n: int, root: Path, name: str) -> Any:
    """The faster of :data:`TRIES` default runs, each on a fresh client: (seconds, results)."""
    runs = []
    for i in range(TRIES):
        client = await fresh(build, server)
        runs.append(await ours(http_eval(n), root, f"{name}-{i}", client=client))
        await client.close()
    return min(runs, key=lambda run: run[0])


async def plain_fresh(build: Build, server: ServerProcess, n: int, level: int) -> float:
    """The faster of :data:`TRIES` plain loops at ``level``, each on a fresh client."""
    timings = []
    for _ in range(TRIES):
        client = await fresh(build, server)
        timings.append(await plain_asyncio(http_call(client), n, level))
        await client.close()
    return min(timings)


async def compare_http(label: str, build: Build, server: ServerProcess, n: int, root: Path) -> None:
    """Our default run against the best plain loop, each on a fresh client of ``build``."""
    took, results = await ours_fresh(build, server, n, root, label)
    timings = {level: await plain_fresh(build, server, n, level) for level in LEVELS}
    base, level, shown = _best(timings)
    errors = results.summary()["errors"]
    print(
        "  "
        + ratio_line(f"{label} ({errors} errors)", took, base, 1.15, f"best plain (at {level})")
    )
    print(f"    concurrency {reached(results)}; plain loop by concurrency: {shown} s")


def seed_client(server: ServerProcess) -> Any:
    """What the seed page's provider builds: ``AsyncOpenAI(...)``, the SDK's own transport."""
    return import_openai().AsyncOpenAI(base_url=server.base_url, api_key="x")


def builtin_client(server: ServerProcess) -> Any:
    """What the built-in providers hand out (aiohttp when installed, no SDK retries)."""
    return make_client("bench", base_url=server.base_url, api_key="x")


async def bench_http(root: Path, n: int) -> None:
    print(f"== {n} HTTP rows to the test server (a subprocess), default settings ==")
    with ServerProcess(latency=0.02) as server:
        await compare_http("seed path (httpx)", seed_client, server, n, root)
        await compare_http("built-in (aiohttp)", builtin_client, server, n, root)
        clean, _ = await ours_fresh(builtin_client, server, n, root, "clean")
    with ServerProcess(latency=0.1, extra_args=["--capacity", "32"]) as server:
        await compare_http("server at capacity 32, 100 ms", builtin_client, server, n, root)
    with ServerProcess(latency=0.02, error_rate=0.1) as server:
        runs = []
        for i in range(TRIES):
            client = builtin_client(server)  # warming it would meet the 429s
            runs.append(await ours(http_eval(n), root, f"http429-{i}", client=client))
            await client.close()
        throttled, results = min(runs, key=lambda run: run[0])
    summary = results.summary()
    lost = n - summary["total"] + summary["errors"]
    print("  " + ratio_line(f"10% HTTP 429 ({lost} rows lost)", throttled, clean, 1.5, "no 429"))
    await bench_cache(root, n)


async def server_requests(server: ServerProcess) -> int:
    async with httpx.AsyncClient() as http:
        stats = (await http.get(f"{server.url}/stats")).json()
    return int(stats["by_path"].get("/v1/chat/completions", 0))


async def bench_cache(root: Path, n: int) -> None:
    from dotevals import cache

    cache.configure(root / "cache.sqlite")
    try:
        with ServerProcess(latency=0.02) as server:
            client = builtin_client(server)
            first, _ = await ours(http_eval(n), root, "cache1", client=client)
            before = await server_requests(server)
            second, _ = await ours(http_eval(n), root, "cache2", client=client)
            hits = await server_requests(server) - before
            await client.close()
    finally:
        cache.configure(None)
    print(
        f"  cached re-run: {second:.2f} s vs first run {first:.2f} s: {first / second:.1f}x "
        f"faster (target >= 10x); requests reaching the server: {hits}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--only", choices=("sync", "async", "http"), help="one section")
    args = parser.parse_args()
    sizes = [1000, 4000] if args.quick else [5000, 20000, 40000]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.only in (None, "sync"):
            bench_sync(root, sizes)
        if args.only in (None, "async"):
            asyncio.run(bench_async(root, 500 if args.quick else 2000))
        if args.only in (None, "http"):
            asyncio.run(bench_http(root, 200 if args.quick else 1000))


if __name__ == "__main__":
    main()
