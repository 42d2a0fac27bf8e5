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
import inspect
import itertools
import logging
import time
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import anyio
import anyio.to_thread

from dotevals import _meta, _usage
from dotevals._names import PROVIDER_ATTR
from dotevals._rows import (
    FINGERPRINT_ROWS,
    Item,
    check_reusable,
    cluster_label,
    fingerprint,
    jsonable,
    row_kwargs,
    stable,
)
from dotevals._sdk_retries import without_sdk_retries
from dotevals.concurrency import ConcurrencyStrategy, Slots, resolve_strategy
from dotevals.datasets.base import BadRow
from dotevals.decorators import EvaluationSpec
from dotevals.errors import DatasetChangedError
from dotevals.metrics import RunningMetrics
from dotevals.pricing import Prices
from dotevals.providers.base import ModelHandle, provider_name
from dotevals.results import (
    ErrorInfo,
    Header,
    MetricTable,
    Record,
    Result,
    Score,
    Summary,
    Usage,
    add_usage,
    carry_metrics,
    to_result,
)
from dotevals.retry import RetryPolicy, is_throttle
from dotevals.storage import RecordWriter, Storage
from dotevals.storage._lock import hold as hold_lock

__all__ = [
    "EvaluationReport",
    "ProgressSink",
    "RunOptions",
    "Runner",
    "evaluate",
]

#: Stop early when this many rows in a row fail the same non-transient way and none passed.
FAIL_FAST_AFTER: Final = 10
_PROGRESS_EVERY: Final = 0.1
_logger = logging.getLogger("dotevals")


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
    #: Prices to turn token usage into cost (``--prices``); None: usage only.
    prices: Prices | None = None
    #: Seconds to wait for another process running the same evaluation (0: stop at once).
    lock_timeout: float = 0.0
    #: Where the pending rows run; None: in this process (see :mod:`dotevals.runners`).
    runner: Runner | None = None


class Runner(Protocol):
    """Runs the pending rows of an evaluation somewhere else (Ray actors, ...)."""

    async def execute(self, run: _Run, units: Iterator[list[Item]]) -> None:
        """Compute the rows of ``units`` and hand their records to ``run.store`` as they come."""


#: How an evaluation ended: the summary the run stores (its name before the typed schema).
EvaluationReport = Summary


@dataclass(slots=True)
class _Outcome:
    """How one call of the function on a unit of rows went."""

    value: Any
    error: BaseException | None
    attempts: int
    secs: float
    usage: Usage | None = None


#: What sync evaluations return nearly always: no need to ask whether it is awaitable.
_PLAIN_VALUES: Final = (Result, Score, bool, int, float)


def _model_of(value: Any) -> str | None:
    """The model name a fixture value carries: a provider handle or a client with ``.model``."""
    if isinstance(value, ModelHandle):
        value = value.model
    name = getattr(value, "model", None)
    return name if isinstance(name, str) else None


def _provider_of(value: Any) -> str | None:
    """The provider of a fixture value: the one ``--model`` tagged, else its handle's."""
    model = value.model if isinstance(value, ModelHandle) else value
    name = getattr(model, PROVIDER_ATTR, None)
    return name if isinstance(name, str) else provider_name(value)


def run_provider(fixtures: dict[str, Any]) -> str | None:
    """The provider of the evaluation's model: the ``model`` fixture's, else the only one."""
    if "model" in fixtures and _provider_of(fixtures["model"]) is not None:
        return _provider_of(fixtures["model"])
    found = {p for p in map(_provider_of, fixtures.values()) if p is not None}
    return found.pop() if len(found) == 1 else None


def run_model(spec: EvaluationSpec, fixtures: dict[str, Any]) -> str | None:
    """The model an evaluation's rows are produced by, when one is known.

    ``@foreach(..., model=...)`` names it; else the fixture named ``model``, else the only
    fixture that is a provider handle or a client dotevals made (several: none is chosen).
    """
    given = spec.options.get("model")
    if isinstance(given, str):
        return given
    if "model" in fixtures and _model_of(fixtures["model"]) is not None:
        return _model_of(fixtures["model"])
    found = {m for m in map(_model_of, fixtures.values()) if m is not None}
    return found.pop() if len(found) == 1 else None


@dataclass(frozen=True)
class Plan:
    """How one evaluation runs, resolved once from its decorator's options and the run's."""

    name: str
    samples: int | None
    #: Worker threads for a sync function; None runs it inline (and always for async ones).
    threads: int | None
    strategy: ConcurrencyStrategy
    retry: RetryPolicy
    model: str | None
    #: The provider's entry-point name (else class name), when the model came from one.
    provider: str | None
    #: Whether units run concurrently: async functions, or sync ones in threads.
    concurrent: bool


def make_plan(spec: EvaluationSpec, fixtures: dict[str, Any], options: RunOptions) -> Plan:
    """Resolve an evaluation's options: the decorator's win over the run's.

    Raises:
        ConfigurationError: a concurrency strategy or retry setting is invalid.
    """
    threads = None if spec.is_async else spec.options.get("threads", options.threads)
    concurrency = spec.options.get("concurrency", options.concurrency)
    strategy = resolve_strategy(  # a strategy object given is capped (copied) too
        concurrency if concurrency is not None else threads,
        is_async=spec.is_async or bool(threads),
        max_concurrency=spec.options.get("max_concurrency", options.max_concurrency),
    )
    return Plan(
        name=options.evaluation or spec.name,
        samples=options.samples or spec.options.get("samples"),
        threads=threads,
        strategy=strategy,
        retry=_retry_policy(spec, options),
        model=run_model(spec, fixtures),
        provider=run_provider(fixtures),
        concurrent=spec.is_async or bool(threads),
    )


class _Run:
    """The state of one evaluation run; ``evaluate`` is its only user."""

    def __init__(
        self, spec: EvaluationSpec, fixtures: dict[str, Any], options: RunOptions, plan: Plan
    ):
        self.spec = spec
        self.fixtures = fixtures
        self.options = options
        self.plan = plan
        self.name = plan.name
        self.metrics = RunningMetrics(clustered=spec.cluster is not None, repeats=spec.repeats)
        self.error_types: dict[str, int] = {}
        self.done = self.ran = self.successes = 0
        self.total: int | None = None
        self.completed: dict[int, Any] = {}
        self.strategy = plan.strategy
        self.retry = plan.retry
        self.failure: str | None = None
        self._same_error: tuple[str, int] = ("", 0)
        self._next_tick = 0.0
        self._writer: RecordWriter | None = None
        self._limiter = anyio.CapacityLimiter(plan.threads or 1)
        self._stored_summary: Summary | None = None
        self.model = plan.model
        self.usage: Usage | None = None
        self.usage_by_model: dict[str, Usage] = {}
        #: A warning that a filter turned into an error while storing; raised at the end.
        self.deferred: Warning | None = None

    # -- resume ---------------------------------------------------------------------------
    def resume(self) -> None:
        """Count what earlier runs completed; errored and missing rows run again."""
        stored = self.options.storage.load(self.options.experiment, self.name)
        for item_id, record in stored.records.items():
            if not record.is_error:
                self.completed[item_id] = record.dataset_row
                self.metrics.add(record.scores, False, record.cluster, self._item(record))
                self._count_usage(record)
        self.done = len(self.completed)
        self._stored_summary = stored.summary

    def _item(self, record: Record) -> int | None:
        """The index of a record's row, with repeats (its item id is ``row * K + repeat``)."""
        return None if record.repeat is None else record.item_id // self.spec.repeats

    def _check_unchanged(self, item: Item) -> None:
        stored = self.completed[item.item_id]
        now = jsonable(item.row)
        if stored != now and stable(stored) != stable(now):
            raise DatasetChangedError(
                f"the dataset of {self.name!r} changed under experiment "
                f"{self.options.experiment!r}: row {item.item_id} was {stored!r} and is now "
                f"{item.row!r}. Start a new experiment (--experiment NEW_NAME) to evaluate the "
                "new data, or delete the old one (dotevals delete).",
                item_id=item.item_id,
            )

    # -- rows -----------------------------------------------------------------------------
    def rows(self) -> Iterator[Item]:
        """Pending rows, in dataset order, lazily; completed ones are checked and skipped."""
        for item in self._items():
            if item.item_id in self.completed:
                self._check_unchanged(item)
                continue
            yield item

    def _items(self) -> Iterator[Item]:
        return self._rows() if self.spec.repeats == 1 else self._repeated(self.spec.repeats)

    def _repeated(self, repeats: int) -> Iterator[Item]:
        for item in self._rows():  # repeat r of row i is item i * K + r: stable, resumable
            for r in range(repeats):
                yield dataclasses.replace(item, item_id=item.item_id * repeats + r, repeat=r)

    def _rows(self) -> Iterator[Item]:
        columns, cluster = self.spec.columns, self.spec.cluster
        for item_id, row in enumerate(self._raw):
            if isinstance(row, BadRow):  # a row the loader could not read: its error record
                yield Item(item_id, row.to_dict(), None, str(row), "BadRow")
                continue
            kwargs, problem = row_kwargs(columns, row)
            if cluster is None:
                yield Item(item_id, row, kwargs, problem)
                continue
            label, missing = cluster_label(cluster, columns, row)
            yield Item(item_id, row, kwargs if missing is None else None, problem or missing,
                       cluster=label)  # fmt: skip

    def header(self, head: list[Any]) -> Header:
        """What the store's header line says about this evaluation."""
        return Header(
            experiment=self.options.experiment,
            evaluation=self.name,
            columns=list(self.spec.columns),
            cluster=self.spec.cluster,
            dataset_fingerprint=fingerprint(self.spec.columns, head),
            dotevals_version=_meta.version(),
            git_commit=_meta.git_commit(),
            started_at=time.time(),
            model=self.model,
            provider=self.plan.provider,
            options={
                "samples": self.plan.samples,
                "concurrency": type(self.strategy).__name__,
                "max_retries": self.retry.max_retries,
                "batch_size": self.spec.batch_size,
                "repeats": self.spec.repeats,
            },
        )

    # -- calling ----------------------------------------------------------------------------
    async def call(self, items: list[Item]) -> _Outcome:
        """Call the function on a unit of rows with retries (:meth:`run_unit` meters it)."""
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
                    return _Outcome(None, exc, attempt, time.perf_counter() - start)
                _log_retry(self.name, items, attempt, exc, delay)
                await self._backoff(throttled, delay)
                attempt += 1
                continue
            return _Outcome(value, None, attempt, time.perf_counter() - start)

    def _call_kwargs(self, items: list[Item]) -> dict[str, Any]:
        if self.spec.batch_size is None:
            assert items[0].kwargs is not None  # a row's own dict: ** gives the callee a copy
            return {**items[0].kwargs, **self.fixtures} if self.fixtures else items[0].kwargs
        lists = {c: [i.kwargs[c] for i in items if i.kwargs] for c in self.spec.columns}
        return {**lists, **self.fixtures}

    async def _invoke(self, kwargs: dict[str, Any]) -> Any:
        fn = self.spec.fn
        if self.spec.is_async:
            return await fn(**kwargs)
        if self.plan.threads:
            call = functools.partial(fn, **kwargs)
            value = await anyio.to_thread.run_sync(call, limiter=self._limiter)
        else:
            value = fn(**kwargs)
        if not isinstance(value, _PLAIN_VALUES) and inspect.isawaitable(value):
            value = await value
        return value

    async def _backoff(self, throttled: bool, delay: float) -> None:
        if not throttled:  # a throttle was counted when the attempt ended
            self.strategy.on_error()
        if self.slots is None:  # inline runs hold no slot while sleeping
            await asyncio.sleep(delay)
            return
        async with self.slots.lent():
            await asyncio.sleep(delay)

    slots: Slots | None = None

    # -- recording -----------------------------------------------------------------------------
    def records_for(self, items: list[Item], outcome: _Outcome) -> list[Record]:
        """One record per row of the unit; a batch's usage is shared out over its rows."""
        now, attempts = time.time(), outcome.attempts
        if outcome.error is None and self.spec.batch_size is None:
            return [self._record_value(items[0], outcome.value, now, outcome, outcome.usage)]
        usages = outcome.usage.split(len(items)) if outcome.usage else [None] * len(items)
        if outcome.error is not None:
            err = _error_info(outcome.error)
            return [
                self._record(i, err, now, outcome.secs, attempts, u) for i, u in zip(items, usages)
            ]
        value = outcome.value
        values = value if isinstance(value, list) else [value] * len(items)
        if len(values) != len(items):
            msg = f"{self.name} returned {len(values)} results for a batch of {len(items)} rows"
            err = ErrorInfo("ValueError", msg)
            return [
                self._record(i, err, now, outcome.secs, attempts, u) for i, u in zip(items, usages)
            ]
        share = dataclasses.replace(outcome, secs=outcome.secs / len(items))
        return [self._record_value(i, v, now, share, u) for i, v, u in zip(items, values, usages)]

    def _record(
        self,
        item: Item,
        error: ErrorInfo,
        now: float,
        secs: float,
        attempts: int,
        usage: Usage | None = None,
    ) -> Record:
        """An errored row's record."""
        return Record(
            item.item_id,
            item.row,
            [],
            None,
            None,
            error,
            now,
            secs,
            attempts,
            self.model,
            usage,
            item.cluster,
            item.repeat,
        )

    def _record_value(
        self, item: Item, value: Any, now: float, outcome: _Outcome, usage: Usage | None
    ) -> Record:
        try:
            scores, prompt, response, model, returned_usage = to_result(self.spec.name, value)
        except TypeError as exc:
            err = _error_info(exc, with_tb=False)
            return self._record(item, err, now, outcome.secs, outcome.attempts, usage)
        return Record(
            item.item_id,
            item.row,
            scores,
            prompt,
            response,
            None,
            now,
            outcome.secs,
            outcome.attempts,
            model or self.model,
            returned_usage or usage,
            item.cluster,
            item.repeat,
        )

    def store(self, records: list[Record]) -> None:
        """Append records, count them, and tell the progress display (throttled)."""
        assert self._writer is not None
        for record in records:
            try:
                self._writer.append(record)
            except Warning as warning:  # a filter made it an error; the record is stored
                self.deferred = self.deferred or warning
            is_error = record.error is not None
            if self.metrics.clustered:  # a design (cluster=, repeats=) labels each record
                self.metrics.add(record.scores, is_error, record.cluster, self._item(record))
            else:
                self.metrics.add(record.scores, is_error)
            if record.usage is not None:
                self._count_usage(record)
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

    def _count_usage(self, record: Record) -> None:
        usage = record.usage
        if usage is None:
            return
        self.usage = usage if self.usage is None else self.usage + usage
        add_usage(self.usage_by_model, record.model, usage)

    def _count_error(self, error: ErrorInfo | None) -> None:
        assert error is not None
        kind = error.type
        self.error_types[kind] = self.error_types.get(kind, 0) + 1
        key = f"{kind}: {error.message}"
        same, count = self._same_error
        self._same_error = (key, count + 1 if key == same else 1)
        if self.failure is None and self.successes == 0 and self._same_error[1] >= FAIL_FAST_AFTER:
            self.failure = (
                f"stopped after {FAIL_FAST_AFTER} rows failed the same way and none passed: {key}"
            )
            _logger.warning("%s: %s", self.name, self.failure)

    # -- scheduling ----------------------------------------------------------------------------
    def units(self, rows: Iterator[Item]) -> Iterator[list[Item]]:
        """Rows grouped into calls: one row each, or batches; bad rows become error records."""
        size = self.spec.batch_size or 1
        unit: list[Item] = []
        for item in rows:
            if self.failure is not None:
                return
            if item.problem is not None:
                err = ErrorInfo(item.problem_type, item.problem)
                self.store([self._record(item, err, time.time(), 0.0, 0)])
                continue
            unit.append(item)
            if len(unit) == size:
                yield unit
                unit = []
        if unit and self.failure is None:
            yield unit

    async def run_unit(self, unit: list[Item]) -> None:
        """Call, record, store one unit, with the tokens its calls used."""
        meter, token = _usage.start()
        try:
            outcome = await self.call(unit)
        finally:
            _usage.stop(token)
        self._finish(unit, outcome, meter)

    def _finish(self, unit: list[Item], outcome: _Outcome, meter: _usage.Meter) -> None:
        """Tell the strategy how the call went, then record and store the unit's rows."""
        if outcome.error is None and not meter.cached:  # a cache hit says nothing of the server
            self.strategy.on_success(outcome.secs)
        if meter.usages:
            outcome.usage = meter.total()
        self.store(self.records_for(unit, outcome))

    async def run_inline(self, units: Iterator[list[Item]]) -> None:
        """One unit after the other (sync functions), metered by one meter emptied per unit."""
        meter, token = _usage.start()
        try:
            for count, unit in enumerate(units, 1):
                if meter.calls or meter.hits:
                    meter.clear()
                outcome = await self.call(unit)
                self._finish(unit, outcome, meter)
                if count % 512 == 0:
                    await asyncio.sleep(0)  # let cancellation and other tasks in
        finally:
            _usage.stop(token)

    async def run_concurrent(self, units: Iterator[list[Item]]) -> None:
        """Units in flight up to the strategy's limit."""
        slots = self.slots = Slots(self.strategy)

        async def one(unit: list[Item]) -> None:
            try:
                await self.run_unit(unit)
            finally:
                slots.release()

        async with anyio.create_task_group() as tg:
            for unit in units:
                await slots.acquire()
                tg.start_soon(one, unit)

    def open(self) -> Iterator[Item]:
        """Resume, peek the head of the dataset for the header, and open the writer."""
        dataset: Iterable[Any] = self.spec.dataset
        check_reusable(self.name, self.spec)
        self.resume()
        samples = self.plan.samples
        raw = itertools.islice(dataset, samples) if samples else iter(dataset)
        head = list(itertools.islice(raw, FINGERPRINT_ROWS))
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
                writer.write_summary(report)
            except Warning as warning:  # a filter made it an error; raised at the end
                self.deferred = self.deferred or warning
            finally:
                writer.close()
        return report

    def report(self, duration: float) -> Summary:
        """The summary of this run so far."""
        prices = self.options.prices
        costs = prices.costs(self.usage_by_model) if prices is not None else {}
        return Summary(
            evaluation=self.name,
            experiment=self.options.experiment,
            storage_url=self.options.storage.url,
            total=self.done,
            errors=self.metrics.errors,
            ran=self.ran,
            duration=duration,
            metrics=self._metrics(with_errors=True),
            metrics_without_errors=self._metrics(with_errors=False),
            error_types=dict(self.error_types),
            concurrency=self.strategy.history(),
            failure=self.failure,
            dataset_size=_total(self.spec, self.plan.samples),
            usage=self.usage,
            usage_by_model=dict(self.usage_by_model),
            cost=sum(costs.values()) if costs else None,
            cost_by_model=costs,
            finished_at=time.time(),
        )

    def _metrics(self, with_errors: bool) -> MetricTable:
        """The metrics, with what only the last summary holds when nothing changed since."""
        live = self.metrics.results(with_errors=with_errors)
        last = self._stored_summary
        if (
            self.ran
            or last is None
            or (last.total, last.errors) != (self.done, self.metrics.errors)
        ):
            return live
        return carry_metrics(live, last.metrics if with_errors else last.metrics_without_errors)


def _log_retry(
    name: str, items: list[Item], attempt: int, exc: BaseException, delay: float
) -> None:
    """Tell ``logging`` that a call failed and is tried again (the type only, never a key)."""
    _logger.info(
        "%s: row %d attempt %d failed (%s); retrying in %.2f s",
        name,
        items[0].item_id,
        attempt,
        type(exc).__name__,
        delay,
    )


def _retry_policy(spec: EvaluationSpec, options: RunOptions) -> RetryPolicy:
    retries = spec.options.get("max_retries")
    if retries is None:
        return options.retry
    return dataclasses.replace(options.retry, max_retries=retries)


def _error_info(exc: BaseException, with_tb: bool = True) -> ErrorInfo:
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)) if with_tb else ""
    return ErrorInfo(type(exc).__name__, str(exc), tb)


def _total(spec: EvaluationSpec, samples: int | None) -> int | None:
    """Records a complete run holds: rows (after ``samples``) times ``repeats``."""
    try:
        n = len(spec.dataset)  # type: ignore[arg-type]
    except TypeError:
        return None if samples is None else samples * spec.repeats
    return (min(n, samples) if samples else n) * spec.repeats


async def evaluate(
    spec: EvaluationSpec, fixtures: dict[str, Any], options: RunOptions
) -> EvaluationReport:
    """Run one evaluation to completion (or interruption) and return its report.

    Every completed row is in the store when this returns or raises, including on
    ``KeyboardInterrupt`` and cancellation. The evaluation's store is locked for the run, so
    a second process running it at the same time waits or stops (``EvaluationLockedError``).
    """
    with without_sdk_retries(fixtures.values()):
        return await _evaluate(spec, fixtures, options)


async def _evaluate(
    spec: EvaluationSpec, fixtures: dict[str, Any], options: RunOptions
) -> EvaluationReport:
    run = _Run(spec, fixtures, options, make_plan(spec, fixtures, options))
    async with hold_lock(options.storage, options.experiment, run.name, options.lock_timeout):
        return await _run_locked(run)


async def _run_locked(run: _Run) -> EvaluationReport:
    spec, options = run.spec, run.options
    items = run.open()
    started = time.perf_counter()
    progress = options.progress
    if progress is not None:
        progress.start(run.name, _total(spec, run.plan.samples), run.done)
    try:
        units = run.units(items)
        if options.runner is not None:
            await options.runner.execute(run, units)
        else:
            await (run.run_concurrent(units) if run.plan.concurrent else run.run_inline(units))
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
