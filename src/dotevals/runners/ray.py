"""The Ray runner: one evaluation's pending rows sharded over Ray actors.

The driver (the pytest process or the ``dotevals.run`` caller) keeps everything that makes a
run resumable: the store's lock, resume, the header, every append and the summary. It hands
out shares of the pending rows (completed rows are never sent) to ``workers`` actors, each of
which runs the same engine on its share (:mod:`dotevals.runners._worker`) and streams the
records back; the driver stores them as they arrive. The rows of an actor that dies are handed
to a new actor; records it had sent are kept and never recomputed.

Ray is an optional extra: ``pip install "dotevals[ray]"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import math
import os
import secrets
import sys
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final

from dotevals.errors import ConfigurationError, DotevalsError
from dotevals.providers._recipes import recipe_for
from dotevals.runners._worker import Packed, ShardEnd, ShardWorker

if TYPE_CHECKING:
    from dotevals._engine import _Run
    from dotevals._rows import Item

__all__ = ["RayRunner", "import_ray"]

#: Rows per share when the dataset's size is unknown; shares are kept between these bounds.
DEFAULT_CHUNK: Final = 64
MIN_CHUNK: Final = 8
MAX_CHUNK: Final = 256
#: How long closing actors may take to tear their models down.
_CLOSE_TIMEOUT_S: Final = 30.0
#: Options of the evaluation that the driver alone applies.
_DRIVER_ONLY: Final = ("samples", "threshold", "name", "storage")

_NOT_REBUILDABLE: Final = (
    "fixture {name!r} ({kind}) cannot be rebuilt on a Ray worker: {why}. Make it rebuildable: "
    "set the model up through a registered provider (the NAME_provider fixtures and "
    "--model PROVIDER:SPEC record how), mark it with "
    "dotevals.runners.rebuildable(model, 'PROVIDER', 'SPEC', **config), give a "
    "dotevals.runners.ModelRecipe('PROVIDER', 'SPEC', ...) as its value, or make the value "
    "picklable"
)


def import_ray() -> Any:
    """The ``ray`` module.

    Raises:
        ConfigurationError: Ray is not installed; the message names the extra.
    """
    try:
        return importlib.import_module("ray")
    except ImportError as exc:
        raise ConfigurationError(
            f'the Ray runner needs Ray: pip install "dotevals[ray]" ({type(exc).__name__}: {exc})'
        ) from exc


def _connect(ray: Any, workers: int) -> None:
    """Join ``RAY_ADDRESS`` when set, else start a local cluster with a CPU per worker."""
    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init()
    else:
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)


def _dumps(ray: Any, value: Any) -> bytes:
    data: bytes = ray.cloudpickle.dumps(value)
    return data


def _pack_spec(ray: Any, run: _Run) -> bytes:
    """The evaluation without its dataset; its module pickled by value (workers lack it)."""
    spec = run.spec
    options = {k: v for k, v in spec.options.items() if k not in _DRIVER_ONLY}
    light = replace(spec, dataset=[], options=options)
    module = sys.modules.get(spec.fn.__module__)
    by_value = module is not None and module.__name__ != "__main__"
    if by_value:
        ray.cloudpickle.register_pickle_by_value(module)
    try:
        return _dumps(ray, light)
    except Exception as exc:
        raise ConfigurationError(
            f"evaluation {run.name!r} cannot be sent to Ray workers: {type(exc).__name__}: "
            f"{exc}. Module-level values it uses must pickle (set clients up in fixtures)"
        ) from exc
    finally:
        if by_value:
            ray.cloudpickle.unregister_pickle_by_value(module)


def pack_fixtures(ray: Any, fixtures: dict[str, Any]) -> dict[str, Packed]:
    """Each fixture as a recipe (models) or a pickled value.

    Raises:
        ConfigurationError: a fixture is neither; the message names it and the fixes.
    """
    packed = {}
    for name, value in fixtures.items():
        recipe = recipe_for(value)
        if recipe is not None:
            packed[name] = Packed(recipe=recipe)
            continue
        try:
            packed[name] = Packed(value=_dumps(ray, value))
        except Exception as exc:
            why = f"{type(exc).__name__}: {exc}"
            message = _NOT_REBUILDABLE.format(name=name, kind=type(value).__name__, why=why)
            raise ConfigurationError(message) from exc
    return packed


def _engine_options(run: _Run) -> dict[str, Any]:
    options = run.options
    return {
        "concurrency": options.concurrency,
        "max_concurrency": options.max_concurrency,
        "threads": options.threads,
        "retry": options.retry,
    }


@dataclass
class _Shares:
    """Hands out the pending rows in shares; rows of a dead actor go out first."""

    run: _Run
    items: Iterator[Item]
    size: int
    returned: deque[list[Item]] = field(default_factory=deque)

    def next(self) -> list[Item]:
        if self.returned:
            return self.returned.popleft()
        if self.run.failure is not None:
            return []
        return list(itertools.islice(self.items, self.size))


@dataclass
class RayRunner:
    """Shard the pending rows of each evaluation over ``workers`` Ray actors.

    The actors outlive one evaluation: the next evaluation run by this runner uses them again
    (models whose recipe is unchanged stay set up), until :meth:`close` or, with
    ``keep_actors=False``, the end of the run.

    Attributes:
        workers: actors (one CPU each in the cluster's accounting).
        chunk_size: rows per share handed to an actor at a time; by default about an eighth
            of an actor's part of the dataset, between 8 and 256 rows.
        actor_options: Ray actor options (``num_gpus``, ``resources``, ``runtime_env``...).
        max_restarts: actors that may die in one run before it stops (default 2 per worker).
        keep_actors: keep the actors for the next evaluation (close them with :meth:`close`).
        actors: the actors now (for ``ray.kill`` in tests and benchmarks).
        deaths: actors that died in the last run.
    """

    workers: int = 2
    chunk_size: int | None = None
    actor_options: dict[str, Any] = field(default_factory=dict)
    max_restarts: int | None = None
    keep_actors: bool = True
    actors: list[Any] = field(default_factory=list, init=False)
    deaths: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.workers < 1 or (self.chunk_size is not None and self.chunk_size < 1):
            raise ConfigurationError(
                f"the Ray runner needs workers >= 1 and chunk_size >= 1, got {self.workers} "
                f"and {self.chunk_size}"
            )

    def _share_size(self, run: _Run) -> int:
        if self.chunk_size is not None:
            return self.chunk_size
        total = run.report(0.0).dataset_size
        if total is None:
            return DEFAULT_CHUNK
        pending = max(total - run.done, 1)
        return max(MIN_CHUNK, min(MAX_CHUNK, math.ceil(pending / (self.workers * 8))))

    def _new_actor(self, ray: Any) -> Any:
        options = {"num_cpus": 1, "scheduling_strategy": "SPREAD", **self.actor_options}
        return ray.remote(ShardWorker).options(**options).remote()

    async def execute(self, run: _Run, units: Iterator[list[Item]]) -> None:
        """Run the rows of ``units`` on the actors; ``run.store`` gets every record."""
        ray = import_ray()
        _connect(ray, self.workers)
        load = (
            secrets.token_hex(8),
            _pack_spec(ray, run),
            pack_fixtures(ray, run.fixtures),
            _engine_options(run),
        )
        while len(self.actors) < self.workers:
            self.actors.append(self._new_actor(ray))
        items = (item for unit in units for item in unit)
        shares = _Shares(run, items, self._share_size(run))
        self.deaths = 0
        try:
            async with _Group() as group:
                for slot in range(self.workers):
                    group.create_task(self._drive(ray, slot, load, shares))
        finally:
            if not self.keep_actors:
                await self.aclose()

    async def _drive(self, ray: Any, slot: int, load: tuple[Any, ...], shares: _Shares) -> None:
        """One actor's loop: take a share, stream its records in; replace the actor if it dies."""
        loaded = False
        while share := shares.next():
            actor = self.actors[slot]
            pending = {item.item_id: item for item in share}
            try:
                if not loaded:
                    await actor.load.remote(*load)
                    loaded = True
                await self._stream(actor, load[0], share, pending, shares.run)
            except ray.exceptions.RayActorError as exc:
                self._died(exc, shares)
                shares.returned.append(list(pending.values()))
                ray.kill(actor)
                self.actors[slot] = self._new_actor(ray)
                loaded = False

    def _died(self, exc: BaseException, shares: _Shares) -> None:
        self.deaths += 1
        limit = self.max_restarts if self.max_restarts is not None else 2 * self.workers
        if self.deaths > limit:
            raise DotevalsError(
                f"{self.deaths} Ray actors died while running {shares.run.name!r} (at most "
                f"{limit} may); the records they sent are stored, run again to resume. "
                f"Last: {type(exc).__name__}: {exc}"
            ) from exc

    async def _stream(
        self, actor: Any, key: str, share: list[Item], pending: dict[int, Item], run: _Run
    ) -> None:
        rows = [(item.item_id, item.row) for item in share]
        async for ref in actor.run.options(num_returns="streaming").remote(key, rows):
            message = await ref
            if isinstance(message, ShardEnd):
                if message.failure is not None and run.failure is None:
                    run.failure = message.failure
                continue
            for record in message:
                pending.pop(record.item_id, None)
            run.store(message)

    async def aclose(self) -> None:
        """Let the actors tear their models down, then end them."""
        ray, actors, closing = self._closing()
        with contextlib.suppress(Exception):  # a dead actor has nothing left to tear down
            await asyncio.wait_for(asyncio.gather(*closing), timeout=_CLOSE_TIMEOUT_S)
        _kill_all(ray, actors)

    def close(self) -> None:
        """:meth:`aclose` outside an event loop (the end of a pytest session)."""
        if not self.actors:
            return
        ray, actors, closing = self._closing()
        with contextlib.suppress(Exception):
            ray.get(closing, timeout=_CLOSE_TIMEOUT_S)
        _kill_all(ray, actors)

    def _closing(self) -> tuple[Any, list[Any], list[Any]]:
        """Ray, the actors (no longer this runner's), and their ``close`` calls under way."""
        ray = import_ray()
        actors, self.actors = self.actors, []
        return ray, actors, [actor.close.remote() for actor in actors]


def _kill_all(ray: Any, actors: list[Any]) -> None:
    for actor in actors:
        ray.kill(actor)


class _Group:
    """Tasks awaited together; the first error is raised as it is (no ExceptionGroup, so a
    DotevalsError still fails the item with its own message) and the others are cancelled."""

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []

    def create_task(self, coro: Any) -> None:
        self._tasks.append(asyncio.ensure_future(coro))

    async def __aenter__(self) -> _Group:
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await asyncio.gather(*self._tasks)
        finally:
            for task in self._tasks:
                task.cancel()
