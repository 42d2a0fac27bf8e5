"""The provider authors' kit: check a model provider against the contract dotevals relies on."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dotevals.providers._watchdog import process_tree
from dotevals.providers.base import ModelHandle, ModelProvider

__all__ = ["ProviderCheck", "check_provider"]


@dataclass(frozen=True)
class ProviderCheck:
    """What :func:`check_provider` saw: the resource id and the processes the provider ran."""

    resource_id: str
    processes: frozenset[int]


def _descendants() -> dict[int, int]:
    """This process's live descendants, each with its session (``/proc``; empty elsewhere)."""
    table = process_tree()
    found: dict[int, int] = {}
    frontier = [os.getpid()]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _pgid, sid) in table.items():
            if ppid == parent and pid not in found:
                found[pid] = sid
                frontier.append(pid)
    return found


def _leftovers(started: dict[int, int], own_session: int) -> list[int]:
    """Started processes still alive, and live processes in their sessions (not ours)."""
    table = process_tree()
    sessions = set(started.values()) - {own_session}
    left = {pid for pid in started if pid in table}
    left |= {pid for pid, (_ppid, _pgid, sid) in table.items() if sid in sessions}
    return sorted(left)


def _fail(provider: ModelProvider, spec: str, problem: str) -> AssertionError:
    return AssertionError(f"{type(provider).__name__}.setup({spec!r}): {problem}")


async def _wait_for(done: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def _concurrent_setups(
    provider: ModelProvider, spec: str, concurrency: int, config: dict[str, Any]
) -> list[ModelHandle]:
    handles = await asyncio.gather(*(provider.setup(spec, **config) for _ in range(concurrency)))
    if not all(isinstance(handle, ModelHandle) for handle in handles):
        raise _fail(provider, spec, "setup must return a ModelHandle")
    if len({handle.resource_id for handle in handles}) != 1:
        raise _fail(provider, spec, "concurrent setups of one spec gave different resource ids")
    if len({id(handle.model) for handle in handles}) != 1:
        raise _fail(provider, spec, f"{concurrency} concurrent setups made more than one model")
    if any(handle.manager is not provider for handle in handles):
        raise _fail(provider, spec, "a handle's manager is not the provider that made it")
    return list(handles)


async def _release(provider: ModelProvider, spec: str, handles: list[ModelHandle]) -> None:
    for handle in handles:
        await handle.teardown()
        await handle.teardown()  # idempotent: the second call does nothing
        if handle.is_active:
            raise _fail(provider, spec, "a handle is still active after teardown")
    try:
        await provider.teardown(handles[0].resource_id)  # a released resource: no error
    except Exception as exc:
        problem = f"teardown of a released resource raised {type(exc).__name__}: {exc}"
        raise _fail(provider, spec, f"{problem} (teardown must be idempotent)") from exc


async def check_provider(
    provider: ModelProvider,
    spec: str,
    *,
    concurrency: int = 4,
    exit_timeout: float = 15.0,
    use: Callable[[Any], Any] | None = None,
    **config: Any,
) -> ProviderCheck:
    """Check ``provider`` against the ``ModelProvider`` contract; raise AssertionError if not.

    It sets up ``spec`` ``concurrency`` times at once (one resource and one model must come
    back, as dotevals shares them), optionally awaits ``use(model)`` (e.g. one request),
    tears every handle down twice (idempotent) and the released resource once more (no
    error), checks that no process the provider started outlives the last teardown
    (grandchildren included: every process in the sessions of the processes it started;
    Linux only), then sets the spec up and tears it down once more (a provider can start
    again after a full teardown).

    Args:
        provider: The provider under test (a fresh instance).
        spec: A resource spec it can set up.
        concurrency: How many setups of ``spec`` run at once.
        exit_timeout: Seconds its processes may take to exit after the last teardown.
        use: Awaited with the shared model between setup and teardown (sync works too).
        **config: Passed to every ``setup``.

    Returns:
        What was seen: the resource id and the processes the setups started.
    """
    own_session = os.getsid(0)
    before = set(_descendants())
    handles = await _concurrent_setups(provider, spec, concurrency, config)
    started = {pid: sid for pid, sid in _descendants().items() if pid not in before}
    if use is not None:
        result = use(handles[0].model)
        if asyncio.iscoroutine(result):
            await result
    await _release(provider, spec, handles)
    if not await _wait_for(lambda: not _leftovers(started, own_session), exit_timeout):
        left = _leftovers(started, own_session)
        raise _fail(provider, spec, f"processes {left} outlived the last teardown")
    again = await provider.setup(spec, **config)
    await again.teardown()
    return ProviderCheck(handles[0].resource_id, frozenset(started))
