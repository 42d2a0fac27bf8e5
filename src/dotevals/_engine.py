"""THE evaluation loop, shared by the pytest plugin and ``dotevals.run``.

``evaluate`` streams the dataset, skips rows already completed in the store, calls the user
function (sync functions inline or in threads, async ones concurrently), retries transient
errors, turns every outcome into a :class:`~dotevals.results.Record`, appends it to the store
the moment it completes, and keeps the metrics and the progress display up to date.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import inspect
import itertools
import json
import re
import shlex
import time
import traceback
import weakref
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import anyio
import anyio.to_thread

from dotevals import _meta
from dotevals._sdk_retries import without_sdk_retries
from dotevals.concurrency import ConcurrencyStrategy, resolve_strategy
from dotevals.decorators import EvaluationSpec
from dotevals.errors import ConfigurationError, DatasetChangedError, EvaluationFailed
from dotevals.metrics import RunningMetrics, accuracy, mean
from dotevals.results import ErrorInfo, MetricValue, Record, Result, Score
from dotevals.retry import RetryPolicy, is_throttle
from dotevals.storage import RecordWriter, Storage

__all__ = ["EvaluationReport", "ProgressSink", "RunOptions", "evaluate", "show_command"]

#: Stop early when this many rows in a row fail the same non-transient way and none passed.
FAIL_FAST_AFTER: Final = 10
_PROGRESS_EVERY: Final = 0.1
_FINGERPRINT_ROWS: Final = 100


class ProgressSink(Protocol):
    """Where the engine reports progress; called at most every 0.1 s."""

    def start(self, name: str, total: int | None, done: int) -> None:
        """An evaluation starts; ``done`` rows were completed by earlier runs."""

    def update(self, done: int, errors: int, metrics: RunningMetrics) -> None:
        """Rows done so far (this run and earlier ones) and errors among them."""

    def finish(self) -> None:
        """The evaluation ended (completed, failed or interrupted)."""


@dataclass
class RunOptions:
    """How to run one evaluation."""

    experiment: str
    storage: Storage
    evaluation: str | None = None
    samples: int | None = None
    concurrency: ConcurrencyStrategy | int | str | None = None
    max_concurrency: int = 256
    threads: int | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    progress: ProgressSink | None = None


@dataclass
class EvaluationReport:
    """How an evaluation ended: counts, metrics and where the records are."""

    evaluation: str
    experiment: str
    storage_url: str
    total: int
    errors: int
    ran: int
    duration: float
    metrics: dict[str, dict[str, MetricValue]]
    metrics_without_errors: dict[str, dict[str, MetricValue]]
    error_types: dict[str, int] = field(default_factory=dict)
    concurrency: list[tuple[float, int]] = field(default_factory=list)
    failure: str | None = None
    #: Rows in the dataset (after ``samples``), when the dataset has a length.
    dataset_size: int | None = None

    def summary(self) -> dict[str, Any]:
        """``{"total", "errors", "metrics"}`` with plain floats."""
        return {
            "total": self.total,
            "errors": self.errors,
            "metrics": {
                score: {name: value.value for name, value in metrics.items()}
                for score, metrics in self.metrics.items()
            },
        }


@dataclass
class _Item:
    item_id: int
    row: Any
    kwargs: dict[str, Any] | None
    problem: str | None = None


def _row_kwargs(columns: Sequence[str], row: Any) -> tuple[dict[str, Any] | None, str | None]:
    """The keyword arguments a row gives the function, or why it cannot."""
    if isinstance(row, dict):
        missing = [c for c in columns if c not in row]
        if missing:
            return None, f"row has no key(s) {missing}; its keys are {sorted(map(str, row))}"
        return {c: row[c] for c in columns}, None
    if isinstance(row, (tuple, list)):
        if len(row) != len(columns):
            return None, (
                f"row has {len(row)} field(s) but columns {list(columns)} need {len(columns)}"
            )
        return dict(zip(columns, row)), None
    if len(columns) == 1:
        return {columns[0]: row}, None
    return None, f"row {row!r} is not a tuple, list or dict for columns {list(columns)}"


def _jsonable(value: Any) -> Any:
    """``value`` as JSON gives it back (tuples become lists, other values their repr)."""
    return json.loads(json.dumps(value, default=repr))


#: The memory address in a default repr (``<Img object at 0x7f...>``): different every run.
_ADDRESS: Final = re.compile(r" at 0x[0-9a-fA-F]+")


def _stable(value: Any) -> Any:
    """A JSON value (from :func:`_jsonable` or the store) without what changes between runs.

    Values JSON cannot hold are stored as their repr; memory addresses in reprs are left out,
    and NaN (which equals nothing) is compared as the text ``"NaN"``.
    """
    if isinstance(value, str):
        return _ADDRESS.sub("", value) if " at 0x" in value else value
    if isinstance(value, float) and value != value:
        return "NaN"
    if isinstance(value, list):
        return [_stable(v) for v in value]
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items()}
    return value


def _fingerprint(columns: Sequence[str], head: list[Any]) -> str:
    blob = json.dumps([list(columns), _stable(_jsonable(head))], sort_keys=True).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()[:16]


def show_command(experiment: str, *args: str) -> str:
    """``dotevals show EXPERIMENT ARGS...``, every word shell-quoted, to paste into a shell."""
    return shlex.join(["dotevals", "show", experiment, *args])


#: One-shot datasets some run has opened, held weakly (an evaluation's spec also remembers).
_READ_ITERATORS: weakref.WeakSet[Any] = weakref.WeakSet()


def _check_reusable(name: str, spec: EvaluationSpec) -> None:
    """Refuse a one-shot dataset that an earlier run already read, or that arrives exhausted.

    Parametrized items and repeated runs of an evaluation share its spec, which records that
    its iterator was opened; two evaluations decorated with one generator are caught by a
    weak set of opened iterators (which keeps none of them alive).

    Raises:
        ConfigurationError: a second run (a parametrized item, another ``dotevals.run``)
            would read no rows of it and pass on nothing.
    """
    dataset = spec.dataset
    if not isinstance(dataset, Iterator):  # iter() of it is itself: reading it consumes it
        return
    opened_before, spec.dataset_opened = spec.dataset_opened, True
    try:  # generators and files: seen by any evaluation; weak, so nothing is kept alive
        read_elsewhere = dataset in _READ_ITERATORS
        _READ_ITERATORS.add(dataset)
    except TypeError:  # not weakly referenceable (list iterators, map objects): the flag only
        read_elsewhere = False
    if opened_before:
        why = "is a one-shot iterator (a generator?) that an earlier run already read"
    elif read_elsewhere:
        why = "is a one-shot iterator (a generator?) that another evaluation already read"
    elif inspect.isgenerator(dataset) and inspect.getgeneratorstate(dataset) == "GEN_CLOSED":
        why = "is an exhausted generator"
    else:
        return
    raise ConfigurationError(
        f"the dataset of {name!r} {why}, so this run would evaluate no rows. A dataset used "
        "more than once (parametrized evaluations, several runs) must be re-iterable: a list "
        "or tuple, a dotevals.datasets.Dataset, or any object whose __iter__ returns a fresh "
        "iterator each time (e.g. a class whose __iter__ calls your generator function)."
    )


def _accepted(name: str, value: Any) -> str:
    return (
        f"{name} returned {value!r} ({type(value).__name__}); return a Result, a Score, "
        "a bool or a number"
    )


def to_scores(name: str, value: Any) -> tuple[list[Score], str | None, Any]:
    """``(scores, prompt, response)`` from what an evaluation returned for one row.

    Raises:
        TypeError: the value is not a Result, Score, bool or number.
    """
    if isinstance(value, Result):
        return value.scores, value.prompt, value.model_response
    if isinstance(value, Score):
        return [value], None, None
    if isinstance(value, bool):
        return [Score(name, value, [accuracy()])], None, None
    if isinstance(value, (int, float)):
        return [Score(name, value, [mean()])], None, None
    raise TypeError(_accepted(name, value))


class _Slots:
    """A semaphore whose size follows a concurrency strategy's current limit."""

    def __init__(self, strategy: ConcurrencyStrategy) -> None:
        self.strategy = strategy
        self.used = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        if self.used < self.strategy.limit and not self._waiters:
            self.used += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()
            raise

    def release(self) -> None:
        self.used -= 1
        self.wake()

    def wake(self) -> None:
        while self._waiters and self.used < self.strategy.limit:
            fut = self._waiters.popleft()
            if not fut.done():
                self.used += 1
                fut.set_result(None)


class _Run:
    """The state of one evaluation run; ``evaluate`` is its only user."""

    def __init__(self, spec: EvaluationSpec, fixtures: dict[str, Any], options: RunOptions):
        self.spec = spec
        self.fixtures = fixtures
        self.options = options
        self.name = options.evaluation or spec.name
        self.metrics = RunningMetrics()
        self.error_types: dict[str, int] = {}
        self.done = self.ran = self.successes = 0
        self.total: int | None = None
        self.completed: dict[int, Any] = {}
        concurrency = spec.options.get("concurrency", options.concurrency)
        ceiling = spec.options.get("max_concurrency", options.max_concurrency)
        self.strategy = resolve_strategy(  # a strategy object given is capped (copied) too
            concurrency if concurrency is not None else self._threads(),
            is_async=spec.is_async or bool(self._threads()),
            max_concurrency=ceiling,
        )
        self.retry = _retry_policy(spec, options)
        self.failure: str | None = None
        self._same_error: tuple[str, int] = ("", 0)
        self._next_tick = 0.0
        self._writer: RecordWriter | None = None
        self._limiter = anyio.CapacityLimiter(self._threads() or 1)
        self._stored_summary: dict[str, Any] | None = None
        #: A warning that a filter turned into an error while storing; raised at the end.
        self.deferred: Warning | None = None

    def _threads(self) -> int | None:
        threads = self.spec.options.get("threads", self.options.threads)
        return None if self.spec.is_async else threads

    # -- resume ---------------------------------------------------------------------------
    def resume(self) -> None:
        """Count what earlier runs completed; errored and missing rows run again."""
        stored = self.options.storage.load(self.options.experiment, self.name)
        for item_id, record in stored.records.items():
            if not record.is_error:
                self.completed[item_id] = record.dataset_row
                self.metrics.add(record.scores, False)
        self.done = len(self.completed)
        self._stored_summary = stored.summary

    def _check_unchanged(self, item: _Item) -> None:
        stored = self.completed[item.item_id]
        now = _jsonable(item.row)
        if stored != now and _stable(stored) != _stable(now):
            raise DatasetChangedError(
                f"the dataset of {self.name!r} changed under experiment "
                f"{self.options.experiment!r}: row {item.item_id} was {stored!r} and is now "
                f"{item.row!r}. Start a new experiment (--experiment NEW_NAME) to evaluate the "
                "new data, or delete the old one (dotevals delete).",
                item_id=item.item_id,
            )

    # -- rows -----------------------------------------------------------------------------
    def rows(self) -> Iterator[_Item]:
        """Pending rows, in dataset order, lazily; completed ones are checked and skipped."""
        for item in self._items():
            if item.item_id in self.completed:
                self._check_unchanged(item)
                continue
            yield item

    def _items(self) -> Iterator[_Item]:
        columns = self.spec.columns
        for item_id, row in enumerate(self._raw):
            kwargs, problem = _row_kwargs(columns, row)
            yield _Item(item_id, row, kwargs, problem)

    def samples(self) -> int | None:
        """How many rows of the dataset to read at most."""
        samples: int | None = self.options.samples or self.spec.options.get("samples")
        return samples

    def header(self, head: list[Any]) -> dict[str, Any]:
        """What the store's header line says about this evaluation."""
        return {
            "experiment": self.options.experiment,
            "evaluation": self.name,
            "columns": list(self.spec.columns),
            "dataset_fingerprint": _fingerprint(self.spec.columns, head),
            "dotevals_version": _meta.version(),
            "git_commit": _meta.git_commit(),
            "started_at": time.time(),
        }

    # -- calling ----------------------------------------------------------------------------
    async def call(self, items: list[_Item]) -> tuple[Any, BaseException | None, int, float]:
        """Call the function on a unit of rows with retries: (value, error, attempts, secs)."""
        kwargs = self._call_kwargs(items)
        attempt = 1
        while True:
            start = time.perf_counter()
            try:
                value = await self._invoke(kwargs)
            except Exception as exc:  # noqa: BLE001 -- a row's error is data: it becomes the record's
                throttled = is_throttle(exc)
                if throttled:  # slow down whether or not the row is retried
                    self.strategy.on_throttle()
                delay = self.retry.delay(attempt, exc)
                if delay is None:
                    return None, exc, attempt, time.perf_counter() - start
                await self._backoff(throttled, delay)
                attempt += 1
                continue
            elapsed = time.perf_counter() - start
            self.strategy.on_success(elapsed)
            return value, None, attempt, elapsed

    def _call_kwargs(self, items: list[_Item]) -> dict[str, Any]:
        if self.spec.batch_size is None:
            assert items[0].kwargs is not None
            return {**items[0].kwargs, **self.fixtures}
        lists = {c: [i.kwargs[c] for i in items if i.kwargs] for c in self.spec.columns}
        return {**lists, **self.fixtures}

    async def _invoke(self, kwargs: dict[str, Any]) -> Any:
        fn = self.spec.fn
        if self.spec.is_async:
            return await fn(**kwargs)
        if self._threads():
            call = functools.partial(fn, **kwargs)
            value = await anyio.to_thread.run_sync(call, limiter=self._limiter)
        else:
            value = fn(**kwargs)
        if inspect.isawaitable(value):
            value = await value
        return value

    async def _backoff(self, throttled: bool, delay: float) -> None:
        if not throttled:  # a throttle was counted when the attempt ended
            self.strategy.on_error()
        self.slots_release()
        try:
            await asyncio.sleep(delay)
        finally:
            try:
                await self.slots_acquire()
            except asyncio.CancelledError:
                if self.slots is not None:
                    self.slots.used += 1  # the caller releases the slot it believes it holds
                raise

    # Slots exist only on the concurrent path; inline runs hold no slot while sleeping.
    def slots_release(self) -> None:
        """Give back the caller's slot while it sleeps."""
        if self.slots is not None:
            self.slots.release()

    async def slots_acquire(self) -> None:
        """Take a slot again after sleeping."""
        if self.slots is not None:
            await self.slots.acquire()

    slots: _Slots | None = None

    # -- recording -----------------------------------------------------------------------------
    def records_for(
        self, items: list[_Item], value: Any, exc: BaseException | None, attempts: int, secs: float
    ) -> list[Record]:
        """One record per row of the unit."""
        now = time.time()
        if exc is not None:
            err = _error_dict(exc)
            return [_record(i, None, err, now, secs, attempts) for i in items]
        if self.spec.batch_size is None:
            return [self._record_value(items[0], value, now, secs, attempts)]
        values = value if isinstance(value, list) else [value] * len(items)
        if len(values) != len(items):
            msg = f"{self.name} returned {len(values)} results for a batch of {len(items)} rows"
            err = ErrorInfo("ValueError", msg).to_dict()
            return [_record(i, None, err, now, secs, attempts) for i in items]
        share = secs / len(items)
        return [self._record_value(i, v, now, share, attempts) for i, v in zip(items, values)]

    def _record_value(
        self, item: _Item, value: Any, now: float, secs: float, attempts: int
    ) -> Record:
        try:
            scores, prompt, response = to_scores(self.spec.name, value)
        except TypeError as exc:
            return _record(item, None, _error_dict(exc, with_tb=False), now, secs, attempts)
        record = Record(
            item.item_id,
            item.row,
            [s.to_dict() for s in scores],
            prompt,
            response,
            None,
            now,
            secs,
            attempts,
        )
        record.live = scores  # type: ignore[attr-defined]
        return record

    def store(self, records: list[Record]) -> None:
        """Append records, count them, and tell the progress display (throttled)."""
        assert self._writer is not None
        for record in records:
            try:
                self._writer.append(record)
            except Warning as warning:  # a filter made it an error; the record is stored
                self.deferred = self.deferred or warning
            is_error = record.error is not None
            self.metrics.add(record.scores, is_error, getattr(record, "live", None))
            self.done += 1
            self.ran += 1
            if is_error:
                self._count_error(record.error)
            else:
                self.successes += 1
        now = time.monotonic()
        if now >= self._next_tick and self.options.progress is not None:
            self._next_tick = now + _PROGRESS_EVERY
            self.options.progress.update(self.done, self.metrics.errors, self.metrics)

    def _count_error(self, error: dict[str, str] | None) -> None:
        assert error is not None
        kind = error["type"]
        self.error_types[kind] = self.error_types.get(kind, 0) + 1
        key = f"{kind}: {error['message']}"
        same, count = self._same_error
        self._same_error = (key, count + 1 if key == same else 1)
        if self.successes == 0 and self._same_error[1] >= FAIL_FAST_AFTER:
            self.failure = (
                f"stopped after {FAIL_FAST_AFTER} rows failed the same way and none passed: {key}"
            )

    # -- scheduling ----------------------------------------------------------------------------
    def units(self, rows: Iterator[_Item]) -> Iterator[list[_Item]]:
        """Rows grouped into calls: one row each, or batches; bad rows become error records."""
        size = self.spec.batch_size or 1
        unit: list[_Item] = []
        for item in rows:
            if self.failure is not None:
                return
            if item.problem is not None:
                err = ErrorInfo("ValueError", item.problem).to_dict()
                self.store([_record(item, None, err, time.time(), 0.0, 0)])
                continue
            unit.append(item)
            if len(unit) == size:
                yield unit
                unit = []
        if unit and self.failure is None:
            yield unit

    async def run_unit(self, unit: list[_Item]) -> None:
        """Call, record, store one unit."""
        value, exc, attempts, secs = await self.call(unit)
        self.store(self.records_for(unit, value, exc, attempts, secs))

    async def run_inline(self, units: Iterator[list[_Item]]) -> None:
        """One unit after the other (sync functions)."""
        for count, unit in enumerate(units, 1):
            await self.run_unit(unit)
            if count % 512 == 0:
                await asyncio.sleep(0)  # let cancellation and other tasks in

    async def run_concurrent(self, units: Iterator[list[_Item]]) -> None:
        """Units in flight up to the strategy's limit."""
        slots = self.slots = _Slots(self.strategy)

        async def one(unit: list[_Item]) -> None:
            try:
                await self.run_unit(unit)
            finally:
                slots.release()

        async with anyio.create_task_group() as tg:
            for unit in units:
                await slots.acquire()
                tg.start_soon(one, unit)

    def open(self) -> Iterator[_Item]:
        """Resume, peek the head of the dataset for the header, and open the writer."""
        dataset: Iterable[Any] = self.spec.dataset
        _check_reusable(self.name, self.spec)
        self.resume()
        samples = self.samples()
        raw = itertools.islice(dataset, samples) if samples else iter(dataset)
        head = list(itertools.islice(raw, _FINGERPRINT_ROWS))
        self._raw = itertools.chain(head, raw)
        items = self.rows()
        self._writer = self.options.storage.open_writer(
            self.options.experiment, self.name, self.header(head)
        )
        return items

    def close(self, started: float) -> EvaluationReport:
        """Write the run's summary and close the store (closed even when the summary fails)."""
        report = self.report(time.perf_counter() - started)
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.write_summary(_summary_entry(report))
            except Warning as warning:  # a filter made it an error; raised at the end
                self.deferred = self.deferred or warning
            finally:
                writer.close()
        return report

    def report(self, duration: float) -> EvaluationReport:
        """The report of this run so far."""
        return EvaluationReport(
            evaluation=self.name,
            experiment=self.options.experiment,
            storage_url=self.options.storage.url,
            total=self.done,
            errors=self.metrics.errors,
            ran=self.ran,
            duration=duration,
            metrics=self._metrics("metrics", with_errors=True),
            metrics_without_errors=self._metrics("metrics_without_errors", with_errors=False),
            error_types=dict(self.error_types),
            concurrency=self.strategy.history(),
            failure=self.failure,
            dataset_size=_total(self.spec, self.samples()),
        )

    def _metrics(self, key: str, with_errors: bool) -> dict[str, dict[str, MetricValue]]:
        """The metrics, and those only the last summary holds when nothing changed since.

        A custom metric whose code is not at hand (a plain function, not ``@metric``) cannot
        be computed from stored records; when this run added no record to those the last
        summary counted, that summary's figure for it is still exact, so it is kept.
        """
        out = self.metrics.results(with_errors=with_errors)
        summary = self._stored_summary
        if self.ran or summary is None:
            return out
        if (summary.get("total"), summary.get("errors")) != (self.done, self.metrics.errors):
            return out
        table = summary.get(key)
        for score, figures in (table if isinstance(table, dict) else {}).items():
            for name, figure in (figures if isinstance(figures, dict) else {}).items():
                kept = MetricValue.from_dict(figure)
                if kept is not None and name not in out.get(score, {}):
                    out.setdefault(score, {})[name] = kept
        return out


def _retry_policy(spec: EvaluationSpec, options: RunOptions) -> RetryPolicy:
    retries = spec.options.get("max_retries")
    if retries is None:
        return options.retry
    return dataclasses.replace(options.retry, max_retries=retries)


def _record(
    item: _Item,
    value: Any,
    error: dict[str, str] | None,
    now: float,
    secs: float,
    attempts: int,
) -> Record:
    return Record(item.item_id, item.row, [], None, value, error, now, secs, attempts)


def _error_dict(exc: BaseException, with_tb: bool = True) -> dict[str, str]:
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)) if with_tb else ""
    return ErrorInfo(type(exc).__name__, str(exc), tb).to_dict()


def _summary_entry(report: EvaluationReport) -> dict[str, Any]:
    return {
        "finished_at": time.time(),
        "total": report.total,
        "errors": report.errors,
        "ran": report.ran,
        "duration": report.duration,
        "metrics": _metric_dicts(report.metrics),
        "metrics_without_errors": _metric_dicts(report.metrics_without_errors),
        "error_types": report.error_types,
        "concurrency": report.concurrency,
        "failure": report.failure,
        "dataset_size": report.dataset_size,
    }


def _metric_dicts(metrics: dict[str, dict[str, MetricValue]]) -> dict[str, Any]:
    return {s: {m: v.to_dict() for m, v in ms.items()} for s, ms in metrics.items()}


def _total(spec: EvaluationSpec, samples: int | None) -> int | None:
    try:
        n = len(spec.dataset)  # type: ignore[arg-type]
    except TypeError:
        return samples
    return min(n, samples) if samples else n


async def evaluate(
    spec: EvaluationSpec, fixtures: dict[str, Any], options: RunOptions
) -> EvaluationReport:
    """Run one evaluation to completion (or interruption) and return its report.

    Every completed row is in the store when this returns or raises, including on
    ``KeyboardInterrupt`` and cancellation.
    """
    with without_sdk_retries(fixtures.values()):
        return await _evaluate(spec, fixtures, options)


async def _evaluate(
    spec: EvaluationSpec, fixtures: dict[str, Any], options: RunOptions
) -> EvaluationReport:
    run = _Run(spec, fixtures, options)
    items = run.open()
    started = time.perf_counter()
    progress = options.progress
    if progress is not None:
        progress.start(run.name, _total(spec, run.samples()), run.done)
    try:
        units = run.units(items)
        concurrent = spec.is_async or run._threads()
        await (run.run_concurrent(units) if concurrent else run.run_inline(units))
    finally:
        try:
            report = run.close(started)
        finally:  # the display ends even when closing the store fails
            if progress is not None:
                progress.update(run.done, run.metrics.errors, run.metrics)
                progress.finish()
    if run.deferred is not None:
        raise run.deferred  # every row ran and is stored; the filter still gets its error
    return report


def check_thresholds(spec: EvaluationSpec, report: EvaluationReport) -> str | None:
    """Why the evaluation failed, or None: a crash, every row errored, a missed threshold."""
    if report.failure:
        return report.failure
    if report.ran and report.errors == report.total:
        kinds = ", ".join(f"{k} x{n}" for k, n in report.error_types.items())
        hint = show_command(report.experiment, "--errors")
        return f"every row errored ({kinds}); see `{hint}`"
    for key, minimum in spec.threshold.items():
        value = _find_metric(report.metrics, key)
        if value is None:
            return f"threshold on {key!r}: no such metric (have {_metric_keys(report.metrics)})"
        if value < minimum:
            return f"{key} = {value:.4f} is below the threshold {minimum}"
    return None


def _find_metric(metrics: dict[str, dict[str, MetricValue]], key: str) -> float | None:
    score, _, name = key.rpartition(".")
    for s, ms in metrics.items():
        if (not score or s == score) and name in ms:
            return ms[name].value
    return None


def _metric_keys(metrics: dict[str, dict[str, MetricValue]]) -> list[str]:
    return [f"{s}.{m}" for s, ms in metrics.items() for m in ms]


def raise_for_failure(spec: EvaluationSpec, report: EvaluationReport) -> None:
    """Raise EvaluationFailed when :func:`check_thresholds` finds a reason."""
    reason = check_thresholds(spec, report)
    if reason is not None:
        raise EvaluationFailed(f"{report.evaluation}: {reason}")
