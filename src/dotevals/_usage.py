"""Token usage of the model calls a row makes, metered without the user's code passing it on.

The engine opens a meter around each call of the evaluation function (:func:`start`); the
clients dotevals hands out report each response to it (:func:`count`). The meter lives in a
context variable, so concurrent rows (asyncio tasks, worker threads) each count their own.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any

from dotevals.results import Usage

__all__ = ["Meter", "count", "hit", "start", "stop"]


class Meter:
    """What the model calls of one row reported: their usages, and how the cache answered."""

    __slots__ = ("calls", "hits", "usages")

    def __init__(self) -> None:
        self.usages: list[Usage] = []
        #: Responses counted (every call of a client dotevals made), and cache hits among them.
        self.calls = 0
        self.hits = 0

    @property
    def cached(self) -> bool:
        """Whether the row's calls were all answered from the response cache.

        Such a row says nothing of the server: its latency must not teach the concurrency
        limit that the server answers in a tenth of a millisecond.
        """
        return self.calls > 0 and self.hits >= self.calls

    def clear(self) -> None:
        """Empty the meter for the next row (rows run one after the other share one)."""
        self.usages = []
        self.calls = self.hits = 0

    def total(self) -> Usage | None:
        """The sum of the usages; None when no call reported any."""
        if not self.usages:
            return None
        found = self.usages[0]
        for usage in self.usages[1:]:
            found = found + usage
        return found


_METER: ContextVar[Meter | None] = ContextVar("dotevals_usage_meter", default=None)


def count(response: Any) -> None:
    """Count a response, and add its ``usage``, on the meter of the row being evaluated."""
    meter = _METER.get()
    if meter is not None:
        meter.calls += 1
        usage = Usage.from_response(response)
        if usage is not None:
            meter.usages.append(usage)


def hit() -> None:
    """Note that the response cache answered a call of the row being evaluated."""
    meter = _METER.get()
    if meter is not None:
        meter.hits += 1


def start() -> tuple[Meter, Token[Meter | None]]:
    """Open a fresh meter for the calls made from here on (and the tasks started here).

    Returns the meter and the token that :func:`stop` takes to close it.
    """
    meter = Meter()
    return meter, _METER.set(meter)


def stop(token: Token[Meter | None]) -> None:
    """End the meter :func:`start` opened."""
    _METER.reset(token)
