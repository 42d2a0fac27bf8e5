"""Dataset loaders: ``python benchmarks/datasets_bench.py`` (``--rows N`` for a shorter run).

A JSONL file and a parquet file of 1 000 000 rows (and of 10 000 rows) are streamed through a
trivial evaluation (``dotevals.run``), each run in a fresh process, and its peak resident
memory is printed: it must stay flat (the large run within 20 MB of the small one). The
loaders' own cost per row is printed beside a plain ``for line in file: json.loads(line)``
loop over the same JSONL file, measured in the same run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import dotevals
from dotevals import foreach
from dotevals.datasets import jsonl, parquet

SMALL = 10_000
#: Rows per row group of the parquet files.
GROUP_ROWS = 10_000
#: The most the large run's peak memory may exceed the small run's, in MB.
FLAT_MB = 20.0


def row(i: int) -> dict[str, Any]:
    return {"question": f"What is {i} + {i % 7}?", "answer": str(i + i % 7), "id": i}


def write_files(root: Path, n: int) -> dict[str, Path]:
    """A JSONL file and parquet files of ``n`` rows.

    ``parquet``: row groups of 10 000 rows (the Hugging Face ``datasets`` library writes 1 000);
    ``parquet-1-group``: all rows in one row group, the most pyarrow's writer puts in one
    (1 048 576), to show that memory is bounded by what Arrow decodes of one row group.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    lines = root / f"rows{n}.jsonl"
    with lines.open("w") as f:
        for i in range(n):
            f.write(json.dumps(row(i)) + "\n")
    paths = {"jsonl": lines}
    table = pa.Table.from_pylist([row(i) for i in range(n)])
    for fmt, group in (("parquet", GROUP_ROWS), ("parquet-1-group", n)):
        paths[fmt] = root / f"rows{n}-{group}.parquet"
        pq.write_table(table, paths[fmt], row_group_size=group)
    return paths


def loader(fmt: str, path: Path) -> Iterable[Any]:
    return jsonl(path) if fmt == "jsonl" else parquet(path)  # parquet-1-group: parquet too


def rss_mb() -> float:
    """This process's resident memory now, in MB (Linux ``/proc``)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakSampler(threading.Thread):
    """The highest resident memory seen while it runs, sampled every 5 ms."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = rss_mb()
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.005):
            self.peak = max(self.peak, rss_mb())


def child(fmt: str, path: Path, store: Path) -> None:
    """Run the trivial evaluation over the file; print seconds and peak RSS (MB) as JSON."""
    importlib.import_module("json" if fmt == "jsonl" else "pyarrow.parquet")  # not timed

    @foreach("question,answer", loader(fmt, path))
    def trivial(question: str, answer: str) -> bool:
        return answer.isdigit()

    dotevals.run(
        trivial, experiment="warmup", storage=f"json://{store}", samples=10, progress=False
    )
    sampler = PeakSampler()
    sampler.start()
    start = time.perf_counter()
    results = dotevals.run(trivial, experiment=fmt, storage=f"json://{store}", progress=False)
    took = time.perf_counter() - start
    sampler.stopped.set()
    sampler.join()
    peak = max(sampler.peak, rss_mb())
    print(json.dumps({"seconds": took, "peak_mb": peak, "errors": results.report.errors}))


def evaluation_in_process(fmt: str, path: Path, store: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", fmt, str(path), str(store)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def per_row(fn: Callable[[], int]) -> float:
    """Microseconds per row of ``fn`` (which returns how many rows it read); best of 3."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        n = fn()
        best = min(best, (time.perf_counter() - start) / n)
    return best * 1e6


def plain_json_loop(path: Path) -> int:
    n = 0
    with path.open() as f:
        for line in f:
            json.loads(line)
            n += 1
    return n


def count(rows: Iterable[Any]) -> int:
    return sum(1 for _ in rows)


def bench_loaders(files: dict[str, Path], n: int) -> None:
    print(f"== loader cost per row, {n:,} rows (best of 3) ==")
    base = per_row(lambda: plain_json_loop(files["jsonl"]))
    print(f"plain `for line in file: json.loads(line)`: {base:6.2f} us/row (baseline)")
    for fmt in ("jsonl", "parquet"):
        ours = per_row(lambda fmt=fmt: count(loader(fmt, files[fmt])))  # type: ignore[misc]
        print(f"{fmt + '()':<10} loader: {ours:6.2f} us/row | {ours / base:4.2f}x the baseline")


def bench_memory(root: Path, small: dict[str, Path], large: dict[str, Path], n: int) -> None:
    print(f"== trivial evaluation streamed, peak RSS: {SMALL:,} vs {n:,} rows ==")
    for fmt in ("jsonl", "parquet", "parquet-1-group"):
        low = evaluation_in_process(fmt, small[fmt], root / f"store-{fmt}-small")
        high = evaluation_in_process(fmt, large[fmt], root / f"store-{fmt}-large")
        grew = high["peak_mb"] - low["peak_mb"]
        verdict = "flat" if grew <= FLAT_MB else "NOT flat"
        print(
            f"{fmt:<15} {SMALL:>7,} rows {low['peak_mb']:6.1f} MB | {n:>9,} rows "
            f"{high['peak_mb']:6.1f} MB ({grew:+5.1f} MB: {verdict}, target <= +{FLAT_MB:.0f}) | "
            f"{n / high['seconds']:,.0f} rows/s through the evaluation"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the large files")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        fmt, path, store = args.child
        child(fmt, Path(path), Path(store))
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        small = write_files(root, SMALL)
        large = write_files(root, args.rows)
        bench_loaders(large, args.rows)
        bench_memory(root, small, large, args.rows)


if __name__ == "__main__":
    main()
