"""``dotevals.run`` and ``dotevals.run_async``: evaluations without pytest, on the same engine."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import sys
import threading
from collections.abc import Iterator
from typing import Any

import anyio

from dotevals import export
from dotevals._engine import Runner, RunOptions, evaluate
from dotevals._names import new_experiment_name
from dotevals._progress import RichProgress
from dotevals.decorators import get_spec
from dotevals.errors import ConfigurationError
from dotevals.pricing import Prices, load_prices
from dotevals.results import Record, Summary
from dotevals.runners import make_runner
from dotevals.storage import Storage, open_storage

__all__ = ["Results", "load", "new_experiment_name", "run", "run_async"]


class Results:
    """What ``run`` returns: the stored records of an evaluation and its summary."""

    def __init__(self, report: Summary, storage: Storage) -> None:
        self.report = report
        self.storage = storage
        self._records: list[Record] | None = None

    @property
    def records(self) -> list[Record]:
        """Final records, by item id (read from the store on first use)."""
        if self._records is None:
            stored = self.storage.load(self.report.experiment, self.report.evaluation)
            self._records = [stored.records[i] for i in sorted(stored.records)]
        return self._records

    def summary(self) -> dict[str, Any]:
        """``{"total", "errors", "metrics"}``; errored rows count as failures in metrics."""
        return self.report.brief()

    def to_pandas(self, prices: Prices | None = None) -> Any:
        """The records as a ``pandas.DataFrame``, one flat row each (as ``dotevals export``).

        Raises:
            ImportError: pandas is not installed; the message names the extra to install.
        """
        table = export.scan(self.storage, self.report.experiment, self.report.evaluation, prices)
        return export.load(table)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> Record:
        return self.records[index]

    def __repr__(self) -> str:
        return f"Results({self.report.evaluation!r}, {self.summary()!r})"


def load(
    experiment: str,
    storage: str | Storage | None = None,
    evaluation: str | None = None,
    prices: str | Prices | None = None,
) -> Any:
    """A stored experiment as a ``pandas.DataFrame``: one flat row per final record.

    Args:
        experiment: the experiment's name.
        storage: a storage URL (``json://.dotevals`` by default) or a Storage.
        evaluation: only this evaluation (default: all of the experiment's).
        prices: a price table (a TOML file's path or a loaded one) to fill the ``cost`` column.

    Raises:
        ConfigurationError: the experiment or evaluation is not stored, or the prices are bad.
        ImportError: pandas is not installed; the message names the extra to install.
    """
    table = export.scan(open_storage(storage), experiment, evaluation, _prices(prices))
    return export.load(table)


def _prices(prices: str | Prices | None) -> Prices | None:
    return load_prices(prices) if isinstance(prices, str) else prices


async def run_async(
    fn: Any,
    experiment: str | None = None,
    samples: int | None = None,
    storage: str | Storage | None = None,
    *,
    progress: bool = True,
    prices: str | Prices | None = None,
    lock_timeout: float = 0.0,
    runner: str | Runner | None = None,
    workers: int | None = None,
    **fixture_values: Any,
) -> Results:
    """Run an evaluation decorated with ``@foreach``/``@batch`` and return its results.

    Args:
        fn: the decorated evaluation.
        experiment: the experiment to store under (resumed when it exists).
        samples: evaluate only the first N rows.
        storage: a storage URL (``json://.dotevals`` by default) or a Storage.
        progress: show a progress bar.
        prices: a price table (a TOML file's path or a loaded one): the summary gets a cost.
        lock_timeout: seconds to wait while another process runs the same evaluation of the
            experiment (0: raise ``EvaluationLockedError`` at once, naming it).
        runner: where the rows run: ``"local"`` (this process, the default), ``"ray"``
            (sharded over Ray actors, see :mod:`dotevals.runners`) or a runner object.
        workers: Ray actors for ``runner="ray"`` (default 2).
        **fixture_values: values for the function's non-column parameters.
    """
    spec = get_spec(fn)
    if spec is None:
        raise ConfigurationError(f"{fn!r} is not decorated with @foreach or @batch")
    missing = [n for n in spec.fixture_names if n not in fixture_values and n != "request"]
    if missing:
        raise ConfigurationError(f"{spec.name} needs values for {missing}: pass them as keywords")
    store = open_storage(storage)
    chosen = make_runner(runner, workers)
    options = RunOptions(
        experiment=experiment or new_experiment_name(),
        storage=store,
        samples=samples,
        progress=RichProgress() if progress else None,
        prices=_prices(prices),
        lock_timeout=lock_timeout,
        runner=chosen,
    )
    report = await evaluate(spec, fixture_values, options)
    return Results(report, store)


def run(
    fn: Any,
    experiment: str | None = None,
    samples: int | None = None,
    storage: str | Storage | None = None,
    **kwargs: Any,
) -> Results:
    """Synchronous :func:`run_async`; works inside a running event loop too (a notebook).

    Outside an event loop, every call from one thread runs on the same loop (Python 3.11+:
    one ``asyncio.Runner`` per thread, closed at exit), so an async client made once (an
    ``AsyncOpenAI``, an aiohttp session) serves several ``run`` calls; a loop per call would
    leave its connections bound to a closed loop ("Event loop is closed" on every row of the
    second run). Ctrl-C cancels the run, whose completed rows are stored, and raises
    ``KeyboardInterrupt``.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run_on_thread_loop(lambda: run_async(fn, experiment, samples, storage, **kwargs))
    return _run_in_thread(lambda: run_async(fn, experiment, samples, storage, **kwargs))


_RUNNERS = threading.local()


def _close_runner(runner: Any) -> None:
    with contextlib.suppress(Exception):  # at exit: nothing left to tell anyone
        runner.close()


def _run_on_thread_loop(make: Any) -> Results:
    """``make()`` on this thread's persistent event loop (a fresh loop on Python 3.10)."""
    if sys.version_info < (3, 11):
        result: Results = anyio.run(make)
        return result
    runner = getattr(_RUNNERS, "runner", None)
    if runner is None:
        runner = _RUNNERS.runner = asyncio.Runner()
        atexit.register(_close_runner, runner)
    return runner.run(make())


def _run_in_thread(make: Any) -> Results:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = anyio.run(make)
        except BaseException as exc:  # noqa: BLE001 -- handed to the calling thread below
            box["error"] = exc

    thread = threading.Thread(target=target, name="dotevals-run")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    result: Results = box["result"]
    return result
