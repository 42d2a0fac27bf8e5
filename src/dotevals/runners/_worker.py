"""What runs inside a Ray actor: the same engine, on a share of the rows, streaming records.

The actor receives the evaluation (its function pickled by value), the fixtures as recipes or
pickled values, and the run's options. For each share it runs :func:`dotevals._engine.evaluate`
on those rows only, with a store that keeps nothing: each record goes back to the driver, which
appends it to the one real store. This module imports no Ray: the driver wraps the class.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import pickle
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from dotevals._engine import RunOptions, evaluate
from dotevals.decorators import EvaluationSpec
from dotevals.providers._recipes import ModelRecipe
from dotevals.providers.base import ModelHandle
from dotevals.results import Header, Record, Summary
from dotevals.storage.base import RecordWriter, Storage, StoredEvaluation

__all__ = ["Packed", "ShardEnd", "ShardWorker"]


@dataclass(frozen=True)
class Packed:
    """A fixture on its way to a worker: a recipe to set up there, or a pickled value."""

    recipe: ModelRecipe | None = None
    value: bytes | None = None


@dataclass(frozen=True)
class ShardEnd:
    """The last message of a share: why the engine stopped early, if it did."""

    failure: str | None


class _RelayWriter(RecordWriter):
    def __init__(self, queue: asyncio.Queue[Record]) -> None:
        self._queue = queue

    def append(self, record: Record) -> None:
        self._queue.put_nowait(record)

    def write_summary(self, summary: Summary) -> None:
        """The driver writes the one summary."""

    def close(self) -> None:
        """Nothing to release."""


class _RelayStorage(Storage):
    """A store that holds nothing and hands each appended record to a queue."""

    url = "relay://"

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Record] = asyncio.Queue()

    def open_writer(self, experiment: str, evaluation: str, header: Header) -> RecordWriter:
        return _RelayWriter(self.queue)

    def iter_entries(self, experiment: str, evaluation: str) -> Iterator[dict[str, Any]]:
        return iter(())

    def load(self, experiment: str, evaluation: str) -> StoredEvaluation:
        return StoredEvaluation(None, {}, None)

    def list_experiments(self) -> list[str]:
        return []

    def list_evaluations(self, experiment: str) -> list[str]:
        return []

    def delete_experiment(self, experiment: str) -> None:
        """Nothing is stored."""

    def rename_experiment(self, old: str, new: str) -> None:
        """Nothing is stored."""

    def experiment_mtime(self, experiment: str) -> float:
        return 0.0


def _drain(first: Record, queue: asyncio.Queue[Record], ids: Sequence[int]) -> list[Record]:
    """``first`` and every record queued after it, with the item ids of the real dataset."""
    out = [first]
    while not queue.empty():
        out.append(queue.get_nowait())
    for record in out:
        record.item_id = ids[record.item_id]
    return out


class ShardWorker:
    """One actor: evaluations loaded by key, models set up once per recipe, shares run."""

    def __init__(self) -> None:
        #: key -> (the evaluation, its fixture values, its engine options); the latest only.
        self._loaded: dict[str, tuple[EvaluationSpec, dict[str, Any], dict[str, Any]]] = {}
        #: recipe key -> the handle set up from it, for every evaluation that needs it.
        self._handles: dict[str, ModelHandle] = {}

    async def load(
        self, key: str, spec: bytes, fixtures: dict[str, Packed], options: dict[str, Any]
    ) -> None:
        """Make an evaluation ready to run shares of (its models set up, or kept from before)."""
        values = {name: await self._rebuild(packed) for name, packed in fixtures.items()}
        # cloudpickle's output loads with plain pickle
        self._loaded = {key: (pickle.loads(spec), values, options)}

    async def _rebuild(self, packed: Packed) -> Any:
        if packed.recipe is None:
            assert packed.value is not None
            return pickle.loads(packed.value)
        key = packed.recipe.key()
        handle = self._handles.get(key)
        if handle is None:
            handle = self._handles[key] = await packed.recipe.setup()
        return handle if packed.recipe.as_handle else handle.model

    async def run(
        self, key: str, rows: list[tuple[int, Any]]
    ) -> AsyncIterator[list[Record] | ShardEnd]:
        """Evaluate ``rows`` (item id, row) of the evaluation loaded as ``key``; yield their
        records as they complete, then the end."""
        loaded, fixtures, engine_options = self._loaded[key]
        ids = [item_id for item_id, _ in rows]
        spec = dataclasses.replace(loaded, dataset=[row for _, row in rows])
        store = _RelayStorage()
        options = RunOptions(experiment="shard", storage=store, **engine_options)
        task = asyncio.ensure_future(evaluate(spec, fixtures, options))
        try:
            while not task.done():
                getter = asyncio.ensure_future(store.queue.get())
                await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    yield _drain(getter.result(), store.queue, ids)
                else:
                    getter.cancel()
            if not store.queue.empty():
                yield _drain(store.queue.get_nowait(), store.queue, ids)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        report = task.result()
        yield ShardEnd(report.failure)

    async def close(self) -> None:
        """Tear down the handles this actor set up."""
        handles, self._handles = list(self._handles.values()), {}
        for handle in handles:
            with contextlib.suppress(Exception):  # the actor goes away next: nothing to tell
                await handle.teardown()
